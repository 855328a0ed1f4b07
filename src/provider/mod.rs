//! The telephony provider seam: one provider per instance, behind [`Provider`].
//! Only this module (and the built-in simulator under it) speaks HTTP to a carrier.

pub mod build;
pub mod errors;
pub mod simulator;
pub mod telnyx;
pub mod twilio;
pub mod vapi;

use async_trait::async_trait;

use crate::config::Secret;
use crate::domain::flow::AmdMode;
use crate::domain::status::Status;

/// What the call loop asks the provider to do.
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub attempt_id: i64,
    /// E.164.
    pub to: String,
    /// E.164 caller ID picked by rotation.
    pub from: String,
    /// The caller number's id at the provider (Vapi `phoneNumberId`), when known.
    pub from_provider_id: Option<String>,
    /// The campaign's answering-machine detection.
    pub amd: AmdMode,
}

/// A phone number owned on the provider account (Twilio IncomingPhoneNumbers,
/// Telnyx phone numbers, Vapi phone numbers).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OwnedNumber {
    /// E.164.
    pub number: String,
    /// The provider's id for it (Twilio `PN…` sid, Telnyx id, Vapi `phoneNumberId`).
    pub provider_id: String,
    pub label: Option<String>,
}

/// How the configured provider's webhooks are authenticated (providers.md §1.12,
/// §2.3, §3.2). A webhook for another provider is refused.
#[derive(Clone)]
pub enum WebhookAuth {
    /// HMAC-SHA1 `X-Twilio-Signature` with the primary auth token, over `public_url`.
    Twilio { auth_token: Secret },
    /// Ed25519 `telnyx-signature-ed25519` over `"{timestamp}|{body}"`, 300 s tolerance.
    Telnyx { public_key: [u8; 32] },
    /// A shared secret in `X-Vapi-Secret`, compared in constant time.
    Vapi { secret: Secret },
}

/// A call as the provider reports it when asked (reconciliation).
#[derive(Debug, Clone)]
pub struct CallSnapshot {
    pub call_id: String,
    pub status: Status,
    pub answered_by: Option<String>,
    pub duration_seconds: Option<i64>,
    /// When the provider created the call, UTC (None if it did not say).
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Provider failures, classified by what the dialer must do (providers.md §1.9).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// Not processed (HTTP 429 / 20429, connection never established): safe to retry.
    #[error("not processed, retry later: {0}")]
    Retry(String),
    /// Capacity (10004 concurrency, 22005 CPS queue full): slow down; lead untouched.
    #[error("provider capacity limit: {0}")]
    Throttle(String),
    /// Permanent for this number (21211, 21214, 21217, 13224).
    #[error("number rejected by provider ({code}): {message}")]
    Lead { code: i64, message: String },
    /// The operator must fix something (auth, geo permissions, unverified caller ID).
    #[error("provider configuration problem ({code}): {message}")]
    Config { code: i64, message: String },
    /// Any other refusal: our request was wrong.
    #[error("request refused by provider ({code}): {message}")]
    Rejected { code: i64, message: String },
    /// The request may have been processed (timeout, 5xx, reset): the call may exist.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// The HTTP client every provider client uses: 5 s to connect, `request_timeout`
/// for a whole request (past it a create-call's outcome is unknown), our user agent.
pub fn http_client(request_timeout: std::time::Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(request_timeout)
        .user_agent(concat!("dialer/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

impl ProviderError {
    /// A create-call request that got no HTTP reply: not connected means the request
    /// never left (nothing was created: `Retry`); anything else (timeout, reset) may
    /// have created the call (`Unknown`). Source: providers.md §1.9, §5.
    pub fn from_send(e: &reqwest::Error, api_base: &str) -> ProviderError {
        if e.is_connect() {
            ProviderError::Retry(format!("cannot connect to {api_base}: {e}"))
        } else {
            ProviderError::Unknown(format!("no reply to create-call: {e}"))
        }
    }
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// Short name stored on each attempt ("twilio").
    fn name(&self) -> &'static str;
    /// Sends one create-call request; returns the provider's call id. The caller may
    /// repeat it only after `Retry` (not processed), never after `Unknown`: Twilio's
    /// Create Call has no idempotency key (providers.md §1.1).
    async fn create_call(&self, request: &CallRequest) -> Result<String, ProviderError>;
    /// The provider's view of a call, or None when it does not know the id.
    async fn fetch_call(&self, call_id: &str) -> Result<Option<CallSnapshot>, ProviderError>;
    /// Calls from `from` to `to` created since `since` (UTC), oldest first: how the
    /// reconciler learns whether a request that got no reply created a call.
    async fn find_calls(
        &self,
        to: &str,
        from: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<CallSnapshot>, ProviderError>;
    /// Whether [`Provider::find_calls`] also returns calls that have ended. When it
    /// does not (Telnyx Call Control lists only live calls), "no call found" cannot
    /// prove that a request without a reply created nothing, so the reconciler never
    /// redials such an attempt.
    fn lists_ended_calls(&self) -> bool {
        true
    }
    /// The voice numbers owned on the account.
    async fn list_numbers(&self) -> Result<Vec<OwnedNumber>, ProviderError>;
    /// Makes the live call `call_id` fetch `url` and run what it returns instead of
    /// what it was doing (Twilio Modify Call `Url` + `Method=POST`): how an async-AMD
    /// machine verdict switches the call to the voicemail drop. Providers without
    /// this refuse with `Rejected`.
    async fn redirect_call(&self, call_id: &str, url: &str) -> Result<(), ProviderError> {
        let _ = (call_id, url);
        Err(ProviderError::Rejected { code: 0, message: format!("{} cannot redirect a live call", self.name()) })
    }
    /// Hangs up the live call `call_id` (Twilio Modify Call `Status=completed`).
    /// Providers without this refuse with `Rejected`.
    async fn hang_up(&self, call_id: &str) -> Result<(), ProviderError> {
        let _ = call_id;
        Err(ProviderError::Rejected { code: 0, message: format!("{} cannot hang up a live call", self.name()) })
    }
    /// The Telnyx client, when this provider is Telnyx: its webhooks answer events
    /// with call commands (`telnyx::client::TelnyxClient::command`).
    fn telnyx(&self) -> Option<&telnyx::client::TelnyxClient> {
        None
    }
}
