//! Numbers owned on the provider account (Twilio IncomingPhoneNumbers, Telnyx phone
//! numbers, Vapi phone numbers) and importing them into the rotation pool with their
//! provider ids: `GET /api/provider/numbers`, `POST /api/provider/numbers/import`,
//! and the dashboard's `GET /numbers/provider` + `POST /numbers/provider/import`.

use std::collections::HashMap;

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::db::provider_numbers::{self, Imported};
use crate::provider::OwnedNumber;
use crate::state::AppState;
use crate::web::AppError;
use crate::web::dashboard::render;
use crate::web::error::json_body;
use crate::web::forms;
use crate::web::status::{Snapshot, snapshot};

/// One of the provider's numbers, and whether the pool has it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// E.164.
    pub number: String,
    pub provider_id: String,
    pub label: Option<String>,
    /// The number is in the pool.
    pub in_pool: bool,
    /// The pool's record already carries this provider id.
    pub linked: bool,
}

/// The provider could not list its numbers: 502 with its message (the operator
/// fixes credentials or the network, not the request).
fn provider_failed(e: &crate::provider::ProviderError) -> Response {
    let body = json!({"error": format!("the provider did not list its numbers: {e}")});
    (StatusCode::BAD_GATEWAY, Json(body)).into_response()
}

/// The provider's numbers, or the 502 reply saying why it did not list them.
async fn owned(state: &AppState) -> Result<Vec<OwnedNumber>, Response> {
    state.provider.list_numbers().await.map_err(|e| provider_failed(&e))
}

fn mark(owned: Vec<OwnedNumber>, stored: &HashMap<String, Option<String>>) -> Vec<Listed> {
    owned
        .into_iter()
        .map(|n| {
            let in_pool = stored.get(&n.number);
            Listed {
                in_pool: in_pool.is_some(),
                linked: in_pool.is_some_and(|id| id.as_deref() == Some(n.provider_id.as_str())),
                number: n.number,
                provider_id: n.provider_id,
                label: n.label,
            }
        })
        .collect()
}

/// What an import did, by number.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    /// New in the pool (default cap and priority).
    pub added: Vec<String>,
    /// Already in the pool: the provider id was recorded.
    pub linked: Vec<String>,
    pub unchanged: Vec<String>,
    /// Asked for, but not a number of the provider account.
    pub not_on_account: Vec<String>,
}

/// Imports `chosen` (E.164; None = every number on the account).
async fn import(
    state: &AppState,
    owned: Vec<OwnedNumber>,
    chosen: Option<Vec<String>>,
    actor: &'static str,
) -> Result<Outcome, AppError> {
    let (picked, not_on_account) = provider_numbers::choose(owned, chosen.as_deref());
    let mut outcome = Outcome { not_on_account, ..Outcome::default() };
    let now_ms = crate::db::to_ms(Utc::now());
    let done = state.db.write(move |tx| provider_numbers::import_owned(tx, &picked, actor, now_ms)).await?;
    for (number, what) in done {
        match what {
            Imported::Added => outcome.added.push(number),
            Imported::Linked => outcome.linked.push(number),
            Imported::Unchanged => outcome.unchanged.push(number),
        }
    }
    if !outcome.added.is_empty() || !outcome.linked.is_empty() {
        // A hold for a caller number without its provider id is over now.
        state.update_loops(|l| {
            if l.hold.as_ref().is_some_and(|(_, reason)| reason.contains("phoneNumberId")) {
                l.hold = None;
            }
        });
        state.wake.dialer.notify_one();
    }
    Ok(outcome)
}

/// `GET /api/provider/numbers`: `{"provider": "vapi", "numbers": [{number,
/// provider_id, label, in_pool, linked}]}`; 502 when the provider cannot list them.
pub async fn api_list(State(state): State<AppState>) -> Result<Response, AppError> {
    let owned = match owned(&state).await {
        Ok(owned) => owned,
        Err(failed) => return Ok(failed),
    };
    let numbers = mark(owned, &state.db.read(provider_numbers::stored).await?);
    Ok(Json(json!({"provider": state.provider.name(), "numbers": numbers})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    #[serde(default)]
    all: bool,
    #[serde(default)]
    numbers: Vec<String>,
}

/// `POST /api/provider/numbers/import` with `{"all": true}` or `{"numbers":
/// ["+1…"]}`: `{"added", "linked", "unchanged", "not_on_account"}` (lists of E.164
/// numbers). 422 when nothing is asked for or none of the numbers is on the account.
pub async fn api_import(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, AppError> {
    let body: ImportBody = json_body(&headers, &body)?;
    if !body.all && body.numbers.is_empty() {
        return Err(AppError::Unprocessable("send {\"all\": true} or {\"numbers\": [\"+1…\"]}".into()));
    }
    let owned = match owned(&state).await {
        Ok(owned) => owned,
        Err(failed) => return Ok(failed),
    };
    let chosen = (!body.all).then_some(body.numbers);
    let outcome = import(&state, owned, chosen, "api").await?;
    let nothing = outcome.added.is_empty() && outcome.linked.is_empty() && outcome.unchanged.is_empty();
    let code = if nothing { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((code, Json(outcome)).into_response())
}

#[derive(Template)]
#[template(path = "provider_numbers.html")]
struct ProviderPage {
    status: Snapshot,
    provider: String,
    numbers: Vec<Listed>,
    error: Option<String>,
}

/// `GET /numbers/provider`: the account's numbers with checkboxes.
pub async fn page(State(state): State<AppState>) -> Result<Response, AppError> {
    let (numbers, error) = match state.provider.list_numbers().await {
        Ok(owned) => (mark(owned, &state.db.read(provider_numbers::stored).await?), None),
        Err(e) => (Vec::new(), Some(format!("The provider did not list its numbers: {e}"))),
    };
    render(&ProviderPage {
        status: snapshot(&state).await?,
        provider: state.provider.name().to_string(),
        numbers,
        error,
    })
}

/// `POST /numbers/provider/import`: form fields `numbers` (repeated) or `all=1`;
/// back to the Numbers page with what was done.
pub async fn page_import(State(state): State<AppState>, body: String) -> Result<Response, AppError> {
    let pairs = forms::pairs(&body)?;
    let all = forms::value(&pairs, "all") == "1";
    let chosen: Vec<String> = pairs.iter().filter(|(k, _)| k == "numbers").map(|(_, v)| v.clone()).collect();
    let message = if !all && chosen.is_empty() {
        "Nothing imported: tick the numbers to add.".to_string()
    } else {
        match owned(&state).await {
            Ok(owned) => {
                let o = import(&state, owned, (!all).then_some(chosen), "user").await?;
                format!(
                    "Imported from {}: {} added, {} linked to their provider id, {} unchanged{}.",
                    state.provider.name(),
                    o.added.len(),
                    o.linked.len(),
                    o.unchanged.len(),
                    if o.not_on_account.is_empty() {
                        String::new()
                    } else {
                        format!(", {} not on the account", o.not_on_account.len())
                    }
                )
            }
            Err(_) => "The provider did not list its numbers: nothing imported (see the provider page).".to_string(),
        }
    };
    let query = serde_urlencoded::to_string([("msg", message)]).unwrap_or_default();
    Ok(Redirect::to(&format!("/numbers?{query}")).into_response())
}
