//! TwiML for the call flow, and the pure decisions behind it: what an answered call
//! hears (by AMD verdict), what a key press does, what a transfer's result means.
//! Every document starts with the XML declaration; text and URLs are XML-escaped.
//! Source: providers.md §1.3–§1.7 (Say, Play, Gather, Dial, Redirect, Hangup).

/// The XML declaration every TwiML document starts with.
const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

/// What the person is told after pressing 1, before the agent rings.
pub const CONNECTING: &str = "Connecting you now.";
/// The confirmation of a keypad opt-out.
pub const REMOVED: &str = "You have been removed from our list. Goodbye.";
/// After the message was played twice without a useful key.
pub const GOODBYE: &str = "Goodbye.";
/// When the agent was busy, did not answer or the transfer failed.
pub const NO_AGENT: &str = "Sorry, no one is available to take your call. Goodbye.";
/// Seconds the Gather waits for a key after the message.
pub const GATHER_TIMEOUT_SECONDS: u32 = 5;
/// Seconds the agent's phone rings before the transfer counts as not answered.
pub const DIAL_TIMEOUT_SECONDS: u32 = 20;

/// Escapes `&`, `<`, `>`, `"` and `'` for XML text and attribute values.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn doc(verbs: &str) -> String {
    if verbs.is_empty() { format!("{HEAD}<Response/>") } else { format!("{HEAD}<Response>{verbs}</Response>") }
}

/// The message, as the campaign configures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speech<'a> {
    /// Text to speech.
    Say(&'a str),
    /// An http(s) URL of a recording.
    Play(&'a str),
}

impl Speech<'_> {
    fn verb(self) -> String {
        match self {
            Speech::Say(text) => format!("<Say>{}</Say>", escape(text)),
            Speech::Play(url) => format!("<Play>{}</Play>", escape(url)),
        }
    }
}

/// Our webhook URLs for one attempt: `{public_url}/webhooks/twilio/<kind>?attempt_id=N`.
#[derive(Debug, Clone, Copy)]
pub struct Hooks<'a> {
    /// No trailing slash.
    pub public_url: &'a str,
    pub attempt_id: i64,
}

impl Hooks<'_> {
    pub fn url(&self, kind: &str) -> String {
        format!("{}/webhooks/twilio/{kind}?attempt_id={}", self.public_url, self.attempt_id)
    }

    /// The Gather's action for message round `round` (1 or 2).
    pub fn gather(&self, round: u8) -> String {
        format!("{}&round={round}", self.url("gather"))
    }
}

/// An empty document: nothing more to do (status and async-AMD callbacks).
pub fn empty() -> String {
    doc("")
}

/// Ends the call (a machine without a voicemail drop, a fax).
pub fn hangup() -> String {
    doc("<Hangup/>")
}

/// The voicemail drop after the beep: the voicemail message, then hang up; without a
/// voicemail message, just hang up.
pub fn voicemail(message: Option<&str>) -> String {
    match message {
        Some(text) => doc(&format!("{}<Hangup/>", Speech::Say(text).verb())),
        None => hangup(),
    }
}

/// The message inside a one-digit Gather; with no key pressed the Redirect posts the
/// same action without `Digits`, so the gather webhook decides what follows either way.
pub fn message(speech: Speech, hooks: &Hooks, round: u8) -> String {
    let action = escape(&hooks.gather(round));
    doc(&format!(
        "<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"{GATHER_TIMEOUT_SECONDS}\" action=\"{action}\" \
         method=\"POST\">{}</Gather><Redirect method=\"POST\">{action}</Redirect>",
        speech.verb()
    ))
}

/// "Press 1": connect the person to `agent` (E.164), showing `caller_id`; the Dial
/// action reports how the agent leg ended.
pub fn transfer(caller_id: &str, agent: &str, hooks: &Hooks) -> String {
    doc(&format!(
        "<Say>{CONNECTING}</Say><Dial callerId=\"{}\" timeout=\"{DIAL_TIMEOUT_SECONDS}\" action=\"{}\" \
         method=\"POST\">{}</Dial>",
        escape(caller_id),
        escape(&hooks.url("dial")),
        escape(agent)
    ))
}

/// "Press 2": the opt-out is saved; confirm and hang up.
pub fn opted_out() -> String {
    doc(&format!("<Say>{REMOVED}</Say><Hangup/>"))
}

/// No useful key after the second round.
pub fn goodbye() -> String {
    doc(&format!("<Say>{GOODBYE}</Say><Hangup/>"))
}

/// After a Dial: hang up when the agent talked to the person, else apologise first.
pub fn after_dial(connected: bool) -> String {
    if connected { hangup() } else { doc(&format!("<Say>{NO_AGENT}</Say><Hangup/>")) }
}

/// Who answered, as the call flow treats Twilio's `AnsweredBy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `human`, `unknown`, absent (AMD off or async) or a value Twilio may add later:
    /// the message is played (the issue: unknown is treated as human).
    Person,
    /// `machine_end_beep`, `machine_end_silence`, `machine_end_other`: the greeting is
    /// over, a voicemail can be left.
    MachineAfterBeep,
    /// `machine_start` (`MachineDetection=Enable`): where the beep is cannot be known,
    /// so no voicemail is left (hang up).
    MachineStart,
    /// `fax`: hang up.
    Fax,
}

impl Answer {
    pub fn of(answered_by: Option<&str>) -> Answer {
        match answered_by.unwrap_or("") {
            "machine_end_beep" | "machine_end_silence" | "machine_end_other" => Answer::MachineAfterBeep,
            "machine_start" => Answer::MachineStart,
            "fax" => Answer::Fax,
            _ => Answer::Person,
        }
    }
}

/// What a Gather result does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressed {
    /// 1 with an agent number: transfer.
    Transfer,
    /// 2: opt out (DNC at once), confirm, hang up.
    OptOut,
    /// No key, another key, or 1 without an agent, in round 1: play the message again.
    Repeat,
    /// The same in round 2: say goodbye and hang up.
    Goodbye,
}

/// Decides what follows the Gather of message round `round` (1 or 2) given the
/// `Digits` received (None or "" when the Redirect fired after no input).
pub fn pressed(digits: Option<&str>, round: u8, has_agent: bool) -> Pressed {
    match digits.unwrap_or("") {
        "1" if has_agent => Pressed::Transfer,
        "2" => Pressed::OptOut,
        _ if round < 2 => Pressed::Repeat,
        _ => Pressed::Goodbye,
    }
}

/// Twilio's `DialCallStatus` → did the agent talk to the person? `completed` and
/// `answered` mean yes; `busy`, `no-answer`, `failed`, `canceled` (and anything else) no.
pub fn dial_connected(dial_call_status: &str) -> bool {
    matches!(dial_call_status, "completed" | "answered")
}

#[cfg(test)]
#[path = "twiml_tests.rs"]
mod tests;
