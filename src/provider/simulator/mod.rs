//! The built-in simulated carrier: a small HTTP server that speaks the part of
//! Twilio's 2010-04-01 REST API the dialer uses (Create Call, Fetch Call) and calls
//! back `Url` and `StatusCallback` as Twilio does, with signed form posts. The
//! dialer talks to it through the production Twilio client, so the demo and the
//! tests run the real code path over real HTTP. It places no real calls.
//!
//! It is its own axum server on its own loopback port, separate from the app's
//! router: it stands in for a carrier on the other side of the network.

mod call;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Secret, Simulator as Settings};

/// Fixed demo credentials: the simulator is a local stand-in, not an account.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
pub const AUTH_TOKEN: &str = "simulator-auth-token";

#[derive(Clone)]
struct Sim {
    settings: Settings,
    token: Secret,
    calls: Arc<Mutex<HashMap<String, call::SimCall>>>,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

/// Starts the simulator on `listener`; returns its base URL (`http://127.0.0.1:PORT`).
pub fn spawn(listener: TcpListener, settings: Settings, shutdown: CancellationToken) -> anyhow::Result<String> {
    let base = format!("http://{}", listener.local_addr()?);
    let sim = Sim {
        settings,
        token: Secret::new(AUTH_TOKEN),
        calls: Arc::default(),
        http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build()?,
        shutdown: shutdown.clone(),
    };
    let app = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Calls.json", post(create_call).get(list_calls))
        .route("/2010-04-01/Accounts/{sid}/Calls/{call_sid}", get(fetch_call))
        .with_state(sim);
    tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "simulated carrier stopped");
        }
    });
    Ok(base)
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
    if sid != ACCOUNT_SID || !authorized(&headers, &sid, &sim.token) {
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
    if sid != ACCOUNT_SID || !authorized(&headers, &sid, &sim.token) {
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
    if sid != ACCOUNT_SID || !authorized(&headers, &sid, &sim.token) {
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
