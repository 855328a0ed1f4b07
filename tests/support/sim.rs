//! The simulated carrier as its own server, outside the app: tests point the app's
//! provider (`twilio`, `telnyx` or `vapi`) at it and read its ledger, which outlives
//! an app that crashed.

use dialer::config::{Config, ProviderKind, Simulator};
use tokio_util::sync::CancellationToken;

pub struct SimHandle {
    pub base: String,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    http: reqwest::Client,
}

/// Starts a simulator with `settings` on a loopback port in its own runtime.
pub fn spawn_simulator(settings: Simulator) -> SimHandle {
    let stop = CancellationToken::new();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let token = stop.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = dialer::provider::simulator::spawn(listener, settings, token.clone()).unwrap();
            tx.send(base).unwrap();
            token.cancelled().await;
        });
    });
    let base = rx.recv().expect("simulator started");
    SimHandle { base, stop, thread: Some(thread), http: reqwest::Client::new() }
}

impl SimHandle {
    /// Points `config` at this simulator through `kind`'s real client and credentials.
    pub fn configure(&self, config: &mut Config, kind: ProviderKind) {
        let (timeout, reconcile_after) =
            (config.provider.request_timeout_seconds, config.provider.reconcile_after_seconds);
        config.provider = dialer::provider::simulator::credentials(&self.base);
        config.provider.kind = kind;
        config.provider.request_timeout_seconds = timeout;
        config.provider.reconcile_after_seconds = reconcile_after;
    }

    /// `GET /sim/ledger`: `{"calls": [...], "forged_accepted": N}`.
    pub async fn ledger(&self) -> serde_json::Value {
        let url = format!("{}/sim/ledger", self.base);
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// Every call the simulator created, as ledger entries.
    pub async fn calls(&self) -> Vec<serde_json::Value> {
        self.ledger().await["calls"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
