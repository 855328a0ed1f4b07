//! The Telnyx call flow, pure: which commands one webhook event leads to, and what
//! it records on the attempt. The same flow as the Twilio TwiML (message inside a
//! one-digit gather; 1 → transfer to the agent; 2 → DNC, confirmation, hang up; no
//! key → once more, then goodbye; a machine → the voicemail message after the beep),
//! spoken as Call Control commands.
//!
//! Every decision reads the step the call was in from the event's client state, so
//! a duplicated or late event either repeats a command with the same `command_id`
//! (Telnyx ignores it) or is ignored because its step has passed.

use serde_json::{Value, json};

use crate::domain::flow::AmdMode;
use crate::provider::telnyx::events::{ClientState, Event, Step};

pub const OPTED_OUT: &str = "You have been removed from our list. Goodbye.";
pub const GOODBYE: &str = "Goodbye.";
pub const TRANSFER_FAILED: &str = "Sorry, no one is available to take your call. Goodbye.";
/// How long the agent's phone rings before the transfer fails, seconds.
pub const TRANSFER_TIMEOUT_SECS: u32 = 20;
/// How long the gather waits for a key after the message, milliseconds.
pub const GATHER_TIMEOUT_MS: u32 = 5000;

/// The campaign's call flow as this call uses it.
#[derive(Debug, Clone)]
pub struct Flow {
    pub amd: AmdMode,
    /// Text to speech (the campaign's message, else `dialing.message`).
    pub message: String,
    /// A recording played instead of `message`.
    pub message_audio_url: Option<String>,
    /// E.164; None = pressing 1 is like any other key.
    pub agent_number: Option<String>,
    pub voicemail_message: Option<String>,
    /// E.164 caller ID the agent sees on a transfer.
    pub transfer_from: String,
}

/// What the attempt already says (read in the same transaction as the event).
#[derive(Debug, Clone, Copy, Default)]
pub struct Known {
    /// An AMD verdict (or a machine's greeting) was already acted on.
    pub answered_by: bool,
    pub transfer_connected: bool,
    /// The call is over (the attempt has its final status, `unknown` excepted: a dial
    /// without a reply may have created a live call, which its webhooks adopt): no
    /// command can reach it, but what the person did is still recorded.
    pub ended: bool,
}

/// One command for the lead's leg: `POST /v2/calls/{id}/actions/{action}` with
/// `body` plus `client_state` (= `state`) and `command_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub action: &'static str,
    pub body: Value,
    pub state: ClientState,
}

/// A write on the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    AnsweredBy(String),
    Digits(String),
    /// Pressed 2: DNC entry and lead `do_not_call`, at once.
    OptOut,
    /// `connected` | `failed`.
    Transfer(&'static str),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub commands: Vec<Command>,
    pub effects: Vec<Effect>,
}

impl Decision {
    fn command(mut self, c: Command) -> Decision {
        self.commands.push(c);
        self
    }
    fn effect(mut self, e: Effect) -> Decision {
        self.effects.push(e);
        self
    }
}

/// What `event` (with its decoded client state `state`) leads to. Once the call is
/// over (`known.ended`) no command is sent, but the key the person pressed is kept:
/// a `call.gather.ended` handled after `call.hangup` (late or redelivered) still
/// records the digits and, for 2, the opt-out.
pub fn decide(event: &Event, state: &ClientState, flow: &Flow, known: Known) -> Decision {
    let none = Decision::default();
    if state.step == Step::AgentLeg {
        return match event.event_type.as_str() {
            "call.bridged" if !known.transfer_connected => none.effect(Effect::Transfer("connected")),
            // The agent's leg ended before it was ever bridged: busy, no answer, failed.
            "call.hangup" if !known.transfer_connected && !known.ended => {
                none.effect(Effect::Transfer("failed")).command(speak(state.at(Step::TransferFailed), TRANSFER_FAILED))
            }
            _ => none,
        };
    }
    let decision = lead_leg(event, state, flow, known);
    if known.ended {
        let kept = decision.effects.into_iter().filter(|e| matches!(e, Effect::Digits(_) | Effect::OptOut));
        return Decision { commands: vec![], effects: kept.collect() };
    }
    decision
}

/// The lead's leg: the message, the keys, the machine, the end of each spoken step.
fn lead_leg(event: &Event, state: &ClientState, flow: &Flow, known: Known) -> Decision {
    let none = Decision::default();
    let p = &event.payload;
    match (event.event_type.as_str(), state.step) {
        ("call.answered", Step::Dial) if flow.amd == AmdMode::Off => none.command(gather(state, flow, Step::Gather1)),
        ("call.machine.detection.ended" | "call.machine.premium.detection.ended", Step::Dial) if !known.answered_by => {
            let result = p.result.as_deref().unwrap_or("not_sure");
            let verdict = none.effect(Effect::AnsweredBy(result.to_string()));
            match result {
                "machine" if flow.amd == AmdMode::Enable || flow.voicemail_message.is_none() => {
                    // `detect` cannot say where the beep is (like Twilio's machine_start).
                    verdict.command(hangup(state.at(Step::Machine)))
                }
                // The voicemail message waits for call.machine.greeting.ended.
                "machine" => verdict,
                "fax" | "fax_detected" => verdict.command(hangup(state.at(Step::Fax))),
                // human, human_residence, human_business, not_sure, silence: a person.
                _ => verdict.command(gather(state, flow, Step::Gather1)),
            }
        }
        ("call.machine.greeting.ended" | "call.machine.premium.greeting.ended", Step::Dial) => {
            let verdict = none.effect(Effect::AnsweredBy("machine".into()));
            match &flow.voicemail_message {
                Some(text) => verdict.command(speak(state.at(Step::Voicemail), text)),
                None => verdict.command(hangup(state.at(Step::Machine))),
            }
        }
        ("call.gather.ended", step @ (Step::Gather1 | Step::Gather2)) => {
            let digits = p.digits.as_deref().unwrap_or("").trim();
            match (digits, &flow.agent_number) {
                ("1", Some(agent)) => none.effect(Effect::Digits("1".into())).command(transfer(state, agent, flow)),
                ("2", _) => none.effect(Effect::OptOut).command(speak(state.at(Step::OptedOut), OPTED_OUT)),
                _ => {
                    let pressed = if digits.is_empty() { none } else { none.effect(Effect::Digits(digits.into())) };
                    if step == Step::Gather1 {
                        pressed.command(gather(state, flow, Step::Gather2))
                    } else {
                        pressed.command(speak(state.at(Step::Goodbye), GOODBYE))
                    }
                }
            }
        }
        (
            "call.speak.ended" | "call.playback.ended",
            step @ (Step::OptedOut | Step::Goodbye | Step::Voicemail | Step::TransferFailed),
        ) => none.command(hangup(state.at(step))),
        ("call.bridged", Step::Transfer) if !known.transfer_connected => none.effect(Effect::Transfer("connected")),
        _ => none,
    }
}

fn gather(state: &ClientState, flow: &Flow, round: Step) -> Command {
    let common = json!({
        "valid_digits": "12",
        "minimum_digits": 1,
        "maximum_digits": 1,
        "maximum_tries": 1,
        "timeout_millis": GATHER_TIMEOUT_MS,
    });
    let (action, mut body) = match &flow.message_audio_url {
        Some(url) => ("gather_using_audio", json!({"audio_url": url})),
        None => ("gather_using_speak", json!({"payload": flow.message, "voice": "female", "language": "en-US"})),
    };
    if let (Some(b), Some(c)) = (body.as_object_mut(), common.as_object()) {
        b.extend(c.clone());
    }
    Command { action, body, state: state.at(round) }
}

fn speak(state: ClientState, text: &str) -> Command {
    Command { action: "speak", body: json!({"payload": text, "voice": "female", "language": "en-US"}), state }
}

fn hangup(state: ClientState) -> Command {
    Command { action: "hangup", body: json!({}), state }
}

fn transfer(state: &ClientState, agent: &str, flow: &Flow) -> Command {
    let body = json!({
        "to": agent,
        "from": flow.transfer_from,
        "timeout_secs": TRANSFER_TIMEOUT_SECS,
        // The agent's leg reports with this state, so its events are told apart.
        "target_leg_client_state": state.at(Step::AgentLeg).encode(),
    });
    Command { action: "transfer", body, state: state.at(Step::Transfer) }
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
