//! Twilio's status callback, and the signature check every Twilio webhook uses (the
//! call flow's hooks are in `twilio_hooks`). Each is verified against the provider's
//! signature before it touches the store (forged → 403, nothing changes), then
//! applied idempotently.

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
pub(super) fn verify(
    state: &AppState,
    path: &str,
    raw_query: &Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, AppError> {
    let url = match raw_query {
        Some(q) => format!("{}{path}?{q}", state.public_url),
        None => format!("{}{path}", state.public_url),
    };
    let given = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    let WebhookAuth::Twilio { auth_token } = &state.webhook_auth else {
        // Another provider is configured: nobody may drive calls through this route.
        return Err(AppError::Forbidden);
    };
    if raw_query.as_deref().is_some_and(|q| q.split('&').any(|kv| kv.starts_with("bodySHA256="))) {
        // A JSON-body webhook: signed through the body's hash in the URL. No call-flow
        // webhook of ours has one, so once authenticated it is refused as malformed.
        if !signature::validate_with_body(auth_token.expose(), &url, body, given) {
            tracing::warn!(%path, "webhook with an invalid signature refused");
            return Err(AppError::Forbidden);
        }
        return Err(AppError::BadRequest("expected a form body, not JSON".into()));
    }
    let params: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| AppError::BadRequest("malformed form body".into()))?;
    if !signature::validate(auth_token.expose(), &url, &params, given) {
        tracing::warn!(%path, "webhook with an invalid signature refused");
        return Err(AppError::Forbidden);
    }
    Ok(params)
}

/// The first value of `key`, None when absent or empty.
pub(super) fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
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
    // Twilio reports the charge (a negative decimal string) on the final callback,
    // when it knows it; a later callback may carry it too.
    let price = param(&params, "Price").map(|p| (p.to_string(), param(&params, "PriceUnit").map(String::from)));
    let now_ms = db::to_ms(Utc::now());
    let (attempt_id, call_id) = (query.attempt_id, event.call_id.clone());
    let applied = state
        .db
        .write(move |tx| {
            let applied = calls::apply(tx, &event, now_ms)?;
            if let (Some(id), Some((price, unit))) = (attempt_id, &price) {
                db::call_flow::set_price(tx, id, &call_id, price, unit.as_deref())?;
            }
            Ok(applied)
        })
        .await?;
    if let Applied::Final(status) = &applied {
        tracing::info!(attempt_id = query.attempt_id, %status, "call ended");
        state.wake.dialer.notify_one();
        // A campaign whose last call this was is marked completed by the scheduler.
        state.wake.scheduler.notify_one();
    }
    Ok(([(header::CONTENT_TYPE, "text/xml")], "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>").into_response())
}
