//! `[provider]` and `[simulator]`: which carrier places the calls, its credentials,
//! and the built-in simulated carrier's callees and injected faults.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::config::Secret;

/// Which API the dialer speaks. `simulator` is the built-in simulated carrier, spoken
/// to through the Twilio client (`simulator.api` picks another provider's API).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    #[default]
    Simulator,
    Twilio,
    Telnyx,
    Vapi,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Simulator => "simulator",
            ProviderKind::Twilio => "twilio",
            ProviderKind::Telnyx => "telnyx",
            ProviderKind::Vapi => "vapi",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Provider {
    pub kind: ProviderKind,
    /// How long one REST request to the provider may take before its outcome is
    /// `unknown`, seconds.
    pub request_timeout_seconds: f64,
    /// How long after a create-call with no reply (attempt `unknown`, or orphaned by
    /// a crash) the reconciler asks the provider whether the call exists, seconds;
    /// also the margin after ring timeout + `dialing.max_call_seconds` before a call
    /// with no final status is fetched. Keep ≥ 60 with a real provider: its call list
    /// may lag behind a create, and a call not yet listed would be dialled again.
    pub reconcile_after_seconds: f64,
    pub twilio: Twilio,
    pub telnyx: Telnyx,
    pub vapi: Vapi,
}

impl Default for Provider {
    fn default() -> Self {
        Provider {
            kind: ProviderKind::Simulator,
            request_timeout_seconds: 15.0,
            reconcile_after_seconds: 60.0,
            twilio: Twilio::default(),
            telnyx: Telnyx::default(),
            vapi: Vapi::default(),
        }
    }
}

/// Twilio Programmable Voice (providers.md §1).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Twilio {
    pub account_sid: String,
    /// Primary auth token: authenticates our requests and signs Twilio's webhooks.
    pub auth_token: Secret,
    pub api_base: String,
}

impl Default for Twilio {
    fn default() -> Self {
        Twilio { account_sid: String::new(), auth_token: Secret::default(), api_base: "https://api.twilio.com".into() }
    }
}

impl fmt::Debug for Twilio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Twilio")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &self.auth_token)
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// Telnyx Call Control v2 (providers.md §2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Telnyx {
    /// API v2 key, sent as `Authorization: Bearer`.
    pub api_key: Secret,
    /// The Call Control Application id (`connection_id` on Dial).
    pub connection_id: String,
    /// The account's webhook public key (base64 of 32 bytes, Portal → Keys & Credentials).
    pub public_key: String,
    /// `https://api.telnyx.com` (the client appends `/v2/...`).
    pub api_base: String,
}

impl Default for Telnyx {
    fn default() -> Self {
        Telnyx {
            api_key: Secret::default(),
            connection_id: String::new(),
            public_key: String::new(),
            api_base: "https://api.telnyx.com".into(),
        }
    }
}

/// Vapi (providers.md §3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Vapi {
    /// Private API key, sent as `Authorization: Bearer`.
    pub api_key: Secret,
    /// The saved assistant that talks to the callee (`assistantId`).
    pub assistant_id: String,
    /// Shared secret Vapi sends back on every server-URL webhook (`X-Vapi-Secret`).
    pub webhook_secret: Secret,
    pub api_base: String,
}

impl Default for Vapi {
    fn default() -> Self {
        Vapi {
            api_key: Secret::default(),
            assistant_id: String::new(),
            webhook_secret: Secret::default(),
            api_base: "https://api.vapi.ai".into(),
        }
    }
}

/// A simulated callee: what the person (or machine) at the called number does.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Callee {
    /// Answers, listens, presses nothing.
    Silence,
    /// Answers and presses 1; the agent answers the transfer.
    Press1,
    /// Presses 1; the agent's line is busy.
    Press1AgentBusy,
    /// Presses 1; the agent does not answer.
    Press1AgentNoAnswer,
    /// Answers and presses 2 (opt out).
    Press2,
    /// An answering machine with a greeting and a beep.
    Voicemail,
    Fax,
    Busy,
    NoAnswer,
    /// The carrier cannot complete the call.
    Failed,
}

impl Callee {
    pub const ALL: [Callee; 10] = [
        Callee::Silence,
        Callee::Press1,
        Callee::Press1AgentBusy,
        Callee::Press1AgentNoAnswer,
        Callee::Press2,
        Callee::Voicemail,
        Callee::Fax,
        Callee::Busy,
        Callee::NoAnswer,
        Callee::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Callee::Silence => "silence",
            Callee::Press1 => "press_1",
            Callee::Press1AgentBusy => "press_1_agent_busy",
            Callee::Press1AgentNoAnswer => "press_1_agent_no_answer",
            Callee::Press2 => "press_2",
            Callee::Voicemail => "voicemail",
            Callee::Fax => "fax",
            Callee::Busy => "busy",
            Callee::NoAnswer => "no_answer",
            Callee::Failed => "failed",
        }
    }
}

/// Faults the simulated carrier injects, each a probability in 0..=1 drawn per
/// create-call request or per webhook.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// 429 (Twilio 20429, Telnyx 10011): not processed, no call created.
    pub rate_limited: f64,
    /// 500 before the call is created.
    pub server_error: f64,
    /// 500 after the call was created (the call goes ahead).
    pub server_error_after_create: f64,
    /// No reply for `hang_seconds`, no call created.
    pub timeout_before_create: f64,
    /// No reply for `hang_seconds`, but the call was created and goes ahead.
    pub timeout_after_create: f64,
    /// How long a "timeout" holds the request, seconds (longer than the client waits).
    pub hang_seconds: f64,
    /// A webhook is delivered twice.
    pub duplicate_callbacks: f64,
    /// A webhook is held back and delivered after the next one.
    pub reorder_callbacks: f64,
    /// Extra delay before each webhook, `[min, max]` seconds.
    pub callback_delay_seconds: [f64; 2],
    /// A webhook is first sent with a wrong signature (the real one follows, as the
    /// provider's retry would).
    pub invalid_signatures: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Simulator {
    /// With `provider.kind = "simulator"`: which provider API the dialer speaks to
    /// the built-in carrier (`twilio`, `telnyx` or `vapi`).
    pub api: ProviderKind,
    /// Weights of each callee for numbers not in `callees`; they need not sum to 1.
    /// `answer_rate` is a person who listens and presses nothing.
    pub answer_rate: f64,
    pub machine_rate: f64,
    pub busy_rate: f64,
    pub no_answer_rate: f64,
    pub failed_rate: f64,
    pub press_1_rate: f64,
    pub press_2_rate: f64,
    pub fax_rate: f64,
    /// Scripted callees: E.164 number → callee, e.g. `"+14152370001" = "press_2"`.
    pub callees: BTreeMap<String, Callee>,
    /// `[min, max]` seconds, fractions allowed.
    pub ring_seconds: [f64; 2],
    pub talk_seconds: [f64; 2],
    pub faults: Faults,
}

impl Default for Simulator {
    fn default() -> Self {
        Simulator {
            api: ProviderKind::Twilio,
            answer_rate: 0.45,
            machine_rate: 0.2,
            busy_rate: 0.1,
            no_answer_rate: 0.2,
            failed_rate: 0.05,
            press_1_rate: 0.0,
            press_2_rate: 0.0,
            fax_rate: 0.0,
            callees: BTreeMap::new(),
            ring_seconds: [2.0, 8.0],
            talk_seconds: [5.0, 20.0],
            faults: Faults { hang_seconds: 30.0, ..Faults::default() },
        }
    }
}

impl Simulator {
    /// The weights in `Callee::ALL` order (transfers split by nothing: the agent
    /// answers; agent busy / no answer only come from `callees`).
    pub fn weights(&self) -> [(Callee, f64); 8] {
        [
            (Callee::Silence, self.answer_rate),
            (Callee::Press1, self.press_1_rate),
            (Callee::Press2, self.press_2_rate),
            (Callee::Voicemail, self.machine_rate),
            (Callee::Fax, self.fax_rate),
            (Callee::Busy, self.busy_rate),
            (Callee::NoAnswer, self.no_answer_rate),
            (Callee::Failed, self.failed_rate),
        ]
    }
}
