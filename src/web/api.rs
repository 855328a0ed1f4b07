//! The JSON API (`/api/...`). Shapes are part of the contract: other tools drive them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::db::leads::LeadFilter;
use crate::db::schedules::CancelTarget;
use crate::db::{self, history::AttemptRow};
use crate::domain::csv_safe::defang;
use crate::domain::status::Status;
use crate::schedules::{self, BulkRequest, Selection};
use crate::state::AppState;
use crate::web::auth::AuditNote;
use crate::web::error::json_body;
use crate::web::{AppError, upload};

const MAX_LIMIT: u32 = 500;

pub fn parse_query<T: serde::de::DeserializeOwned>(raw: Option<String>) -> Result<T, AppError> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| AppError::Unprocessable(format!("bad query string: {e}")))
}

#[derive(Deserialize, Default)]
pub struct LeadsQuery {
    pub status: Option<String>,
    pub q: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<i64>,
}

/// `status` query values: empty or "all" = any; otherwise one of the lead statuses.
pub fn parse_filter(status: Option<&str>, q: Option<&str>) -> Result<LeadFilter, AppError> {
    let status = match status.map(str::trim) {
        None | Some("") | Some("all") => None,
        Some(s) => Some(s.parse::<Status>().map_err(AppError::Unprocessable)?),
    };
    Ok(LeadFilter { status, q: q.map(str::trim).filter(|q| !q.is_empty()).map(String::from) })
}

pub async fn leads(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Value>, AppError> {
    let query: LeadsQuery = parse_query(raw)?;
    let filter = parse_filter(query.status.as_deref(), query.q.as_deref())?;
    let limit = query.limit.unwrap_or(50).min(MAX_LIMIT);
    let (rows, next, total) = state
        .db
        .read(move |c| {
            let (rows, next) = db::leads::page(c, &filter, limit, query.cursor)?;
            Ok((rows, next, db::leads::count(c, &filter)?))
        })
        .await?;
    Ok(Json(json!({"leads": rows, "next_cursor": next, "total": total})))
}

fn attempt_json(a: &AttemptRow) -> Value {
    let iso = |ms: i64| db::from_ms(ms).to_rfc3339();
    json!({
        "id": a.id,
        "lead_id": a.lead_id,
        "caller_number": a.caller_number,
        "to_number": a.to_number,
        "provider_call_id": a.provider_call_id,
        "status": a.status,
        "answered_by": a.answered_by,
        "error": a.error,
        "started_at": iso(a.created_at_ms),
        "ended_at": a.ended_at_ms.map(iso),
        "duration_seconds": a.duration_seconds,
        "schedule_id": a.schedule_id,
        "caller_tier": a.caller_tier,
        "caller_candidates": a.caller_candidates,
        "attempt_number": a.attempt_number,
        "campaign_id": a.campaign_id,
        "next_step": a.next_step,
        "retry_at": a.retry_at_ms.map(iso),
        "digits": a.digits,
        "transfer_result": a.transfer_result,
        "transfer_seconds": a.transfer_seconds,
        "price": a.price,
        "price_unit": a.price_unit,
    })
}

pub async fn lead(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Value>, AppError> {
    let (lead, attempts) = state.db.read(move |c| Ok((db::leads::get(c, id)?, db::history::for_lead(c, id)?))).await?;
    let lead = lead.ok_or(AppError::NotFound)?;
    let mut body = serde_json::to_value(&lead).map_err(anyhow::Error::from)?;
    body["timezone_source"] = json!(lead.timezone_source);
    body["state"] = json!(lead.state);
    body["next_call_at"] = json!(lead.next_call_at.map(|ms| db::from_ms(ms).to_rfc3339()));
    body["schedule_id"] = json!(lead.schedule_id);
    body["attempts"] = attempts.iter().map(attempt_json).collect();
    Ok(Json(body))
}

#[derive(Deserialize)]
struct CallsQuery {
    limit: Option<u32>,
    cursor: Option<i64>,
}

pub async fn calls(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Value>, AppError> {
    let query: CallsQuery = parse_query(raw)?;
    let limit = query.limit.unwrap_or(50).min(MAX_LIMIT);
    let (rows, next) = state.db.read(move |c| db::history::page(c, limit, query.cursor)).await?;
    Ok(Json(json!({"calls": rows.iter().map(attempt_json).collect::<Vec<_>>(), "next_cursor": next})))
}

/// `POST /api/leads/import`: multipart field `file`, or a `text/csv` body.
pub async fn import(State(state): State<AppState>, request: Request) -> Result<Response, AppError> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let summary = if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| AppError::BadRequest(format!("bad multipart body: {e}")))?;
        upload::from_multipart(&state, multipart).await?
    } else if content_type.starts_with("text/csv") || content_type.starts_with("text/plain") {
        upload::from_body(&state, request.into_body()).await?
    } else {
        return Err(AppError::Unprocessable(
            "send the CSV as multipart/form-data (field \"file\") or with Content-Type: text/csv".into(),
        ));
    };
    let mut body = serde_json::to_value(&summary).map_err(anyhow::Error::from)?;
    body["rejected_csv"] = json!(format!("/api/imports/{}/rejected.csv", summary.import_id));
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// Rejected rows as CSV: `line,field,value,reason,row`. Every text cell goes through
/// `csv_safe::defang` (the value of a rejected phone too: it failed validation).
pub async fn rejected_csv(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Response, AppError> {
    let rows = state.db.read(move |c| db::imports::rejections(c, id, u32::MAX)).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| AppError::Internal(e.into());
    out.write_record(["line", "field", "value", "reason", "row"]).map_err(csv_err)?;
    for r in rows {
        let line = r.line.to_string();
        out.write_record([line.as_str(), &defang(&r.field), &defang(&r.value), &defang(&r.reason), &defang(&r.raw)])
            .map_err(csv_err)?;
    }
    let bytes = out.into_inner().map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let disposition = format!("attachment; filename=\"import-{id}-rejected.csv\"");
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, disposition)],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    lead_ids: Option<Vec<i64>>,
    select: Option<SelectBody>,
    start_at: StartAt,
    parallel_calls: u32,
    interval_seconds: u32,
    /// Optional; the default campaign when absent.
    campaign_id: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectBody {
    status: Option<String>,
    q: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StartAt {
    Rfc3339(String),
    Local { date: String, time: String, timezone: Option<String> },
}

/// Parses the scheduling body into the operation's request (shared with the modal).
fn bulk_request(state: &AppState, body: BulkBody) -> Result<BulkRequest, AppError> {
    let selection = match (body.lead_ids, body.select) {
        (Some(ids), None) => Selection::Ids(ids),
        (None, Some(select)) => Selection::Matching(parse_filter(select.status.as_deref(), select.q.as_deref())?),
        (Some(_), Some(_)) => return Err(AppError::Unprocessable("send either lead_ids or select, not both".into())),
        (None, None) => return Err(AppError::Unprocessable("lead_ids or select is required".into())),
    };
    let default_tz = state.resolved.timezone;
    let (start_at, timezone) = match body.start_at {
        StartAt::Rfc3339(value) => (schedules::rfc3339_start(&value)?, default_tz),
        StartAt::Local { date, time, timezone } => {
            let tz: Tz = match timezone {
                Some(name) => name
                    .parse()
                    .map_err(|_| AppError::Unprocessable(format!("timezone {name:?} is not an IANA zone")))?,
                None => default_tz,
            };
            (schedules::local_start(&date, &time, tz)?, tz)
        }
    };
    Ok(BulkRequest {
        selection,
        start_at,
        timezone,
        parallel_calls: body.parallel_calls,
        interval_seconds: body.interval_seconds,
        campaign_id: body.campaign_id.unwrap_or(db::campaigns::DEFAULT_ID),
    })
}

pub async fn schedule_bulk(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let request = bulk_request(&state, json_body(&headers, &body)?)?;
    let created = schedules::create(&state.db, request, Utc::now()).await?;
    state.wake.scheduler.notify_one();
    tracing::info!(
        schedule_id = created.schedule_id,
        leads = created.total_leads,
        batches = created.total_batches,
        "schedule created"
    );
    let note = AuditNote(format!(
        "schedule {}: {} leads in {} batches from {} (campaign {})",
        created.schedule_id, created.total_leads, created.total_batches, created.start_at, created.campaign_id
    ));
    let mut response = (StatusCode::CREATED, Json(created)).into_response();
    response.extensions_mut().insert(note);
    Ok(response)
}

#[derive(Deserialize)]
struct ScheduledQuery {
    all: Option<bool>,
}

/// Pending and missed batches (`?all=true` adds fired and cancelled ones).
pub async fn scheduled(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Value>, AppError> {
    let query: ScheduledQuery = parse_query(raw)?;
    let all = query.all.unwrap_or(false);
    let (rows, total) = state
        .db
        .read(move |c| Ok((db::schedules::batches(c, all, 10_000)?, db::schedules::count_batches(c, all)?)))
        .await?;
    let batches: Vec<Value> = rows
        .iter()
        .map(|b| {
            json!({
                "job_id": b.job_id,
                "schedule_id": b.schedule_id,
                "batch_index": b.batch_index,
                "next_run_time": db::from_ms(b.due_at_ms).to_rfc3339(),
                "lead_count": b.lead_count,
                "status": b.status,
                "fired_at": b.fired_at_ms.map(|ms| db::from_ms(ms).to_rfc3339()),
            })
        })
        .collect();
    Ok(Json(json!({"scheduled_batches": batches, "total_batches": total})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    schedule_id: Option<i64>,
    all: Option<bool>,
}

pub async fn cancel(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    let body: CancelBody = json_body(&headers, &body)?;
    let target = match (body.schedule_id, body.all) {
        (Some(id), None | Some(false)) => CancelTarget::One(id),
        (None, Some(true)) => CancelTarget::All,
        (Some(_), Some(true)) => return Err(AppError::Unprocessable("send schedule_id or all, not both".into())),
        (None, _) => {
            return Err(AppError::Unprocessable(
                "nothing cancelled: send {\"schedule_id\": N} or {\"all\": true}".into(),
            ));
        }
    };
    let what = match &target {
        CancelTarget::One(id) => format!("schedule {id}"),
        CancelTarget::All => "all schedules".to_string(),
    };
    let cancelled = schedules::cancel(&state.db, target, Utc::now()).await?.ok_or(AppError::NotFound)?;
    state.wake.scheduler.notify_one();
    let mut response = Json(json!({"cancelled_count": cancelled})).into_response();
    response.extensions_mut().insert(AuditNote(format!("{what}: {cancelled} batches cancelled")));
    Ok(response)
}
