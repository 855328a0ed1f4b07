//! The simulator's Telnyx Call Control v2 API: Dial (`POST /v2/calls`, with the
//! create-call faults and `command_id` dedupe), Retrieve a call, call commands
//! (`POST /v2/calls/{id}/actions/{action}`), the connection's active calls, and
//! phone numbers. Bearer `TELNYX_API_KEY`. Each call's life is in `telnyx_call`.

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::config::DEMO_NUMBERS;
use crate::provider::simulator::faults::CreateFault;
use crate::provider::simulator::telnyx_call::{self as call, Calls, Dial};
use crate::provider::simulator::twilio::EXTRA_NUMBERS;
use crate::provider::simulator::{Sim, TELNYX_API_KEY, TELNYX_CONNECTION_ID};

pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/v2/calls", post(dial))
        .route("/v2/calls/{id}", get(retrieve))
        .route("/v2/calls/{id}/actions/{action}", post(action))
        .route("/v2/connections/{id}/active_calls", get(active_calls))
        .route("/v2/phone_numbers", get(phone_numbers))
        .layer(Extension(Calls::default()))
}

/// Telnyx's error body.
fn error(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    (status, Json(json!({"errors": [{"code": code, "title": title, "detail": detail}]}))).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    let given = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    given == Some(TELNYX_API_KEY)
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "10009", "Authentication failed", "The API key is missing or wrong.")
}

async fn dial(
    State(sim): State<Sim>,
    Extension(calls): Extension<Calls>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let dial = match Dial::parse(&body) {
        Ok(d) => d,
        Err((pointer, detail)) => {
            let body = json!({"errors": [{"code": "10015", "title": "Invalid value", "detail": detail,
                                          "source": {"pointer": pointer}}]});
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
        }
    };
    // A repeated dial with the same command_id is the same dial: same call, nothing new.
    if let Some(existing) = dial.command_id.as_deref().and_then(|id| calls.by_command(id)) {
        return Json(json!({"data": existing})).into_response();
    }
    let fault = sim.draw_create_fault();
    let created = fault.creates().then(|| call::start(&sim, &calls, dial));
    match fault {
        CreateFault::RateLimited => error(
            StatusCode::TOO_MANY_REQUESTS,
            "10011",
            "Too many requests",
            "You have exceeded the maximum number of allowed requests.",
        ),
        CreateFault::ServerError | CreateFault::ServerErrorAfterCreate => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "10007", "Unexpected error", "An unexpected error occurred.")
        }
        CreateFault::TimeoutBeforeCreate | CreateFault::TimeoutAfterCreate => {
            sim.hang().await;
            error(StatusCode::GATEWAY_TIMEOUT, "10007", "Timeout", "The request timed out.")
        }
        CreateFault::None => Json(json!({"data": created.unwrap_or(Value::Null)})).into_response(),
    }
}

async fn retrieve(Extension(calls): Extension<Calls>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    match calls.resource(&id) {
        Some(resource) => Json(json!({"data": resource})).into_response(),
        None => error(StatusCode::NOT_FOUND, "10005", "Resource not found", "The call does not exist."),
    }
}

async fn action(
    Extension(calls): Extension<Calls>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "10015", "Invalid JSON", "The body is not JSON.");
    };
    match calls.command(&id, &action, body) {
        call::Accepted::Yes | call::Accepted::Duplicate => Json(json!({"data": {"result": "ok"}})).into_response(),
        call::Accepted::NoSuchCall => {
            error(StatusCode::NOT_FOUND, "10005", "Resource not found", "The call does not exist.")
        }
        call::Accepted::Ended => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "90018",
            "Call has already ended",
            "This call is no longer active and can't receive commands.",
        ),
    }
}

async fn active_calls(Extension(calls): Extension<Calls>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    if id != TELNYX_CONNECTION_ID {
        return error(StatusCode::NOT_FOUND, "10005", "Resource not found", "No such connection.");
    }
    let data = calls.alive();
    let meta = json!({"total_pages": 1, "page_number": 1, "page_size": data.len().max(1), "total_results": data.len()});
    Json(json!({"data": data, "meta": meta})).into_response()
}

async fn phone_numbers(headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let data: Vec<Value> = DEMO_NUMBERS
        .iter()
        .chain(EXTRA_NUMBERS.iter())
        .enumerate()
        .map(|(i, number)| {
            json!({"id": format!("{}", 1_293_384_261_075_731_000u64 + i as u64), "record_type": "phone_number",
                   "phone_number": number, "status": "active", "connection_id": TELNYX_CONNECTION_ID,
                   "connection_name": "Simulator application"})
        })
        .collect();
    let meta = json!({"total_pages": 1, "page_number": 1, "page_size": 250, "total_results": data.len()});
    Json(json!({"data": data, "meta": meta})).into_response()
}
