//! Telnyx Call Control v2 REST client (providers.md §2.1).

use std::time::Duration;

use async_trait::async_trait;

use crate::config::Secret;
use crate::provider::{CallRequest, CallSnapshot, OwnedNumber, Provider, ProviderError};

pub struct Settings {
    /// `https://api.telnyx.com`, no `/v2`.
    pub api_base: String,
    pub api_key: Secret,
    /// Call Control Application id.
    pub connection_id: String,
    /// Our public base URL, no trailing slash: webhooks are `{public_url}/webhooks/telnyx`.
    pub public_url: String,
    pub ring_timeout_seconds: u32,
    pub max_call_seconds: u32,
    pub request_timeout: Duration,
}

pub struct TelnyxClient {
    #[allow(dead_code)]
    settings: Settings,
}

impl TelnyxClient {
    pub fn new(settings: Settings) -> anyhow::Result<TelnyxClient> {
        Ok(TelnyxClient { settings })
    }
}

fn not_built() -> ProviderError {
    ProviderError::Rejected { code: 0, message: "the Telnyx provider is not built yet".into() }
}

#[async_trait]
impl Provider for TelnyxClient {
    fn name(&self) -> &'static str {
        "telnyx"
    }
    async fn create_call(&self, _request: &CallRequest) -> Result<String, ProviderError> {
        Err(not_built())
    }
    async fn fetch_call(&self, _call_id: &str) -> Result<Option<CallSnapshot>, ProviderError> {
        Err(not_built())
    }
    async fn find_calls(
        &self,
        _to: &str,
        _from: &str,
        _since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<CallSnapshot>, ProviderError> {
        Err(not_built())
    }
    async fn list_numbers(&self) -> Result<Vec<OwnedNumber>, ProviderError> {
        Err(not_built())
    }
}
