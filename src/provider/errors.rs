//! The one table from a provider's error answer to what the dialer does about it.
//! Every provider client classifies its errors through [`lookup`]; the call loop
//! acts on the [`Action`] of the rule (see `dialer::place`); the README's table
//! "Provider errors and what the dialer does" is rendered from [`RULES`] and a unit
//! test keeps the two equal. Sources: providers.md §1.8–1.10 (Twilio), §2.4
//! (Telnyx), §3.3–3.4 (Vapi).

use crate::provider::ProviderError;

/// The class of a provider error: which [`ProviderError`] variant it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Not processed; safe to send again (`ProviderError::Retry`).
    Retry,
    /// The account's capacity is used up (`ProviderError::Throttle`).
    Throttle,
    /// Permanent for this number (`ProviderError::Lead`).
    Lead,
    /// The operator must change something (`ProviderError::Config`).
    Config,
    /// Our request was wrong (`ProviderError::Rejected`).
    Rejected,
    /// The call may exist (`ProviderError::Unknown`).
    Unknown,
}

/// What the call loop does with the attempt and with dialing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the same request again with exponential backoff (same attempt row);
    /// after the last refusal the claim is undone and dialing holds.
    RetryWithBackoff,
    /// Halve the effective concurrency (restored one slot per placed calls), undo
    /// the claim, hold briefly.
    LowerConcurrency,
    /// Attempt `unknown` until the reconciler asks the provider: a call found is
    /// adopted, none found undoes the claim so the lead is dialled again (if the
    /// provider's list includes ended calls; else the attempt stays `unknown`).
    Reconcile,
    /// The lead is `invalid` and never dialled again.
    LeadInvalid,
    /// Undo the claim and pause dialing (a long hold) with a banner naming the
    /// credentials to check.
    PauseForCredentials,
    /// The attempt fails; a dashboard alert names the setting to change and the
    /// destination country.
    FailAndAlertGeo,
    /// The claim is undone, the caller number leaves rotation, an alert names it.
    DropCallerId,
    /// The attempt fails with the provider's message.
    Fail,
}

/// Which answers a rule covers. Status 0 means no HTTP reply; `codes` then name the
/// transport failure (`timeout`, `connection reset`, `connection refused`).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// `twilio`, `telnyx` or `vapi` (`Provider::name`).
    pub provider: &'static str,
    /// Inclusive HTTP status ranges; empty: any status.
    pub statuses: &'static [(u16, u16)],
    /// Provider error codes (Twilio `code`, Telnyx `errors[].code`, Vapi
    /// `endedReason`); empty: any code. A code match beats a status-only match.
    pub codes: &'static [&'static str],
    pub class: Class,
    pub action: Action,
    /// The provider's meaning, for the README.
    pub meaning: &'static str,
    /// What the operator sees on the dashboard (banner or attempt error).
    pub operator_sees: &'static str,
}

const TWILIO_AUTH: &str = "Provider authentication failed: check provider.twilio.account_sid / auth_token \
                           (Twilio Console → Account → API keys & tokens)";
const TELNYX_AUTH: &str = "Provider authentication failed: check provider.telnyx.api_key \
                           (Mission Control Portal → Keys & Credentials)";
const VAPI_AUTH: &str = "Provider authentication failed: check provider.vapi.api_key (Vapi Dashboard → API Keys)";
/// Shown with the country of the refused number.
pub const GEO_SETTING: &str = "Twilio Console → Voice → Settings → Geo permissions";

const NOT_PROCESSED: &str = "Nothing; the request is sent again (0.25 s, 0.5 s, 1 s); after that a banner \
                             \"the provider is unreachable or throttling\" while dialing holds 60 s";
const MAY_EXIST: &str = "Attempt `unknown` for a short while, then the call's real outcome (or a new attempt)";
const LOWERED: &str = "\"Calls at once\" lowered on the status page; a banner while dialing holds 10 s";

macro_rules! rule {
    ($p:expr, $s:expr, $c:expr, $class:ident, $action:ident, $meaning:expr, $sees:expr) => {
        Rule {
            provider: $p,
            statuses: $s,
            codes: $c,
            class: Class::$class,
            action: Action::$action,
            meaning: $meaning,
            operator_sees: $sees,
        }
    };
}

const ANY_5XX: &[(u16, u16)] = &[(500, 599)];
const TRANSPORT_UNKNOWN: &[&str] = &["timeout", "connection reset"];
const AUTH: &[(u16, u16)] = &[(401, 401), (403, 403)];

/// The table, in the README's order. Each provider ends with its catch-all rows.
#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    rule!("twilio", &[(429, 429)], &["20429"], Retry, RetryWithBackoff, "Too many concurrent requests: not processed", NOT_PROCESSED),
    rule!("twilio", &[], &["connection refused"], Retry, RetryWithBackoff, "No connection: not processed", NOT_PROCESSED),
    rule!("twilio", &[], &["10004", "22005"], Throttle, LowerConcurrency, "Call concurrency limit (10004) or CPS queue full (22005)", LOWERED),
    rule!("twilio", &[], &["21211", "21214", "21217", "13224"], Lead, LeadInvalid, "Invalid or unreachable `To` number", "Lead `invalid` with Twilio's message"),
    rule!("twilio", &[], &["21215", "13227", "32205"], Config, FailAndAlertGeo, "Blocked by Voice geographic permissions", "Attempt `failed`; alert \"enable <country> in Twilio Console → Voice → Settings → Geo permissions\""),
    rule!("twilio", &[], &["573005"], Config, Fail, "Trial account: the recipient is not verified", "Attempt `failed` with Twilio's message: verify the recipient or upgrade the account"),
    rule!("twilio", &[], &["21210"], Config, DropCallerId, "`From` is not a number of the account or a verified caller ID", "Alert naming the caller number, which leaves rotation; the lead is dialled from another"),
    rule!("twilio", AUTH, &["20003"], Config, PauseForCredentials, "Authentication failed", TWILIO_AUTH),
    rule!("twilio", ANY_5XX, &[], Unknown, Reconcile, "Server error: the call may have been created", MAY_EXIST),
    rule!("twilio", &[], TRANSPORT_UNKNOWN, Unknown, Reconcile, "No reply in `provider.request_timeout_seconds`, or the connection dropped", MAY_EXIST),
    rule!("twilio", &[], &[], Rejected, Fail, "Any other refusal (our request was wrong)", "Attempt `failed` with Twilio's message"),
    rule!("telnyx", &[(429, 429)], &["10011", "90103"], Retry, RetryWithBackoff, "Rate limit (10011) or dials-per-second limit (90103): not processed", NOT_PROCESSED),
    rule!("telnyx", &[], &["connection refused"], Retry, RetryWithBackoff, "No connection: not processed", NOT_PROCESSED),
    rule!("telnyx", AUTH, &[], Config, PauseForCredentials, "Authentication failed", TELNYX_AUTH),
    rule!("telnyx", &[], &["422"], Config, DropCallerId, "HTTP 422 or 400 about `from` (error `source.pointer` `/from`): the caller number cannot dial on this account", "Alert naming the caller number, which leaves rotation; the lead is dialled from another"),
    rule!("telnyx", &[(422, 422)], &[], Lead, LeadInvalid, "Invalid `to` number", "Lead `invalid` with Telnyx's message"),
    rule!("telnyx", ANY_5XX, &[], Unknown, Reconcile, "Server error: the call may have been created", MAY_EXIST),
    rule!("telnyx", &[], TRANSPORT_UNKNOWN, Unknown, Reconcile, "No reply in `provider.request_timeout_seconds`, or the connection dropped", MAY_EXIST),
    rule!("telnyx", &[], &[], Rejected, Fail, "Any other refusal", "Attempt `failed` with Telnyx's message"),
    rule!("vapi", &[(429, 429)], &[], Retry, RetryWithBackoff, "Too many requests: not processed", NOT_PROCESSED),
    rule!("vapi", &[], &["connection refused"], Retry, RetryWithBackoff, "No connection: not processed", NOT_PROCESSED),
    rule!("vapi", &[], &["call.start.error-subscription-concurrency-limit-reached"], Throttle, LowerConcurrency, "All concurrency slots of the Vapi account are busy", LOWERED),
    rule!("vapi", AUTH, &[], Config, PauseForCredentials, "Authentication failed", VAPI_AUTH),
    rule!("vapi", ANY_5XX, &[], Unknown, Reconcile, "Server error: the call may have been created", MAY_EXIST),
    rule!("vapi", &[], TRANSPORT_UNKNOWN, Unknown, Reconcile, "No reply in `provider.request_timeout_seconds`, or the connection dropped", MAY_EXIST),
    rule!("vapi", &[], &[], Rejected, Fail, "Any other refusal", "Attempt `failed` with Vapi's message"),
];

/// The rule for `provider`'s answer: HTTP `http_status` (0 = no reply) with error
/// `code` (None when the body had none). A rule naming the code wins; then one
/// naming the status; then the provider's catch-all. An unknown provider name gets
/// Twilio's rules (the simulator speaks Twilio by default).
pub fn lookup(provider: &str, http_status: u16, code: Option<&str>) -> &'static Rule {
    let provider = if RULES.iter().any(|r| r.provider == provider) { provider } else { "twilio" };
    let rules = || RULES.iter().filter(move |r| r.provider == provider);
    let by_code = code.and_then(|c| rules().find(|r| r.codes.contains(&c)));
    let by_status =
        || rules().find(|r| r.codes.is_empty() && r.statuses.iter().any(|(lo, hi)| (*lo..=*hi).contains(&http_status)));
    let by_status_with_codes = || {
        rules().find(|r| !r.codes.is_empty() && r.statuses.iter().any(|(lo, hi)| (*lo..=*hi).contains(&http_status)))
    };
    by_code
        .or_else(by_status_with_codes)
        .or_else(by_status)
        .or_else(|| rules().find(|r| r.codes.is_empty() && r.statuses.is_empty()))
        .expect("every provider has a catch-all rule")
}

impl Rule {
    /// The error this rule makes of an answer. `code` is the provider's numeric code
    /// when it has one (else the HTTP status is kept as the code).
    pub fn error(&self, http_status: u16, code: Option<i64>, message: &str) -> ProviderError {
        let code = code.unwrap_or(i64::from(http_status));
        let msg = message.to_string();
        match self.class {
            Class::Retry => ProviderError::Retry(format!("{code}: {msg}")),
            Class::Throttle => ProviderError::Throttle(format!("{code}: {msg}")),
            Class::Lead => ProviderError::Lead { code, message: msg },
            Class::Config => ProviderError::Config { code, message: msg },
            Class::Rejected => ProviderError::Rejected { code, message: msg },
            Class::Unknown if http_status == 0 => ProviderError::Unknown(msg),
            Class::Unknown => ProviderError::Unknown(format!("HTTP {http_status}: {msg}")),
        }
    }
}

/// What the call loop does after `error` from `provider`. A `Config` error is looked
/// up again by its code (the client kept the code or the HTTP status in it).
pub fn action(provider: &str, error: &ProviderError) -> Action {
    match error {
        ProviderError::Retry(_) => Action::RetryWithBackoff,
        ProviderError::Throttle(_) => Action::LowerConcurrency,
        ProviderError::Lead { .. } => Action::LeadInvalid,
        ProviderError::Unknown(_) => Action::Reconcile,
        ProviderError::Rejected { .. } => Action::Fail,
        ProviderError::Config { code, .. } => {
            let status = u16::try_from(*code).ok().filter(|s| (100..600).contains(s)).unwrap_or(400);
            let rule = lookup(provider, status, Some(&code.to_string()));
            if rule.class == Class::Config { rule.action } else { Action::PauseForCredentials }
        }
    }
}

/// The operator text of the `Config` rule that `error` came from, if any.
pub fn operator_text(provider: &str, error: &ProviderError) -> Option<&'static str> {
    let ProviderError::Config { code, .. } = error else { return None };
    let status = u16::try_from(*code).ok().filter(|s| (100..600).contains(s)).unwrap_or(400);
    Some(lookup(provider, status, Some(&code.to_string())).operator_sees)
}

/// The table as README markdown (see the test `readme_has_the_table`).
pub fn markdown() -> String {
    let mut out = String::from(
        "| Provider | Answer | Meaning | Class | What the dialer does | What you see |\n|---|---|---|---|---|---|\n",
    );
    for r in RULES {
        let mut answer: Vec<String> = r
            .statuses
            .iter()
            .map(|(lo, hi)| match (lo, hi) {
                (500, 599) => "HTTP 5xx".to_string(),
                (lo, hi) if lo == hi => format!("HTTP {lo}"),
                (lo, hi) => format!("HTTP {lo}–{hi}"),
            })
            .collect();
        answer.extend(r.codes.iter().map(|c| format!("`{c}`")));
        let answer = if answer.is_empty() { "anything else".to_string() } else { answer.join(", ") };
        out.push_str(&format!(
            "| {} | {} | {} | {:?} | {} | {} |\n",
            r.provider,
            answer,
            r.meaning,
            r.class,
            action_words(r.action),
            r.operator_sees
        ));
    }
    out
}

/// The README's words for each action.
pub fn action_words(action: Action) -> &'static str {
    match action {
        Action::RetryWithBackoff => {
            "Sent again, same attempt, up to 3 times with exponential backoff (calling hours re-checked); \
             still refused: the claim is undone (caller-ID slot returned, lead re-queued) and dialing holds 60 s"
        }
        Action::LowerConcurrency => {
            "The effective concurrency is halved (one slot restored per 10 calls placed); the claim is undone \
             and dialing holds 10 s"
        }
        Action::Reconcile => {
            "Attempt `unknown`, keeping its caller-ID and concurrency slots; the reconciler lists the calls \
             To/From since the attempt after `provider.reconcile_after_seconds`: a call found is adopted with \
             its real outcome, none found undoes the claim and the lead is dialled again, once (Telnyx lists \
             only live calls, so there none found ends the attempt `unknown`, never redialled)"
        }
        Action::LeadInvalid => "Lead `invalid`, never dialled again; caller-ID slot returned",
        Action::PauseForCredentials => "The claim is undone and dialing pauses for 5 minutes, again until fixed",
        Action::FailAndAlertGeo => "Attempt `failed` (retry rules apply); dashboard alert for a day",
        Action::DropCallerId => {
            "The claim is undone; the caller number is taken out of rotation (in its history) and the lead \
             waits for another number"
        }
        Action::Fail => "Attempt `failed` with the provider's message; caller-ID slot returned",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_answers_map_to_their_actions() {
        let t = |s, c: Option<&str>| lookup("twilio", s, c).action;
        assert_eq!(t(429, Some("20429")), Action::RetryWithBackoff);
        assert_eq!(t(429, None), Action::RetryWithBackoff);
        assert_eq!(t(0, Some("connection refused")), Action::RetryWithBackoff);
        assert_eq!(t(400, Some("10004")), Action::LowerConcurrency);
        for c in ["21211", "21214", "21217", "13224"] {
            assert_eq!(t(400, Some(c)), Action::LeadInvalid, "{c}");
        }
        for c in ["21215", "13227", "32205"] {
            assert_eq!(t(400, Some(c)), Action::FailAndAlertGeo, "{c}");
        }
        assert_eq!(t(400, Some("21210")), Action::DropCallerId);
        assert_eq!(t(401, Some("20003")), Action::PauseForCredentials);
        assert_eq!(t(403, None), Action::PauseForCredentials);
        assert_eq!(t(500, None), Action::Reconcile);
        assert_eq!(t(503, Some("20500")), Action::Reconcile);
        assert_eq!(t(0, Some("timeout")), Action::Reconcile);
        assert_eq!(t(400, Some("21201")), Action::Fail);
        assert_eq!(t(404, None), Action::Fail);
    }

    #[test]
    fn telnyx_and_vapi_answers_map_to_their_actions() {
        assert_eq!(lookup("telnyx", 429, Some("90103")).action, Action::RetryWithBackoff);
        assert_eq!(lookup("telnyx", 429, Some("10011")).action, Action::RetryWithBackoff);
        assert_eq!(lookup("telnyx", 401, Some("10009")).action, Action::PauseForCredentials);
        assert_eq!(lookup("telnyx", 422, Some("10016")).action, Action::LeadInvalid);
        assert_eq!(lookup("telnyx", 502, None).action, Action::Reconcile);
        assert_eq!(lookup("telnyx", 400, None).action, Action::Fail);
        assert_eq!(lookup("vapi", 429, None).action, Action::RetryWithBackoff);
        assert_eq!(lookup("vapi", 403, None).action, Action::PauseForCredentials);
        let limit = Some("call.start.error-subscription-concurrency-limit-reached");
        assert_eq!(lookup("vapi", 0, limit).action, Action::LowerConcurrency);
        assert_eq!(lookup("vapi", 500, None).action, Action::Reconcile);
        assert_eq!(lookup("vapi", 400, None).action, Action::Fail);
    }

    #[test]
    fn config_errors_find_their_rule_again() {
        let e = |code| ProviderError::Config { code, message: String::new() };
        assert_eq!(action("twilio", &e(21215)), Action::FailAndAlertGeo);
        assert_eq!(action("twilio", &e(21210)), Action::DropCallerId);
        assert_eq!(action("twilio", &e(20003)), Action::PauseForCredentials);
        assert_eq!(action("twilio", &e(401)), Action::PauseForCredentials);
        assert_eq!(action("telnyx", &e(403)), Action::PauseForCredentials);
        // A 422 about `from` (the client's code `CALLER_ID_REFUSED`) drops the number, as 21210.
        assert_eq!(action("telnyx", &e(crate::provider::telnyx::CALLER_ID_REFUSED)), Action::DropCallerId);
        assert_eq!(action("telnyx", &e(10015)), Action::PauseForCredentials);
        assert_eq!(action("simulator", &e(13227)), Action::FailAndAlertGeo);
        assert_eq!(operator_text("twilio", &e(20003)), Some(TWILIO_AUTH));
        assert!(TWILIO_AUTH.contains("provider.twilio.account_sid / auth_token"));
        assert_eq!(action("twilio", &ProviderError::Throttle("10004".into())), Action::LowerConcurrency);
        assert_eq!(action("twilio", &ProviderError::Unknown("timeout".into())), Action::Reconcile);
    }

    #[test]
    fn every_rule_makes_the_error_of_its_class() {
        for r in RULES {
            let e = r.error(400, Some(1), "m");
            let class = match e {
                ProviderError::Retry(_) => Class::Retry,
                ProviderError::Throttle(_) => Class::Throttle,
                ProviderError::Lead { .. } => Class::Lead,
                ProviderError::Config { .. } => Class::Config,
                ProviderError::Rejected { .. } => Class::Rejected,
                ProviderError::Unknown(_) => Class::Unknown,
            };
            assert_eq!(class, r.class, "{r:?}");
        }
    }

    /// The README carries the same table, so the code and the documentation cannot drift.
    #[test]
    fn readme_has_the_table() {
        let readme = include_str!("../../README.md");
        let table = markdown();
        assert!(
            readme.contains(&table),
            "README.md's \"Provider errors and what the dialer does\" table differs from provider::errors::RULES; \
             paste this:\n{table}"
        );
    }
}
