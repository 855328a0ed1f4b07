//! Webhook delivery for one simulated call, in order, with the callback faults of
//! `[simulator.faults]`: delay, duplicates, reordering (a webhook held back and sent
//! after the next one) and invalid signatures (a forged copy first, then the real
//! one, as a provider's retry would). Only asynchronous callbacks go through here;
//! requests whose reply drives the call (Twilio's TwiML fetches) do not.

use std::time::Duration;

use crate::provider::simulator::Sim;
use crate::provider::simulator::faults::{CallbackFault, chance};
use crate::provider::simulator::script::seconds_between;

/// One webhook: where, what, and the headers that authenticate it.
#[derive(Debug, Clone)]
pub struct Hook {
    pub url: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// Headers with a valid signature.
    pub headers: Vec<(String, String)>,
    /// The same headers with a wrong signature (for the invalid-signature fault).
    pub forged_headers: Vec<(String, String)>,
}

pub struct Outbox {
    sim: Sim,
    held: Option<Hook>,
}

impl Outbox {
    pub fn new(sim: &Sim) -> Outbox {
        Outbox { sim: sim.clone(), held: None }
    }

    /// Sends `hook` (after any held one, or holds it back to reorder).
    pub async fn send(&mut self, hook: Hook) {
        let f = self.sim.settings.faults.clone();
        tokio::time::sleep(seconds_between(f.callback_delay_seconds)).await;
        if let Some(held) = self.held.take() {
            self.deliver(&hook).await;
            self.deliver(&held).await;
            return;
        }
        if chance(f.reorder_callbacks) {
            self.sim.fault_counts.callback(CallbackFault::Reordered);
            self.held = Some(hook);
            return;
        }
        self.deliver(&hook).await;
    }

    /// Sends a webhook still held back. Call when the call's life ends.
    pub async fn flush(&mut self) {
        if let Some(held) = self.held.take() {
            self.deliver(&held).await;
        }
    }

    async fn deliver(&self, hook: &Hook) {
        let f = &self.sim.settings.faults;
        if chance(f.invalid_signatures) {
            self.sim.fault_counts.callback(CallbackFault::Forged);
            let refused = post(&self.sim, hook, &hook.forged_headers).await;
            if refused.is_some_and(|s| s.is_success()) {
                tracing::error!(url = %hook.url, "simulated carrier: a forged webhook was accepted");
                self.sim.ledger_forged_accepted();
            }
        }
        deliver_with_retries(&self.sim, hook).await;
        if chance(f.duplicate_callbacks) {
            self.sim.fault_counts.callback(CallbackFault::Duplicated);
            deliver_with_retries(&self.sim, hook).await;
        }
    }
}

/// Posts until a 2xx, three tries with backoff (as providers retry on failure).
pub async fn deliver_with_retries(sim: &Sim, hook: &Hook) -> Option<reqwest::Response> {
    for attempt in 0..3u32 {
        match send(sim, hook, &hook.headers).await {
            Ok(resp) if resp.status().is_success() => return Some(resp),
            Ok(resp) => tracing::warn!(url = %hook.url, status = %resp.status(), "simulated carrier: webhook refused"),
            Err(e) => tracing::warn!(url = %hook.url, error = %e, "simulated carrier: webhook failed"),
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
    }
    None
}

async fn post(sim: &Sim, hook: &Hook, headers: &[(String, String)]) -> Option<reqwest::StatusCode> {
    send(sim, hook, headers).await.ok().map(|r| r.status())
}

async fn send(sim: &Sim, hook: &Hook, headers: &[(String, String)]) -> reqwest::Result<reqwest::Response> {
    let mut request = sim.http.post(&hook.url).header("content-type", hook.content_type).body(hook.body.clone());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await
}
