//! The Campaigns page: create a campaign, see each one's state and queue, pause,
//! resume or cancel it with a reason, and read its history.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

use crate::db::campaigns::{self, CampaignEvent, CampaignRow};
use crate::db::{self};
use crate::state::AppState;
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
