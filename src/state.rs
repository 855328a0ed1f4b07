//! `AppState`: what handlers and background loops share. Cheap to clone; no globals.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::compliance::Compliance;
use crate::compliance::tz::TzMap;
use crate::config::{Config, Resolved};
use crate::db::Db;
use crate::dialer::claim::{Idle, Rules};
use crate::numbers::Places;
use crate::numbers::pool::Pool;
use crate::provider::{Provider, WebhookAuth};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub resolved: Arc<Resolved>,
    pub db: Db,
    pub provider: Arc<dyn Provider>,
    pub tz_map: Arc<TzMap>,
    /// How the configured provider's webhooks are authenticated.
    pub webhook_auth: WebhookAuth,
    /// Base URL the provider calls back, no trailing slash.
    pub public_url: String,
    pub simulated: bool,
    pub wake: Arc<Wake>,
    pub loops: Arc<Mutex<LoopStatus>>,
    /// Area code → state and zone data for local presence.
    pub places: Arc<Places>,
    /// The call loop's in-memory rotation (see `numbers::pool`).
    pub rotation: Arc<Mutex<Option<Pool>>>,
    /// Calling hours: profile, configured window and state rules.
    pub compliance: Arc<Compliance>,
    /// Prometheus counters and histograms.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Login throttling and the first-run setup token (in memory).
    pub auth: Arc<crate::auth::AuthState>,
}

/// Wake-ups: the scheduler sleeps until its next due batch or until a schedule
/// changes; the call loop until a slot, a number or a lead becomes available.
/// `Notify` keeps one permit, so a wake-up sent while the loop is busy is not lost.
#[derive(Default)]
pub struct Wake {
    pub scheduler: Notify,
    pub dialer: Notify,
    /// Spam scores changed: re-apply the health policy now.
    pub health: Notify,
    /// A create-call got no reply (attempt `unknown`): reconcile it once it is due.
    pub reconcile: Notify,
}

/// What the background loops last reported, for `/api/status`, the banner and `/healthz`.
#[derive(Debug, Clone, Default)]
pub struct LoopStatus {
    pub dialer_idle: Option<Idle>,
    pub dialer_alive_at: Option<DateTime<Utc>>,
    pub scheduler_alive_at: Option<DateTime<Utc>>,
    /// Provider problems the operator must fix while dialing goes on (geographic
    /// permissions of a country, an unverified caller ID), by what they name → (the
    /// banner text, when last seen). Shown for a day after the last occurrence.
    pub provider_alerts: BTreeMap<String, (String, DateTime<Utc>)>,
    /// The call loop places no call before this (provider unreachable, throttling or
    /// refusing our credentials), with the reason shown on the dashboard.
    pub hold: Option<(DateTime<Utc>, String)>,
    /// The in-flight cap lowered after the provider's concurrency limit (Twilio
    /// 10004, Vapi concurrency-limit-reached); None: `dialing.max_concurrent_calls`.
    pub effective_max_concurrent: Option<u32>,
    /// Calls placed since the cap was last lowered or raised (one slot back per
    /// `dialer::RESTORE_EVERY`).
    pub placed_since_throttle: u32,
}

impl AppState {
    pub fn rules(&self) -> Rules {
        Rules {
            max_concurrent_calls: self.max_concurrent_calls(),
            compliance: self.compliance.clone(),
            timezone: self.resolved.timezone,
            provider: self.provider.name(),
            max_calls_per_lead_24h: self.config.compliance.max_calls_per_lead_24h,
            local_presence: self.config.rotation.local_presence,
            warmup: self.config.rotation.warmup(),
            policy: self.config.rotation.policy(),
            places: self.places.clone(),
            rotation: self.rotation.clone(),
        }
    }

    /// The in-flight cap the claim uses now: the configured one, or lower while the
    /// provider reports its concurrency limit.
    pub fn max_concurrent_calls(&self) -> u32 {
        let configured = self.config.dialing.max_concurrent_calls;
        self.loops().effective_max_concurrent.map_or(configured, |e| e.min(configured))
    }

    pub fn update_loops(&self, f: impl FnOnce(&mut LoopStatus)) {
        f(&mut self.loops.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// (scheduler alive, call loop alive) at `now`: each reported within its bound.
    /// The scheduler wakes at least every 5 minutes and the call loop every minute,
    /// so silence past 330 s / 90 s means a loop is stuck or dead. Used by `/healthz`
    /// and the systemd watchdog.
    pub fn loops_alive(&self, now: DateTime<Utc>) -> (bool, bool) {
        let loops = self.loops();
        let fresh = |t: Option<DateTime<Utc>>, secs: i64| t.is_some_and(|t| (now - t).num_seconds() <= secs);
        (fresh(loops.scheduler_alive_at, 330), fresh(loops.dialer_alive_at, 90))
    }

    pub fn loops(&self) -> LoopStatus {
        self.loops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
