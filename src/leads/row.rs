//! One CSV row → a lead, or the reason it is refused (its line, the field and why),
//! with the row as it was for the rejected-rows download. Pure: no store, no I/O.

use crate::db;
use crate::db::imports::Rejection;
use crate::db::leads::NewLead;
use crate::domain::phone::E164;
use crate::domain::status::Status;
use crate::leads::columns::{Field, Mapping};
use crate::numbers::Places;

/// Longest accepted field, bytes (a lead has no business carrying more).
const MAX_FIELD_BYTES: usize = 4_096;
/// A rejected row is kept (for the rejected-rows download) up to this many bytes.
const MAX_RAW_BYTES: usize = 64 << 10;

/// A consent time: RFC 3339 (with its offset), or `YYYY-MM-DD[ HH:MM[:SS]]` or
/// `MM/DD/YYYY` read as UTC; not more than a day in the future. UTC ms.
fn parse_consent(s: &str) -> Result<i64, &'static str> {
    use chrono::{NaiveDate, NaiveDateTime};
    let at = chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .or_else(|| {
                    ["%Y-%m-%d", "%m/%d/%Y"]
                        .iter()
                        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
                        .map(|d| d.and_time(chrono::NaiveTime::MIN))
                })
                .map(|t| t.and_utc())
        })
        .ok_or("not a date or time (use RFC 3339, YYYY-MM-DD or MM/DD/YYYY)")?;
    if at > chrono::Utc::now() + chrono::Duration::days(1) {
        return Err("consent date is in the future");
    }
    Ok(db::to_ms(at))
}

pub(crate) fn rejection(line: u64, field: &str, value: &str, reason: &str, raw: &str) -> Rejection {
    Rejection { line, field: field.into(), value: value.into(), reason: reason.into(), raw: raw.into() }
}

/// One data row → a lead, or the reason it is refused.
pub fn parse_row(
    mapping: &Mapping,
    n_columns: usize,
    record: &csv::ByteRecord,
    line: u64,
    region: phonenumber::country::Id,
    places: &Places,
) -> Result<NewLead, Rejection> {
    let raw = || raw_line(record);
    if record.len() > n_columns {
        let reason = format!("{} fields, but the header has {n_columns}", record.len());
        return Err(rejection(line, "", "", &reason, &raw()));
    }
    let get = |field: Field| -> Result<String, Rejection> {
        let Some(bytes) = mapping.position(field).and_then(|idx| record.get(idx)) else { return Ok(String::new()) };
        if bytes.len() > MAX_FIELD_BYTES {
            let reason = format!("longer than {MAX_FIELD_BYTES} bytes");
            return Err(rejection(line, field.name(), "", &reason, &raw()));
        }
        if let Some(reason) = line_break(bytes, line) {
            let first_line = String::from_utf8_lossy(bytes.split(|b| matches!(b, b'\n' | b'\r')).next().unwrap_or(b""));
            return Err(rejection(
                line,
                field.name(),
                &first_line.chars().take(80).collect::<String>(),
                &reason,
                &raw(),
            ));
        }
        if bytes.contains(&0) {
            return Err(rejection(line, field.name(), "", "holds a NUL byte (binary data)", &raw()));
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.trim().to_string()),
            Err(_) => Err(rejection(
                line,
                field.name(),
                &String::from_utf8_lossy(bytes),
                "not valid UTF-8 text (save the file as \"CSV UTF-8\")",
                &raw(),
            )),
        }
    };
    let phone_raw = get(Field::Phone)?;
    let phone = E164::parse(&phone_raw, region)
        .map_err(|e| rejection(line, Field::Phone.name(), &phone_raw, &e.to_string(), &raw()))?;
    let whatsapp_raw = get(Field::Whatsapp)?;
    let whatsapp = if whatsapp_raw.is_empty() {
        String::new()
    } else {
        E164::parse(&whatsapp_raw, region)
            .map_err(|e| rejection(line, Field::Whatsapp.name(), &whatsapp_raw, &e.to_string(), &raw()))?
            .as_str()
            .to_string()
    };
    let status_raw = get(Field::Status)?;
    let status = Status::from_import(&status_raw).ok_or_else(|| {
        let reason = "unknown call_status; use pending or an outcome (completed, voicemail, no_answer, busy, failed, canceled, unknown, do_not_call, invalid)";
        rejection(line, Field::Status.name(), &status_raw, reason, &raw())
    })?;
    let tz_raw = get(Field::Timezone)?;
    let from_number = places.tz.zones_for_digits(phone.digits()).unwrap_or_default();
    let state_raw = get(Field::State)?;
    let from_state = places.state_zones(&state_raw).filter(|_| !state_raw.trim().is_empty());
    let (timezone, timezone_source) = if tz_raw.is_empty() {
        match (from_state, from_number.is_empty()) {
            // The address state narrows the number's zones (a 208 number in "ID"), but
            // never moves a call earlier: a state outside the number's zones (a 212
            // number in "FL") keeps both, and a call must be in hours in all of them.
            (Some(state), false) if state.iter().all(|z| from_number.contains(z)) => (Some(join_zones(state)), "state"),
            (Some(state), false) => {
                let mut zones = from_number.clone();
                zones.extend(state.iter().filter(|z| !from_number.contains(z)));
                (Some(join_zones(&zones)), "state+number")
            }
            (Some(state), true) => (Some(join_zones(state)), "state"),
            (None, false) => (Some(join_zones(&from_number)), "number"),
            (None, true) => (None, "default"),
        }
    } else {
        let zone: chrono_tz::Tz = tz_raw.parse().map_err(|_| {
            rejection(line, Field::Timezone.name(), &tz_raw, "not an IANA time zone (e.g. America/Chicago)", &raw())
        })?;
        // The column is trusted first; when it contradicts the number (a Hawaii number
        // marked America/New_York), keep both: a call must then be inside calling
        // hours in every one of them, so a wrong column can never make a call earlier.
        if from_number.is_empty() || from_number.contains(&zone) {
            (Some(zone.name().to_string()), "column")
        } else {
            let mut zones = vec![zone];
            zones.extend(from_number);
            (Some(join_zones(&zones)), "column+number")
        }
    };
    let mut name = get(Field::Name)?;
    if name.is_empty() {
        name = [get(Field::FirstName)?, get(Field::LastName)?].join(" ").trim().to_string();
    }
    let uuid = Some(get(Field::Uuid)?).filter(|u| !u.is_empty());
    if let Some(u) = &uuid
        && uuid::Uuid::parse_str(u).is_err()
    {
        return Err(rejection(line, Field::Uuid.name(), u, "not a UUID", &raw()));
    }
    let consent_raw = get(Field::ConsentAt)?;
    let consent_at = match consent_raw.trim() {
        "" => None,
        s => Some(parse_consent(s).map_err(|reason| rejection(line, Field::ConsentAt.name(), s, reason, &raw()))?),
    };
    Ok(NewLead {
        line,
        uuid,
        phone: phone.as_str().to_string(),
        whatsapp,
        name,
        email: get(Field::Email)?,
        partner: get(Field::Partner)?,
        state: state_raw.trim().to_ascii_uppercase(),
        timezone,
        timezone_source,
        status,
        consent_at,
        consent_source: get(Field::ConsentSource)?,
    })
}

fn join_zones(zones: &[chrono_tz::Tz]) -> String {
    zones.iter().map(|z| z.name()).collect::<Vec<_>>().join("&")
}

/// The row as a CSV line, for the rejected-rows download; a longer one is cut at
/// `MAX_RAW_BYTES` (on a character boundary) and says so.
fn raw_line(record: &csv::ByteRecord) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    let _ = out.write_byte_record(record);
    let bytes = out.into_inner().unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_end();
    if text.len() <= MAX_RAW_BYTES {
        return text.to_string();
    }
    let cut = (0..=MAX_RAW_BYTES).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    format!("{}… [row cut: {} bytes in all]", &text[..cut], text.len())
}

/// A row of empty (or blank) fields, such as `,,,`: skipped like a blank line.
pub(crate) fn is_blank(record: &csv::ByteRecord) -> bool {
    record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

/// Line breaks in `bytes` (`\r\n`, `\n` or a lone `\r`).
fn count_line_breaks(bytes: &[u8]) -> u64 {
    let lone_cr =
        bytes.windows(2).filter(|w| w[0] == b'\r' && w[1] != b'\n').count() + usize::from(bytes.last() == Some(&b'\r'));
    (bytes.iter().filter(|b| **b == b'\n').count() + lone_cr) as u64
}

/// A lead field never spans lines: one that does has usually swallowed the lines
/// after a quote that was never closed. The reason says which lines.
fn line_break(field: &[u8], line: u64) -> Option<String> {
    // A line break at the end only (a quote left open on the last line) swallowed
    // nothing: the field is read trimmed.
    let breaks = count_line_breaks(field.trim_ascii_end());
    (breaks > 0).then(|| {
        format!(
            "spans lines {line}–{}: a lead field is one line (a quote (\") left open reads the lines after it into the field)",
            line + breaks
        )
    })
}

/// The last row, when the file ended inside a quote: refused with the lines it
/// swallowed (kept in its raw row), or None when no field of it spans lines (then
/// nothing was swallowed).
pub(crate) fn unclosed_quote(record: &csv::ByteRecord, line: u64) -> Option<Rejection> {
    let breaks: u64 = record.iter().map(|f| count_line_breaks(f.trim_ascii_end())).sum();
    (breaks > 0).then(|| {
        let reason = format!(
            "a quote (\") is never closed: lines {line}–{} up to the end of the file were read as this one row; \
             close the quote and import them again",
            line + breaks
        );
        rejection(line, "", "", &reason, &raw_line(record))
    })
}
