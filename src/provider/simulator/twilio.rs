//! The simulator's Twilio 2010-04-01 REST API: Create Call (with the create-call
//! faults of `[simulator.faults]`), Fetch Call, Read Calls, Modify Call, and Read
//! IncomingPhoneNumbers. Calls are answered from the ledger.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;

use crate::config::{DEMO_NUMBERS, Secret};
use crate::provider::simulator::faults::CreateFault;
use crate::provider::simulator::twiml::Method;
use crate::provider::simulator::twiml_run::Modify;
use crate::provider::simulator::{ACCOUNT_SID, Sim, twilio_call as call};

/// Numbers the simulated account owns besides `DEMO_NUMBERS` (so a listing offers
/// some not yet in the pool).
pub const EXTRA_NUMBERS: [&str; 3] = ["+12025550104", "+12025550105", "+12025550106"];

pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/2010-04-01/Accounts/{sid}/Calls.json", post(create_call).get(list_calls))
        .route("/2010-04-01/Accounts/{sid}/Calls/{call_sid}", get(fetch_call).post(modify_call))
        .route("/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json", get(list_numbers))
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
    sid == ACCOUNT_SID
        && headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .is_some_and(|given| given == expected)
}

fn unauthorized() -> Response {
    twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate")
}

fn server_error() -> Response {
    twilio_error(StatusCode::INTERNAL_SERVER_ERROR, 20500, "An internal server error has occurred")
}

async fn create_call(State(sim): State<Sim>, Path(sid): Path<String>, headers: HeaderMap, body: String) -> Response {
    if !authorized(&headers, &sid, &sim.twilio_token) {
        return unauthorized();
    }
    let form: Vec<(String, String)> = match serde_urlencoded::from_str(&body) {
        Ok(form) => form,
        Err(_) => return twilio_error(StatusCode::BAD_REQUEST, 21200, "Malformed form body"),
    };
    let request = match call::CreateRequest::from_form(&form) {
        Ok(request) => request,
        Err((code, message)) => return twilio_error(StatusCode::BAD_REQUEST, code, &message),
    };
    let fault = sim.draw_create_fault();
    match fault {
        CreateFault::RateLimited => {
            return twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
        }
        CreateFault::ServerError => return server_error(),
        CreateFault::TimeoutBeforeCreate => {
            sim.hang().await;
            return server_error();
        }
        _ => {}
    }
    tracing::debug!(to = %request.to, from = %request.from, ?fault, "simulated carrier: call created");
    let created = call::start(&sim, request);
    match fault {
        CreateFault::ServerErrorAfterCreate => server_error(),
        CreateFault::TimeoutAfterCreate => {
            // The client gave up long ago; the call is real all the same.
            sim.hang().await;
            (StatusCode::CREATED, Json(created)).into_response()
        }
        _ => (StatusCode::CREATED, Json(created)).into_response(),
    }
}

async fn fetch_call(
    State(sim): State<Sim>,
    Path((sid, call_sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers, &sid, &sim.twilio_token) {
        return unauthorized();
    }
    match sim.ledger.get(call_sid.trim_end_matches(".json")).filter(|e| e.api == "twilio") {
        Some(entry) => Json(call::resource(&entry)).into_response(),
        None => twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found"),
    }
}

/// Modify Call: `Url` (+ `Method`) redirects the live call to new TwiML;
/// `Status=completed|canceled` hangs it up. 404 for an unknown sid, 400 (21220)
/// for a call that already ended.
async fn modify_call(
    State(sim): State<Sim>,
    Path((sid, call_sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&headers, &sid, &sim.twilio_token) {
        return unauthorized();
    }
    let call_sid = call_sid.trim_end_matches(".json");
    let Ok(form) = serde_urlencoded::from_str::<Vec<(String, String)>>(&body) else {
        return twilio_error(StatusCode::BAD_REQUEST, 21200, "Malformed form body");
    };
    let get = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let modify = match (get("Status"), get("Url")) {
        (Some("completed" | "canceled"), _) => Modify::Hangup,
        (Some(other), _) => {
            return twilio_error(StatusCode::BAD_REQUEST, 21218, &format!("Invalid Status {other:?}"));
        }
        (None, Some(url)) => {
            let method =
                if get("Method").is_some_and(|m| m.eq_ignore_ascii_case("GET")) { Method::Get } else { Method::Post };
            Modify::Redirect { url: url.to_string(), method }
        }
        (None, None) => return twilio_error(StatusCode::BAD_REQUEST, 21200, "Url or Status is required"),
    };
    let Some(entry) = sim.ledger.get(call_sid).filter(|e| e.api == "twilio") else {
        return twilio_error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found");
    };
    let sent = sim
        .twilio_live
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(call_sid)
        .is_some_and(|tx| tx.send(Some(modify)).is_ok());
    if !sent {
        return twilio_error(StatusCode::BAD_REQUEST, 21220, "Call is not in-progress. Cannot redirect.");
    }
    Json(call::resource(&entry)).into_response()
}

/// Read multiple Call resources: `To` and `From` filters (the others are ignored;
/// the client filters by creation time itself). One page.
async fn list_calls(
    State(sim): State<Sim>,
    Path(sid): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers, &sid, &sim.twilio_token) {
        return unauthorized();
    }
    let get = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let calls: Vec<serde_json::Value> = sim
        .ledger
        .filter("twilio", |e| get("To").is_none_or(|to| e.to == to) && get("From").is_none_or(|from| e.from == from))
        .iter()
        .map(call::resource)
        .collect();
    Json(serde_json::json!({"calls": calls, "next_page_uri": null})).into_response()
}

/// Read IncomingPhoneNumbers: the simulated account's numbers, one page.
async fn list_numbers(State(sim): State<Sim>, Path(sid): Path<String>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &sid, &sim.twilio_token) {
        return unauthorized();
    }
    let numbers: Vec<serde_json::Value> = DEMO_NUMBERS
        .iter()
        .chain(EXTRA_NUMBERS.iter())
        .enumerate()
        .map(|(i, number)| {
            serde_json::json!({
                "sid": format!("PN{:032x}", i + 1),
                "account_sid": ACCOUNT_SID,
                "phone_number": number,
                "friendly_name": format!("Simulator line {}", i + 1),
                "capabilities": {"voice": true, "sms": false, "mms": false, "fax": false},
            })
        })
        .collect();
    Json(serde_json::json!({"incoming_phone_numbers": numbers, "next_page_uri": null, "page": 0})).into_response()
}

#[cfg(test)]
#[path = "twilio_tests.rs"]
mod tests;
