//! Telnyx Call Control webhooks (`POST /webhooks/telnyx`): Ed25519-verified JSON
//! events that drive the call flow with commands (providers.md §2.2, §2.3).
//!
//! One event is handled in one write transaction: recorded and deduplicated on its
//! event id (`calls::apply`, sequence = event id), its status applied forward-only,
//! the flow's decision (`provider::telnyx::flow::decide`) and its writes (AMD verdict,
//! digits, DNC, transfer result) stored. The commands it leads to are sent after the
//! commit, in the background, so the webhook is answered at once.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;

use crate::calls::{self, Applied, StatusEvent};
use crate::db::{self, Tx};
use crate::domain::status::Status;
use crate::provider::telnyx::events::{self, ClientState, Envelope, Event, Step};
use crate::provider::telnyx::flow::{self, Command, Effect, Flow, Known};
use crate::provider::telnyx::signature;
use crate::provider::{ProviderError, WebhookAuth};
use crate::state::AppState;
use crate::web::AppError;

/// `POST /webhooks/telnyx`. 403 for a missing, stale or wrong signature (or when
/// another provider is configured), 400 for a body that is not a Telnyx event;
/// nothing is stored in either case. Events for calls that are not ours → 200, ignored.
pub async fn event(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<StatusCode, AppError> {
    let WebhookAuth::Telnyx { public_key } = &state.webhook_auth else { return Err(AppError::Forbidden) };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let checked = signature::verify(
        public_key,
        header("telnyx-timestamp"),
        header("telnyx-signature-ed25519"),
        &body,
        Utc::now().timestamp(),
    );
    if let Err(reason) = checked {
        tracing::warn!(%reason, "Telnyx webhook refused");
        return Err(AppError::Forbidden);
    }
    let envelope: Envelope =
        serde_json::from_slice(&body).map_err(|e| AppError::BadRequest(format!("not a Telnyx event: {e}")))?;
    let event = envelope.data;
    let Some(client_state) = event.payload.client_state.as_deref().and_then(ClientState::decode) else {
        tracing::debug!(event_type = %event.event_type, "Telnyx event without our client state ignored");
        return Ok(StatusCode::OK);
    };
    if event.payload.call_control_id.is_empty() {
        return Err(AppError::BadRequest("payload.call_control_id missing".into()));
    }
    let raw = String::from_utf8_lossy(&body).into_owned();
    let default_message = state.config.dialing.message.clone();
    let now_ms = db::to_ms(Utc::now());
    let handled = state.db.write(move |tx| handle(tx, &event, &client_state, &raw, &default_message, now_ms)).await?;
    if let Some(Applied::Final(status)) = &handled.applied {
        tracing::info!(attempt_id = handled.attempt_id, %status, "call ended");
        state.wake.dialer.notify_one();
        state.wake.scheduler.notify_one();
    }
    if !handled.commands.is_empty() {
        tokio::spawn(send_commands(state.clone(), handled.call_id, handled.commands));
    }
    Ok(StatusCode::OK)
}

#[derive(Default)]
struct Handled {
    attempt_id: i64,
    applied: Option<Applied>,
    /// The lead's leg, where the commands go.
    call_id: String,
    commands: Vec<Command>,
}

fn handle(tx: &Tx, event: &Event, cs: &ClientState, raw: &str, message: &str, now_ms: i64) -> anyhow::Result<Handled> {
    let Some(before) = db::call_flow::get(tx, cs.attempt_id)? else { return Ok(Handled::default()) };
    let p = &event.payload;
    let (call_id, status) = if cs.step == Step::AgentLeg {
        // The agent's leg: recorded on the lead's call (for dedupe), never its status.
        let Some(lead_leg) = before.provider_call_id.clone() else { return Ok(Handled::default()) };
        (lead_leg, None)
    } else {
        let transfer_failed = before.transfer_result.as_deref() == Some("failed");
        let status = match event.event_type.as_str() {
            "call.initiated" => Some(Status::Dialing),
            "call.answered" => Some(Status::InProgress),
            "call.hangup" => Some(events::hangup_status(
                p.hangup_cause.as_deref().unwrap_or("unspecified"),
                cs.step,
                transfer_failed,
            )),
            _ => None,
        };
        (p.call_control_id.clone(), status)
    };
    let hangup = event.event_type == "call.hangup" && cs.step != Step::AgentLeg;
    let status_event = StatusEvent {
        attempt_id: Some(cs.attempt_id),
        call_id: call_id.clone(),
        sequence: event.id.clone(),
        status,
        raw_status: match &p.hangup_cause {
            Some(cause) if hangup => format!("{}:{cause}", event.event_type),
            _ => event.event_type.clone(),
        },
        answered_by: if hangup { events::answered_by(cs.step).map(String::from) } else { None },
        duration_seconds: if hangup { p.call_duration } else { None },
        params_json: raw.to_string(),
    };
    let applied = calls::apply(tx, &status_event, now_ms)?;
    let mut handled = Handled { attempt_id: cs.attempt_id, applied: Some(applied.clone()), call_id, commands: vec![] };
    if matches!(
        applied,
        Applied::Duplicate | Applied::Ignored("call id does not match the attempt" | "no such attempt")
    ) {
        return Ok(handled);
    }
    let Some(attempt) = db::call_flow::get(tx, cs.attempt_id)? else { return Ok(handled) };
    let settings = db::campaigns::checked(tx, attempt.campaign_id)?.map(|(_, s)| s).unwrap_or_default();
    let flow = Flow {
        amd: settings.amd,
        message: settings.message.clone().unwrap_or_else(|| message.to_string()),
        message_audio_url: settings.message_audio_url.clone(),
        agent_number: settings.agent_number.clone(),
        voicemail_message: settings.voicemail_message.clone(),
        transfer_from: settings.transfer_caller_id.pick(&attempt.caller_number, &attempt.to_number).to_string(),
    };
    let known = Known {
        answered_by: attempt.answered_by.is_some(),
        transfer_connected: attempt.transfer_result.as_deref() == Some("connected"),
        // `unknown` is final for the books but not for the call: a dial that got no
        // reply may have created it, and its webhooks adopt it and drive the flow.
        ended: attempt.status.is_final() && attempt.status != Status::Unknown,
    };
    let decision = flow::decide(event, cs, &flow, known);
    for effect in &decision.effects {
        match effect {
            Effect::AnsweredBy(a) => db::call_flow::set_answered_by(tx, attempt.id, a)?,
            Effect::Digits(d) => db::call_flow::set_digits(tx, attempt.id, d)?,
            Effect::OptOut => {
                db::call_flow::opt_out(tx, &attempt, now_ms)?;
            }
            Effect::Transfer(result) => db::call_flow::set_transfer(tx, attempt.id, result, None)?,
        }
    }
    if decision.commands.iter().any(|c| c.state.step == Step::Gather1) {
        // The message starts now: the moment the person is connected (abandonment metric).
        db::pacing::set_connected(tx, attempt.id, &handled.call_id, now_ms)?;
    }
    handled.commands = decision.commands;
    Ok(handled)
}

/// Sends each command to the lead's leg. A transient failure is re-sent (same
/// `command_id`, so Telnyx runs it once); a refusal (the call has ended) is logged.
async fn send_commands(state: AppState, call_id: String, commands: Vec<Command>) {
    let Some(client) = state.provider.telnyx() else {
        tracing::error!("Telnyx webhooks arrive but the provider is not Telnyx: no command sent");
        return;
    };
    for command in commands {
        for attempt in 0..3u64 {
            match client.command(&call_id, &command).await {
                Ok(()) => break,
                Err(e @ (ProviderError::Retry(_) | ProviderError::Unknown(_))) if attempt < 2 => {
                    tracing::warn!(action = command.action, error = %e, "Telnyx command failed; re-sending");
                    tokio::time::sleep(Duration::from_millis(250 * (attempt + 1))).await;
                }
                Err(e) => {
                    tracing::warn!(action = command.action, attempt_id = command.state.attempt_id, error = %e, "Telnyx command refused");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use serde_json::{Value, json};

    use super::*;
    use crate::dialer::fixtures::*;
    use crate::numbers::pool::LocalPresence;

    fn t0() -> DateTime<Utc> {
        "2026-06-10T15:00:00Z".parse().unwrap()
    }

    fn ev(kind: &str, id: &str, cs: &ClientState, extra: Value) -> Event {
        let mut payload = json!({"call_control_id": "v3:lead", "client_state": cs.encode()});
        if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        serde_json::from_value(json!({"event_type": kind, "id": id, "payload": payload})).unwrap()
    }

    /// One lead claimed and dialled (the default campaign: AMD `detect_message_end`).
    fn dialled() -> (Store, i64) {
        let s = store();
        add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
        seed_leads(&s.db, &plain_leads(1), t0());
        let call = dial(claim_at(&s.db, &rules("UTC", LocalPresence::Off, 10), t0()));
        (s, call.attempt_id)
    }

    fn handle_at(s: &Store, kind: &str, id: &str, cs: &ClientState, extra: Value) -> Handled {
        let (event, cs, now) = (ev(kind, id, cs, extra), cs.clone(), db::to_ms(t0()));
        s.db.write_blocking(move |tx| handle(tx, &event, &cs, "{}", "Hello.", now)).unwrap()
    }

    fn one(s: &Store, sql: &str) -> String {
        let sql = sql.to_string();
        s.db.read_blocking(move |c| Ok(c.query_row(&sql, [], |r| r.get(0))?)).unwrap()
    }

    #[test]
    fn pressing_2_is_recorded_even_when_the_gather_event_comes_after_the_hangup() {
        let (s, id) = dialled();
        let cs = ClientState { attempt_id: id, step: Step::Dial, to: None, from: None };
        let g1 = cs.at(Step::Gather1);
        handle_at(&s, "call.initiated", "e1", &cs, json!({}));
        handle_at(&s, "call.answered", "e2", &cs, json!({}));
        // The person pressed 2 and hung up; the hangup webhook is handled first.
        let hangup = handle_at(&s, "call.hangup", "e4", &g1, json!({"hangup_cause": "normal_clearing"}));
        assert_eq!(hangup.applied, Some(Applied::Final(Status::Completed)));
        let gathered = handle_at(&s, "call.gather.ended", "e3", &g1, json!({"digits": "2", "status": "valid"}));
        assert!(gathered.commands.is_empty(), "nothing is said to a call that is over");
        assert_eq!(count(&s.db, "SELECT COUNT(*) FROM dnc WHERE phone = (SELECT phone FROM leads)"), 1);
        assert_eq!(one(&s, "SELECT source FROM dnc"), "keypad");
        assert_eq!(one(&s, "SELECT status FROM leads"), "do_not_call");
        assert_eq!(one(&s, "SELECT digits FROM attempts"), "2");
        assert_eq!(one(&s, "SELECT status FROM attempts"), "completed", "the attempt keeps its outcome");
        // Redelivered: recorded once.
        handle_at(&s, "call.gather.ended", "e3", &g1, json!({"digits": "2", "status": "valid"}));
        assert_eq!(count(&s.db, "SELECT COUNT(*) FROM dnc_events"), 1);
    }

    #[test]
    fn a_call_whose_dial_got_no_reply_is_adopted_and_hears_the_message() {
        let (s, id) = dialled();
        s.db.write_blocking(move |tx| db::reconcile::mark_unknown(tx, id, "HTTP 500")).unwrap();
        let cs = ClientState { attempt_id: id, step: Step::Dial, to: None, from: None };
        handle_at(&s, "call.initiated", "e1", &cs, json!({}));
        assert_eq!(one(&s, "SELECT provider_call_id FROM attempts"), "v3:lead", "the webhook adopts the call");
        let answered = handle_at(&s, "call.answered", "e2", &cs, json!({}));
        assert!(answered.commands.is_empty(), "AMD: the message waits for the verdict");
        let human = handle_at(&s, "call.machine.detection.ended", "e3", &cs, json!({"result": "human"}));
        let steps: Vec<(&str, Step)> = human.commands.iter().map(|c| (c.action, c.state.step)).collect();
        assert_eq!(steps, [("gather_using_speak", Step::Gather1)], "a live call gets the message");
        assert_eq!(human.call_id, "v3:lead");
        let g1 = cs.at(Step::Gather1);
        let pressed = handle_at(&s, "call.gather.ended", "e4", &g1, json!({"digits": "2", "status": "valid"}));
        let steps: Vec<(&str, Step)> = pressed.commands.iter().map(|c| (c.action, c.state.step)).collect();
        assert_eq!(steps, [("speak", Step::OptedOut)]);
        assert_eq!(one(&s, "SELECT status FROM leads"), "do_not_call");
        // The hangup resolves `unknown` with the call's real outcome.
        let ended =
            handle_at(&s, "call.hangup", "e5", &cs.at(Step::OptedOut), json!({"hangup_cause": "normal_clearing"}));
        assert_eq!(ended.applied, Some(Applied::Final(Status::Completed)));
        assert_eq!(one(&s, "SELECT status FROM attempts"), "completed");
        assert_eq!(one(&s, "SELECT status FROM leads"), "do_not_call");
    }
}
