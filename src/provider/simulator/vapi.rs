//! The simulator's Vapi API (providers.md §3): `POST /call` (with the create-call
//! faults of `[simulator.faults]`), `GET /call/{id}`, `GET /call` (filters
//! `phoneNumberId`, `assistantId`, `id`, `createdAtGt/Ge/Lt/Le`, `limit`) and
//! `GET /phone-number`, all behind `Authorization: Bearer` with the simulator's key.
//! Calls are answered from the ledger; each call's life is in `vapi_call`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::DEMO_NUMBERS;
use crate::provider::simulator::faults::CreateFault;
use crate::provider::simulator::ledger::Entry;
use crate::provider::simulator::{Sim, VAPI_API_KEY, VAPI_ASSISTANT_ID, vapi_call};

/// Numbers the simulated account owns besides `DEMO_NUMBERS` (so a listing offers
/// some not yet in the pool).
const EXTRA_NUMBERS: [&str; 3] = ["+12025550104", "+12025550105", "+12025550106"];

/// The simulated account's phone numbers: (id, E.164 number, name).
pub fn phone_numbers() -> Vec<(String, String, String)> {
    DEMO_NUMBERS
        .iter()
        .chain(EXTRA_NUMBERS.iter())
        .enumerate()
        .map(|(i, n)| (phone_number_id(n), n.to_string(), format!("Simulated line {}", i + 1)))
        .collect()
}

/// A stable id per number, shaped like Vapi's UUIDs.
fn phone_number_id(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    format!("5e0f0000-0000-4000-8000-{digits:0>12}")
}

pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/call", post(create_call).get(list_calls))
        .route("/call/{id}", get(fetch_call))
        .route("/phone-number", get(list_numbers))
}

/// Vapi's (NestJS) error body: `{message, error, statusCode}`.
fn vapi_error(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "message": message,
        "error": status.canonical_reason().unwrap_or(""),
        "statusCode": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

/// None when the request carries the simulator's key, else the 401 reply.
fn refusal(headers: &HeaderMap) -> Option<Response> {
    let given = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(VAPI_API_KEY) {
        return None;
    }
    Some(vapi_error(
        StatusCode::UNAUTHORIZED,
        "Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.",
    ))
}

fn server_error() -> Response {
    vapi_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

/// Validates like Vapi: an assistant, one of the account's phone numbers, a customer
/// number in E.164, a name of at most 40 characters.
/// Errors: the 400 message.
fn validate(body: &Value) -> Result<vapi_call::CreateRequest, String> {
    let bad = |m: &str| m.to_string();
    if body["assistantId"].as_str() != Some(VAPI_ASSISTANT_ID) {
        return Err(bad("Couldn't Get Assistant. `assistantId` does not exist."));
    }
    let phone_number_id = body["phoneNumberId"].as_str().unwrap_or_default();
    let Some((_, from, _)) = phone_numbers().into_iter().find(|(id, _, _)| id == phone_number_id) else {
        return Err(bad("Couldn't Get Phone Number. `phoneNumberId` does not exist."));
    };
    let to = body["customer"]["number"].as_str().unwrap_or_default();
    if !to.starts_with('+') || !(8..=16).contains(&to.len()) || !to[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("customer.number must be a valid phone number in the E.164 format"));
    }
    if body["name"].as_str().is_some_and(|n| n.chars().count() > 40) {
        return Err(bad("name must be shorter than or equal to 40 characters"));
    }
    let overrides = &body["assistantOverrides"];
    let server = &overrides["server"];
    let headers = server["headers"]
        .as_object()
        .map(|h| h.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    Ok(vapi_call::CreateRequest {
        to: to.to_string(),
        from,
        phone_number_id: phone_number_id.to_string(),
        server_url: server["url"].as_str().map(String::from),
        headers,
        metadata: overrides["metadata"].clone(),
    })
}

async fn create_call(State(sim): State<Sim>, headers: HeaderMap, body: String) -> Response {
    if let Some(refused) = refusal(&headers) {
        return refused;
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return vapi_error(StatusCode::BAD_REQUEST, "body must be JSON");
    };
    let request = match validate(&body) {
        Ok(request) => request,
        Err(message) => return vapi_error(StatusCode::BAD_REQUEST, &message),
    };
    let fault = sim.draw_create_fault();
    match fault {
        CreateFault::RateLimited => return vapi_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
        CreateFault::ServerError => return server_error(),
        CreateFault::TimeoutBeforeCreate => {
            sim.hang().await;
            return server_error();
        }
        _ => {}
    }
    tracing::debug!(to = %request.to, from = %request.from, ?fault, "simulated carrier: Vapi call created");
    let entry = vapi_call::start(&sim, request);
    let mut created = call_object(&entry);
    created["subscriptionLimits"] = json!({
        "concurrencyBlocked": false,
        "concurrencyLimit": 10,
        "remainingConcurrentCalls": 9,
    });
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

/// Vapi's `Call` object for a ledger entry. `startedAt`/`endedAt` exist once the
/// call was answered (the ledger keeps the talk time, from creation).
pub fn call_object(e: &Entry) -> Value {
    let talk = e.duration_seconds.map(|d| chrono::Duration::seconds(d as i64));
    let started = talk.map(|_| e.created_at);
    json!({
        "id": e.call_id,
        "orgId": "org-simulator",
        "type": "outboundPhoneCall",
        "status": e.status,
        "endedReason": e.ended,
        "createdAt": e.created_at,
        "updatedAt": Utc::now(),
        "startedAt": started,
        "endedAt": started.zip(talk).map(|(s, t)| s + t).filter(|_| e.ended.is_some()),
        "assistantId": VAPI_ASSISTANT_ID,
        "phoneNumberId": phone_number_id(&e.from),
        "customer": {"number": e.to},
        "metadata": e.client_ref.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
    })
}

async fn fetch_call(State(sim): State<Sim>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&headers) {
        return refused;
    }
    match sim.ledger.get(&id).filter(|e| e.api == "vapi") {
        Some(entry) => Json(call_object(&entry)).into_response(),
        None => vapi_error(StatusCode::NOT_FOUND, "Call not found"),
    }
}

async fn list_calls(
    State(sim): State<Sim>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&headers) {
        return refused;
    }
    let get = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let time = |key: &str| -> Result<Option<DateTime<Utc>>, String> {
        get(key).map(|t| t.parse::<DateTime<Utc>>().map_err(|_| format!("{key} must be an ISO 8601 date"))).transpose()
    };
    let bounds =
        (|| Ok::<_, String>((time("createdAtGt")?, time("createdAtGe")?, time("createdAtLt")?, time("createdAtLe")?)))(
        );
    let (gt, ge, lt, le) = match bounds {
        Ok(bounds) => bounds,
        Err(message) => return vapi_error(StatusCode::BAD_REQUEST, &message),
    };
    let limit = get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(100).min(1000);
    let wrong_assistant = get("assistantId").is_some_and(|a| a != VAPI_ASSISTANT_ID);
    let calls: Vec<Value> = sim
        .ledger
        .filter("vapi", |e| {
            !wrong_assistant
                && get("id").is_none_or(|id| e.call_id == id)
                && get("phoneNumberId").is_none_or(|p| phone_number_id(&e.from) == p)
                && gt.is_none_or(|t| e.created_at > t)
                && ge.is_none_or(|t| e.created_at >= t)
                && lt.is_none_or(|t| e.created_at < t)
                && le.is_none_or(|t| e.created_at <= t)
        })
        .iter()
        .rev() // newest first, as Vapi lists
        .take(limit)
        .map(call_object)
        .collect();
    Json(calls).into_response()
}

async fn list_numbers(State(_sim): State<Sim>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&headers) {
        return refused;
    }
    let numbers: Vec<Value> = phone_numbers()
        .into_iter()
        .map(|(id, number, name)| {
            json!({"id": id, "orgId": "org-simulator", "number": number, "name": name,
                   "provider": "vapi", "status": "active"})
        })
        .collect();
    Json(numbers).into_response()
}
