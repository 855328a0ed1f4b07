//! `GET /metrics` (Prometheus scrape, behind a session or API token like every
//! other route) and the layer that times provider webhooks.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use crate::metrics::Live;
use crate::state::AppState;
use crate::web::AppError;

/// What Prometheus expects for the OpenMetrics text format `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition: store counts read in one read transaction (O(statuses) and small
/// index walks, see `db::metrics`), plus the in-memory counters and histograms.
/// Errors: a failing store read → 500.
pub async fn scrape(State(state): State<AppState>) -> Result<Response, AppError> {
    let store = state.db.read(crate::db::metrics::counts).await?;
    let now = Utc::now();
    let (scheduler_alive, call_loop_alive) = state.loops_alive(now);
    let live = Live {
        scheduler_alive,
        call_loop_alive,
        dialing_held: state.loops().hold.is_some_and(|(until, _)| until > now),
        max_concurrent_calls: state.max_concurrent_calls(),
    };
    let body = state.metrics.render(&store, &live).map_err(|e| anyhow::anyhow!("encoding metrics: {e}"))?;
    Ok(([(CONTENT_TYPE, OPENMETRICS)], body).into_response())
}

/// Middleware: times every request under `/webhooks/` (to the response head, which
/// is when the handler's work is done) into `dialer_webhook_duration_seconds`,
/// refusals and request timeouts (408) included: it sits outside the timeout layer.
/// Other paths pass through untouched.
pub async fn time_webhooks(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/webhooks/") {
        return next.run(request).await;
    }
    let path = request.uri().path().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.webhook(&path, response.status().as_u16(), started.elapsed());
    response
}
