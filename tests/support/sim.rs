//! The simulated carrier as its own server, outside the app: tests point the app's
//! provider (`twilio`, `telnyx` or `vapi`) at it and read its ledger, which outlives
//! an app that crashed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dialer::config::{Config, ProviderKind, Simulator};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::TestApp;

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

impl SimHandle {
    /// Waits until every lead has an outcome and at least `calls` calls are in the
    /// ledger, all ended; returns the ledger grouped by number.
    pub async fn settle(&self, app: &TestApp, calls: usize) -> BTreeMap<String, Vec<Value>> {
        app.wait_for(Duration::from_secs(90), "every lead reaches an outcome", crate::support::all_leads_final).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ledger = self.calls().await;
            if ledger.len() >= calls && ledger.iter().all(|c| !c["ended"].is_null()) {
                let mut by_number: BTreeMap<String, Vec<Value>> = BTreeMap::new();
                for call in ledger {
                    by_number.entry(call["to"].as_str().unwrap().to_string()).or_default().push(call);
                }
                return by_number;
            }
            assert!(Instant::now() < deadline, "the simulator's calls never all ended: {ledger:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Schedules every pending lead for `campaign` now, in batches of 20 a second apart.
pub async fn schedule_pending(app: &TestApp, campaign: i64) {
    let body = json!({
        "select": {"status": "pending"},
        "campaign_id": campaign,
        "start_at": chrono::Utc::now().to_rfc3339(),
        "parallel_calls": 20,
        "interval_seconds": 1,
    });
    let (status, created) = app.post_json("/api/schedule-bulk-calls", body).await;
    assert_eq!(status, 201, "{created}");
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
