//! NANP area code (NPA) → state / province / country, for "local presence" caller-ID matching: a lead in
//! 646 should prefer a caller number in 646, then one anywhere in the same state (NY).
//!
//! The data is `data/npa_states.txt` (embedded at compile time), one `NPA|CODE|Name` line per geographic
//! area code, e.g. `646|NY|New York`. It is generated from libphonenumber (Apache License 2.0, Copyright
//! The Libphonenumber Authors) as carried by the Python `phonenumbers` package: the 4-digit `1NPA`
//! entries of `resources/geocoding/en/1.txt` for the US and Canada, and the region metadata for the other
//! NANP regions. CODE is a USPS / Canada Post code (`NY`, `DC`, `PR`, `ON`), `NS/PE` or `NT/NU/YT` for an
//! NPA shared by several provinces, or `C-` plus the ISO 3166-1 code for another NANP country (`C-JM`),
//! so `C-KY` (Cayman Islands) never collides with `KY` (Kentucky). Non-geographic NPAs (8YY toll-free,
//! 5YY, 600, 700, 900, ...) are absent. The file's header records the package version and counts.
//!
//! Regenerate (from the repository root):
//! ```text
//! pip install --target /tmp/pn phonenumbers==<version>
//! PYTHONPATH=/tmp/pn python3 data/gen_npa_states.py > data/npa_states.txt
//! ```

use std::collections::BTreeMap;

use anyhow::bail;

const EMBEDDED: &str = include_str!("../../data/npa_states.txt");

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    code: Box<str>,
    name: Box<str>,
}

/// Area code → state/province table. Cheap to query; build once and share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NpaMap {
    by_npa: BTreeMap<u16, Entry>,
}

impl NpaMap {
    /// Parses the embedded data file (`data/npa_states.txt`). The file is validated by this module's
    /// tests; should it ever fail to parse, the map is empty rather than panicking.
    pub fn embedded() -> NpaMap {
        Self::parse(EMBEDDED).unwrap_or_default()
    }

    /// Parses text in the file's format: `NPA|CODE|Name` lines; blank lines and lines starting with `#`
    /// are ignored. Errors name the (1-based) line number and the reason.
    pub fn parse(text: &str) -> anyhow::Result<NpaMap> {
        let mut by_npa = BTreeMap::new();
        let mut first_line = BTreeMap::new();
        for (idx, raw) in text.lines().enumerate() {
            let lineno = idx + 1;
            let line = raw.trim_start_matches('\u{feff}').trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('|').map(str::trim).collect();
            let [npa, code, name] = fields[..] else {
                bail!("line {lineno}: expected 3 fields `NPA|CODE|Name`, found {}: {line:?}", fields.len());
            };
            let Some(npa) = parse_npa(npa) else {
                bail!("line {lineno}: area code {npa:?} is not 3 digits with the first digit 2-9");
            };
            if !valid_code(code) {
                bail!("line {lineno}: code {code:?} is not `XX`, `XX/YY...` or `C-XX` (uppercase letters)");
            }
            if name.is_empty() {
                bail!("line {lineno}: empty name for area code {npa}");
            }
            if let Some(prev) = first_line.insert(npa, lineno) {
                bail!("line {lineno}: duplicate area code {npa} (first on line {prev})");
            }
            by_npa.insert(npa, Entry { code: code.into(), name: name.into() });
        }
        Ok(NpaMap { by_npa })
    }

    /// Two-letter state/province code (or the file's scheme for shared NPAs and other NANP countries, e.g.
    /// `NS/PE`, `C-JM`) for a 3-digit area code; `None` if unknown or non-geographic.
    pub fn state(&self, npa: u16) -> Option<&str> {
        self.by_npa.get(&npa).map(|e| &*e.code)
    }

    /// Human name ("New York").
    pub fn state_name(&self, npa: u16) -> Option<&str> {
        self.by_npa.get(&npa).map(|e| &*e.name)
    }

    /// All area codes of one state, ascending. ASCII case-insensitive; a province also matches the NPAs it
    /// shares (`PE` → 782, 902), as does the full shared code (`NS/PE`). Empty for an unknown state.
    pub fn area_codes_in(&self, state: &str) -> Vec<u16> {
        let state = state.trim();
        if state.is_empty() {
            return Vec::new();
        }
        let matches = |code: &str| {
            code.eq_ignore_ascii_case(state) || code.split('/').any(|part| part.eq_ignore_ascii_case(state))
        };
        self.by_npa.iter().filter(|(_, e)| matches(&e.code)).map(|(npa, _)| *npa).collect()
    }

    pub fn len(&self) -> usize {
        self.by_npa.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_npa.is_empty()
    }
}

fn parse_npa(s: &str) -> Option<u16> {
    match *s.as_bytes() {
        [a @ b'2'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

fn valid_code(code: &str) -> bool {
    let two_upper = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase());
    match code.strip_prefix("C-") {
        Some(country) => two_upper(country),
        None => code.split('/').all(two_upper),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US_STATES: [&str; 51] = [
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
        "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH",
        "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
    ];

    #[test]
    fn embedded_parses() {
        let map = NpaMap::parse(EMBEDDED).expect("embedded data parses");
        assert!(!map.is_empty());
        assert_eq!(map, NpaMap::embedded());
    }

    #[test]
    fn known_area_codes() {
        let map = NpaMap::embedded();
        for npa in [212, 646, 332, 917, 718] {
            assert_eq!(map.state(npa), Some("NY"), "{npa}");
        }
        let cases = [(808, "HI"), (907, "AK"), (305, "FL"), (786, "FL"), (202, "DC"), (787, "PR"), (939, "PR")];
        for (npa, code) in cases.into_iter().chain([(416, "ON"), (604, "BC"), (876, "C-JM"), (345, "C-KY")]) {
            assert_eq!(map.state(npa), Some(code), "{npa}");
        }
        assert_eq!(map.state_name(646), Some("New York"));
        assert_eq!(map.state_name(416), Some("Ontario"));
        assert_eq!(map.state(902), Some("NS/PE"));
    }

    #[test]
    fn non_geographic_and_out_of_range_are_none() {
        let map = NpaMap::embedded();
        for npa in [800, 833, 844, 855, 866, 877, 888, 500, 555, 600, 700, 900, 911, 0, 99, 1000, u16::MAX] {
            assert_eq!(map.state(npa), None, "{npa}");
            assert_eq!(map.state_name(npa), None, "{npa}");
        }
    }

    #[test]
    fn npas_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for line in EMBEDDED.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let npa = line.split('|').next().unwrap_or_default();
            assert!(parse_npa(npa).is_some(), "bad NPA in {line:?}");
            assert!(seen.insert(npa), "duplicate NPA {npa}");
        }
        assert_eq!(seen.len(), NpaMap::embedded().len());
    }

    #[test]
    fn overlays_and_counts() {
        let map = NpaMap::embedded();
        let ny = map.area_codes_in("NY");
        assert!(ny.contains(&212) && ny.contains(&646) && ny.contains(&718), "{ny:?}");
        assert!(ny.windows(2).all(|w| w[0] < w[1]), "not ascending: {ny:?}");
        assert_eq!(map.area_codes_in("ny"), ny);
        assert_eq!(map.area_codes_in("PE"), vec![782, 902]);
        assert_eq!(map.area_codes_in("NS/PE"), vec![782, 902]);
        assert_eq!(map.area_codes_in("C-JM"), vec![658, 876]);
        assert!(map.area_codes_in("ZZ").is_empty() && map.area_codes_in("").is_empty());
        let us = map.by_npa.values().filter(|e| US_STATES.contains(&&*e.code)).count();
        assert!(us >= 330, "only {us} US NPAs");
        assert!(map.area_codes_in("ON").len() >= 15);
    }

    #[test]
    fn every_tz_map_area_code_has_a_state() {
        let map = NpaMap::embedded();
        let tz = include_str!("../../data/tz_map_data.txt");
        let keys = tz.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split('|').next());
        let npas: Vec<&str> = keys.filter(|k| k.len() == 4 && k.starts_with('1')).map(|k| &k[1..]).collect();
        assert!(npas.len() > 400, "tz map has only {} area codes", npas.len());
        let missing: Vec<&str> =
            npas.into_iter().filter(|k| parse_npa(k).and_then(|n| map.state(n)).is_none()).collect();
        assert!(missing.is_empty(), "area codes without a state: {missing:?}");
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let good = "# header\n201|NJ|New Jersey\n\n";
        for (bad, reason) in [
            ("2x2|NY|New York", "area code"),
            ("123|NY|New York", "area code"),
            ("2012|NJ|New Jersey", "area code"),
            ("212|NY", "3 fields"),
            ("212|NY|New York|extra", "3 fields"),
            ("212|ny|New York", "code"),
            ("212|NYC|New York", "code"),
            ("212|C-|New York", "code"),
            ("212|NY/|New York", "code"),
            ("212|NY|", "empty name"),
            ("201|NJ|New Jersey", "duplicate area code 201 (first on line 2)"),
        ] {
            let err = NpaMap::parse(&format!("{good}{bad}\n")).expect_err(bad).to_string();
            assert!(err.starts_with("line 4:") && err.contains(reason), "{bad:?} -> {err}");
        }
    }

    #[test]
    fn parse_accepts_edge_formatting_and_never_panics() {
        let map = NpaMap::parse("\u{feff}# c\r\n 646 | NY | New York \r\n").expect("parses");
        assert_eq!((map.state(646), map.state_name(646), map.len()), (Some("NY"), Some("New York"), 1));
        assert!(NpaMap::parse("").expect("empty ok").is_empty());
        for junk in ["|", "||", "|||", "é|é|é", "\u{0}", "99999999999|XX|Y", "2\u{301}12|NY|x", "C-|C-|C-"] {
            assert!(NpaMap::parse(junk).is_err(), "{junk:?}");
        }
        let map = NpaMap::embedded();
        assert!((0..=u16::MAX).filter(|n| map.state(*n).is_some()).all(|n| (200..1000).contains(&n)));
    }
}
