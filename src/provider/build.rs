//! Builds the configured provider client and its webhook authentication; with
//! `provider.kind = "simulator"`, starts the built-in simulated carrier first and
//! points the client for `simulator.api` at it with the simulator's credentials.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ProviderKind, Secret};
use crate::provider::{Provider, WebhookAuth, simulator, telnyx, twilio, vapi};

/// The provider client, how its webhooks are checked, and whether it is simulated.
pub struct Built {
    pub provider: Arc<dyn Provider>,
    pub webhook_auth: WebhookAuth,
    pub simulated: bool,
}

/// Errors: a bad Telnyx public key, an unbindable simulator port, a client that
/// cannot be built.
pub async fn build(config: &Config, public_url: &str, shutdown: &CancellationToken) -> anyhow::Result<Built> {
    let p = &config.provider;
    let (kind, mut provider_config, simulated) = match p.kind {
        ProviderKind::Simulator => {
            let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the simulated carrier")?;
            let base = simulator::spawn(listener, config.simulator.clone(), shutdown.clone())?;
            tracing::warn!(%base, api = config.simulator.api.as_str(), "using the built-in simulated carrier: no real calls are placed");
            (config.simulator.api, simulator::credentials(&base), true)
        }
        kind => (kind, p.clone(), false),
    };
    provider_config.request_timeout_seconds = p.request_timeout_seconds;
    let d = &config.dialing;
    let request_timeout = Duration::from_secs_f64(p.request_timeout_seconds);
    let public_url = public_url.to_string();
    Ok(match kind {
        ProviderKind::Telnyx => {
            let t = provider_config.telnyx;
            let public_key = decode_key(&t.public_key).context("provider.telnyx.public_key")?;
            let client = telnyx::client::TelnyxClient::new(telnyx::client::Settings {
                api_base: t.api_base,
                api_key: t.api_key,
                connection_id: t.connection_id,
                public_url,
                ring_timeout_seconds: d.ring_timeout_seconds,
                max_call_seconds: d.max_call_seconds,
                request_timeout,
            })?;
            Built { provider: Arc::new(client), webhook_auth: WebhookAuth::Telnyx { public_key }, simulated }
        }
        ProviderKind::Vapi => {
            let v = provider_config.vapi;
            let secret = v.webhook_secret.clone();
            let client = vapi::client::VapiClient::new(vapi::client::Settings {
                api_base: v.api_base,
                api_key: v.api_key,
                assistant_id: v.assistant_id,
                webhook_secret: v.webhook_secret,
                public_url,
                max_call_seconds: d.max_call_seconds,
                request_timeout,
            })?;
            Built { provider: Arc::new(client), webhook_auth: WebhookAuth::Vapi { secret }, simulated }
        }
        ProviderKind::Twilio | ProviderKind::Simulator => {
            let t = provider_config.twilio;
            let auth_token: Secret = t.auth_token.clone();
            let client = twilio::client::TwilioClient::new(twilio::client::Settings {
                api_base: t.api_base,
                account_sid: t.account_sid,
                auth_token: t.auth_token,
                public_url,
                ring_timeout_seconds: d.ring_timeout_seconds,
                max_call_seconds: d.max_call_seconds,
                request_timeout,
            })?;
            Built { provider: Arc::new(client), webhook_auth: WebhookAuth::Twilio { auth_token }, simulated }
        }
    })
}

/// A Telnyx public key: base64 of exactly 32 bytes.
pub fn decode_key(b64: &str) -> anyhow::Result<[u8; 32]> {
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|e| anyhow::anyhow!("not base64: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| anyhow::anyhow!("must decode to 32 bytes (an Ed25519 public key), got {}", bytes.len()))
}
