//! Telnyx Call Control webhook events (providers.md §2.2): the JSON envelope, our
//! `client_state`, and how a `call.hangup`'s `hangup_cause` maps to our outcomes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::domain::status::Status;

/// `{"data": {...}}`: one webhook.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub data: Event,
}

/// One event. Unknown fields are ignored: Telnyx adds fields and about 40 event types.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// `call.initiated`, `call.answered`, `call.hangup`, `call.gather.ended`, …
    pub event_type: String,
    /// Unique per event (a UUID): the dedupe key, as Telnyx may deliver an event twice.
    pub id: String,
    /// ISO 8601 UTC, as sent.
    #[serde(default)]
    pub occurred_at: Option<String>,
    pub payload: Payload,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Payload {
    /// The call leg the event is about (`v3:…`); our provider call id for the lead's leg.
    #[serde(default)]
    pub call_control_id: String,
    /// Base64, echoed from the last command that set it (see [`ClientState`]).
    #[serde(default)]
    pub client_state: Option<String>,
    /// `call.hangup`: `normal_clearing`, `user_busy`, `timeout`, …
    #[serde(default)]
    pub hangup_cause: Option<String>,
    /// `call.machine.detection.ended`: `human` | `machine` | `not_sure` (premium adds
    /// `human_residence`, `human_business`, `silence`, `fax_detected`);
    /// `call.machine.greeting.ended`: `beep_detected` | `ended` | `not_sure`.
    #[serde(default)]
    pub result: Option<String>,
    /// `call.gather.ended`: the keys pressed (empty when none).
    #[serde(default)]
    pub digits: Option<String>,
    /// `call.gather.ended`: `valid`, `invalid`, `call_hangup`, `cancelled`, `timeout`.
    #[serde(default)]
    pub status: Option<String>,
    /// Seconds, on some events (`call.hangup` in the simulator).
    #[serde(default)]
    pub call_duration: Option<i64>,
}

/// Where our side of the call flow is: written into `client_state` by every command,
/// so each later event says which step the call was in when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Dialled, nothing said yet.
    Dial,
    /// The message inside a one-digit gather, first and second (repeated) time.
    Gather1,
    Gather2,
    /// The lead's leg while it is transferred to the agent.
    Transfer,
    /// The agent's leg, created by the transfer (its events are not the lead's call).
    AgentLeg,
    /// The apology after a failed transfer.
    TransferFailed,
    /// The opt-out confirmation.
    OptedOut,
    /// Goodbye after two gathers without a key.
    Goodbye,
    /// The voicemail message after the beep.
    Voicemail,
    /// Hung up on an answering machine (no message to leave, or no beep to wait for).
    Machine,
    /// Hung up on a fax.
    Fax,
}

/// Our `client_state`: base64 of this JSON. `to`/`from` let the reconciler match a
/// call found among the connection's active calls to an attempt (see the client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientState {
    pub attempt_id: i64,
    pub step: Step,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl ClientState {
    pub fn encode(&self) -> String {
        // Serialising a struct of plain fields cannot fail.
        STANDARD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// None for anything that is not ours (a call placed by another application).
    pub fn decode(b64: &str) -> Option<ClientState> {
        let bytes = STANDARD.decode(b64.trim()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn at(&self, step: Step) -> ClientState {
        ClientState { step, ..self.clone() }
    }
}

/// The `command_id` of one command: the attempt, the step and the action, so a
/// duplicated webhook that leads to the same command sends an identical id and
/// Telnyx ignores the repeat (for 60 s, per its docs).
pub fn command_id(attempt_id: i64, step: Step, action: &str) -> String {
    let step = serde_json::to_value(step).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    format!("attempt-{attempt_id}-{step}-{action}")
}

/// A dial's `command_id`: a re-sent create request is the same command.
pub fn dial_command_id(attempt_id: i64) -> String {
    format!("dial-attempt-{attempt_id}")
}

/// The outcome of the lead's leg hanging up, from `hangup_cause` and the step the
/// call was in (from the event's client state, or the attempt's stored transfer
/// result for a failed transfer):
///
/// | `hangup_cause` | outcome |
/// |---|---|
/// | `normal_clearing`, `time_limit` (and `unspecified` once answered) | `completed`; `voicemail` after a machine or fax; `transfer_failed` after the apology |
/// | `user_busy` | `busy` |
/// | `timeout`, `no_answer` | `no_answer` |
/// | `call_rejected` | `failed` |
/// | `not_found` | `invalid` (the number does not exist: never retried) |
/// | `originator_cancel` | `canceled` |
/// | anything else before an answer | `failed` |
pub fn hangup_status(cause: &str, step: Step, transfer_failed: bool) -> Status {
    let answered = step != Step::Dial;
    match cause {
        "user_busy" => Status::Busy,
        "timeout" | "no_answer" => Status::NoAnswer,
        "call_rejected" => Status::Failed,
        "not_found" => Status::Invalid,
        "originator_cancel" => Status::Canceled,
        "normal_clearing" | "time_limit" => ended_after_answer(step, transfer_failed),
        _ if answered => ended_after_answer(step, transfer_failed),
        _ => Status::Failed,
    }
}

fn ended_after_answer(step: Step, transfer_failed: bool) -> Status {
    match step {
        Step::Voicemail | Step::Machine | Step::Fax => Status::Voicemail,
        Step::TransferFailed => Status::TransferFailed,
        _ if transfer_failed => Status::TransferFailed,
        _ => Status::Completed,
    }
}

/// The `answered_by` a hangup implies (Telnyx's words), when the step says it.
pub fn answered_by(step: Step) -> Option<&'static str> {
    match step {
        Step::Voicemail | Step::Machine => Some("machine"),
        Step::Fax => Some("fax"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_state_round_trips_and_foreign_states_are_none() {
        let s = ClientState { attempt_id: 42, step: Step::Gather2, to: Some("+14155550100".into()), from: None };
        assert_eq!(ClientState::decode(&s.encode()), Some(s.clone()));
        assert_eq!(ClientState::decode(&s.at(Step::Transfer).encode()).unwrap().step, Step::Transfer);
        assert_eq!(ClientState::decode("aGVsbG8="), None, "base64 of 'hello' is not ours");
        assert_eq!(ClientState::decode("%%%"), None);
        assert_eq!(command_id(7, Step::Gather1, "gather_using_speak"), "attempt-7-gather1-gather_using_speak");
        assert_eq!(dial_command_id(7), "dial-attempt-7");
    }

    #[test]
    fn hangup_causes_map_to_outcomes() {
        let table = [
            ("normal_clearing", Step::Gather1, false, Status::Completed),
            ("normal_clearing", Step::Transfer, false, Status::Completed),
            ("normal_clearing", Step::Transfer, true, Status::TransferFailed),
            ("normal_clearing", Step::TransferFailed, false, Status::TransferFailed),
            ("normal_clearing", Step::Voicemail, false, Status::Voicemail),
            ("normal_clearing", Step::Machine, false, Status::Voicemail),
            ("normal_clearing", Step::Fax, false, Status::Voicemail),
            ("normal_clearing", Step::OptedOut, false, Status::Completed),
            ("time_limit", Step::Gather1, false, Status::Completed),
            ("user_busy", Step::Dial, false, Status::Busy),
            ("timeout", Step::Dial, false, Status::NoAnswer),
            ("no_answer", Step::Dial, false, Status::NoAnswer),
            ("call_rejected", Step::Dial, false, Status::Failed),
            ("not_found", Step::Dial, false, Status::Invalid),
            ("originator_cancel", Step::Dial, false, Status::Canceled),
            ("unspecified", Step::Dial, false, Status::Failed),
            ("unspecified", Step::Goodbye, false, Status::Completed),
        ];
        for (cause, step, failed, want) in table {
            assert_eq!(hangup_status(cause, step, failed), want, "{cause} at {step:?}");
        }
    }

    #[test]
    fn envelopes_parse_with_unknown_fields() {
        let body = r#"{"data":{"record_type":"event","event_type":"call.gather.ended","id":"e-1",
            "occurred_at":"2018-02-02T22:25:27.521992Z","payload":{"call_control_id":"v3:abc",
            "digits":"1","status":"valid","client_state":"eyJ9","something_new":[1,2]}}}"#;
        let e: Envelope = serde_json::from_str(body).unwrap();
        assert_eq!((e.data.event_type.as_str(), e.data.id.as_str()), ("call.gather.ended", "e-1"));
        assert_eq!(e.data.payload.digits.as_deref(), Some("1"));
        assert_eq!(e.data.payload.call_control_id, "v3:abc");
    }
}
