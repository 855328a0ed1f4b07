//! Telnyx Call Control v2: REST client, webhook signatures (Ed25519), events, the
//! call flow as commands, error classification. Source: providers.md §2.

pub mod client;
pub mod events;
pub mod flow;
pub mod signature;

use serde::Deserialize;

use crate::provider::ProviderError;

/// Telnyx's error body: `{"errors": [{"code": "10011", "title", "detail", "source": {"pointer": "/to"}}]}`.
#[derive(Debug, Deserialize, Default)]
pub struct ErrorBody {
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct ApiError {
    /// A number as a string ("10011"); tolerated as a JSON number too.
    #[serde(default, deserialize_with = "code_string")]
    pub code: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub source: Option<ErrorSource>,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct ErrorSource {
    #[serde(default)]
    pub pointer: Option<String>,
}

fn code_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// The `Config` code of a dial whose `from` Telnyx refused (HTTP 422 about `from`):
/// the row of `provider::errors::RULES` that takes the number out of rotation.
pub const CALLER_ID_REFUSED: i64 = 422;

/// The error-to-action table for Telnyx (one place; the README repeats it):
///
/// | Reply | Class | What the dialer does |
/// |---|---|---|
/// | 429, or code 10011 (API rate limit) / 90103 (dials per second) | `Retry` | not processed: re-send later, same attempt |
/// | 401 / 403 (bad API key, no permission) | `Config` | hold dialing, banner |
/// | 422 (or 400) about `from` | `Config`, code [`CALLER_ID_REFUSED`] | the caller number leaves rotation, an alert names it; the lead is dialled from another |
/// | 422 (or 400) about `connection_id` | `Config` | hold dialing, banner (application id wrong) |
/// | 422 about `to` (invalid / not E.164 / not routable) | `Lead` | lead `invalid` |
/// | 5xx | `Unknown` | the call may exist: reconciler |
/// | anything else | `Rejected` | attempt `failed` |
///
/// A connection that never opened is `Retry` and a reply that never came is
/// `Unknown`; both are decided by the client, not here.
///
/// The `Config` code is what `provider::errors::action` looks the action up by:
/// a refused `from` carries [`CALLER_ID_REFUSED`] (Telnyx's own code goes into the
/// message, as Telnyx uses generic codes such as 10015 for any field), so it is
/// handled like Twilio's 21210; no other `Config` error may carry that code.
pub fn classify(http_status: u16, errors: &[ApiError]) -> ProviderError {
    let first = errors.first().cloned().unwrap_or_default();
    let code: i64 = first.code.as_deref().and_then(|c| c.parse().ok()).unwrap_or(i64::from(http_status));
    let text = [first.title.as_deref(), first.detail.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(": ");
    let message = if text.is_empty() { format!("HTTP {http_status}") } else { text };
    let about = |field: &str| {
        errors.iter().any(|e| {
            let pointer = e.source.as_ref().and_then(|s| s.pointer.as_deref()) == Some(&format!("/{field}")[..]);
            let words = format!("{} {}", e.title.as_deref().unwrap_or(""), e.detail.as_deref().unwrap_or(""));
            pointer
                || words.to_ascii_lowercase().contains(&format!("'{field}'"))
                || words.to_ascii_lowercase().contains(&format!("{field} number"))
        })
    };
    let rate_limited = errors.iter().any(|e| matches!(e.code.as_deref(), Some("10011" | "90103")));
    match http_status {
        429 => ProviderError::Retry(format!("rate limited ({code}): {message}")),
        _ if rate_limited => ProviderError::Retry(format!("rate limited ({code}): {message}")),
        401 | 403 => ProviderError::Config { code, message },
        422 | 400 if about("from") => ProviderError::Config {
            code: CALLER_ID_REFUSED,
            message: match &first.code {
                Some(c) => format!("`from` refused (Telnyx {c}): {message}"),
                None => format!("`from` refused: {message}"),
            },
        },
        // The application id is wrong: every dial fails alike, so dialing holds.
        422 | 400 if about("connection_id") => {
            let code = if code == CALLER_ID_REFUSED { 400 } else { code };
            ProviderError::Config { code, message }
        }
        422 | 400 if about("to") => ProviderError::Lead { code, message },
        s if s >= 500 => ProviderError::Unknown(format!("HTTP {s}: {message}")),
        _ => ProviderError::Rejected { code, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ProviderError as E;

    fn body(json: &str) -> Vec<ApiError> {
        serde_json::from_str::<ErrorBody>(json).unwrap().errors
    }

    #[test]
    fn error_to_action_table() {
        let rate = body(
            r#"{"errors":[{"code":"10011","title":"Too many requests","detail":"You have exceeded the maximum number of allowed requests."}]}"#,
        );
        let dps = body(r#"{"errors":[{"code":90103,"title":"Dial rate exceeded"}]}"#);
        let auth = body(r#"{"errors":[{"code":"10009","title":"Authentication failed"}]}"#);
        let bad_to = body(
            r#"{"errors":[{"code":"10016","title":"Invalid phone number","detail":"The 'to' number is not a valid E.164 number.","source":{"pointer":"/to"}}]}"#,
        );
        let bad_from = body(r#"{"errors":[{"code":"10015","title":"Invalid value","source":{"pointer":"/from"}}]}"#);
        let bad_app =
            body(r#"{"errors":[{"code":"10015","title":"Invalid value","source":{"pointer":"/connection_id"}}]}"#);
        let other =
            body(r#"{"errors":[{"code":"10015","title":"Invalid value","source":{"pointer":"/timeout_secs"}}]}"#);
        type Case<'a> = (u16, &'a [ApiError], fn(&E) -> bool);
        let table: [Case; 11] = [
            (429, &rate, |e| matches!(e, E::Retry(_))),
            (429, &dps, |e| matches!(e, E::Retry(_))),
            (429, &[], |e| matches!(e, E::Retry(_))),
            // The code decides even under another status.
            (400, &dps, |e| matches!(e, E::Retry(_))),
            (401, &auth, |e| matches!(e, E::Config { code: 10009, .. })),
            (403, &[], |e| matches!(e, E::Config { code: 403, .. })),
            (422, &bad_to, |e| matches!(e, E::Lead { code: 10016, .. })),
            (422, &bad_from, |e| matches!(e, E::Config { code: CALLER_ID_REFUSED, .. })),
            (422, &bad_app, |e| matches!(e, E::Config { .. })),
            (422, &other, |e| matches!(e, E::Rejected { code: 10015, .. })),
            (503, &[], |e| matches!(e, E::Unknown(_))),
        ];
        for (status, errors, ok) in table {
            let got = classify(status, errors);
            assert!(ok(&got), "{status} {errors:?} → {got:?}");
        }
        assert!(matches!(classify(500, &rate[..0]), E::Unknown(_)));
    }

    #[test]
    fn a_refused_from_takes_the_number_out_of_rotation_and_a_bad_connection_holds_dialing() {
        use crate::provider::errors::{Action, action};
        let bad_from = body(
            r#"{"errors":[{"code":"10015","title":"Invalid value","detail":"The 'from' number is not associated with your account.","source":{"pointer":"/from"}}]}"#,
        );
        let refused = classify(422, &bad_from);
        assert_eq!(action("telnyx", &refused), Action::DropCallerId, "{refused:?}");
        assert!(refused.to_string().contains("10015") && refused.to_string().contains("not associated"), "{refused}");
        // Told by its words only, and under a 400 too.
        let worded = body(r#"{"errors":[{"title":"Invalid 'from' number"}]}"#);
        assert_eq!(action("telnyx", &classify(400, &worded)), Action::DropCallerId);
        // A wrong application id stops every dial alike: dialing holds (with or without a code).
        let bad_app = body(r#"{"errors":[{"code":"10015","source":{"pointer":"/connection_id"}}]}"#);
        assert_eq!(action("telnyx", &classify(422, &bad_app)), Action::PauseForCredentials);
        let bad_app = body(r#"{"errors":[{"title":"Invalid value","source":{"pointer":"/connection_id"}}]}"#);
        assert_eq!(action("telnyx", &classify(422, &bad_app)), Action::PauseForCredentials);
        // Credentials and a bad `to` keep their actions.
        assert_eq!(action("telnyx", &classify(401, &[])), Action::PauseForCredentials);
        let bad_to = body(r#"{"errors":[{"code":"10016","source":{"pointer":"/to"}}]}"#);
        assert_eq!(action("telnyx", &classify(422, &bad_to)), Action::LeadInvalid);
    }
}
