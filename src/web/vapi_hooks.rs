//! Vapi server-URL webhooks (`POST /webhooks/vapi?attempt_id=N`): `status-update`
//! and `end-of-call-report` (providers.md §3.2), authenticated with the shared
//! secret (`X-Vapi-Secret` or `Authorization: Bearer`) before anything is read, then
//! applied through `calls::apply` like every provider's events. Other message types
//! are acknowledged and ignored.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::calls::{self, Applied, StatusEvent};
use crate::db;
use crate::domain::status::Status;
use crate::provider::WebhookAuth;
use crate::provider::vapi::{self, Ended};
use crate::state::AppState;
use crate::web::AppError;
use crate::web::api::parse_query;

#[derive(Deserialize)]
struct HookQuery {
    attempt_id: Option<i64>,
}

/// 401 without any credential, 403 with a wrong one or when another provider is
/// configured (nobody may drive calls through this route then).
/// None when authenticated, else the reply.
fn refusal(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let WebhookAuth::Vapi { secret } = &state.webhook_auth else {
        return Some(AppError::Forbidden.into_response());
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (given, bearer) = (header("x-vapi-secret"), header("authorization"));
    if given.is_none() && bearer.is_none() {
        let body = json!({"error": "missing X-Vapi-Secret or Authorization: Bearer header"});
        return Some((StatusCode::UNAUTHORIZED, Json(body)).into_response());
    }
    if !vapi::authorized(given, bearer, secret) {
        tracing::warn!("Vapi webhook with a wrong secret refused");
        return Some(AppError::Forbidden.into_response());
    }
    None
}

/// What one authenticated message says about a call.
struct Report {
    kind: String,
    call_id: String,
    /// From our server URL, else the metadata we attached to the call.
    attempt_id: Option<i64>,
    status_word: String,
    ended_reason: Option<String>,
    ended: Option<Ended>,
    progress: Option<Status>,
    duration_seconds: Option<i64>,
    /// USD.
    cost: Option<f64>,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn time(m: &Value, key: &str) -> Option<DateTime<Utc>> {
    text(m, key).or_else(|| text(&m["call"], key)).and_then(|t| t.parse().ok())
}

/// Reads the message; Ok(None) for types we do not act on; Err for a malformed one.
fn read(body: &[u8], query_attempt: Option<i64>) -> Result<Option<Report>, AppError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| AppError::BadRequest(format!("body is not JSON: {e}")))?;
    let m = &v["message"];
    let kind = text(m, "type").ok_or_else(|| AppError::BadRequest("message.type missing".into()))?;
    if kind != "status-update" && kind != "end-of-call-report" {
        return Ok(None);
    }
    let call = &m["call"];
    let call_id = text(call, "id").ok_or_else(|| AppError::BadRequest("message.call.id missing".into()))?;
    let attempt_id = query_attempt.or_else(|| {
        [&call["assistantOverrides"]["metadata"], &call["metadata"]]
            .into_iter()
            .find_map(|meta| meta["attempt_id"].as_i64().or_else(|| meta["attempt_id"].as_str()?.parse().ok()))
    });
    let ended_reason = text(m, "endedReason").or_else(|| text(call, "endedReason")).map(String::from);
    let status_word = match kind {
        "end-of-call-report" => "ended".to_string(),
        _ => text(m, "status").ok_or_else(|| AppError::BadRequest("message.status missing".into()))?.to_string(),
    };
    let (started, ended_at) = (time(m, "startedAt"), time(m, "endedAt"));
    let ended = (status_word == "ended").then(|| vapi::ended(ended_reason.as_deref().unwrap_or(""), started.is_some()));
    let duration_seconds = m["durationSeconds"]
        .as_f64()
        .map(|d| d.round() as i64)
        .or_else(|| Some((ended_at? - started?).num_seconds()))
        .map(|d| d.max(0));
    Ok(Some(Report {
        kind: kind.to_string(),
        call_id: call_id.to_string(),
        attempt_id,
        progress: vapi::map_progress(&status_word),
        status_word,
        ended_reason,
        ended,
        duration_seconds,
        cost: m["cost"].as_f64().or_else(|| call["cost"].as_f64()),
    }))
}

impl Report {
    fn event(&self) -> StatusEvent {
        let status = self.ended.as_ref().map(|e| e.status).or(self.progress);
        let answered_by = match status {
            Some(Status::Voicemail) => Some("machine".to_string()),
            Some(Status::Completed) => Some("human".to_string()),
            _ => None,
        };
        let reason = self.ended_reason.clone().unwrap_or_default();
        // Kept small: the full report carries transcripts and recordings.
        let params = [
            ("type", self.kind.clone()),
            ("status", self.status_word.clone()),
            ("endedReason", reason.clone()),
            ("cost", self.cost.map(|c| c.to_string()).unwrap_or_default()),
        ];
        StatusEvent {
            attempt_id: self.attempt_id,
            call_id: self.call_id.clone(),
            // Vapi has no sequence numbers: the message type and what it says are the
            // dedupe key, so a replayed message is a no-op.
            sequence: format!("{}:{}:{reason}", self.kind, self.status_word),
            status,
            raw_status: if reason.is_empty() { self.status_word.clone() } else { reason },
            answered_by,
            duration_seconds: self.duration_seconds,
            params_json: serde_json::to_string(&params).unwrap_or_default(),
        }
    }
}

/// `POST /webhooks/vapi`. 200 `{}` once handled or ignored; 401/403 unauthenticated
/// (nothing stored); 400 malformed.
pub async fn event(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    if let Some(refused) = refusal(&state, &headers) {
        return Ok(refused);
    }
    let query: HookQuery = parse_query(raw)?;
    let Some(report) = read(&body, query.attempt_id)? else {
        return Ok(Json(json!({})).into_response());
    };
    let event = report.event();
    let (attempt_id, call_id, cost) = (report.attempt_id, report.call_id.clone(), report.cost);
    let now_ms = db::to_ms(Utc::now());
    let applied = state
        .db
        .write(move |tx| {
            let applied = calls::apply(tx, &event, now_ms)?;
            if let (Some(id), Some(cost), false) = (attempt_id, cost, applied == Applied::Duplicate) {
                db::call_flow::set_price(tx, id, &call_id, &format!("{cost:.4}"), Some("USD"))?;
            }
            Ok(applied)
        })
        .await?;
    if let Applied::Final(status) = &applied {
        tracing::info!(attempt_id, %status, reason = report.ended_reason.as_deref(), "Vapi call ended");
        if let Some(alert) = report.ended.as_ref().and_then(|e| e.alert) {
            raise(&state, report.ended_reason.as_deref().unwrap_or(""), alert);
        }
        state.wake.dialer.notify_one();
        state.wake.scheduler.notify_one();
    }
    Ok(Json(json!({})).into_response())
}

/// A call Vapi could not start: a dashboard alert, and after the concurrency limit a
/// lower in-flight cap (restored gradually by the call loop as calls succeed).
fn raise(state: &AppState, reason: &str, alert: &str) {
    let configured = state.config.dialing.max_concurrent_calls;
    let now = Utc::now();
    state.update_loops(|l| {
        if reason == "call.start.error-subscription-concurrency-limit-reached" {
            let cap = crate::dialer::lowered(l.effective_max_concurrent.unwrap_or(configured));
            (l.effective_max_concurrent, l.placed_since_throttle) = (Some(cap), 0);
        }
        l.provider_alerts.insert(format!("vapi:{reason}"), (format!("{alert} (endedReason {reason})"), now));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_read_and_keyed_for_dedupe() {
        let body = json!({"message": {
            "type": "end-of-call-report", "endedReason": "customer-busy", "cost": 0.02,
            "call": {"id": "c1", "assistantOverrides": {"metadata": {"attempt_id": 9}}},
        }});
        let r = read(body.to_string().as_bytes(), None).unwrap().unwrap();
        assert_eq!(r.attempt_id, Some(9));
        let e = r.event();
        assert_eq!(e.status, Some(Status::Busy));
        assert_eq!(e.sequence, "end-of-call-report:ended:customer-busy");
        let body = json!({"message": {"type": "status-update", "status": "ringing", "call": {"id": "c1"}}});
        let r = read(body.to_string().as_bytes(), Some(3)).unwrap().unwrap();
        assert_eq!((r.attempt_id, r.event().status), (Some(3), Some(Status::Ringing)));
        let other = json!({"message": {"type": "speech-update", "call": {"id": "c1"}}});
        assert!(read(other.to_string().as_bytes(), None).unwrap().is_none());
        for bad in [&b"not json"[..], br#"{"message": {}}"#, br#"{"message": {"type": "status-update"}}"#] {
            assert!(matches!(read(bad, None), Err(AppError::BadRequest(_))));
        }
    }
}
