//! Server-rendered dashboard pages (askama). Scheduling itself goes through the JSON
//! API from `static/app.js`; uploads and cancels are plain HTML forms.

use askama::Template;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use serde::Deserialize;

use crate::db::leads::LeadFilter;
use crate::db::schedules::CancelTarget;
use crate::db::{
    self, history::AttemptRow, imports::ImportRow, imports::Rejection, leads::LeadRow, schedules::ScheduleRow,
};
use crate::domain::status::{ALL, Status};
use crate::schedules;
use crate::state::AppState;
use crate::web::api::{parse_filter, parse_query};
use crate::web::status::{Snapshot, snapshot};
use crate::web::{AppError, local, upload};

const PAGE_SIZE: u32 = 50;

pub fn render(template: &impl Template) -> Result<Response, AppError> {
    let html = template.render().map_err(|e| AppError::Internal(anyhow::anyhow!("template: {e}")))?;
    Ok(Html(html).into_response())
}

#[derive(Deserialize, Default)]
struct IndexQuery {
    status: Option<String>,
    q: Option<String>,
    cursor: Option<i64>,
    import: Option<i64>,
    import_error: Option<String>,
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    status: Snapshot,
    leads: Vec<LeadRow>,
    total: i64,
    /// Pending leads among those matching the filter: what "Select all" schedules.
    schedulable: i64,
    next_cursor: Option<i64>,
    paged: bool,
    filter_status: String,
    filter_q: String,
    statuses: Vec<(String, i64)>,
    import: Option<ImportRow>,
    import_errors: Vec<Rejection>,
    import_error: Option<String>,
    timezone: String,
    default_date: String,
    min_date: String,
    /// Campaigns that take schedules, for the modal's selector (the default first).
    campaigns: Vec<db::campaigns::CampaignRow>,
    /// Running campaigns' pacing metrics and recommendations (`pacing.html`).
    pacing: Vec<db::pacing::Pacing>,
}

pub async fn index(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, AppError> {
    let query: IndexQuery = parse_query(raw)?;
    let filter = parse_filter(query.status.as_deref(), query.q.as_deref())?;
    let import_id = query.import;
    let (page_filter, cursor) = (filter.clone(), query.cursor);
    let (leads, next_cursor, (total, schedulable), counts, (import, campaigns), import_errors) = state
        .db
        .read(move |c| {
            let (rows, next) = db::leads::page(c, &page_filter, PAGE_SIZE, cursor)?;
            let (import, errors) = match import_id {
                Some(id) => (db::imports::get(c, id)?, db::imports::rejections(c, id, 20)?),
                None => (None, Vec::new()),
            };
            let total = db::leads::count(c, &page_filter)?;
            let schedulable = match page_filter.status {
                Some(Status::Pending) => total,
                Some(_) => 0,
                None => db::leads::count(c, &LeadFilter { status: Some(Status::Pending), q: page_filter.q.clone() })?,
            };
            let campaigns: Vec<db::campaigns::CampaignRow> = db::campaigns::list(c)?
                .into_iter()
                .filter(|c| !matches!(c.status.as_str(), "completed" | "cancelled"))
                .collect();
            Ok((rows, next, (total, schedulable), db::leads::counts_by_status(c)?, (import, campaigns), errors))
        })
        .await?;
    let (now_ms, global) = (db::to_ms(Utc::now()), state.config.dialing.max_concurrent_calls);
    let pacing = state.db.read(move |c| db::pacing::running(c, now_ms, global)).await?;
    let tz = state.resolved.timezone;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let statuses = ALL
        .iter()
        .map(|s| (s.as_str().to_string(), counts.iter().find(|(n, _)| n == s.as_str()).map_or(0, |(_, c)| *c)))
        .collect();
    render(&IndexPage {
        status: snapshot(&state).await?,
        leads,
        total,
        schedulable,
        next_cursor,
        paged: query.cursor.is_some(),
        filter_status: filter.status.map(|s| s.as_str().to_string()).unwrap_or_default(),
        filter_q: filter.q.unwrap_or_default(),
        statuses,
        import,
        import_errors,
        import_error: query.import_error,
        timezone: tz.name().to_string(),
        default_date: (today + Duration::days(1)).to_string(),
        min_date: today.to_string(),
        campaigns,
        pacing,
    })
}

/// The dashboard's upload form: import, then show the summary on the leads page.
pub async fn import(State(state): State<AppState>, multipart: Multipart) -> Response {
    match upload::from_multipart(&state, multipart).await {
        Ok(summary) => Redirect::to(&format!("/?import={}", summary.import_id)).into_response(),
        Err(AppError::Internal(e)) => AppError::Internal(e).into_response(),
        Err(user) => {
            let message: String = serde_urlencoded::to_string([("import_error", user.to_string())]).unwrap_or_default();
            Redirect::to(&format!("/?{message}")).into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "lead.html")]
struct LeadPage {
    status: Snapshot,
    lead: LeadRow,
    attempts: Vec<AttemptView>,
    next_call_local: Option<String>,
    consent_local: Option<String>,
    /// Why the lead waits (or was skipped), in words.
    wait: Option<&'static str>,
}

/// The dashboard's words for a lead's `wait_reason`.
fn wait_text(reason: &str) -> &'static str {
    match reason {
        "no_local_number" => "waiting for a local caller ID with room",
        "lead_24h_cap" => "called the most times allowed in 24 hours",
        "campaign_daily_cap" => "its campaign reached its calls for today",
        "no_pool_number" => "no number of its campaign's pool has room",
        "retry" => "a retry: see the attempts below",
        "no_consent" => "its campaign requires consent and none is recorded",
        "in_call" => "a test call to this number is under way",
        _ => "waiting for its calling hours",
    }
}

struct AttemptView {
    row: AttemptRow,
    started: String,
    ended: String,
}

pub async fn lead(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Response, AppError> {
    let (lead, attempts) = state.db.read(move |c| Ok((db::leads::get(c, id)?, db::history::for_lead(c, id)?))).await?;
    let lead = lead.ok_or(AppError::NotFound)?;
    let tz = state.resolved.timezone;
    let attempts = attempts
        .into_iter()
        .map(|row| AttemptView {
            started: local(row.created_at_ms, tz),
            ended: row.ended_at_ms.map(|ms| local(ms, tz)).unwrap_or_default(),
            row,
        })
        .collect();
    render(&LeadPage {
        status: snapshot(&state).await?,
        next_call_local: lead.next_call_at.map(|ms| local(ms, tz)),
        consent_local: lead.consent_at.map(|ms| local(ms, tz)),
        wait: lead.wait_reason.as_deref().map(wait_text),
        lead,
        attempts,
    })
}

#[derive(Template)]
#[template(path = "schedules.html")]
struct SchedulesPage {
    status: Snapshot,
    schedules: Vec<ScheduleView>,
}

struct ScheduleView {
    row: ScheduleRow,
    start: String,
    next: String,
}

pub async fn schedules(State(state): State<AppState>) -> Result<Response, AppError> {
    let rows = state.db.read(|c| db::schedules::list(c, 200)).await?;
    let tz = state.resolved.timezone;
    let schedules = rows
        .into_iter()
        .map(|row| ScheduleView {
            start: local(row.start_at_ms, tz),
            next: row.next_due_ms.map(|ms| local(ms, tz)).unwrap_or_default(),
            row,
        })
        .collect();
    render(&SchedulesPage { status: snapshot(&state).await?, schedules })
}

pub async fn cancel(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Response, AppError> {
    schedules::cancel(&state.db, CancelTarget::One(id), Utc::now()).await?.ok_or(AppError::NotFound)?;
    state.wake.scheduler.notify_one();
    Ok(Redirect::to("/schedules").into_response())
}
