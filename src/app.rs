//! Start-up and shutdown: `run(config, listener, shutdown)` wires the store, the
//! provider, the background loops and the HTTP server. Tests call it on port 0.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::compliance::Compliance;
use crate::compliance::tz::TzMap;
use crate::config::Config;
use crate::db::numbers::NewNumber;
use crate::db::{self, Db};
use crate::numbers::Places;
use crate::numbers::npa::NpaMap;
use crate::state::{AppState, LoopStatus, Wake};
use crate::{dialer, provider, scheduler, web};

/// How long shutdown waits for create-call requests already sent.
const DRAIN: Duration = Duration::from_secs(20);

/// Serves until `shutdown` completes, then stops dialing, drains and returns.
/// Errors: invalid configuration, unopenable database, a failing listener.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let resolved = config.resolve()?;
    let db = Db::open(&config.database.path)?;
    let now_ms = db::to_ms(Utc::now());
    let seeds: Vec<NewNumber> = resolved
        .numbers
        .iter()
        .map(|(n, seed)| NewNumber {
            number: n.as_str().to_string(),
            label: seed.label.clone(),
            max_daily_calls: seed.max_daily_calls,
            rotation_priority: seed.rotation_priority,
            pool: seed.pool.clone(),
        })
        .collect();
    db.write(move |tx| db::numbers::add(tx, &seeds, "config", now_ms)).await?;

    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let addr = listener.local_addr()?;
    let public_url =
        config.server.public_url.clone().unwrap_or_else(|| format!("http://{addr}")).trim_end_matches('/').to_string();
    let built = provider::build::build(&config, &public_url, &token).await?;
    let provider::build::Built { provider, webhook_auth, simulated } = built;

    let tz_map = Arc::new(TzMap::embedded());
    let compliance = Arc::new(Compliance {
        profile: config.compliance.profile,
        window: resolved.window,
        rules: resolved.state_rules.clone(),
    });
    let state = AppState {
        config: Arc::new(config),
        resolved: Arc::new(resolved),
        db,
        provider,
        tz_map: tz_map.clone(),
        webhook_auth,
        public_url,
        simulated,
        wake: Arc::new(Wake::default()),
        loops: Arc::new(std::sync::Mutex::new(LoopStatus::default())),
        places: Arc::new(Places::new(NpaMap::embedded(), tz_map)),
        rotation: Arc::default(),
        compliance,
        metrics: Arc::default(),
        auth: Arc::default(),
    };

    if state.provider.name() == "vapi" {
        // Vapi dials by `phoneNumberId`: give the pool's numbers their ids from the
        // account before the first claim (a number without one holds dialing).
        link_provider_ids(&state).await;
    }
    tracker.spawn(scheduler::run(state.clone(), token.clone()));
    tracker.spawn(dialer::reconcile::run(state.clone(), now_ms, token.clone()));
    tracker.spawn(dialer::run(state.clone(), token.clone(), tracker.clone()));
    tracker.spawn(dialer::health::run(state.clone(), token.clone()));

    tracing::info!(%addr, url = %format!("http://{addr}"), "dialer serving");
    let app = web::router(state.clone());
    let stop = token.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Stop starting calls first; HTTP stops taking new requests right after.
            stop.cancel();
        })
        .await;
    token.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!("shutdown: some create-call requests did not finish in time; reconciled at next start");
    }
    tracing::info!("dialer stopped");
    served.context("http server")
}

/// Links the pool's numbers to the provider account's ids. A provider that refuses
/// to list is logged; dialing then says which number lacks its id.
async fn link_provider_ids(state: &AppState) {
    match state.provider.list_numbers().await {
        Ok(owned) => {
            let now_ms = db::to_ms(Utc::now());
            let linked =
                state.db.write(move |tx| db::provider_numbers::link_known(tx, &owned, "startup", now_ms)).await;
            match linked {
                Ok(n) => tracing::info!(linked = n, "caller numbers linked to the provider's phone-number ids"),
                Err(e) => tracing::error!(error = format!("{e:#}"), "linking provider numbers failed"),
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not list the provider's numbers at start"),
    }
}
