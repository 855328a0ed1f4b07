//! Vapi server-URL webhooks (`POST /webhooks/vapi?attempt_id=N`): `status-update`
//! and `end-of-call-report` (providers.md §3.2), authenticated with the shared
//! secret (`X-Vapi-Secret` or `Authorization: Bearer`) before anything is read, then
//! applied through `calls::apply` like every provider's events; and `tool-calls`,
//! the assistant calling a function: `opt_out` (the person asked not to be called
//! again) puts the number on the DNC list (source `assistant`) and marks the lead
//! `do_not_call` at once, then answers with the sentence the assistant relays.
//! Other message types are acknowledged and ignored.

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
use crate::domain::phone::E164;
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

/// The function the assistant calls when the person asks not to be called again.
pub const OPT_OUT_TOOL: &str = "opt_out";
/// The DNC source of an opt-out the assistant recorded.
pub const ASSISTANT_SOURCE: &str = "assistant";
/// What the assistant is told once the opt-out is saved.
pub const OPTED_OUT: &str = "The number has been removed from the calling list.";
const NOT_RECORDED: &str = "The request could not be recorded automatically; the number was not removed.";

/// One authenticated message we act on.
enum Message {
    Report(Report),
    ToolCalls(ToolCalls),
    /// A type we do not act on: acknowledged.
    Other,
}

/// A `tool-calls` message: the assistant called functions during `call_id`.
#[derive(Debug)]
struct ToolCalls {
    call_id: Option<String>,
    attempt_id: Option<i64>,
    /// The person's number as Vapi sends it (used only when no attempt matches).
    customer: Option<String>,
    calls: Vec<ToolCall>,
}

/// One entry of `toolCallList`: `{"id", "type": "function", "function": {"name", "arguments"}}`.
#[derive(Debug, PartialEq)]
struct ToolCall {
    id: String,
    name: String,
    /// An object, or a JSON string of one (both are sent); Null when absent or unreadable.
    arguments: Value,
}

/// Our attempt id: from our server URL, else the metadata we attached to the call.
fn attempt_of(call: &Value, query_attempt: Option<i64>) -> Option<i64> {
    query_attempt.or_else(|| {
        [&call["assistantOverrides"]["metadata"], &call["metadata"]]
            .into_iter()
            .find_map(|meta| meta["attempt_id"].as_i64().or_else(|| meta["attempt_id"].as_str()?.parse().ok()))
    })
}

fn tool_calls(m: &Value, query_attempt: Option<i64>) -> Result<ToolCalls, AppError> {
    let call = &m["call"];
    let list = m["toolCallList"]
        .as_array()
        .or_else(|| m["toolCalls"].as_array())
        .ok_or_else(|| AppError::BadRequest("message.toolCallList missing".into()))?;
    let calls = list
        .iter()
        .map(|c| {
            let function = &c["function"];
            let id = text(c, "id").ok_or_else(|| AppError::BadRequest("toolCallList[].id missing".into()))?;
            let name = text(function, "name").or_else(|| text(c, "name")).unwrap_or_default();
            let arguments = match &function["arguments"] {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                other => other.clone(),
            };
            Ok(ToolCall { id: id.to_string(), name: name.to_string(), arguments })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(ToolCalls {
        call_id: text(call, "id").map(String::from),
        attempt_id: attempt_of(call, query_attempt),
        customer: text(&call["customer"], "number").or_else(|| text(&m["customer"], "number")).map(String::from),
        calls,
    })
}

/// Reads the message; `Other` for types we do not act on; Err for a malformed one.
fn read(body: &[u8], query_attempt: Option<i64>) -> Result<Message, AppError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| AppError::BadRequest(format!("body is not JSON: {e}")))?;
    let m = &v["message"];
    let kind = text(m, "type").ok_or_else(|| AppError::BadRequest("message.type missing".into()))?;
    if kind == "tool-calls" {
        return tool_calls(m, query_attempt).map(Message::ToolCalls);
    }
    if kind != "status-update" && kind != "end-of-call-report" {
        return Ok(Message::Other);
    }
    let call = &m["call"];
    let call_id = text(call, "id").ok_or_else(|| AppError::BadRequest("message.call.id missing".into()))?;
    let attempt_id = attempt_of(call, query_attempt);
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
    Ok(Message::Report(Report {
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
    let report = match read(&body, query.attempt_id)? {
        Message::Report(report) => report,
        Message::ToolCalls(tools) => return tool_reply(&state, tools).await,
        Message::Other => return Ok(Json(json!({})).into_response()),
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

/// Runs the assistant's function calls and answers `{"results": [{"toolCallId",
/// "result"}]}` (one per call, in order). `opt_out` is saved before the answer, in
/// one transaction, whatever state the call is in (a late or repeated message
/// included: adding a listed number again changes nothing). A function we do not
/// know is answered with a sentence saying so.
async fn tool_reply(state: &AppState, tools: ToolCalls) -> Result<Response, AppError> {
    let now_ms = db::to_ms(Utc::now());
    let wants_opt_out = tools.calls.iter().any(|c| c.name == OPT_OUT_TOOL);
    let (tools, saved) = if wants_opt_out {
        state.db.write(move |tx| Ok((opt_out(tx, &tools, now_ms)?, tools))).await.map(|(saved, t)| (t, saved))?
    } else {
        (tools, None)
    };
    let results: Vec<Value> = tools
        .calls
        .iter()
        .map(|c| {
            let result = match (c.name.as_str(), &saved) {
                (OPT_OUT_TOOL, Some(_)) => OPTED_OUT.to_string(),
                (OPT_OUT_TOOL, None) => NOT_RECORDED.to_string(),
                (other, _) => format!("The function \"{other}\" is not handled by this server."),
            };
            json!({"toolCallId": c.id, "result": result})
        })
        .collect();
    match &saved {
        Some(phone) => tracing::info!(attempt_id = tools.attempt_id, %phone, "opted out through the Vapi assistant"),
        None if wants_opt_out => tracing::error!(
            attempt_id = tools.attempt_id,
            call_id = tools.call_id.as_deref(),
            "Vapi opt_out with no attempt and no customer number: nothing recorded"
        ),
        None => {}
    }
    Ok(Json(json!({"results": results})).into_response())
}

/// The person asked the assistant not to be called again: their number goes on the
/// DNC list (source `assistant`, with an `added` event) and their lead is marked
/// `do_not_call`. The number is the attempt's when the message names our attempt
/// and its call; else the customer number Vapi sent (every lead with it that is
/// still waiting is marked). Returns the number listed, None when there is none.
fn opt_out(tx: &db::Tx, tools: &ToolCalls, now_ms: i64) -> anyhow::Result<Option<String>> {
    let attempt = match tools.attempt_id {
        Some(id) => db::call_flow::get(tx, id)?,
        None => None,
    };
    let attempt = attempt.filter(|a| match (&a.provider_call_id, &tools.call_id) {
        (Some(ours), Some(theirs)) => ours == theirs,
        _ => true,
    });
    let reason = |what: String| {
        let asked = tools.calls.iter().find(|c| c.name == OPT_OUT_TOOL).and_then(|c| text(&c.arguments, "reason"));
        match asked {
            Some(said) => format!("{what} ({said})"),
            None => what,
        }
    };
    if let Some(a) = attempt {
        let why = reason(format!("asked the assistant to stop calling during call attempt {}", a.id));
        db::dnc::add(tx, &a.to_number, ASSISTANT_SOURCE, &why, ASSISTANT_SOURCE, now_ms)?;
        db::call_flow::mark_opted_out(tx, a.lead_id, now_ms)?;
        return Ok(Some(a.to_number));
    }
    // Vapi sends the number we dialled, in E.164.
    let Some(phone) = tools.customer.as_deref().and_then(E164::from_stored).map(|p| p.as_str().to_string()) else {
        return Ok(None);
    };
    let call = tools.call_id.as_deref().unwrap_or("unknown");
    let why = reason(format!("asked the assistant to stop calling during Vapi call {call}"));
    db::dnc::add(tx, &phone, ASSISTANT_SOURCE, &why, ASSISTANT_SOURCE, now_ms)?;
    Ok(Some(phone))
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
    use chrono::DateTime;

    use super::*;
    use crate::dialer::fixtures::*;
    use crate::numbers::pool::LocalPresence;

    fn report(body: Value, query: Option<i64>) -> Report {
        match read(body.to_string().as_bytes(), query).unwrap() {
            Message::Report(r) => r,
            _ => panic!("not a report: {body}"),
        }
    }

    fn tools(body: Value, query: Option<i64>) -> ToolCalls {
        match read(body.to_string().as_bytes(), query).unwrap() {
            Message::ToolCalls(t) => t,
            _ => panic!("not tool calls: {body}"),
        }
    }

    #[test]
    fn reports_are_read_and_keyed_for_dedupe() {
        let body = json!({"message": {
            "type": "end-of-call-report", "endedReason": "customer-busy", "cost": 0.02,
            "call": {"id": "c1", "assistantOverrides": {"metadata": {"attempt_id": 9}}},
        }});
        let r = report(body, None);
        assert_eq!(r.attempt_id, Some(9));
        let e = r.event();
        assert_eq!(e.status, Some(Status::Busy));
        assert_eq!(e.sequence, "end-of-call-report:ended:customer-busy");
        let body = json!({"message": {"type": "status-update", "status": "ringing", "call": {"id": "c1"}}});
        let r = report(body, Some(3));
        assert_eq!((r.attempt_id, r.event().status), (Some(3), Some(Status::Ringing)));
        let other = json!({"message": {"type": "speech-update", "call": {"id": "c1"}}});
        assert!(matches!(read(other.to_string().as_bytes(), None), Ok(Message::Other)));
        for bad in [&b"not json"[..], br#"{"message": {}}"#, br#"{"message": {"type": "status-update"}}"#] {
            assert!(matches!(read(bad, None), Err(AppError::BadRequest(_))));
        }
    }

    #[test]
    fn tool_calls_are_read_with_arguments_as_an_object_or_a_string() {
        let body = json!({"message": {
            "type": "tool-calls",
            "call": {"id": "c1", "customer": {"number": "+14155550123"},
                     "assistantOverrides": {"metadata": {"attempt_id": "7"}}},
            "toolCallList": [
                {"id": "t1", "type": "function", "function": {"name": "opt_out", "arguments": {"reason": "no more"}}},
                {"id": "t2", "type": "function", "function": {"name": "opt_out", "arguments": "{\"reason\": \"stop\"}"}},
                {"id": "t3", "type": "function", "function": {"name": "book_meeting"}},
            ],
        }});
        let t = tools(body, None);
        assert_eq!(
            (t.call_id.as_deref(), t.attempt_id, t.customer.as_deref()),
            (Some("c1"), Some(7), Some("+14155550123"))
        );
        let calls: Vec<(&str, &str, Option<&str>)> =
            t.calls.iter().map(|c| (c.id.as_str(), c.name.as_str(), text(&c.arguments, "reason"))).collect();
        assert_eq!(
            calls,
            [("t1", "opt_out", Some("no more")), ("t2", "opt_out", Some("stop")), ("t3", "book_meeting", None)]
        );
        for bad in [
            json!({"message": {"type": "tool-calls", "call": {"id": "c1"}}}),
            json!({"message": {"type": "tool-calls", "toolCallList": [{"function": {"name": "opt_out"}}]}}),
        ] {
            assert!(matches!(read(bad.to_string().as_bytes(), None), Err(AppError::BadRequest(_))), "{bad}");
        }
    }

    fn t0() -> DateTime<Utc> {
        "2026-06-10T15:00:00Z".parse().unwrap()
    }

    fn one(s: &Store, sql: &str) -> String {
        let sql = sql.to_string();
        s.db.read_blocking(move |c| Ok(c.query_row(&sql, [], |r| r.get(0))?)).unwrap()
    }

    fn opted(s: &Store, t: ToolCalls) -> Option<String> {
        let now = db::to_ms(t0());
        s.db.write_blocking(move |tx| opt_out(tx, &t, now)).unwrap()
    }

    fn opt_out_call(attempt_id: Option<i64>, call_id: &str, customer: Option<&str>) -> ToolCalls {
        let call = ToolCall { id: "t1".into(), name: OPT_OUT_TOOL.into(), arguments: Value::Null };
        ToolCalls { call_id: Some(call_id.into()), attempt_id, customer: customer.map(String::from), calls: vec![call] }
    }

    #[test]
    fn an_opt_out_lists_the_attempts_number_and_marks_its_lead_whatever_the_calls_state() {
        let s = store();
        add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
        seed_leads(&s.db, &plain_leads(1), t0());
        let id = dial(claim_at(&s.db, &rules("UTC", LocalPresence::Off, 10), t0())).attempt_id;
        s.db.write_blocking(move |tx| db::attempts::set_provider_call_id(tx, id, "vapi-1")).unwrap();
        let phone = one(&s, "SELECT phone FROM leads");
        // Another call's message naming our attempt changes nothing of it.
        assert_eq!(opted(&s, opt_out_call(Some(id), "vapi-other", None)), None);
        assert_eq!(count(&s.db, "SELECT COUNT(*) FROM dnc"), 0);
        assert_eq!(opted(&s, opt_out_call(Some(id), "vapi-1", None)), Some(phone.clone()));
        assert_eq!(one(&s, "SELECT source FROM dnc"), ASSISTANT_SOURCE);
        assert_eq!(one(&s, "SELECT phone FROM dnc"), phone);
        assert_eq!(one(&s, "SELECT status FROM leads"), "do_not_call");
        // Repeated (Vapi retries, or the message came after the end): listed once.
        assert_eq!(opted(&s, opt_out_call(Some(id), "vapi-1", None)), Some(phone));
        assert_eq!(count(&s.db, "SELECT COUNT(*) FROM dnc_events"), 1);
        // Without our attempt (a tool server URL without `attempt_id` and no metadata),
        // the number Vapi called is listed all the same.
        assert_eq!(opted(&s, opt_out_call(None, "vapi-2", Some("+14155550123"))), Some("+14155550123".into()));
        assert_eq!(count(&s.db, "SELECT COUNT(*) FROM dnc"), 2);
        assert_eq!(opted(&s, opt_out_call(None, "vapi-3", Some("not a number"))), None);
    }
}
