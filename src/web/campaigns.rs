//! Campaigns over JSON: list, create, one campaign with its history, and the
//! lifecycle actions (pause, resume, cancel), each with a reason.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::campaigns::{CampaignStatus, Settings};
use crate::db::campaigns::Refused;
use crate::db::schedules::CancelTarget;
use crate::db::{self, campaigns};
use crate::state::AppState;
use crate::web::AppError;
use crate::web::error::json_body;

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let rows = state.db.read(campaigns::list).await?;
    Ok(Json(json!({ "campaigns": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    settings: Option<Settings>,
}

/// Checks settings and gives the JSON to store; the error names the field.
fn settings_json(settings: &Settings) -> Result<String, AppError> {
    settings.check().map_err(|e| AppError::Unprocessable(format!("settings.{e}")))?;
    serde_json::to_string(settings).map_err(|e| AppError::Internal(e.into()))
}

/// `POST /api/campaigns` `{"name"}` → 201 with the new `draft` campaign.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    let body: CreateBody = json_body(&headers, &body)?;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(AppError::Unprocessable("name: 1 to 80 characters, no control characters".into()));
    }
    let settings = body.settings.as_ref().map(settings_json).transpose()?;
    let now_ms = db::to_ms(Utc::now());
    let created = {
        let name = name.clone();
        state
            .db
            .write(move |tx| {
                let id = campaigns::create(tx, &name, "api", now_ms)?;
                if let (Some(id), Some(json)) = (id, settings) {
                    campaigns::set_settings(tx, id, &json, "api", now_ms)?;
                }
                Ok(id)
            })
            .await?
    };
    let id = created.ok_or_else(|| AppError::Unprocessable(format!("name: a campaign named {name:?} exists")))?;
    let row = state.db.read(move |c| campaigns::get(c, id)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "campaign": row }))).into_response())
}

/// `GET /api/campaigns/{id}`: the campaign, its history and its live pacing
/// (`db::pacing::Pacing`: metrics, target and effective calls per minute, recommendations).
pub async fn get(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Value>, AppError> {
    let (now_ms, global) = (db::to_ms(Utc::now()), state.config.dialing.max_concurrent_calls);
    let (row, history, pacing) = state
        .db
        .read(move |c| {
            Ok((campaigns::get(c, id)?, campaigns::events(c, id)?, db::pacing::of_campaign(c, id, now_ms, global)?))
        })
        .await?;
    Ok(Json(json!({ "campaign": row.ok_or(AppError::NotFound)?, "history": history, "pacing": pacing })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    settings: Settings,
}

/// `PATCH /api/campaigns/{id}` `{"settings": {…}}`: replaces the campaign's settings
/// (unset fields use the global values). Takes effect at the next claim.
pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body: PatchBody = json_body(&headers, &body)?;
    let json = settings_json(&body.settings)?;
    let now_ms = db::to_ms(Utc::now());
    if !state.db.write(move |tx| campaigns::set_settings(tx, id, &json, "api", now_ms)).await? {
        return Err(AppError::NotFound);
    }
    state.wake.dialer.notify_one();
    get(State(state), Path(id)).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: String,
}

/// `POST /api/campaigns/{id}/{pause|resume|cancel}` with an optional `{"reason"}`.
/// Pause takes effect at the next claim (no new dial starts; calls in progress
/// finish); cancel also cancels the campaign's schedules, returning their waiting
/// leads to `pending`.
pub async fn action(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let reason = if body.is_empty() { ReasonBody::default() } else { json_body::<ReasonBody>(&headers, &body)? };
    let row = act(&state, id, &action, reason.reason, "api").await?;
    Ok(Json(json!({ "campaign": row })))
}

/// Applies a lifecycle action; shared by the API and the dashboard.
pub async fn act(
    state: &AppState,
    id: i64,
    action: &str,
    reason: String,
    actor: &'static str,
) -> Result<campaigns::CampaignRow, AppError> {
    let to = match action {
        "pause" => CampaignStatus::Paused,
        "resume" => CampaignStatus::Running,
        "cancel" => CampaignStatus::Cancelled,
        other => return Err(AppError::Unprocessable(format!("unknown action {other:?}; pause, resume or cancel"))),
    };
    if id == campaigns::DEFAULT_ID && to == CampaignStatus::Cancelled {
        return Err(AppError::Unprocessable("the default campaign cannot be cancelled; pause it instead".into()));
    }
    let reason = if reason.trim().is_empty() { format!("{action} by {actor}") } else { reason.trim().to_string() };
    let now_ms = db::to_ms(Utc::now());
    let outcome = state
        .db
        .write(move |tx| {
            let outcome = campaigns::transition(tx, id, to, &reason, actor, now_ms)?;
            if outcome.is_ok() && to == CampaignStatus::Cancelled {
                for schedule in campaigns::active_schedules(tx, id)? {
                    db::schedules::cancel(tx, CancelTarget::One(schedule), now_ms)?;
                }
            }
            Ok(outcome)
        })
        .await?;
    match outcome {
        Ok(_) => {}
        Err(Refused::NotFound) => return Err(AppError::NotFound),
        Err(Refused::NotAllowed { from, to }) => {
            return Err(AppError::Unprocessable(format!("campaign {id} is {from}: it cannot become {to}")));
        }
    }
    state.wake.dialer.notify_one();
    state.wake.scheduler.notify_one();
    state.db.read(move |c| campaigns::get(c, id)).await?.ok_or(AppError::NotFound)
}
