//! Start-up and shutdown: `run(config, listener, shutdown)` wires the store, the
//! provider, the background loops and the HTTP server. Tests call it on port 0.

use std::future::{Future, IntoFuture};
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
use crate::{dialer, provider, scheduler, systemd, web};

/// Longest a graceful shutdown takes, from the signal to `run` returning: in-flight
/// HTTP requests and create-call requests drain together within it. Kept well under
/// the unit's `TimeoutStopSec=30` so systemd never has to SIGKILL the process. What
/// is cut off is safe: an unanswered create-call leaves its attempt row (written
/// before the request) for the reconciler at the next start; an unfinished HTTP
/// request's transaction rolls back.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(20);
/// Of that, what in-flight HTTP requests get: a page or a webhook takes milliseconds,
/// so only a stalled client (an upload that stopped sending) is cut off here.
pub const HTTP_GRACE: Duration = Duration::from_secs(10);

/// Serves until `shutdown` completes, then stops dialing at once, drains in-flight
/// HTTP and create-call requests (at most [`SHUTDOWN_BUDGET`]) and returns. Tells
/// systemd `READY=1` once serving and `STOPPING=1` at the signal, and pings its
/// watchdog meanwhile (see `systemd`). Errors: invalid configuration, unopenable
/// database, a failing listener.
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

    // Two stops: `token` ends the loops at the signal; `carrier` ends the built-in
    // simulated carrier only after the drain, so create-calls in flight get answers.
    let token = CancellationToken::new();
    let carrier = CancellationToken::new();
    let tracker = TaskTracker::new();
    let addr = listener.local_addr()?;
    let public_url =
        config.server.public_url.clone().unwrap_or_else(|| format!("http://{addr}")).trim_end_matches('/').to_string();
    let built = provider::build::build(&config, &public_url, &carrier).await?;
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
    crate::auth::ops::announce_setup(&state).await?;
    tracker.spawn(crate::auth::ops::sweep_sessions(state.db.clone(), token.clone()));

    if let Some(interval) = systemd::watchdog_interval() {
        tracker.spawn(systemd::watchdog(state.clone(), interval, token.clone()));
    }

    let http_stop = CancellationToken::new();
    let server =
        axum::serve(listener, web::router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(http_stop.clone().cancelled_owned())
            .into_future();
    let mut server = std::pin::pin!(server);
    tracing::info!(%addr, url = %format!("http://{addr}"), "dialer serving");
    systemd::ready(&format!("serving on {addr}"));
    let failed = tokio::select! {
        served = &mut server => Some(served),
        () = shutdown => None,
    };

    // Stop starting calls at once (the loops end at their next await), stop taking
    // connections, then let in-flight requests and create-calls finish, bounded.
    systemd::stopping();
    token.cancel();
    http_stop.cancel();
    tracker.close();
    let started = tokio::time::Instant::now();
    let (http, calls) = tokio::join!(
        tokio::time::timeout_at(started + HTTP_GRACE, async {
            match failed {
                Some(served) => served,
                None => (&mut server).await,
            }
        }),
        tokio::time::timeout_at(started + SHUTDOWN_BUDGET, tracker.wait()),
    );
    if calls.is_err() {
        tracing::warn!("shutdown: some create-call requests did not finish in time; reconciled at next start");
    }
    // axum's graceful shutdown waits for every open connection; a client holding one
    // open (a slow upload) must not hold the process past the budget.
    let served = http.unwrap_or_else(|_| {
        tracing::warn!("shutdown: some HTTP requests did not finish in time and were cut off");
        Ok(())
    });
    carrier.cancel();
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "dialer stopped");
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
