//! The Campaigns page: create a campaign, see each one's state and queue, pause,
//! resume or cancel it with a reason, and read its history. Each campaign's own page
//! edits its settings.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

use crate::campaigns::Settings;
use crate::db::campaigns::{self, CampaignEvent, CampaignRow};
use crate::db::{self};
use crate::state::AppState;
use crate::web::campaign_form::FormValues;
use crate::web::dashboard::render;
use crate::web::forms;
use crate::web::status::{Snapshot, snapshot};
use crate::web::{AppError, api::parse_query, campaigns::act, local};

#[derive(Template)]
#[template(path = "campaigns.html")]
struct CampaignsPage {
    status: Snapshot,
    campaigns: Vec<CampaignRow>,
    /// (campaign id, when, event), newest first, for every campaign on the page.
    history: Vec<(i64, String, CampaignEvent)>,
    message: Option<String>,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    msg: Option<String>,
}

pub async fn page(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, AppError> {
    let q: PageQuery = parse_query(raw)?;
    let (rows, events) = state
        .db
        .read(|c| {
            let rows = campaigns::list(c)?;
            let mut events = Vec::new();
            for r in &rows {
                events.extend(campaigns::events(c, r.id)?.into_iter().take(5).map(|e| (r.id, e)));
            }
            Ok((rows, events))
        })
        .await?;
    let tz = state.resolved.timezone;
    render(&CampaignsPage {
        status: snapshot(&state).await?,
        campaigns: rows,
        history: events.into_iter().map(|(id, e)| (id, local(e.at, tz), e)).collect(),
        message: q.msg,
    })
}

fn back(message: &str) -> Response {
    let query = serde_urlencoded::to_string([("msg", message)]).unwrap_or_default();
    Redirect::to(&format!("/campaigns?{query}")).into_response()
}

/// `POST /campaigns` (form: `name`).
pub async fn create(State(state): State<AppState>, body: String) -> Result<Response, AppError> {
    let form = forms::pairs(&body)?;
    let name = forms::value(&form, "name").trim().to_string();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Ok(back("Name: 1 to 80 characters."));
    }
    let now_ms = db::to_ms(Utc::now());
    let created = {
        let name = name.clone();
        state.db.write(move |tx| campaigns::create(tx, &name, "user", now_ms)).await?
    };
    Ok(back(&match created {
        Some(_) => format!("Campaign {name:?} created (draft): choose it when you schedule calls."),
        None => format!("A campaign named {name:?} exists."),
    }))
}

/// `POST /campaigns/{id}/{pause|resume|cancel}` (form: `reason`).
pub async fn action(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    body: String,
) -> Result<Response, AppError> {
    let form = forms::pairs(&body)?;
    let reason = forms::value(&form, "reason");
    Ok(back(&match act(&state, id, &action, reason, "user").await {
        Ok(row) => format!("{} is now {}.", row.name, row.status),
        Err(AppError::Unprocessable(e)) => e,
        Err(e) => return Err(e),
    }))
}

#[derive(Template)]
#[template(path = "campaign.html")]
struct CampaignPage {
    status: Snapshot,
    campaign: CampaignRow,
    history: Vec<(String, CampaignEvent)>,
    form: FormValues,
    message: Option<String>,
    error: Option<String>,
    /// The global values unset fields fall back to, for the placeholders.
    global: Globals,
    /// Its live pacing (`pacing.html`), one entry.
    pacing: Vec<db::pacing::Pacing>,
}

struct Globals {
    hours_start: String,
    hours_end: String,
    timezone: String,
    max_concurrent_calls: u32,
}

fn globals(state: &AppState) -> Globals {
    let d = &state.config.dialing;
    Globals {
        hours_start: d.calling_hours_start.clone(),
        hours_end: d.calling_hours_end.clone(),
        timezone: d.timezone.clone(),
        max_concurrent_calls: d.max_concurrent_calls,
    }
}

async fn campaign_page(
    state: &AppState,
    id: i64,
    form: Option<FormValues>,
    message: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let (now_ms, global) = (db::to_ms(Utc::now()), state.config.dialing.max_concurrent_calls);
    let (row, events, pacing) = state
        .db
        .read(move |c| {
            Ok((campaigns::get(c, id)?, campaigns::events(c, id)?, db::pacing::of_campaign(c, id, now_ms, global)?))
        })
        .await?;
    let campaign = row.ok_or(AppError::NotFound)?;
    let stored: Settings = serde_json::from_value(campaign.settings.clone()).unwrap_or_default();
    let tz = state.resolved.timezone;
    let page = CampaignPage {
        status: snapshot(state).await?,
        history: events.into_iter().take(50).map(|e| (local(e.at, tz), e)).collect(),
        form: form.unwrap_or_else(|| FormValues::from_settings(&stored)),
        global: globals(state),
        pacing: pacing.into_iter().collect(),
        campaign,
        message,
        error,
    };
    let failed = page.error.is_some();
    let mut response = render(&page)?;
    if failed {
        *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

/// `GET /campaigns/{id}`: the campaign, its settings form and its whole history.
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let q: PageQuery = parse_query(raw)?;
    campaign_page(&state, id, None, q.msg, None).await
}

/// `POST /campaigns/{id}/settings`: replaces the settings; a bad field re-renders the
/// form with what was typed and the reason (422), storing nothing.
pub async fn save_settings(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: String,
) -> Result<Response, AppError> {
    let values = FormValues::from_form(&forms::pairs(&body)?);
    let settings = match values.to_settings().and_then(|s| s.check().map(|_| s)) {
        Ok(s) => s,
        Err(e) => return campaign_page(&state, id, Some(values), None, Some(e)).await,
    };
    let json = serde_json::to_string(&settings).map_err(|e| AppError::Internal(e.into()))?;
    let now_ms = db::to_ms(Utc::now());
    if !state.db.write(move |tx| campaigns::set_settings(tx, id, &json, "user", now_ms)).await? {
        return Err(AppError::NotFound);
    }
    state.wake.dialer.notify_one();
    let query =
        serde_urlencoded::to_string([("msg", "Settings saved; they apply from the next call.")]).unwrap_or_default();
    Ok(Redirect::to(&format!("/campaigns/{id}?{query}")).into_response())
}
