//! Caller numbers over JSON: `GET/POST /api/numbers`, `GET/PATCH /api/numbers/{id}`,
//! `POST /api/numbers/bulk`, `POST /api/numbers/scores`, `GET /api/numbers/plan`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::db::number_admin::{self, Change, NumberRow};
use crate::db::numbers::NewNumber;
use crate::dialer::claim::local_day;
use crate::numbers::edit::{self, BulkAction, Rejection};
use crate::numbers::health::{Band, effective_cap, warmed_cap};
use crate::numbers::plan;
use crate::state::AppState;
use crate::web::AppError;
use crate::web::api::parse_query;
use crate::web::error::json_body;

/// A number as shown to users: the stored record plus what is derived from it.
#[derive(Debug, Clone, Serialize)]
pub struct NumberView {
    #[serde(flatten)]
    pub row: NumberRow,
    pub area_code: Option<u16>,
    pub state: Option<String>,
    /// Cap today after warming and health (what rotation enforces).
    pub effective_cap: u32,
    /// healthy | warning | at_risk | flagged.
    pub health: Band,
    /// Days since first use while warming (`None` once warm or warming is off).
    pub warming_day: Option<i64>,
}

impl NumberView {
    pub fn usage_percent(&self) -> u32 {
        self.row.calls_today.saturating_mul(100).checked_div(self.effective_cap).map_or(100, |p| p.min(100))
    }
}

pub fn view(state: &AppState, row: NumberRow, today: NaiveDate) -> NumberView {
    let r = &state.config.rotation;
    let (area_code, st, _) = state.places.of(&row.number);
    let first = row.first_used_day.as_deref().and_then(|d| d.parse::<NaiveDate>().ok());
    let health = Band::of(row.spam_score);
    let warm = warmed_cap(row.max_daily_calls, first, today, r.warmup());
    let warming_day = (r.warmup && warm < row.max_daily_calls)
        .then(|| first.map_or(0, |f| today.signed_duration_since(f).num_days()));
    NumberView {
        effective_cap: effective_cap(row.max_daily_calls, first, today, health, r.warmup(), &r.policy()),
        area_code,
        state: st,
        health,
        warming_day,
        row,
    }
}

/// Every number's view, and today's local date.
pub async fn views(state: &AppState) -> Result<(Vec<NumberView>, String), AppError> {
    let now = Utc::now();
    let day = local_day(state.resolved.timezone, now);
    let today = now.with_timezone(&state.resolved.timezone).date_naive();
    let rows = {
        let day = day.clone();
        state.db.read(move |c| number_admin::list(c, &day)).await?
    };
    Ok((rows.into_iter().map(|r| view(state, r, today)).collect(), day))
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let (numbers, day) = views(&state).await?;
    let capacity: u32 =
        numbers.iter().filter(|n| n.row.rotation_enabled && n.row.status == "active").map(|n| n.effective_cap).sum();
    Ok(Json(json!({
        "numbers": numbers,
        "local_day": day,
        "timezone": state.resolved.timezone.name(),
        "capacity_today": capacity,
        "local_presence": state.config.rotation.local_presence,
    })))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AddItem {
    Number(String),
    Full {
        number: String,
        label: Option<String>,
        max_daily_calls: Option<u32>,
        rotation_priority: Option<u8>,
        pool: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    numbers: Vec<AddItem>,
}

/// `POST /api/numbers`: JSON `{"numbers": ["+1…", {"number": "+1…", "label": …}]}`
/// or a `text/csv` / `text/plain` body (a list or CSV, see `numbers::edit`).
pub async fn add(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (good, bad) = if content_type.starts_with("text/") {
        let text = std::str::from_utf8(&body).map_err(|_| AppError::Unprocessable("body is not UTF-8 text".into()))?;
        edit::parse_numbers(text, state.resolved.region)
    } else {
        let body: AddBody = json_body(&headers, &body)?;
        let csv = body
            .numbers
            .into_iter()
            .map(|item| match item {
                AddItem::Number(n) => csv_line(&[n, String::new(), String::new(), String::new(), String::new()]),
                AddItem::Full { number, label, max_daily_calls, rotation_priority, pool } => csv_line(&[
                    number,
                    label.unwrap_or_default(),
                    max_daily_calls.map(|c| c.to_string()).unwrap_or_default(),
                    rotation_priority.map(|p| p.to_string()).unwrap_or_default(),
                    pool.unwrap_or_default(),
                ]),
            })
            .collect::<Vec<_>>()
            .join("");
        // Line numbers in errors are then item positions (1-based) in the array.
        let (good, mut bad) = edit::parse_numbers(
            &format!("number,label,max_daily_calls,rotation_priority,pool\n{csv}"),
            state.resolved.region,
        );
        bad.iter_mut().for_each(|r| r.line = r.line.saturating_sub(1));
        (good, bad)
    };
    let outcome = add_numbers(&state, good, "api").await?;
    let code = if outcome.0.is_empty() && !bad.is_empty() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((code, Json(json!({"added": outcome.0, "existing": outcome.1, "rejected": bad}))).into_response())
}

fn csv_line(cells: &[String]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(cells);
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Adds `numbers`; returns (added numbers, numbers that were already stored).
pub async fn add_numbers(
    state: &AppState,
    numbers: Vec<NewNumber>,
    actor: &'static str,
) -> Result<(Vec<String>, Vec<String>), AppError> {
    let now_ms = crate::db::to_ms(Utc::now());
    let (added, existing) = state
        .db
        .write(move |tx| {
            let ids = crate::db::numbers::add(tx, &numbers, actor, now_ms)?;
            let mut added = Vec::new();
            let mut existing = Vec::new();
            for n in numbers {
                let id = number_admin::id_of(tx, &n.number)?;
                if id.is_some_and(|id| ids.contains(&id)) { added.push(n.number) } else { existing.push(n.number) }
            }
            Ok((added, existing))
        })
        .await?;
    state.wake.dialer.notify_one();
    Ok((added, existing))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Value>, AppError> {
    let now = Utc::now();
    let (day, today) =
        (local_day(state.resolved.timezone, now), now.with_timezone(&state.resolved.timezone).date_naive());
    let (row, history) =
        state.db.read(move |c| Ok((number_admin::get(c, id, &day)?, number_admin::events(c, id, 500)?))).await?;
    let row = row.ok_or(AppError::NotFound)?;
    Ok(Json(json!({"number": view(&state, row, today), "history": history})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    label: Option<String>,
    rotation_enabled: Option<bool>,
    max_daily_calls: Option<u32>,
    rotation_priority: Option<u8>,
    pool: Option<String>,
    /// active | resting | quarantined | retired
    status: Option<String>,
    rest_hours: Option<u32>,
    /// 0..=100; `null` leaves it, use `clear_spam_score` to remove it.
    spam_score: Option<u8>,
    #[serde(default)]
    clear_spam_score: bool,
    #[serde(default)]
    reason: String,
}

/// The change a PATCH body asks for, checked field by field.
fn patch_change(p: PatchBody, rest_hours: u32) -> Result<(Change, String), AppError> {
    let bad = |field: &str, reason: String| AppError::Unprocessable(format!("{field}: {reason}"));
    let now = Utc::now();
    let mut change = Change {
        label: p.label.map(|l| edit::text_field(&l)).transpose().map_err(|r| bad("label", r))?,
        rotation_enabled: p.rotation_enabled,
        max_daily_calls: p
            .max_daily_calls
            .map(|c| edit::cap(&c.to_string()))
            .transpose()
            .map_err(|r| bad("max_daily_calls", r))?,
        rotation_priority: p
            .rotation_priority
            .map(|v| edit::priority(&v.to_string()))
            .transpose()
            .map_err(|r| bad("rotation_priority", r))?,
        pool: p.pool.map(|v| edit::pool_name(&v)).transpose().map_err(|r| bad("pool", r))?,
        ..Change::default()
    };
    if let Some(score) = p.spam_score {
        change.spam_score =
            Some((Some(edit::score(&score.to_string()).map_err(|r| bad("spam_score", r))?), "manual".into()));
    } else if p.clear_spam_score {
        change.spam_score = Some((None, "manual".into()));
    }
    if let Some(status) = p.status {
        let action = match status.as_str() {
            "active" => BulkAction::Restore,
            "resting" => BulkAction::Rest,
            "quarantined" => BulkAction::Quarantine,
            "retired" => BulkAction::Retire,
            other => {
                return Err(bad("status", format!("{other:?} is not one of active, resting, quarantined, retired")));
            }
        };
        let hours = p.rest_hours.map(|h| h.to_string()).unwrap_or_default();
        change.status = action.change(&hours, rest_hours, now).map_err(|r| bad("rest_hours", r))?.status;
    }
    if change == Change::default() {
        return Err(AppError::Unprocessable("nothing to change: send at least one field".into()));
    }
    Ok((change, p.reason))
}

pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let (change, reason) = patch_change(json_body(&headers, &body)?, state.config.rotation.rest_hours)?;
    let updated = apply(&state, vec![id], change, reason, "api").await?;
    if updated == 0 {
        return Err(AppError::NotFound);
    }
    get(State(state), Path(id)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    ids: Vec<i64>,
    action: String,
    #[serde(default)]
    value: serde_json::Value,
    #[serde(default)]
    reason: String,
}

/// `POST /api/numbers/bulk`: `{"ids": [1, 2], "action": "set_cap", "value": 50, "reason": "…"}`.
pub async fn bulk(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, AppError> {
    let body: BulkBody = json_body(&headers, &body)?;
    let value = match &body.value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let change = bulk_change(&state, &body.ids, &body.action, &value)?;
    let updated = apply(&state, body.ids, change, body.reason, "api").await?;
    Ok(Json(json!({"updated": updated})))
}

/// Checks a bulk request: ids present, action known, value valid for it.
pub fn bulk_change(state: &AppState, ids: &[i64], action: &str, value: &str) -> Result<Change, AppError> {
    if ids.is_empty() {
        return Err(AppError::Unprocessable("ids: select at least one number".into()));
    }
    if ids.len() > 10_000 {
        return Err(AppError::Unprocessable("ids: at most 10000 numbers per request".into()));
    }
    let action = BulkAction::parse(action).map_err(|e| AppError::Unprocessable(format!("action: {e}")))?;
    action.change(value, state.config.rotation.rest_hours, Utc::now()).map_err(AppError::Unprocessable)
}

/// Applies one change to each of `ids` in one transaction; returns how many exist.
pub async fn apply(
    state: &AppState,
    ids: Vec<i64>,
    change: Change,
    reason: String,
    actor: &'static str,
) -> Result<usize, AppError> {
    let now_ms = crate::db::to_ms(Utc::now());
    let rescore = change.spam_score.is_some();
    let updated = state
        .db
        .write(move |tx| {
            let mut n = 0;
            for id in ids {
                n += usize::from(number_admin::apply(tx, id, &change, &reason, actor, now_ms)?);
            }
            Ok(n)
        })
        .await?;
    state.wake.dialer.notify_one();
    if rescore {
        state.wake.health.notify_one();
    }
    Ok(updated)
}

/// `POST /api/numbers/scores`: a reputation service's CSV `number,spam_score[,source]`.
pub async fn scores(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, AppError> {
    let text = std::str::from_utf8(&body).map_err(|_| AppError::Unprocessable("body is not UTF-8 text".into()))?;
    let (updated, unknown, rejected) = import_scores(&state, text, "api").await?;
    Ok(Json(json!({"updated": updated, "unknown": unknown, "rejected": rejected})))
}

/// Stores imported scores; returns (updated count, numbers we do not have, rejected lines).
pub async fn import_scores(
    state: &AppState,
    text: &str,
    actor: &'static str,
) -> Result<(usize, Vec<String>, Vec<Rejection>), AppError> {
    let (good, bad) = edit::parse_scores(text, state.resolved.region);
    let now_ms = crate::db::to_ms(Utc::now());
    let (updated, unknown) = state
        .db
        .write(move |tx| {
            let (mut updated, mut unknown) = (0, Vec::new());
            for (number, score, source) in good {
                let Some(id) = number_admin::id_of(tx, &number)? else {
                    unknown.push(number);
                    continue;
                };
                let source = format!("import:{}", source.unwrap_or_else(|| "csv".into()));
                let change = Change { spam_score: Some((Some(score), source)), ..Change::default() };
                number_admin::apply(tx, id, &change, "imported", actor, now_ms)?;
                updated += 1;
            }
            Ok((updated, unknown))
        })
        .await?;
    state.wake.health.notify_one();
    Ok((updated, unknown, bad))
}

#[derive(Deserialize)]
struct PlanQuery {
    calls_per_day: u32,
    cap: Option<u32>,
    buffer: Option<u8>,
}

/// `GET /api/numbers/plan?calls_per_day=N[&cap=100][&buffer=25]`.
pub async fn plan(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Value>, AppError> {
    let q: PlanQuery = parse_query(raw)?;
    let r = &state.config.rotation;
    let p = plan::plan(q.calls_per_day, q.cap.unwrap_or(100), q.buffer.unwrap_or(25), r.warmup(), &r.policy())
        .map_err(AppError::Unprocessable)?;
    let (numbers, _) = views(&state).await?;
    let active: Vec<&NumberView> =
        numbers.iter().filter(|n| n.row.rotation_enabled && n.row.status == "active").collect();
    let capacity = active.iter().map(|n| n.effective_cap).sum();
    let summary = plan::shortfall(&p, capacity, active.len() as u32);
    Ok(Json(json!({"plan": p, "summary": summary})))
}
