//! Phone number → candidate IANA time zones.
//!
//! Source data: libphonenumber's time-zone map (`resources/timezones/map_data.txt`,
//! Apache-2.0), embedded from `data/tz_map_data.txt`. Format: `#` comment lines, then
//! `PREFIX|Zone1&Zone2…` lines where PREFIX is E.164 digits without `+`; lookups use the
//! **longest matching prefix** (compliance.md §3.1).
//!
//! Multi-zone rule (compliance.md §3.4, pitfalls.md D.16): a match with several zones
//! returns all of them and the caller must require *every* zone to be inside the calling
//! window. A match only at a bare country code that lists several zones (e.g. `1`, every
//! NANP zone) means **unknown**: [`TzMap::zones_for_digits`] returns `None`, never a guess.
//! Zones are IANA names only; UTC offsets are computed by `chrono-tz` at dial time.

use std::collections::HashMap;

use chrono_tz::Tz;

/// The libphonenumber map shipped with the binary (Apache-2.0, see file header).
const EMBEDDED: &str = include_str!("../../data/tz_map_data.txt");

/// Longest prefix we accept; keeps `(len, value)` packable into one `u64` key.
const MAX_PREFIX_DIGITS: usize = 18;

/// Error from [`TzMap::parse`]: the 1-based line number and what is wrong with it.
/// `line` is 0 for whole-file problems (no data lines at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time-zone map line {line}: {reason}")]
pub struct TzMapError {
    /// 1-based line number in the parsed text (0 = whole file).
    pub line: usize,
    /// Human-readable reason.
    pub reason: String,
}

/// Parsed libphonenumber time-zone map. Embedded with
/// `include_str!("../../data/tz_map_data.txt")`; build one with [`TzMap::embedded`] at
/// start-up and keep it in application state (no global statics).
#[derive(Debug, Clone)]
pub struct TzMap {
    /// Packed prefix key (see [`key`]) → resolved zones; `None` = "unknown" (a country-level
    /// prefix with several zones, or no zone name known to chrono-tz).
    entries: HashMap<u64, Option<Box<[Tz]>>>,
    /// Longest prefix length present, in digits.
    max_len: usize,
}

/// Packs a prefix of `len` digits (value `value`) into a collision-free key.
/// `value < 10^18 < 2^60`, so the length fits in the top 4 bits.
fn key(len: usize, value: u64) -> u64 {
    ((len as u64) << 60) | value
}

impl TzMap {
    /// Parses the embedded libphonenumber map.
    ///
    /// The embedded file is covered by a unit test, so parsing cannot fail in a released
    /// build; if it somehow did, this fails closed with an empty map (every lookup returns
    /// `None` = "unknown zone, do not dial") instead of panicking. Check [`TzMap::len`] at
    /// start-up if you want to log that case.
    pub fn embedded() -> TzMap {
        TzMap::parse(EMBEDDED).unwrap_or_else(|_| TzMap { entries: HashMap::new(), max_len: 0 })
    }

    /// Parses map text in libphonenumber's format (`#` comments, blank lines ignored,
    /// `PREFIX|Zone1&Zone2…` data lines, CRLF tolerated).
    ///
    /// Errors (with the 1-based line number): missing `|`, prefix empty / not ASCII digits /
    /// longer than 18 digits, empty zone name, duplicate prefix, or no data lines at all.
    /// Zone names unknown to chrono-tz are **skipped**, not an error (the embedded file is
    /// tested to contain none).
    pub fn parse(text: &str) -> Result<TzMap, TzMapError> {
        // key -> (line number, distinct zone-name count, zones known to chrono-tz)
        let mut raw: HashMap<u64, (usize, usize, Vec<Tz>)> = HashMap::new();
        let mut keys: Vec<(usize, u64)> = Vec::new();
        let mut max_len = 0;
        for (idx, line) in text.lines().enumerate() {
            let line_no = idx + 1;
            let err = |reason: String| TzMapError { line: line_no, reason };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (prefix, zones) = line.split_once('|').ok_or_else(|| err("expected PREFIX|Zone1&Zone2".to_string()))?;
            let prefix = prefix.trim();
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(format!("prefix {prefix:?} is not ASCII digits")));
            }
            if prefix.len() > MAX_PREFIX_DIGITS {
                return Err(err(format!("prefix {prefix:?} is longer than {MAX_PREFIX_DIGITS} digits")));
            }
            let value = prefix.parse::<u64>().map_err(|e| err(format!("prefix {prefix:?}: {e}")))?;
            let k = key(prefix.len(), value);
            if let Some((first, _, _)) = raw.get(&k) {
                return Err(err(format!("duplicate prefix {prefix} (first on line {first})")));
            }
            let mut names: Vec<&str> = Vec::new();
            for name in zones.split('&').map(str::trim) {
                if name.is_empty() {
                    return Err(err(format!("empty zone name for prefix {prefix}")));
                }
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            let known: Vec<Tz> = names.iter().filter_map(|n| n.parse::<Tz>().ok()).collect();
            raw.insert(k, (line_no, names.len(), known));
            keys.push((prefix.len(), value));
            max_len = max_len.max(prefix.len());
        }
        if keys.is_empty() {
            return Err(TzMapError { line: 0, reason: "no data lines".to_string() });
        }
        let mut entries = HashMap::with_capacity(keys.len());
        for (len, value) in keys {
            // A "bare country code" is a prefix with no shorter prefix in the map
            // (in libphonenumber's file these are exactly the country-code lines).
            let is_root = (1..len).all(|l| !raw.contains_key(&key(l, value / 10u64.pow((len - l) as u32))));
            let k = key(len, value);
            let resolved = match raw.get(&k) {
                Some((_, n, _)) if is_root && *n > 1 => None,
                Some((_, _, known)) if !known.is_empty() => Some(known.clone().into_boxed_slice()),
                _ => None,
            };
            entries.insert(k, resolved);
        }
        Ok(TzMap { entries, max_len })
    }

    /// Number of prefixes in the map (0 only if the embedded data failed to parse).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map has no prefixes (every lookup returns `None`).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Candidate zones for E.164 digits without `+`, e.g. `"19072760142"`, by longest
    /// prefix match. Several zones mean "any of these": callers must require all of them
    /// to be inside the window (compliance.md §3.4).
    ///
    /// Returns `None` ("unknown, do not dial") when: the input is empty or contains any
    /// non-digit (including `+`); nothing matches; the longest match is a bare country code
    /// listing more than one zone (e.g. `"1"` for NANP); or none of the matched zone names
    /// is known to chrono-tz (unknown names are skipped). Allocation-free apart from the
    /// returned `Vec`; at most `max prefix length` (9 for the embedded file) hash probes.
    pub fn zones_for_digits(&self, digits: &str) -> Option<Vec<Tz>> {
        let bytes = digits.as_bytes();
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = bytes.len().min(self.max_len);
        let mut values = [0u64; MAX_PREFIX_DIGITS + 1];
        let mut acc = 0u64;
        for (i, b) in bytes.iter().take(n).enumerate() {
            acc = acc * 10 + u64::from(b - b'0');
            values[i + 1] = acc;
        }
        (1..=n)
            .rev()
            .find_map(|len| self.entries.get(&key(len, values[len])))
            .and_then(|zones| zones.as_deref().map(<[Tz]>::to_vec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(map: &TzMap, digits: &str) -> Option<Vec<Tz>> {
        map.zones_for_digits(digits)
    }

    #[test]
    fn embedded_parses_and_every_zone_is_known_to_chrono_tz() {
        assert!(TzMap::parse(EMBEDDED).is_ok());
        let map = TzMap::embedded();
        assert!(map.len() > 3000, "only {} prefixes", map.len());
        assert_eq!(map.max_len, 9);
        for (i, line) in EMBEDDED.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (_, names) = line.split_once('|').expect("data line has |");
            for name in names.split('&') {
                assert!(name.parse::<Tz>().is_ok(), "line {}: {name}", i + 1);
            }
        }
    }

    #[test]
    fn known_us_prefixes() {
        let m = TzMap::embedded();
        use chrono_tz::America::{Adak, Anchorage, Boise, Denver, Juneau, Los_Angeles, New_York};
        assert_eq!(zones(&m, "12015550100"), Some(vec![New_York]));
        // `1907|America/Adak&America/Anchorage`
        assert_eq!(zones(&m, "19075550100"), Some(vec![Adak, Anchorage]));
        // `190727|America/Juneau` beats `1907`
        assert_eq!(zones(&m, "19072760142"), Some(vec![Juneau]));
        assert_eq!(zones(&m, "18085550100"), Some(vec![chrono_tz::Pacific::Honolulu]));
        // 208 (Idaho) split: `12082|America/Boise&America/Los_Angeles`, `1208201|America/Denver`
        assert_eq!(zones(&m, "12082990000"), Some(vec![Boise, Los_Angeles]));
        assert_eq!(zones(&m, "12082011234"), Some(vec![Denver]));
        // `1219226|America/Chicago` inside an otherwise Eastern NPA (compliance.md §3.1)
        assert_eq!(zones(&m, "12192261234"), Some(vec![chrono_tz::America::Chicago]));
        // prefix exactly equal to the whole input still matches
        assert_eq!(zones(&m, "1201"), Some(vec![New_York]));
    }

    #[test]
    fn country_level_only_match_is_unknown() {
        let m = TzMap::embedded();
        assert_eq!(zones(&m, "1"), None);
        assert_eq!(zones(&m, "19995550100"), None); // NPA 999 unassigned: only `1` matches
        assert_eq!(zones(&m, "34"), None); // `34|Atlantic/Canary&Europe/Madrid`
        assert_eq!(zones(&m, "44"), None);
    }

    #[test]
    fn india_legacy_link_name() {
        let m = TzMap::embedded();
        let z = zones(&m, "919876543210").expect("India has one zone");
        assert_eq!(z, vec![chrono_tz::Asia::Calcutta]);
        assert_eq!(z[0].name(), "Asia/Calcutta");
        use chrono::{Offset, TimeZone, Utc};
        let at = Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap();
        let off = |tz: Tz| tz.offset_from_utc_datetime(&at.naive_utc()).fix();
        assert_eq!(off(z[0]), off(chrono_tz::Asia::Kolkata));
    }

    #[test]
    fn bad_input_is_unknown_not_panic() {
        let m = TzMap::embedded();
        for s in ["", "+12015550100", "1201 555", "12a", "١٢٠١", "0", "00000000000000000000000"] {
            assert_eq!(zones(&m, s), None, "{s:?}");
        }
        // very long digit strings only use the first max_len digits
        assert_eq!(zones(&m, &format!("1201{}", "9".repeat(100))), Some(vec![chrono_tz::America::New_York]));
    }

    #[test]
    fn custom_maps_unknown_names_and_roots() {
        let text = "# c\n\n1|America/Chicago&Mars/Base\r\n12|Mars/Base\n \
                    13|Mars/Base&America/Denver\n5|Europe/Paris&Europe/Berlin\n91|Asia/Kolkata\n";
        let m = TzMap::parse(text).unwrap();
        assert_eq!(zones(&m, "1999"), None); // root with 2 raw names (one unknown) stays unknown
        assert_eq!(zones(&m, "1299"), None); // all names unknown → None, no fallback to `1`
        assert_eq!(zones(&m, "13"), Some(vec![chrono_tz::America::Denver]));
        assert_eq!(zones(&m, "555"), None);
        assert_eq!(zones(&m, "9100"), Some(vec![chrono_tz::Asia::Kolkata]));
        assert_eq!(zones(&m, "8"), None);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let cases = [
            ("# c\n1201|America/New_York\nbad line\n", 3, "PREFIX|"),
            ("12a|America/New_York", 1, "not ASCII digits"),
            ("|America/New_York", 1, "not ASCII digits"),
            ("1|America/New_York&&America/Chicago", 1, "empty zone"),
            ("1|", 1, "empty zone"),
            ("1|UTC\n\n1|UTC", 3, "duplicate prefix 1 (first on line 1)"),
            ("1234567890123456789|UTC", 1, "longer than 18"),
            ("# only comments\n", 0, "no data"),
        ];
        for (text, line, needle) in cases {
            let e = TzMap::parse(text).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            let msg = e.to_string();
            assert!(msg.contains(&format!("line {line}")), "{msg}");
            assert!(msg.contains(needle), "{msg}");
        }
    }
}
