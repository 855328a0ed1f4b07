//! The built-in simulated carrier: a small HTTP server that speaks the parts of
//! Twilio's, Telnyx's and Vapi's APIs the dialer uses, and calls back with signed
//! webhooks as each provider does. The dialer talks to it through the production
//! clients, so the demo and the tests run the real code path over real HTTP. It
//! places no real calls. Callees follow scripts (`[simulator.callees]`, or weights)
//! and faults are injected as `[simulator.faults]` says; every call created is kept
//! in a ledger (`GET /sim/ledger`).
//!
//! It is its own axum server on its own port, separate from the app's router: it
//! stands in for a carrier on the other side of the network, and runs inside
//! `dialer serve` or alone (`dialer simulator --bind ADDR`).

pub mod faults;
pub mod ledger;
pub mod outbox;
pub mod script;
mod telnyx;
mod telnyx_call;
mod twilio;
mod twilio_call;
mod twiml;
mod twiml_run;
mod vapi;
mod vapi_call;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Provider, Secret, Simulator as Settings};

/// Fixed demo credentials: the simulator is a local stand-in, not an account.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
pub const AUTH_TOKEN: &str = "simulator-auth-token";
pub const TELNYX_API_KEY: &str = "KEYsimulator";
pub const TELNYX_CONNECTION_ID: &str = "1494404757140276705";
/// Seed of the simulator's Telnyx webhook signing key (public: it signs nothing real).
pub const TELNYX_SIGNING_SEED: [u8; 32] = *b"dialer-simulator-telnyx-ed25519!";
pub const VAPI_API_KEY: &str = "simulator-vapi-key";
pub const VAPI_ASSISTANT_ID: &str = "asst-simulator";
pub const VAPI_WEBHOOK_SECRET: &str = "simulator-vapi-secret";

#[derive(Clone)]
pub struct Sim {
    pub settings: Settings,
    pub twilio_token: Secret,
    pub telnyx_key: ed25519_dalek::SigningKey,
    pub ledger: ledger::Ledger,
    /// Live Twilio calls, where a Modify Call is delivered (the ledger has the rest).
    twilio_live: twilio_call::Live,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    /// Forged webhooks the dialer accepted (must stay 0).
    forged_accepted: Arc<AtomicU64>,
    /// Faults served, by kind (`GET /sim/ledger` → `faults`).
    pub fault_counts: Arc<faults::Counts>,
}

impl Sim {
    /// Draws (and counts) the fault for one create-call request.
    pub fn draw_create_fault(&self) -> faults::CreateFault {
        let fault = faults::draw(&self.settings.faults);
        self.fault_counts.create(fault);
        fault
    }

    /// Holds a request past the client's patience (`faults.hang_seconds`), or until
    /// shutdown: the "timeout" faults.
    pub async fn hang(&self) {
        let hold = std::time::Duration::from_secs_f64(self.settings.faults.hang_seconds.max(0.0));
        tokio::select! {
            _ = tokio::time::sleep(hold) => {}
            _ = self.shutdown.cancelled() => {}
        }
    }

    pub fn ledger_forged_accepted(&self) {
        self.forged_accepted.fetch_add(1, Ordering::Relaxed);
    }
}

/// The simulator's Telnyx webhook public key, base64 (what `provider.telnyx.public_key` takes).
pub fn telnyx_public_key() -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&TELNYX_SIGNING_SEED);
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes())
}

/// `[provider]` settings that talk to a simulator at `base` with its credentials.
pub fn credentials(base: &str) -> Provider {
    let mut p = Provider::default();
    p.twilio.api_base = base.to_string();
    p.twilio.account_sid = ACCOUNT_SID.into();
    p.twilio.auth_token = Secret::new(AUTH_TOKEN);
    p.telnyx.api_base = base.to_string();
    p.telnyx.api_key = Secret::new(TELNYX_API_KEY);
    p.telnyx.connection_id = TELNYX_CONNECTION_ID.into();
    p.telnyx.public_key = telnyx_public_key();
    p.vapi.api_base = base.to_string();
    p.vapi.api_key = Secret::new(VAPI_API_KEY);
    p.vapi.assistant_id = VAPI_ASSISTANT_ID.into();
    p.vapi.webhook_secret = Secret::new(VAPI_WEBHOOK_SECRET);
    p
}

/// What `dialer simulator` prints: where it listens and the `[provider]` settings
/// that point a dialer at it (pick one `kind`). The credentials are the fixed demo
/// ones above, not secrets.
pub fn instructions(base: &str) -> String {
    format!(
        r#"simulated carrier listening on {base} (ledger: {base}/sim/ledger)

# In the dialer's config, with kind = "twilio", "telnyx" or "vapi". public_url is
# where the dialer listens, as this simulator reaches it (it posts webhooks there).
[server]
public_url = "http://127.0.0.1:8080"

[provider]
kind = "twilio"

[provider.twilio]
api_base = "{base}"
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"

[provider.telnyx]
api_base = "{base}"
api_key = "{TELNYX_API_KEY}"
connection_id = "{TELNYX_CONNECTION_ID}"
public_key = "{}"

[provider.vapi]
api_base = "{base}"
api_key = "{VAPI_API_KEY}"
assistant_id = "{VAPI_ASSISTANT_ID}"
webhook_secret = "{VAPI_WEBHOOK_SECRET}""#,
        telnyx_public_key()
    )
}

/// Starts the simulator on `listener`; returns its base URL (`http://127.0.0.1:PORT`).
pub fn spawn(listener: TcpListener, settings: Settings, shutdown: CancellationToken) -> anyhow::Result<String> {
    let base = format!("http://{}", listener.local_addr()?);
    let sim = Sim {
        settings,
        twilio_token: Secret::new(AUTH_TOKEN),
        telnyx_key: ed25519_dalek::SigningKey::from_bytes(&TELNYX_SIGNING_SEED),
        ledger: ledger::Ledger::default(),
        twilio_live: Arc::default(),
        http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build()?,
        shutdown: shutdown.clone(),
        forged_accepted: Arc::default(),
        fault_counts: Arc::default(),
    };
    let app = Router::new()
        .merge(twilio::routes())
        .merge(telnyx::routes())
        .merge(vapi::routes())
        .route("/sim/ledger", get(ledger_json))
        .with_state(sim);
    tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "simulated carrier stopped");
        }
    });
    Ok(base)
}

/// `GET /sim/ledger`: `{"calls": [Entry…], "forged_accepted": N}`.
async fn ledger_json(State(sim): State<Sim>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "calls": sim.ledger.all(),
        "forged_accepted": sim.forged_accepted.load(Ordering::Relaxed),
        "faults": sim.fault_counts.json(),
    }))
}
