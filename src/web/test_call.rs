//! Test calls from the dashboard (`/test-call`) and the API (`/api/test-calls`):
//! call one number now through a campaign's flow and watch its status live.

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::db::{self, campaigns::CampaignRow, test_calls::View};
use crate::dialer::test_call;
use crate::state::AppState;
use crate::web::api::parse_query;
use crate::web::dashboard::render;
use crate::web::error::json_body;
use crate::web::forms;
use crate::web::status::{Snapshot, snapshot};
use crate::web::{AppError, local};

#[derive(Template)]
#[template(path = "test_call.html")]
struct Page {
    status: Snapshot,
    campaigns: Vec<CampaignRow>,
    /// (attempt id, to, status, placed at local time)
    recent: Vec<(i64, String, String, String)>,
    number: String,
    campaign_id: i64,
    message: Option<String>,
    call: Option<CallView>,
}

struct CallView {
    view: View,
    placed: String,
    /// Still under way: the page refreshes itself.
    live: bool,
    /// (local time, provider status word)
    events: Vec<(String, String)>,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    msg: Option<String>,
}

/// `GET /test-call`.
pub async fn page(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, AppError> {
    let q: PageQuery = parse_query(raw)?;
    render_page(&state, String::new(), 1, q.msg, None).await
}

/// `GET /test-call/{id}`: one test call's live status.
pub async fn detail(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Response, AppError> {
    let view = state.db.read(move |c| db::test_calls::view(c, id)).await?.ok_or(AppError::NotFound)?;
    let tz = state.resolved.timezone;
    let call = CallView {
        placed: local(view.created_at, tz),
        live: view.ended_at.is_none(),
        events: view.events.iter().map(|(at, s)| (local(*at, tz), s.clone())).collect(),
        view,
    };
    let number = call.view.to_number.clone();
    let campaign_id = call.view.campaign_id;
    render_page(&state, number, campaign_id, None, Some(call)).await
}

/// `POST /test-call` (form: `campaign_id`, `number`).
pub async fn submit(State(state): State<AppState>, body: String) -> Result<Response, AppError> {
    let form = forms::pairs(&body)?;
    let number = forms::value(&form, "number");
    let campaign_id = forms::value(&form, "campaign_id").trim().parse::<i64>().unwrap_or(0);
    match test_call::start(&state, campaign_id, &number).await? {
        Ok(attempt_id) => Ok(Redirect::to(&format!("/test-call/{attempt_id}")).into_response()),
        Err(refusal) => render_page(&state, number, campaign_id, Some(format!("Not placed: {refusal}")), None).await,
    }
}

async fn render_page(
    state: &AppState,
    number: String,
    campaign_id: i64,
    message: Option<String>,
    call: Option<CallView>,
) -> Result<Response, AppError> {
    let tz = state.resolved.timezone;
    let (campaigns, recent) = state.db.read(|c| Ok((db::campaigns::list(c)?, db::test_calls::recent(c, 10)?))).await?;
    let recent = recent.into_iter().map(|(id, to, status, at)| (id, to, status, local(at, tz))).collect();
    render(&Page { status: snapshot(state).await?, campaigns, recent, number, campaign_id, message, call })
}

#[derive(Deserialize)]
struct ApiRequest {
    campaign_id: i64,
    /// Any format the importer reads; E.164 recommended.
    number: String,
}

/// `POST /api/test-calls` `{"campaign_id": 1, "number": "+14155550100"}` → 202
/// `{"attempt_id": N, "status_url": "/api/test-calls/N"}`, or 422 `{"error": why}`.
pub async fn api_start(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    let req: ApiRequest = json_body(&headers, &body)?;
    match test_call::start(&state, req.campaign_id, &req.number).await? {
        Ok(attempt_id) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"attempt_id": attempt_id, "status_url": format!("/api/test-calls/{attempt_id}")})),
        )
            .into_response()),
        Err(refusal) => Err(AppError::Unprocessable(refusal.to_string())),
    }
}

/// `GET /api/test-calls/{id}`: the call's status, answered_by, transfer result,
/// duration (seconds), error and provider events (UTC ms).
pub async fn api_get(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<View>, AppError> {
    let view = state.db.read(move |c| db::test_calls::view(c, id)).await?.ok_or(AppError::NotFound)?;
    Ok(Json(view))
}
