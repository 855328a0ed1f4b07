//! Streaming CSV import: read in chunks, parse rows in parallel, write each chunk in
//! one transaction. Memory stays bounded by the chunk size whatever the file size.
//! A bad row is rejected with its line, field and reason and never stops the rest;
//! chunks already written stay written. Leads whose number is on the do-not-call list
//! are stored with status `do_not_call` (the DNC scrub), never dropped.
//!
//! Bad input never fails the request with more than a 4xx: a file that is not text
//! (`sniff`), empty, or without a phone column is refused as a whole with the reason;
//! everything else is read row by row, and a row is either imported, skipped (only
//! empty fields: a blank line), or rejected with its line, field and reason.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use rayon::prelude::*;
use serde::Serialize;

use crate::db::imports::Rejection;
use crate::db::leads::{NewLead, Upsert};
use crate::db::{self, Db};
use crate::domain::status::Status;
use crate::leads::columns::{Field, Mapping};
use crate::leads::lines::Lines;
use crate::leads::row::{is_blank, parse_row, rejection, unclosed_quote};
use crate::leads::sniff::{self, Counting, Source, Transcode};
use crate::numbers::Places;

/// Rows parsed and written per transaction.
const CHUNK_ROWS: usize = 20_000;
/// A chunk is also cut at this many bytes of rows, so rows with huge fields cannot
/// hold more than this in memory at once.
const CHUNK_BYTES: usize = 32 << 20;
/// Header names quoted in the "no phone column" error.
const MAX_HEADER_NAMES: usize = 20;
/// Rejections returned inline in the response; all of them are kept in the store
/// and offered as a CSV download.
pub const MAX_ERRORS_INLINE: usize = 1_000;

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
    #[error("the file is not CSV text ({0}): save or export it as \"CSV UTF-8\" and upload that")]
    NotText(String),
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
    let counter = Arc::new(AtomicU64::new(0));
    let mut bytes = BufReader::with_capacity(1 << 18, Counting { inner: input, count: counter.clone() });
    let head = bytes.fill_buf().map_err(|e| anyhow::anyhow!("reading upload: {e}"))?;
    let mut text: Box<dyn BufRead + Send + '_> = match sniff::source(head).map_err(|e| ImportError::NotText(e.0))? {
        Source::Utf8 { bom_len } => {
            // Skipped here: the CSV reader would keep it, and a quoted first header
            // after it would then not be read as quoted.
            bytes.consume(bom_len);
            Box::new(bytes)
        }
        Source::Decode(encoding) => Box::new(BufReader::with_capacity(1 << 18, Transcode::new(bytes, encoding))),
    };
    let delimiter = sniff::delimiter(text.fill_buf().map_err(|e| anyhow::anyhow!("reading upload: {e}"))?);
    let mut csv = csv::ReaderBuilder::new().flexible(true).delimiter(delimiter).from_reader(Lines::new(text));
    let header: Vec<String> = match csv.byte_headers() {
        Ok(h) if !(h.is_empty() || h.len() == 1 && h[0].is_empty()) => {
            h.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect()
        }
        _ => return Err(ImportError::Empty),
    };
    let mapping = Mapping::from_header(header.iter().map(String::as_str));
    if mapping.position(Field::Phone).is_none() {
        return Err(ImportError::NoPhoneColumn {
            found: header_names(&header),
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
        let mut chunk_bytes = 0;
        let mut record = csv::ByteRecord::new();
        // The row read last waits here until the next is read: at the end of the file
        // it is checked for a quote that was never closed.
        let mut last: Option<(u64, Result<csv::ByteRecord, Rejection>)> = None;
        loop {
            let more = match csv.read_byte_record(&mut record) {
                Ok(more) => more,
                Err(e) => {
                    // An unreadable stream (I/O error mid-upload): keep what was read.
                    let line = e.position().map_or(0, |p| csv.get_mut().line_at(p.byte()));
                    records.extend(last.take());
                    records.push((line, Err(rejection(line, "", "", &format!("unreadable CSV: {e}"), ""))));
                    false
                }
            };
            if more && !is_blank(&record) {
                let line = record.position().map_or(0, |p| csv.get_mut().line_at(p.byte()));
                chunk_bytes += record.as_slice().len();
                // Moved, not copied (a row can be megabytes); the next row is read into
                // a record sized like this one.
                let next = csv::ByteRecord::with_capacity(record.as_slice().len(), record.len());
                records.extend(last.replace((line, Ok(std::mem::replace(&mut record, next)))));
            }
            if !more && let Some((line, Ok(rec))) = &last {
                let unclosed = csv.get_ref().quotes % 2 == 1;
                if unclosed && let Some(refused) = unclosed_quote(rec, *line) {
                    last = Some((*line, Err(refused)));
                }
            }
            if !more {
                records.extend(last.take());
            }
            if records.len() >= CHUNK_ROWS || chunk_bytes >= CHUNK_BYTES || (!more && !records.is_empty()) {
                chunk_bytes = 0;
                let rows = records
                    .par_drain(..)
                    .map(|(line, rec)| match rec {
                        Ok(rec) => parse_row(&mapping, n_columns, &rec, line, ctx.region, ctx.places),
                        Err(refused) => Err(refused),
                    })
                    .collect();
                if send.send(Parsed { rows }).is_err() {
                    break; // the writer failed; its error is reported below
                }
                progress(counter.load(Ordering::Relaxed));
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
    progress(counter.load(Ordering::Relaxed));
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

/// The header's names for the "no phone column" error: the first few, each cut short.
fn header_names(header: &[String]) -> String {
    let mut names: Vec<String> =
        header.iter().take(MAX_HEADER_NAMES).map(|h| h.chars().take(40).collect::<String>()).collect();
    if header.len() > MAX_HEADER_NAMES {
        names.push(format!("… {} columns in all", header.len()));
    }
    names.join(", ")
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
