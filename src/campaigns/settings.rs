//! A campaign's own settings, stored as a JSON object in `campaigns.settings`, and
//! their checked form ([`Checked`]) that the claim, the retry rule and pacing read.
//! Every field is optional: unset means the documented default or the global value
//! from `dialer.toml`.

use chrono_tz::Tz;
use serde::Serialize;

use crate::compliance::hours::CallingWindow;
use crate::domain::flow::AmdMode;
use crate::domain::phone::E164;
use crate::domain::status::Status;

/// As stored and as the API takes it (`deny_unknown_fields`: a typo is an error).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Local calling hours, "HH:MM"; intersected with `dialing.calling_hours_*` and
    /// the compliance profile (they can narrow, never widen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_hours_start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_hours_end: Option<String>,
    /// Days calls may go out, in the lead's local date: "mon" … "sun". Unset = every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_days: Option<Vec<String>>,
    /// Calls of this campaign in flight at once (also bounded by the global limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_calls: Option<u32>,
    /// Calls placed per local day (`dialing.timezone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_calls_per_day: Option<u32>,
    /// Target pace, calls started per minute, spread evenly (one call every
    /// 60/`calls_per_minute` seconds, no bursts). Unset = only the global CPS paces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_per_minute: Option<u32>,
    /// Slow down below `calls_per_minute` while the 30-day abandonment rate is over
    /// 3 % (never faster than the target). Default off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_adjust: Option<bool>,
    /// Caller numbers of this pool only (see the Numbers page); unset = every number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Attempts per lead in one schedule of this campaign, the first call included.
    /// Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Wait after a retried outcome before the next attempt, minutes. Default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay_minutes: Option<u32>,
    /// Outcomes that are retried: any of `no_answer`, `busy`, `failed`, `voicemail`,
    /// `transfer_failed`.
    /// Default `no_answer`, `busy`, `failed`. Completed, opted-out (`do_not_call`),
    /// `invalid`, `canceled` and `unknown` are never retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_outcomes: Option<Vec<String>>,
    /// IANA zone for leads whose zone is unknown (no `timezone` column, no state, a
    /// number without zone data). Unset = `dialing.timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The message, read by text to speech. Set this or `message_audio_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The message as a recording (http or https URL, played by the provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_audio_url: Option<String>,
    /// Where "press 1" transfers the call, E.164.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_number: Option<String>,
    /// Left after the beep when a machine answers (text to speech).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voicemail_message: Option<String>,
    /// Only leads with a recorded `consent_at` are dialled. Default off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_consent: Option<bool>,
    /// Answering-machine detection: `off`, `enable`, `detect_message_end` (default:
    /// the verdict waits for the greeting to end, so a voicemail lands after the beep)
    /// or `async` (the message starts at once; the verdict arrives by callback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amd: Option<String>,
    /// The caller ID the agent sees on a "press 1" transfer: `caller` (the rotated
    /// caller ID the lead saw; default), `lead` (the lead's own number) or an E.164
    /// number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_caller_id: Option<String>,
}

/// Whose number the agent sees when a call is transferred ("press 1").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TransferCallerId {
    /// The caller ID the call was placed from (rotation's pick).
    #[default]
    Caller,
    /// The lead's own number, so the agent sees who is calling.
    Lead,
    /// This E.164 number (one the provider account may use as caller ID).
    Number(String),
}

impl TransferCallerId {
    /// The number to put in `<Dial callerId=…>`, given the call's two ends (E.164).
    pub fn pick<'a>(&'a self, caller: &'a str, lead: &'a str) -> &'a str {
        match self {
            TransferCallerId::Caller => caller,
            TransferCallerId::Lead => lead,
            TransferCallerId::Number(n) => n,
        }
    }
}

pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Defaults the issue sets for every campaign.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_RETRY_DELAY_MINUTES: u32 = 60;
pub const DEFAULT_RETRY_OUTCOMES: [Status; 3] = [Status::NoAnswer, Status::Busy, Status::Failed];
/// Outcomes a campaign may choose to retry.
pub const RETRYABLE: [Status; 5] =
    [Status::NoAnswer, Status::Busy, Status::Failed, Status::Voicemail, Status::TransferFailed];

/// Upper bounds that keep a typo from becoming a runaway campaign.
const MAX_ATTEMPTS_LIMIT: u32 = 10;
const MAX_RETRY_DELAY_MINUTES: u32 = 30 * 24 * 60;
const MAX_CALLS_PER_MINUTE: u32 = 6000;
const MAX_TEXT: usize = 4000;

/// Settings checked and in the form the claim uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub window: Option<CallingWindow>,
    /// Monday first.
    pub allowed_days: [bool; 7],
    pub max_concurrent_calls: Option<u32>,
    pub max_calls_per_day: Option<u32>,
    pub calls_per_minute: Option<u32>,
    pub auto_adjust: bool,
    pub pool: Option<String>,
    pub max_attempts: u32,
    pub retry_delay_minutes: u32,
    pub retry_outcomes: Vec<Status>,
    pub timezone: Option<Tz>,
    pub require_consent: bool,
    /// The call flow (providers read these when the call is answered).
    pub amd: AmdMode,
    pub transfer_caller_id: TransferCallerId,
    /// Text to speech for the message; None with `message_audio_url` set, or unset
    /// (then `dialing.message` is said).
    pub message: Option<String>,
    /// http(s) URL of the message recording.
    pub message_audio_url: Option<String>,
    /// E.164 agent for "press 1"; None = pressing 1 does nothing special.
    pub agent_number: Option<String>,
    /// Left after the beep; None = a machine is hung up on.
    pub voicemail_message: Option<String>,
}

impl Default for Checked {
    fn default() -> Checked {
        Checked {
            window: None,
            allowed_days: [true; 7],
            max_concurrent_calls: None,
            max_calls_per_day: None,
            calls_per_minute: None,
            auto_adjust: false,
            pool: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_delay_minutes: DEFAULT_RETRY_DELAY_MINUTES,
            retry_outcomes: DEFAULT_RETRY_OUTCOMES.to_vec(),
            timezone: None,
            require_consent: false,
            amd: AmdMode::default(),
            transfer_caller_id: TransferCallerId::Caller,
            message: None,
            message_audio_url: None,
            agent_number: None,
            voicemail_message: None,
        }
    }
}

fn text(field: &str, value: &Option<String>) -> Result<(), String> {
    match value {
        Some(t) if t.trim().is_empty() => Err(format!("{field}: empty (leave it unset instead)")),
        Some(t) if t.chars().count() > MAX_TEXT => Err(format!("{field}: at most {MAX_TEXT} characters")),
        _ => Ok(()),
    }
}

fn range(field: &str, value: Option<u32>, max: u32) -> Result<(), String> {
    match value {
        Some(v) if v == 0 || v > max => Err(format!("{field}: 1 to {max}")),
        _ => Ok(()),
    }
}

impl Settings {
    /// Checks every field; the error starts with the field's name and says why.
    pub fn check(&self) -> Result<Checked, String> {
        let window = match (&self.calling_hours_start, &self.calling_hours_end) {
            (None, None) => None,
            (Some(s), Some(e)) => Some(CallingWindow::parse(s, e).map_err(|e| format!("calling_hours: {e}"))?),
            _ => return Err("calling_hours_start and calling_hours_end: set both or neither".into()),
        };
        let allowed_days = match &self.allowed_days {
            None => [true; 7],
            Some(days) => {
                let mut allowed = [false; 7];
                for d in days {
                    let i = DAYS.iter().position(|x| x.eq_ignore_ascii_case(d.trim())).ok_or_else(|| {
                        format!("allowed_days: {d:?} is not one of mon, tue, wed, thu, fri, sat, sun")
                    })?;
                    allowed[i] = true;
                }
                if !allowed.contains(&true) {
                    return Err("allowed_days: at least one day".into());
                }
                allowed
            }
        };
        if self.max_concurrent_calls == Some(0) || self.max_calls_per_day == Some(0) {
            return Err("max_concurrent_calls and max_calls_per_day: at least 1 (pause the campaign instead)".into());
        }
        range("calls_per_minute", self.calls_per_minute, MAX_CALLS_PER_MINUTE)?;
        range("max_attempts", self.max_attempts, MAX_ATTEMPTS_LIMIT)?;
        range("retry_delay_minutes", self.retry_delay_minutes, MAX_RETRY_DELAY_MINUTES)?;
        let retry_outcomes = match &self.retry_outcomes {
            None => DEFAULT_RETRY_OUTCOMES.to_vec(),
            Some(list) => {
                let mut out = Vec::new();
                for o in list {
                    let status = o.trim().parse::<Status>().ok().filter(|s| RETRYABLE.contains(s)).ok_or_else(|| {
                        format!("retry_outcomes: {o:?} cannot be retried (choose from no_answer, busy, failed, voicemail, transfer_failed)")
                    })?;
                    if !out.contains(&status) {
                        out.push(status);
                    }
                }
                out
            }
        };
        let pool = match &self.pool {
            None => None,
            Some(p) => crate::numbers::edit::pool_name(p).map_err(|e| format!("pool: {e}"))?,
        };
        let timezone = match &self.timezone {
            None => None,
            Some(z) => Some(z.trim().parse::<Tz>().map_err(|_| format!("timezone: {z:?} is not an IANA zone"))?),
        };
        text("message", &self.message)?;
        text("voicemail_message", &self.voicemail_message)?;
        if self.message.is_some() && self.message_audio_url.is_some() {
            return Err("message and message_audio_url: set one, not both".into());
        }
        if let Some(url) = &self.message_audio_url {
            let ok = reqwest::Url::parse(url.trim()).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(format!("message_audio_url: {url:?} is not an http(s) URL"));
            }
        }
        let agent_number = match &self.agent_number {
            None => None,
            Some(agent) => Some(
                E164::parse(agent, phonenumber::country::Id::US)
                    .map_err(|e| format!("agent_number: {e}"))?
                    .as_str()
                    .to_string(),
            ),
        };
        let amd = match &self.amd {
            None => AmdMode::default(),
            Some(m) => AmdMode::parse(m.trim())
                .ok_or_else(|| format!("amd: {m:?} is not one of off, enable, detect_message_end, async"))?,
        };
        let transfer_caller_id = match self.transfer_caller_id.as_deref().map(str::trim) {
            None | Some("caller") => TransferCallerId::Caller,
            Some("lead") => TransferCallerId::Lead,
            Some(n) => TransferCallerId::Number(
                E164::parse(n, phonenumber::country::Id::US)
                    .map_err(|e| {
                        format!("transfer_caller_id: {n:?} is not \"caller\", \"lead\" or a phone number ({e})")
                    })?
                    .as_str()
                    .to_string(),
            ),
        };
        Ok(Checked {
            window,
            allowed_days,
            max_concurrent_calls: self.max_concurrent_calls,
            max_calls_per_day: self.max_calls_per_day,
            calls_per_minute: self.calls_per_minute,
            auto_adjust: self.auto_adjust.unwrap_or(false),
            pool,
            max_attempts: self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            retry_delay_minutes: self.retry_delay_minutes.unwrap_or(DEFAULT_RETRY_DELAY_MINUTES),
            retry_outcomes,
            timezone,
            require_consent: self.require_consent.unwrap_or(false),
            amd,
            transfer_caller_id,
            message: self.message.as_deref().map(|m| m.trim().to_string()),
            message_audio_url: self.message_audio_url.as_deref().map(|u| u.trim().to_string()),
            agent_number,
            voicemail_message: self.voicemail_message.as_deref().map(|m| m.trim().to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(json: &str) -> String {
        serde_json::from_str::<Settings>(json).unwrap().check().unwrap_err()
    }

    #[test]
    fn settings_are_checked_field_by_field() {
        let ok: Settings = serde_json::from_str(
            r#"{"calling_hours_start": "09:00", "calling_hours_end": "17:00", "allowed_days": ["mon", "FRI"],
                "max_concurrent_calls": 2, "pool": "admissions", "max_attempts": 5, "retry_delay_minutes": 15,
                "retry_outcomes": ["busy", "voicemail"], "timezone": "America/Chicago", "calls_per_minute": 30,
                "message": "Hello", "agent_number": "+14152370100", "require_consent": true}"#,
        )
        .unwrap();
        let c = ok.check().unwrap();
        assert_eq!(c.allowed_days, [true, false, false, false, true, false, false]);
        assert_eq!(c.pool.as_deref(), Some("admissions"));
        assert_eq!((c.max_attempts, c.retry_delay_minutes), (5, 15));
        assert_eq!(c.retry_outcomes, vec![Status::Busy, Status::Voicemail]);
        assert_eq!(c.timezone, Some(chrono_tz::America::Chicago));
        assert!(c.require_consent && !c.auto_adjust);
        assert!(bad(r#"{"calling_hours_start": "09:00"}"#).starts_with("calling_hours_start"));
        assert!(bad(r#"{"calling_hours_start": "18:00", "calling_hours_end": "09:00"}"#).starts_with("calling_hours"));
        assert!(bad(r#"{"allowed_days": ["funday"]}"#).starts_with("allowed_days"));
        assert!(bad(r#"{"max_calls_per_day": 0}"#).starts_with("max_concurrent_calls"));
        assert!(bad(r#"{"max_attempts": 11}"#).starts_with("max_attempts"));
        assert!(bad(r#"{"retry_delay_minutes": 0}"#).starts_with("retry_delay_minutes"));
        assert!(bad(r#"{"calls_per_minute": 0}"#).starts_with("calls_per_minute"));
        assert!(bad(r#"{"retry_outcomes": ["completed"]}"#).starts_with("retry_outcomes"));
        assert!(bad(r#"{"retry_outcomes": ["do_not_call"]}"#).starts_with("retry_outcomes"));
        assert!(bad(r#"{"timezone": "Mars/Olympus"}"#).starts_with("timezone"));
        assert!(bad(r#"{"message": "a", "message_audio_url": "https://x.test/a.mp3"}"#).starts_with("message"));
        assert!(bad(r#"{"message_audio_url": "ftp://x/a.mp3"}"#).starts_with("message_audio_url"));
        assert!(bad(r#"{"agent_number": "call me"}"#).starts_with("agent_number"));
        assert!(bad(r#"{"voicemail_message": "  "}"#).starts_with("voicemail_message"));
        assert!(bad(r#"{"amd": "sometimes"}"#).starts_with("amd: "));
        assert!(bad(r#"{"transfer_caller_id": "the boss"}"#).starts_with("transfer_caller_id: "));
        assert!(serde_json::from_str::<Settings>(r#"{"speed": 3}"#).is_err(), "unknown fields are refused");
        assert_eq!(Settings::default().check().unwrap(), Checked::default());
    }

    #[test]
    fn call_flow_settings_default_and_parse() {
        let d = Settings::default().check().unwrap();
        assert_eq!((d.amd, d.transfer_caller_id), (AmdMode::DetectMessageEnd, TransferCallerId::Caller));
        let flow: Settings = serde_json::from_str(
            r#"{"amd": "async", "transfer_caller_id": "(415) 237-0100", "agent_number": "415 237 0101",
                "voicemail_message": " Call us back. ", "retry_outcomes": ["transfer_failed"]}"#,
        )
        .unwrap();
        let c = flow.check().unwrap();
        assert_eq!(c.amd, AmdMode::Async);
        assert_eq!(c.transfer_caller_id, TransferCallerId::Number("+14152370100".into()));
        assert_eq!(c.agent_number.as_deref(), Some("+14152370101"));
        assert_eq!(c.voicemail_message.as_deref(), Some("Call us back."));
        assert_eq!(c.retry_outcomes, vec![Status::TransferFailed]);
        let lead: Settings = serde_json::from_str(r#"{"transfer_caller_id": "lead", "amd": "off"}"#).unwrap();
        let c = lead.check().unwrap();
        assert_eq!((c.amd, c.transfer_caller_id.pick("+1caller", "+1lead")), (AmdMode::Off, "+1lead"));
        assert!(!DEFAULT_RETRY_OUTCOMES.contains(&Status::TransferFailed), "not retried by default");
    }
}
