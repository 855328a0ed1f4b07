//! Twilio Programmable Voice: REST client, status mapping, webhook signatures.

pub mod client;
pub mod signature;

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

/// Classifies a Twilio error response (HTTP status + `code`) per providers.md §1.9.
pub fn classify(http_status: u16, code: Option<i64>, message: &str) -> crate::provider::ProviderError {
    use crate::provider::ProviderError as E;
    let msg = message.to_string();
    let code_or_status = code.unwrap_or(i64::from(http_status));
    match (http_status, code) {
        (429, _) | (_, Some(20429)) => E::Retry(format!("rate limited ({code_or_status}): {msg}")),
        (_, Some(10004 | 22005)) => E::Throttle(format!("{code_or_status}: {msg}")),
        (_, Some(c @ (21211 | 21214 | 21217 | 13224))) => E::Lead { code: c, message: msg },
        (_, Some(c @ (21210 | 21215 | 13227 | 32205 | 573005 | 20003))) => E::Config { code: c, message: msg },
        (401 | 403, c) => E::Config { code: c.unwrap_or(i64::from(http_status)), message: msg },
        (s, _) if s >= 500 => E::Unknown(format!("HTTP {s}: {msg}")),
        (_, c) => E::Rejected { code: c.unwrap_or(i64::from(http_status)), message: msg },
    }
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
    }
}
