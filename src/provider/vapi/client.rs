//! Vapi REST client (providers.md §3.1).

use std::time::Duration;

use async_trait::async_trait;

use crate::config::Secret;
use crate::provider::{CallRequest, CallSnapshot, OwnedNumber, Provider, ProviderError};

pub struct Settings {
    /// `https://api.vapi.ai`.
    pub api_base: String,
    pub api_key: Secret,
    /// The saved assistant (`assistantId`).
    pub assistant_id: String,
    /// Sent back by Vapi on every webhook (`X-Vapi-Secret`).
    pub webhook_secret: Secret,
    /// Our public base URL, no trailing slash: webhooks are `{public_url}/webhooks/vapi`.
    pub public_url: String,
    pub max_call_seconds: u32,
    pub request_timeout: Duration,
}

pub struct VapiClient {
    #[allow(dead_code)]
    settings: Settings,
}

impl VapiClient {
    pub fn new(settings: Settings) -> anyhow::Result<VapiClient> {
        Ok(VapiClient { settings })
    }
}

fn not_built() -> ProviderError {
    ProviderError::Rejected { code: 0, message: "the Vapi provider is not built yet".into() }
}

#[async_trait]
impl Provider for VapiClient {
    fn name(&self) -> &'static str {
        "vapi"
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
