//! The simulator's Twilio 2010-04-01 REST API: Create Call, Fetch Call, Read Calls.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;

use crate::config::Secret;
use crate::provider::simulator::{ACCOUNT_SID, Sim, twilio_call as call};

pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/2010-04-01/Accounts/{sid}/Calls.json", post(create_call).get(list_calls))
        .route("/2010-04-01/Accounts/{sid}/Calls/{call_sid}", get(fetch_call))
}

/// Twilio's error body shape: `{code, message, more_info, status}`.
fn twilio_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

fn authorized(headers: &HeaderMap, sid: &str, token: &Secret) -> bool {
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{}", token.expose()));
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .is_some_and(|given| given == expected)
}

async fn create_call(State(sim): State<Sim>, Path(sid): Path<String>, headers: HeaderMap, body: String) -> Response {
    if sid != ACCOUNT_SID || !authorized(&headers, &sid, &sim.twilio_token) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let form: Vec<(String, String)> = match serde_urlencoded::from_str(&body) {
        Ok(form) => form,
        Err(_) => return twilio_error(StatusCode::BAD_REQUEST, 21200, "Malformed form body"),
    };
    let request = match call::CreateRequest::from_form(&form) {
        Ok(request) => request,
        Err((code, message)) => return twilio_error(StatusCode::BAD_REQUEST, code, &message),
    };
    let created = call::start(&sim, request);
    (StatusCode::CREATED, Json(created)).into_response()
}

async fn fetch_call(
    State(sim): State<Sim>,
    Path((sid, call_sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if sid != ACCOUNT_SID || !authorized(&headers, &sid, &sim.twilio_token) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let call_sid = call_sid.trim_end_matches(".json");
    let found = sim.calls.lock().unwrap_or_else(|e| e.into_inner()).get(call_sid).map(call::SimCall::resource);
    match found {
        Some(resource) => Json(resource).into_response(),
        None => twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found"),
    }
}

/// Read multiple Call resources: `To` and `From` filters (the others are ignored;
/// the client filters by creation time itself).
async fn list_calls(
    State(sim): State<Sim>,
    Path(sid): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if sid != ACCOUNT_SID || !authorized(&headers, &sid, &sim.twilio_token) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let get = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let calls: Vec<serde_json::Value> = sim
        .calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter(|c| get("To").is_none_or(|to| c.to() == to) && get("From").is_none_or(|from| c.from() == from))
        .map(call::SimCall::resource)
        .collect();
    Json(serde_json::json!({"calls": calls})).into_response()
}
