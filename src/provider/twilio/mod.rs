//! Twilio Programmable Voice: REST client, status mapping, webhook signatures, and
//! the call flow's TwiML (`twiml`).

pub mod client;
pub mod signature;
pub mod twiml;

use crate::domain::status::Status;

/// Maps a Twilio `CallStatus` (plus `AnsweredBy` when AMD ran) to our status.
/// `completed` answered by a machine or fax is `voicemail`. Statuses Twilio may add
/// later map to None and are stored but not applied. Source: providers.md §1.5, §1.7.
pub fn map_status(call_status: &str, answered_by: Option<&str>) -> Option<Status> {
    Some(match call_status {
        "queued" | "initiated" => Status::Dialing,
        "ringing" => Status::Ringing,
        "in-progress" | "answered" => Status::InProgress,
        "completed" => match answered_by {
            Some(a) if a.starts_with("machine") || a == "fax" => Status::Voicemail,
            _ => Status::Completed,
        },
        "busy" => Status::Busy,
        "no-answer" => Status::NoAnswer,
        "failed" => Status::Failed,
        "canceled" => Status::Canceled,
        _ => return None,
    })
}

/// Classifies a Twilio error response (HTTP status + `code`; status 0 = no reply,
/// `message` then names the transport failure) through the one error-to-action
/// table, `provider::errors` (providers.md §1.9).
pub fn classify(http_status: u16, code: Option<i64>, message: &str) -> crate::provider::ProviderError {
    let code_text = code.map(|c| c.to_string());
    crate::provider::errors::lookup("twilio", http_status, code_text.as_deref()).error(http_status, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ProviderError as E;

    #[test]
    fn statuses_map_forward() {
        assert_eq!(map_status("completed", Some("human")), Some(Status::Completed));
        assert_eq!(map_status("completed", Some("machine_end_beep")), Some(Status::Voicemail));
        assert_eq!(map_status("completed", Some("fax")), Some(Status::Voicemail));
        assert_eq!(map_status("no-answer", None), Some(Status::NoAnswer));
        assert_eq!(map_status("initiated", None), Some(Status::Dialing));
        assert_eq!(map_status("something-new", None), None);
    }

    #[test]
    fn error_classes() {
        assert!(matches!(classify(429, Some(20429), ""), E::Retry(_)));
        assert!(matches!(classify(400, Some(21211), ""), E::Lead { code: 21211, .. }));
        assert!(matches!(classify(400, Some(21215), ""), E::Config { .. }));
        assert!(matches!(classify(401, None, ""), E::Config { code: 401, .. }));
        assert!(matches!(classify(503, None, ""), E::Unknown(_)));
        assert!(matches!(classify(400, Some(10004), ""), E::Throttle(_)));
        assert!(matches!(classify(400, Some(21201), ""), E::Rejected { code: 21201, .. }));
        assert!(matches!(classify(400, Some(21210), ""), E::Config { code: 21210, .. }));
        assert!(matches!(classify(403, Some(20003), ""), E::Config { code: 20003, .. }));
        assert!(matches!(classify(400, Some(21214), ""), E::Lead { code: 21214, .. }));
        assert!(matches!(classify(400, Some(22005), ""), E::Throttle(_)));
        assert!(matches!(classify(429, None, ""), E::Retry(_)));
    }
}
