//! Vapi: REST client, webhook authentication, call status and `endedReason` mapping,
//! error classification. Source: providers.md §3 (and §5 for the outcome table).

pub mod client;

use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::domain::status::Status;
use crate::provider::ProviderError;

/// Maps a Vapi call `status` that is not `ended` to our progress status
/// (providers.md §3.1). `ended` needs its `endedReason` ([`ended`]); `not-found`,
/// `deletion-failed` and statuses Vapi may add later map to None (stored, not applied).
pub fn map_progress(status: &str) -> Option<Status> {
    Some(match status {
        "scheduled" | "queued" => Status::Dialing,
        "ringing" => Status::Ringing,
        "in-progress" | "forwarding" => Status::InProgress,
        _ => return None,
    })
}

/// What an ended call's `endedReason` means for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub status: Status,
    /// A problem the operator must see on the dashboard (account, capacity,
    /// configuration), None for ordinary outcomes.
    pub alert: Option<&'static str>,
}

const CONCURRENCY: &str = "call.start.error-subscription-concurrency-limit-reached";
const CONCURRENCY_ALERT: &str = "Vapi refused a call: the account's concurrency limit is reached. Lower \
     dialing.max_concurrent_calls or buy reserved concurrency (Vapi dashboard → Settings → Billing).";
const START_ALERT: &str = "Vapi could not start a call (account, assistant or phone number problem): see the \
     attempt's endedReason and check the Vapi dashboard (credits, assistant id, phone numbers).";

/// The one `endedReason` table (providers.md §3.3, §5). Vapi has hundreds of reasons;
/// the known families are mapped here and anything else is `completed` when the call
/// had started (someone was on the line, so it is not redialled) and `failed` when
/// it had not (no one was reached; the campaign's retry rules decide).
pub fn ended(reason: &str, started: bool) -> Ended {
    let plain = |status| Ended { status, alert: None };
    match reason {
        "customer-busy" => plain(Status::Busy),
        "customer-did-not-answer" => plain(Status::NoAnswer),
        "voicemail" => plain(Status::Voicemail),
        "twilio-reported-customer-misdialed" => plain(Status::Invalid),
        "manually-canceled" | "scheduled-call-deleted" => plain(Status::Canceled),
        // The call was never placed. It has a Vapi id and an attempt, so it cannot be
        // put back as "not processed"; it fails (retry rules apply) and the operator
        // is told to lower concurrency.
        CONCURRENCY => Ended { status: Status::Failed, alert: Some(CONCURRENCY_ALERT) },
        "assistant-not-found" | "assistant-not-valid" => Ended { status: Status::Failed, alert: Some(START_ALERT) },
        r if r.starts_with("call.start.error-") => Ended { status: Status::Failed, alert: Some(START_ALERT) },
        "customer-ended-call"
        | "exceeded-max-duration"
        | "silence-timed-out"
        | "call.in-progress.twilio-completed-call"
        | "call.forwarding.operator-busy"
        | "call.forwarding.no-answer" => plain(Status::Completed),
        r if r.starts_with("assistant-") => plain(Status::Completed),
        "twilio-failed-to-connect-call" => plain(Status::Failed),
        r if r.contains("error-providerfault") || r.contains("sip-outbound") => plain(Status::Failed),
        // Everything else, Vapi's own faults (`error-vapifault-*`, `pipeline-error-*`)
        // included: whether anyone was reached is what matters.
        _ => plain(if started { Status::Completed } else { Status::Failed }),
    }
}

/// Whether a webhook carries our shared secret: `X-Vapi-Secret: <secret>` (Vapi's
/// legacy header, and what we set in `assistantOverrides.server.headers`) or
/// `Authorization: Bearer <secret>` (a Bearer credential set in the Vapi dashboard).
/// Constant-time; an empty configured secret accepts nothing.
pub fn authorized(x_vapi_secret: Option<&str>, authorization: Option<&str>, secret: &Secret) -> bool {
    let expected = secret.expose().as_bytes();
    if expected.is_empty() {
        return false;
    }
    let same = |given: &str| bool::from(given.as_bytes().ct_eq(expected));
    let bearer = authorization.and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")));
    x_vapi_secret.is_some_and(same) | bearer.is_some_and(same)
}

/// Classifies a Vapi error reply (HTTP status + `message`, which Vapi sends as a
/// string or a list of strings). Vapi has no error codes, so the class comes from the
/// status: 429 → not processed (retry later); 401/402/403 → the operator must fix
/// the key or the account; 400 about the customer's number → this lead's number is
/// bad; 400 about the phone number or assistant → configuration; 5xx → the call may
/// exist (unknown); anything else → our request was refused.
pub fn classify(http_status: u16, message: &str) -> ProviderError {
    let code = i64::from(http_status);
    let msg = message.to_string();
    let lower = message.to_ascii_lowercase();
    match http_status {
        429 => ProviderError::Retry(format!("Vapi rate limit (429): {msg}")),
        401..=403 => ProviderError::Config { code, message: format!("Vapi refused the API key or account: {msg}") },
        400 if lower.contains("customer") => ProviderError::Lead { code, message: msg },
        400 | 404 if lower.contains("phonenumber") || lower.contains("phone number") || lower.contains("assistant") => {
            ProviderError::Config { code, message: msg }
        }
        s if s >= 500 => ProviderError::Unknown(format!("Vapi HTTP {s}: {msg}")),
        _ => ProviderError::Rejected { code, message: msg },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ProviderError as E;

    #[test]
    fn ended_reasons_map_to_outcomes() {
        let table = [
            ("customer-busy", Status::Busy),
            ("customer-did-not-answer", Status::NoAnswer),
            ("voicemail", Status::Voicemail),
            ("customer-ended-call", Status::Completed),
            ("assistant-ended-call", Status::Completed),
            ("assistant-said-end-call-phrase", Status::Completed),
            ("exceeded-max-duration", Status::Completed),
            ("silence-timed-out", Status::Completed),
            ("twilio-failed-to-connect-call", Status::Failed),
            ("call.in-progress.error-providerfault-outbound-sip-503-service-unavailable", Status::Failed),
            ("call.in-progress.error-sip-outbound-call-failed-to-connect", Status::Failed),
            ("twilio-reported-customer-misdialed", Status::Invalid),
            ("manually-canceled", Status::Canceled),
            ("call.forwarding.operator-busy", Status::Completed),
        ];
        for (reason, status) in table {
            assert_eq!(ended(reason, true), Ended { status, alert: None }, "{reason}");
        }
        let limited = ended(CONCURRENCY, false);
        assert_eq!(limited.status, Status::Failed);
        assert!(limited.alert.unwrap().contains("concurrency"));
        for r in ["call.start.error-subscription-insufficient-credits", "call.start.error-get-phone-number"] {
            assert_eq!(ended(r, false).status, Status::Failed);
            assert!(ended(r, false).alert.is_some(), "{r}");
        }
        // `assistant-not-found` is an account problem, not an assistant hanging up.
        assert!(ended("assistant-not-found", false).alert.is_some());
        assert_eq!(ended("some-new-reason", true).status, Status::Completed);
        assert_eq!(ended("some-new-reason", false).status, Status::Failed);
    }

    #[test]
    fn progress_statuses() {
        assert_eq!(map_progress("queued"), Some(Status::Dialing));
        assert_eq!(map_progress("ringing"), Some(Status::Ringing));
        assert_eq!(map_progress("in-progress"), Some(Status::InProgress));
        assert_eq!(map_progress("ended"), None);
        assert_eq!(map_progress("not-found"), None);
    }

    #[test]
    fn webhook_secret_in_either_header() {
        let secret = Secret::new("s3cret");
        assert!(authorized(Some("s3cret"), None, &secret));
        assert!(authorized(None, Some("Bearer s3cret"), &secret));
        assert!(!authorized(Some("s3cret "), None, &secret));
        assert!(!authorized(Some("wrong"), Some("Bearer wrong"), &secret));
        assert!(!authorized(None, Some("s3cret"), &secret));
        assert!(!authorized(None, None, &secret));
        assert!(!authorized(Some(""), Some("Bearer "), &Secret::new("")));
    }

    #[test]
    fn error_classes() {
        assert!(matches!(classify(429, ""), E::Retry(_)));
        assert!(matches!(classify(401, "Invalid Key"), E::Config { code: 401, .. }));
        assert!(matches!(classify(403, ""), E::Config { .. }));
        assert!(matches!(classify(402, "insufficient credits"), E::Config { .. }));
        assert!(matches!(
            classify(400, "customer.number must be a valid phone number in the E.164 format"),
            E::Lead { code: 400, .. }
        ));
        assert!(matches!(classify(400, "Couldn't Get Phone Number. phoneNumberId must be a UUID"), E::Config { .. }));
        assert!(matches!(classify(404, "Couldn't Get Assistant"), E::Config { .. }));
        assert!(matches!(classify(400, "name must be shorter than 40 characters"), E::Rejected { code: 400, .. }));
        assert!(matches!(classify(500, ""), E::Unknown(_)));
        assert!(matches!(classify(503, ""), E::Unknown(_)));
    }
}
