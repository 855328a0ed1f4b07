//! Streaming CSV import: read in chunks, parse rows in parallel, write each chunk in
//! one transaction. Memory stays bounded by the chunk size whatever the file size.
//! A bad row is rejected with its line, field and reason and never stops the rest;
//! chunks already written stay written. Leads whose number is on the do-not-call list
//! are stored with status `do_not_call` (the DNC scrub), never dropped.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;

use rayon::prelude::*;
use serde::Serialize;

use crate::db::imports::Rejection;
use crate::db::leads::{NewLead, Upsert};
use crate::db::{self, Db};
use crate::domain::phone::E164;
use crate::domain::status::Status;
use crate::leads::columns::{Field, Mapping};
use crate::numbers::Places;

/// Rows parsed and written per transaction.
const CHUNK_ROWS: usize = 20_000;
/// Rejections returned inline in the response; all of them are kept in the store
/// and offered as a CSV download.
pub const MAX_ERRORS_INLINE: usize = 1_000;
/// Longest accepted field, bytes (a lead has no business carrying more).
const MAX_FIELD_BYTES: usize = 4_096;

/// What the caller provides: where to write, how to read numbers and zones.
pub struct Context<'a> {
    pub db: &'a Db,
    pub region: phonenumber::country::Id,
    /// Number → zones, state → zones.
    pub places: &'a Places,
}

/// The import's result, in the API's shape plus the import id.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub import_id: i64,
    pub imported: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Leads whose number is on the do-not-call list: stored (or, if already stored
    /// and waiting, marked) with status `do_not_call`, never deleted. Counted within
    /// `imported` / `duplicates` as well.
    pub dnc: u64,
    pub errors: Vec<Rejection>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is empty: expected a header line such as lead_uuid,number,name,email")]
    Empty,
    #[error("no phone column in the header (found: {found}); name one of: {expected}")]
    NoPhoneColumn { found: String, expected: String },
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

struct Parsed {
    rows: Vec<Result<NewLead, Rejection>>,
}

/// Imports `input`, calling `progress(bytes_read)` after each chunk.
pub fn run(
    ctx: &Context,
    filename: &str,
    input: impl Read + Send,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, ImportError> {
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut reader = BufReader::with_capacity(1 << 18, Counting { inner: input, count: counter.clone() });
    let delimiter = sniff_delimiter(reader.fill_buf().map_err(|e| anyhow::anyhow!("reading upload: {e}"))?);
    let mut csv = csv::ReaderBuilder::new().flexible(true).delimiter(delimiter).from_reader(reader);
    let header: Vec<String> = match csv.byte_headers() {
        Ok(h) if !(h.is_empty() || h.len() == 1 && h[0].is_empty()) => {
            h.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect()
        }
        _ => return Err(ImportError::Empty),
    };
    let mapping = Mapping::from_header(header.iter().map(String::as_str));
    if mapping.position(Field::Phone).is_none() {
        return Err(ImportError::NoPhoneColumn {
            found: header.join(", "),
            expected: Mapping::phone_aliases().join(", "),
        });
    }
    let now_ms = db::to_ms(chrono::Utc::now());
    let import_id = ctx.db.write_blocking(|tx| db::imports::start(tx, filename, now_ms))?;
    let mut summary = Summary { import_id, imported: 0, duplicates: 0, rejected: 0, dnc: 0, errors: Vec::new() };
    let n_columns = header.len();

    // Two stages: this thread parses chunk k+1 while the writer thread stores chunk k.
    let (send, recv) = mpsc::sync_channel::<Parsed>(1);
    std::thread::scope(|scope| -> Result<(), ImportError> {
        let initial = summary.clone();
        let writer = scope.spawn(move || -> anyhow::Result<Summary> {
            let mut summary = initial;
            for chunk in recv {
                write_chunk(ctx.db, import_id, chunk, &mut summary)?;
            }
            Ok(summary)
        });
        let mut records = Vec::with_capacity(CHUNK_ROWS);
        let mut record = csv::ByteRecord::new();
        loop {
            let more = match csv.read_byte_record(&mut record) {
                Ok(more) => more,
                Err(e) => {
                    // An unreadable stream (I/O error mid-upload): keep what was read.
                    let line = e.position().map_or(0, |p| p.line());
                    records.push((line, Err(format!("unreadable CSV: {e}"))));
                    false
                }
            };
            if more {
                let line = record.position().map_or(0, |p| p.line());
                records.push((line, Ok(record.clone())));
            }
            if records.len() >= CHUNK_ROWS || (!more && !records.is_empty()) {
                let rows = records
                    .par_drain(..)
                    .map(|(line, rec)| match rec {
                        Ok(rec) => parse_row(&mapping, n_columns, &rec, line, ctx.region, ctx.places),
                        Err(reason) => Err(rejection(line, "", "", &reason, "")),
                    })
                    .collect();
                if send.send(Parsed { rows }).is_err() {
                    break; // the writer failed; its error is reported below
                }
                progress(counter.load(std::sync::atomic::Ordering::Relaxed));
            }
            if !more {
                break;
            }
        }
        drop(send);
        summary = writer.join().map_err(|_| anyhow::anyhow!("import writer panicked"))??;
        Ok(())
    })?;
    ctx.db.write_blocking(|tx| db::imports::finish(tx, import_id, db::to_ms(chrono::Utc::now())))?;
    progress(counter.load(std::sync::atomic::Ordering::Relaxed));
    Ok(summary)
}

fn write_chunk(db: &Db, import_id: i64, chunk: Parsed, summary: &mut Summary) -> anyhow::Result<()> {
    let now_ms = db::to_ms(chrono::Utc::now());
    let (mut imported, mut duplicates, mut rejected, mut dnc) = (0, 0, 0, 0);
    let mut errors = Vec::new();
    db.write_blocking(|tx| {
        // The DNC scrub: one indexed lookup per row, skipped while the list is empty.
        let scrub = !db::dnc::is_empty(tx)?;
        for row in &chunk.rows {
            let rejection = match row {
                Ok(lead) => {
                    let listed = scrub && db::dnc::contains(tx, &lead.phone)?;
                    let scrubbed;
                    let lead = if listed {
                        scrubbed = NewLead { status: Status::DoNotCall, ..lead.clone() };
                        &scrubbed
                    } else {
                        lead
                    };
                    match db::leads::upsert(tx, lead, import_id, now_ms)? {
                        Upsert::Inserted => {
                            imported += 1;
                            dnc += u64::from(listed);
                            continue;
                        }
                        Upsert::Merged => {
                            duplicates += 1;
                            // A re-import never changes a status, except that a waiting
                            // lead on the list is marked (as adding the number would).
                            if listed && db::dnc::mark_leads(tx, &lead.phone, now_ms)? > 0 {
                                dnc += 1;
                            }
                            continue;
                        }
                        Upsert::Conflict(reason) => {
                            rejection(lead.line, "lead_uuid", lead.uuid.as_deref().unwrap_or(""), &reason, "")
                        }
                    }
                }
                Err(r) => r.clone(),
            };
            db::imports::add_rejection(tx, import_id, &rejection)?;
            rejected += 1;
            errors.push(rejection);
        }
        db::imports::add_counts(tx, import_id, imported, duplicates, rejected)
    })?;
    summary.imported += imported;
    summary.duplicates += duplicates;
    summary.rejected += rejected;
    summary.dnc += dnc;
    let room = MAX_ERRORS_INLINE.saturating_sub(summary.errors.len());
    summary.errors.extend(errors.into_iter().take(room));
    Ok(())
}

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

fn rejection(line: u64, field: &str, value: &str, reason: &str, raw: &str) -> Rejection {
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
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.trim().to_string()),
            Err(_) => {
                Err(rejection(line, field.name(), &String::from_utf8_lossy(bytes), "not valid UTF-8 text", &raw()))
            }
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

/// The row as a CSV line, for the rejected-rows download.
fn raw_line(record: &csv::ByteRecord) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    let _ = out.write_byte_record(record);
    let bytes = out.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

/// `,` unless the header line has none and has `;` or a tab instead.
fn sniff_delimiter(head: &[u8]) -> u8 {
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or(head);
    if first_line.contains(&b',') {
        b','
    } else if first_line.contains(&b';') {
        b';'
    } else if first_line.contains(&b'\t') {
        b'\t'
    } else {
        b','
    }
}

struct Counting<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
