//! Provider webhooks. Each is verified against the provider's signature before it
//! touches the store (forged → 403, nothing changes), then applied idempotently.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use crate::calls::{self, Applied, StatusEvent};
use crate::db;
use crate::provider::WebhookAuth;
use crate::provider::twilio::{map_status, signature};
use crate::state::AppState;
use crate::web::AppError;
use crate::web::api::parse_query;

#[derive(Deserialize)]
struct HookQuery {
    attempt_id: Option<i64>,
}

/// Checks `X-Twilio-Signature` over the URL Twilio called (our public URL + path +
/// query, as received) and every form parameter. Returns the parameters.
fn verify(
    state: &AppState,
    path: &str,
    raw_query: &Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, AppError> {
    let params: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| AppError::BadRequest("malformed form body".into()))?;
    let url = match raw_query {
        Some(q) => format!("{}{path}?{q}", state.public_url),
        None => format!("{}{path}", state.public_url),
    };
    let given = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    let WebhookAuth::Twilio { auth_token } = &state.webhook_auth else {
        // Another provider is configured: nobody may drive calls through this route.
        return Err(AppError::Forbidden);
    };
    if !signature::validate(auth_token.expose(), &url, &params, given) {
        tracing::warn!(%path, "webhook with an invalid signature refused");
        return Err(AppError::Forbidden);
    }
    Ok(params)
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// `POST /webhooks/twilio/status?attempt_id=N`: call progress events.
pub async fn twilio_status(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let params = verify(&state, "/webhooks/twilio/status", &raw, &headers, &body)?;
    let query: HookQuery = parse_query(raw)?;
    let call_id = param(&params, "CallSid").ok_or_else(|| AppError::BadRequest("CallSid missing".into()))?.to_string();
    let raw_status = param(&params, "CallStatus").unwrap_or("").to_string();
    let answered_by = param(&params, "AnsweredBy").map(String::from);
    let event = StatusEvent {
        attempt_id: query.attempt_id,
        // Without SequenceNumber (older callbacks) the status itself is the key.
        sequence: param(&params, "SequenceNumber").map_or_else(|| format!("status:{raw_status}"), String::from),
        status: map_status(&raw_status, answered_by.as_deref()),
        duration_seconds: param(&params, "CallDuration").and_then(|d| d.parse().ok()),
        params_json: serde_json::to_string(&params).map_err(anyhow::Error::from)?,
        call_id,
        raw_status,
        answered_by,
    };
    let now_ms = db::to_ms(Utc::now());
    let applied = state.db.write(move |tx| calls::apply(tx, &event, now_ms)).await?;
    if let Applied::Final(status) = &applied {
        tracing::info!(attempt_id = query.attempt_id, %status, "call ended");
        state.wake.dialer.notify_one();
        // A campaign whose last call this was is marked completed by the scheduler.
        state.wake.scheduler.notify_one();
    }
    Ok(([(header::CONTENT_TYPE, "text/xml")], "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>").into_response())
}

/// `POST /webhooks/twilio/voice?attempt_id=N`: TwiML for the answered call. The full
/// call flow (gather, transfer, opt-out) is a later step; this says the message.
pub async fn twilio_voice(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let params = verify(&state, "/webhooks/twilio/voice", &raw, &headers, &body)?;
    let query: HookQuery = parse_query(raw)?;
    // This request is the answered call asking for its message: the moment the message
    // reaches the person (`connected_at`, for abandonment). Set once per attempt.
    if let (Some(attempt_id), Some(call_id)) = (query.attempt_id, param(&params, "CallSid").map(String::from)) {
        let now_ms = db::to_ms(Utc::now());
        let recorded = state.db.write(move |tx| db::pacing::set_connected(tx, attempt_id, &call_id, now_ms)).await;
        if let Err(e) = recorded {
            // The caller is on the line: say the message even if the metric is lost.
            tracing::error!(attempt_id, error = format!("{e:#}"), "recording connected_at failed");
        }
    }
    let twiml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>{}</Say><Hangup/></Response>",
        xml_escape(&state.config.dialing.message)
    );
    Ok(([(header::CONTENT_TYPE, "text/xml")], twiml).into_response())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}
