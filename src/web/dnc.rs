//! The do-not-call list over HTTP. JSON: `GET/POST /api/dnc`, `GET/DELETE
//! /api/dnc/{phone}`, `GET /api/dnc/export.csv`, `POST /api/opt-out`. Dashboard: the
//! `/dnc` page (search, add by paste or CSV, remove with a reason, recent changes)
//! and `/dnc/{phone}` (the same page with that number's audit history).
//!
//! Every addition goes through `db::dnc::add`, which also marks the number's waiting
//! lead `do_not_call`; the claim checks the list again right before every dial.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::db::dnc::{self, Entry, Event};
use crate::db::{self as store, from_ms};
use crate::domain::csv_safe;
use crate::domain::phone::E164;
use crate::numbers::edit::{ListRows, Rejection};
use crate::state::AppState;
use crate::web::AppError;
use crate::web::api::parse_query;
use crate::web::error::json_body;

const MAX_LIMIT: u32 = 500;
pub(super) const PAGE_SIZE: u32 = 50;
const MAX_REASON: usize = 200;
const MAX_SOURCE: usize = 40;
/// Entries written per transaction, so a big list never holds the writer (and the
/// claims waiting on it) for long.
const WRITE_CHUNK: usize = 2_000;

/// A number to put on the list, checked.
#[derive(Debug, Clone)]
pub(super) struct NewEntry {
    phone: String,
    reason: String,
}

/// What adding a list did.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct AddCounts {
    pub(super) added: usize,
    pub(super) existing: usize,
    pub(super) leads_marked: usize,
}

// ---- checking input ----

/// Empty is allowed; at most 200 characters, no control characters.
pub(super) fn check_reason(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.chars().count() > MAX_REASON || s.chars().any(char::is_control) {
        return Err(format!("at most {MAX_REASON} characters, no control characters"));
    }
    Ok(s.to_string())
}

/// Where an opt-out came from: letters, digits, `-`, `_`, `:` or `.`, at most 40.
fn check_source(s: &str) -> Result<String, String> {
    let s = s.trim();
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.');
    if s.is_empty() || s.len() > MAX_SOURCE || !s.chars().all(ok) {
        return Err(format!("1 to {MAX_SOURCE} letters, digits, '-', '_', ':' or '.'"));
    }
    Ok(s.to_string())
}

/// A number in a request: how a user writes it (read in the default region), or as
/// stored (`+` and digits), so that anything on the list can be looked up and removed.
pub(super) fn lookup_phone(raw: &str, region: phonenumber::country::Id) -> Result<String, AppError> {
    let raw = raw.trim();
    E164::from_stored(raw)
        .or_else(|| E164::parse(raw, region).ok())
        .map(|p| p.as_str().to_string())
        .ok_or_else(|| AppError::Unprocessable(format!("phone: {raw:?} is not a phone number")))
}

/// A pasted list (one number per line) or a CSV `phone[,reason]`; a header line is
/// recognised by a `phone` or `number` column and may also name `reason`. Lines
/// without their own reason get `default_reason`. Bad lines are rejected one by one.
pub(super) fn parse_list(
    text: &str,
    region: phonenumber::country::Id,
    default_reason: &str,
) -> (Vec<NewEntry>, Vec<Rejection>) {
    let list = ListRows::read(text, |first| first.contains("phone") || first.contains("number"));
    let (phone_col, reason_col) = match list.headers {
        Some(_) => (list.column(&["phone", "number", "phone_number", "mobile"]).unwrap_or(0), list.column(&["reason"])),
        None => (0, Some(1)),
    };
    let (mut good, mut bad) = (Vec::new(), list.errors.clone());
    for (line, record) in &list.rows {
        let line = *line;
        let raw = record.get(phone_col).unwrap_or("");
        let own_reason = reason_col.and_then(|i| record.get(i)).unwrap_or("");
        match item(raw, own_reason, default_reason, region) {
            Ok(entry) => good.push(entry),
            Err((field, value, reason)) => bad.push(Rejection { line, field, value, reason }),
        }
    }
    (good, bad)
}

/// One number and its reason, or (field, value, reason) of the refusal.
fn item(
    raw: &str,
    own_reason: &str,
    default_reason: &str,
    region: phonenumber::country::Id,
) -> Result<NewEntry, (String, String, String)> {
    let refuse =
        |field: &str, value: &str, reason: String| (field.to_string(), value.chars().take(80).collect(), reason);
    let phone = E164::parse(raw, region).map_err(|e| refuse("phone", raw, e.to_string()))?;
    let reason = if own_reason.trim().is_empty() { default_reason } else { own_reason };
    let reason = check_reason(reason).map_err(|r| refuse("reason", reason, r))?;
    Ok(NewEntry { phone: phone.as_str().to_string(), reason })
}

/// Lists `entries` (a few thousand per transaction), marking their waiting leads.
pub(super) async fn add_entries(
    state: &AppState,
    entries: Vec<NewEntry>,
    source: String,
    actor: &'static str,
) -> Result<AddCounts, AppError> {
    let mut total = AddCounts::default();
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        let chunk: Vec<NewEntry> = entries.by_ref().take(WRITE_CHUNK).collect();
        let source = source.clone();
        let now_ms = store::to_ms(Utc::now());
        let counts = state
            .db
            .write(move |tx| {
                let mut counts = AddCounts::default();
                for e in chunk {
                    let added = dnc::add(tx, &e.phone, &source, &e.reason, actor, now_ms)?;
                    if added.new {
                        counts.added += 1;
                    } else {
                        counts.existing += 1;
                    }
                    counts.leads_marked += added.leads_marked;
                }
                Ok(counts)
            })
            .await?;
        total.added += counts.added;
        total.existing += counts.existing;
        total.leads_marked += counts.leads_marked;
    }
    Ok(total)
}

pub(super) fn entry_json(e: &Entry) -> Value {
    json!({
        "phone": e.phone,
        "source": e.source,
        "reason": e.reason,
        "created_at": from_ms(e.created_at).to_rfc3339(),
    })
}

pub(super) fn event_json(e: &Event) -> Value {
    json!({
        "phone": e.phone,
        "action": e.action,
        "source": e.source,
        "reason": e.reason,
        "actor": e.actor,
        "at": from_ms(e.at).to_rfc3339(),
    })
}

// ---- JSON API ----

#[derive(Deserialize, Default)]
struct ListQuery {
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<i64>,
}

/// `GET /api/dnc?q=&limit=&cursor=`: newest first.
pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Value>, AppError> {
    let query: ListQuery = parse_query(raw)?;
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let (rows, next, total) = state
        .db
        .read(move |c| {
            let q = query.q.as_deref();
            let (rows, next) = dnc::page(c, q, limit, query.cursor)?;
            Ok((rows, next, dnc::count(c, q)?))
        })
        .await?;
    let entries: Vec<Value> = rows.iter().map(entry_json).collect();
    Ok(Json(json!({"entries": entries, "next_cursor": next, "total": total})))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AddItem {
    Phone(String),
    Full { phone: String, reason: Option<String> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    numbers: Vec<AddItem>,
    source: Option<String>,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize, Default)]
struct AddQuery {
    source: Option<String>,
    reason: Option<String>,
}

/// `POST /api/dnc`: JSON `{"numbers": ["+1…", {"phone", "reason"}], "source", "reason"}`,
/// or a `text/csv` / `text/plain` body `phone[,reason]` (with `?source=&reason=`).
pub async fn add(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let unprocessable = |field: &str, reason: String| AppError::Unprocessable(format!("{field}: {reason}"));
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let region = state.resolved.region;
    let (source, good, bad) = if content_type.starts_with("text/") {
        let query: AddQuery = parse_query(raw)?;
        let source = check_source(query.source.as_deref().unwrap_or("api")).map_err(|r| unprocessable("source", r))?;
        let reason = check_reason(query.reason.as_deref().unwrap_or("")).map_err(|r| unprocessable("reason", r))?;
        let text =
            String::from_utf8(body.to_vec()).map_err(|_| AppError::Unprocessable("body is not UTF-8 text".into()))?;
        let (good, bad) = tokio::task::spawn_blocking(move || parse_list(&text, region, &reason))
            .await
            .map_err(anyhow::Error::from)?;
        (source, good, bad)
    } else {
        let body: AddBody = json_body(&headers, &body)?;
        let source = check_source(body.source.as_deref().unwrap_or("api")).map_err(|r| unprocessable("source", r))?;
        let reason = check_reason(&body.reason).map_err(|r| unprocessable("reason", r))?;
        if body.numbers.is_empty() {
            return Err(unprocessable("numbers", "send at least one number".into()));
        }
        // Line numbers in rejections are item positions (1-based) in the array.
        let (good, bad) = tokio::task::spawn_blocking(move || {
            let (mut good, mut bad) = (Vec::new(), Vec::new());
            for (i, it) in body.numbers.into_iter().enumerate() {
                let (phone, own) = match it {
                    AddItem::Phone(p) => (p, String::new()),
                    AddItem::Full { phone, reason } => (phone, reason.unwrap_or_default()),
                };
                match item(&phone, &own, &reason, region) {
                    Ok(e) => good.push(e),
                    Err((field, value, reason)) => bad.push(Rejection { line: i as u64 + 1, field, value, reason }),
                }
            }
            (good, bad)
        })
        .await
        .map_err(anyhow::Error::from)?;
        (source, good, bad)
    };
    let counts = add_entries(&state, good, source, "api").await?;
    let code = if counts.added + counts.existing == 0 && !bad.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = json!({
        "added": counts.added,
        "existing": counts.existing,
        "rejected": bad,
        "leads_marked": counts.leads_marked,
    });
    Ok((code, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptOutBody {
    phone: String,
    source: Option<String>,
    #[serde(default)]
    reason: String,
}

/// `POST /api/opt-out` `{"phone", "source", "reason"}`: the API opt-out path. Saved
/// in one committed transaction before the answer, so no later claim can dial it.
pub async fn opt_out(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, AppError> {
    let body: OptOutBody = json_body(&headers, &body)?;
    let source = check_source(body.source.as_deref().unwrap_or("api"))
        .map_err(|r| AppError::Unprocessable(format!("source: {r}")))?;
    let reason = check_reason(&body.reason).map_err(|r| AppError::Unprocessable(format!("reason: {r}")))?;
    let phone = E164::parse(&body.phone, state.resolved.region)
        .map_err(|e| AppError::Unprocessable(format!("phone: {e}")))?
        .as_str()
        .to_string();
    let now_ms = store::to_ms(Utc::now());
    let stored = phone.clone();
    let added = state.db.write(move |tx| dnc::add(tx, &stored, &source, &reason, "api", now_ms)).await?;
    tracing::info!(phone = %phone, new = added.new, leads_marked = added.leads_marked, "opt-out saved");
    Ok(Json(json!({"phone": phone, "added": added.new, "leads_marked": added.leads_marked})))
}

/// `GET /api/dnc/{phone}`: the entry (null once removed) and its audit history.
pub async fn get(State(state): State<AppState>, Path(raw): Path<String>) -> Result<Json<Value>, AppError> {
    let phone = lookup_phone(&raw, state.resolved.region)?;
    let p = phone.clone();
    let (entry, history) = state.db.read(move |c| Ok((dnc::get(c, &p)?, dnc::events(c, &p, 1_000)?))).await?;
    if entry.is_none() && history.is_empty() {
        return Err(AppError::NotFound);
    }
    Ok(Json(json!({
        "phone": phone,
        "listed": entry.is_some(),
        "entry": entry.as_ref().map(entry_json),
        "history": history.iter().map(event_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    #[serde(default)]
    reason: String,
}

/// `DELETE /api/dnc/{phone}` with an optional JSON `{"reason"}`: 200 `{"removed": true}`,
/// 404 when the number is not listed.
pub async fn remove(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body: RemoveBody =
        if body.iter().all(u8::is_ascii_whitespace) { RemoveBody::default() } else { json_body(&headers, &body)? };
    let reason = check_reason(&body.reason).map_err(|r| AppError::Unprocessable(format!("reason: {r}")))?;
    let phone = lookup_phone(&raw, state.resolved.region)?;
    if !remove_number(&state, phone, reason, "api").await? {
        return Err(AppError::NotFound);
    }
    Ok(Json(json!({"removed": true})))
}

pub(super) async fn remove_number(
    state: &AppState,
    phone: String,
    reason: String,
    actor: &'static str,
) -> Result<bool, AppError> {
    let now_ms = store::to_ms(Utc::now());
    Ok(state.db.write(move |tx| dnc::remove(tx, &phone, &reason, actor, now_ms)).await?)
}

/// `GET /api/dnc/export.csv`: `phone,source,reason,created_at`, oldest first. Text
/// cells a spreadsheet would run as a formula are prefixed with `'` (`csv_safe`).
pub async fn export(State(state): State<AppState>) -> Result<Response, AppError> {
    let bytes = state
        .db
        .read(|c| {
            let mut out = csv::Writer::from_writer(Vec::new());
            out.write_record(["phone", "source", "reason", "created_at"])?;
            dnc::for_each(c, |e| {
                // The phone is E.164 (checked when listed): `csv_safe::phone` keeps its
                // `+`, so the export can be imported again as it is.
                let at = from_ms(e.created_at).to_rfc3339();
                let (source, reason) = (csv_safe::defang(&e.source), csv_safe::defang(&e.reason));
                out.write_record([&*csv_safe::phone(&e.phone), &*source, &*reason, at.as_str()])?;
                Ok(())
            })?;
            out.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
        })
        .await?;
    let disposition = format!("attachment; filename=\"dnc-{}.csv\"", Utc::now().format("%Y-%m-%d"));
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, disposition)],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: phonenumber::country::Id = phonenumber::country::Id::US;

    #[test]
    fn lists_with_or_without_header_and_reasons() {
        let (good, bad) = parse_list("(415) 700-1234\nnot a number\n\n+1 415 700 1235,moved away\n", US, "asked");
        let got: Vec<(&str, &str)> = good.iter().map(|e| (e.phone.as_str(), e.reason.as_str())).collect();
        assert_eq!(got, [("+14157001234", "asked"), ("+14157001235", "moved away")]);
        assert_eq!((bad[0].line, bad[0].field.as_str()), (2, "phone"));

        let (good, bad) = parse_list("reason,phone\ncomplaint,4157001236\n,4157001237\nx\u{7},4157001238\n", US, "");
        let got: Vec<(&str, &str)> = good.iter().map(|e| (e.phone.as_str(), e.reason.as_str())).collect();
        assert_eq!(got, [("+14157001236", "complaint"), ("+14157001237", "")]);
        assert_eq!((bad[0].line, bad[0].field.as_str()), (4, "reason"));
    }

    #[test]
    fn sources_and_lookups() {
        assert_eq!(check_source(" keypad ").unwrap(), "keypad");
        assert!(check_source("").is_err());
        assert!(check_source("a b").is_err());
        assert_eq!(lookup_phone("+14157001234", US).unwrap(), "+14157001234");
        assert_eq!(lookup_phone("415-700-1234", US).unwrap(), "+14157001234");
        assert!(lookup_phone("nope", US).is_err());
    }
}
