//! `/api/status` and `/healthz`: what dialing is doing, and why it is not.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;

use crate::db;
use crate::dialer::claim::{Idle, local_day, local_midnight_today};
use crate::state::AppState;
use crate::web::{AppError, local};

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub provider: &'static str,
    pub simulated: bool,
    /// Leads whose batch fired and that wait to be dialled (incl. outside their hours);
    /// counts stop at 100,000.
    pub queue_depth: i64,
    pub calls_in_progress: i64,
    /// Attempts since local midnight in the configured zone.
    pub calls_today: i64,
    /// RFC 3339 UTC of the earliest pending batch.
    pub next_batch_at: Option<String>,
    pub next_batch_local: Option<String>,
    /// Leads waiting for their calling hours, and when the first of them opens.
    pub waiting_for_calling_hours: i64,
    /// Leads waiting for a local caller ID with room (strict local presence).
    pub waiting_for_local_number: i64,
    pub next_eligible_at: Option<String>,
    /// Why no call is being placed now, when dialing is held up; None when it is not.
    pub paused_reason: Option<String>,
    pub max_concurrent_calls: u32,
    /// The in-flight cap in use: lower than `max_concurrent_calls` for a while after
    /// the provider reported its concurrency limit (Twilio 10004).
    pub effective_max_concurrent_calls: u32,
    /// Provider problems to fix while dialing goes on (geographic permissions, a
    /// caller ID the account refuses), newest first, each shown for a day.
    pub provider_alerts: Vec<String>,
    pub caller_numbers: Vec<db::number_admin::NumberRow>,
    /// The logged-in user and the page's CSRF token (not part of the API reply).
    #[serde(skip)]
    pub chrome: crate::web::auth::Chrome,
}

pub async fn snapshot(state: &AppState) -> anyhow::Result<Snapshot> {
    let now = Utc::now();
    let tz = state.resolved.timezone;
    let day = local_day(tz, now);
    let midnight = db::to_ms(local_midnight_today(tz, now));
    let now_ms = db::to_ms(now);
    let (queue_depth, in_flight, calls_today, next_batch, (next_eligible, waiting, waiting_local), numbers) = state
        .db
        .read(move |c| {
            Ok((
                db::attempts::queue_depth(c)?,
                db::attempts::in_flight(c)?,
                db::attempts::count_since(c, midnight)?,
                db::schedules::next_due(c)?,
                (
                    db::attempts::next_due_lead(c, now_ms)?,
                    db::attempts::waiting_by_reason(c, now_ms)?,
                    db::attempts::waiting_for_local_number(c)?,
                ),
                db::number_admin::list(c, &day)?,
            ))
        })
        .await?;
    let loops = state.loops();
    let fmt = |ms: i64| local(ms, tz);
    let waiting_hours = waiting.iter().find(|(r, _)| r == "calling_hours").map_or(0, |(_, n)| *n);
    let waiting_local_reason = waiting.iter().find(|(r, _)| r == "no_local_number").map_or(0, |(_, n)| *n);
    let all_waiting: i64 = waiting.iter().map(|(_, n)| n).sum();
    let mut alerts: Vec<(String, chrono::DateTime<Utc>)> =
        loops.provider_alerts.values().filter(|(_, at)| now - *at < crate::dialer::ALERT_TTL).cloned().collect();
    alerts.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
    let provider_alerts = alerts.into_iter().map(|(text, _)| text).collect();
    let paused_reason = if let Some((until, reason)) = loops.hold.filter(|(until, _)| *until > now) {
        Some(format!("{reason}; dialing resumes at {}", fmt(db::to_ms(until))))
    } else if let Some(Idle::NoCallerCapacity { resume_at }) = loops.dialer_idle.filter(|_| queue_depth > 0) {
        let can_dial = numbers.iter().filter(|n| n.rotation_enabled && n.status == "active").count();
        let held = numbers.iter().filter(|n| n.status == "resting" || n.status == "quarantined").count();
        Some(if can_dial == 0 {
            format!(
                "No caller number may dial ({held} resting or quarantined): add or restore one on the Numbers page; \
                 dialing resumes by itself at {}",
                fmt(db::to_ms(resume_at))
            )
        } else {
            format!(
                "Every caller number that may dial ({can_dial}) has reached its daily cap; dialing resumes at {} \
                 (local midnight or a rest ending), or at once when a number is added or given room",
                fmt(db::to_ms(resume_at))
            )
        })
    } else if waiting_local > 0 && waiting_local_reason == all_waiting && queue_depth == all_waiting {
        Some(format!(
            "{waiting_local} lead(s) wait for a local caller ID (local presence is strict) and every local number \
             is at its cap or missing; add a number in their area code or state, or set rotation.local_presence"
        ))
    } else if all_waiting > 0 && queue_depth == all_waiting {
        let parts: Vec<String> = waiting.iter().map(|(reason, n)| waiting_words(reason, *n, state)).collect();
        Some(format!(
            "no lead is due now ({}); the next becomes callable at {}",
            parts.join(", "),
            next_eligible.map(fmt).unwrap_or_default()
        ))
    } else {
        None
    };
    Ok(Snapshot {
        provider: if state.simulated { "simulator" } else { state.provider.name() },
        simulated: state.simulated,
        queue_depth,
        calls_in_progress: in_flight,
        calls_today,
        next_batch_at: next_batch.map(|ms| db::from_ms(ms).to_rfc3339()),
        next_batch_local: next_batch.map(fmt),
        waiting_for_calling_hours: waiting_hours,
        waiting_for_local_number: waiting_local,
        next_eligible_at: next_eligible.map(|ms| db::from_ms(ms).to_rfc3339()),
        paused_reason,
        max_concurrent_calls: state.config.dialing.max_concurrent_calls,
        effective_max_concurrent_calls: state.max_concurrent_calls(),
        provider_alerts,
        caller_numbers: numbers,
        chrome: crate::web::auth::chrome(),
    })
}

/// "3 lead(s) outside their calling hours (08:00–21:00 local time)", for the banner.
fn waiting_words(reason: &str, n: i64, state: &AppState) -> String {
    let d = &state.config.dialing;
    match reason {
        "calling_hours" => format!(
            "{n} lead(s) outside their calling hours ({}–{} local time, or their campaign's)",
            d.calling_hours_start, d.calling_hours_end
        ),
        "retry" => format!("{n} waiting for a retry"),
        "lead_24h_cap" => format!("{n} called the most times allowed in 24 hours"),
        "campaign_daily_cap" => format!("{n} whose campaign reached its calls for today"),
        "no_pool_number" => format!("{n} whose campaign's number pool has no room"),
        "no_local_number" => format!("{n} waiting for a local caller ID"),
        "in_call" => format!("{n} waiting for a test call to the same number to end"),
        other => format!("{n} waiting ({other})"),
    }
}

pub async fn api_status(State(state): State<AppState>) -> Result<Json<Snapshot>, AppError> {
    Ok(Json(snapshot(&state).await?))
}

/// How long `/healthz` waits for the database writer (busy with a claim or an import
/// chunk) before calling it not writable.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// `GET /healthz` (public): 200 `{"status":"ok",…}` when the database takes a write
/// transaction and both loops reported within their bounds (`AppState::loops_alive`);
/// otherwise 503 with `failed` naming each part (`database`, `scheduler`,
/// `call_loop`). Cheap enough to probe every few seconds: one empty write
/// transaction (nothing is written, so no fsync) and a look at in-memory state.
/// Each loop's `*_last_seen_seconds` is how long ago it last reported (null: never).
pub async fn healthz(State(state): State<AppState>) -> Response {
    let db = tokio::time::timeout(PING_TIMEOUT, state.db.ping_write()).await;
    let db_ok = match db {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = format!("{e:#}"), "healthz: the database refused a write transaction");
            false
        }
        Err(_) => {
            tracing::warn!(timeout_s = PING_TIMEOUT.as_secs(), "healthz: the database writer stayed busy");
            false
        }
    };
    // After the ping: a loop that reported while we waited on the writer counts.
    let now = Utc::now();
    let (scheduler_ok, dialer_ok) = state.loops_alive(now);
    let loops = state.loops();
    let age = |t: Option<chrono::DateTime<Utc>>| t.map(|t| (now - t).num_seconds().max(0));
    let failed: Vec<&str> = [(db_ok, "database"), (scheduler_ok, "scheduler"), (dialer_ok, "call_loop")]
        .into_iter()
        .filter_map(|(ok, part)| (!ok).then_some(part))
        .collect();
    let ok = failed.is_empty();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unhealthy" },
        "failed": failed,
        "database_writable": db_ok,
        "scheduler_alive": scheduler_ok,
        "call_loop_alive": dialer_ok,
        "scheduler_last_seen_seconds": age(loops.scheduler_alive_at),
        "call_loop_last_seen_seconds": age(loops.dialer_alive_at),
    });
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

#[cfg(test)]
mod healthz_tests {
    use std::sync::Arc;

    use axum::body::to_bytes;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::config::Config;
    use crate::db::Db;
    use crate::state::{LoopStatus, Wake};

    /// The state `app::run` builds, on a real SQLite file and the built-in simulated
    /// carrier, without the loops: the test plays their reports.
    async fn app_state(dir: &std::path::Path, stop: &CancellationToken) -> AppState {
        let mut config = Config::default();
        config.database.path = dir.join("dialer.db");
        let resolved = config.resolve().unwrap();
        let db = Db::open(&config.database.path).unwrap();
        let built = crate::provider::build::build(&config, "http://127.0.0.1:9", stop).await.unwrap();
        let tz_map = Arc::new(crate::compliance::tz::TzMap::embedded());
        let compliance = Arc::new(crate::compliance::Compliance {
            profile: config.compliance.profile,
            window: resolved.window,
            rules: resolved.state_rules.clone(),
        });
        AppState {
            config: Arc::new(config),
            resolved: Arc::new(resolved),
            db,
            provider: built.provider,
            tz_map: tz_map.clone(),
            webhook_auth: built.webhook_auth,
            public_url: "http://127.0.0.1:9".into(),
            simulated: true,
            wake: Arc::new(Wake::default()),
            loops: Arc::new(std::sync::Mutex::new(LoopStatus::default())),
            places: Arc::new(crate::numbers::Places::new(crate::numbers::npa::NpaMap::embedded(), tz_map)),
            rotation: Arc::default(),
            compliance,
            metrics: Arc::default(),
            auth: Arc::default(),
        }
    }

    async fn probe(state: &AppState) -> (u16, serde_json::Value) {
        let response = healthz(State(state.clone())).await;
        let code = response.status().as_u16();
        let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (code, serde_json::from_slice(&body).unwrap())
    }

    /// A loop that stops reporting leaves its last report behind; once that is older
    /// than the loop's bound (scheduler 330 s, call loop 90 s) `/healthz` is 503 and
    /// names it. Only the reports are set here; the handler, `loops_alive` and the
    /// database ping are the production ones.
    #[tokio::test]
    async fn a_loop_silent_past_its_bound_is_named_in_a_503() {
        let dir = tempfile::tempdir().unwrap();
        let stop = CancellationToken::new();
        let state = app_state(dir.path(), &stop).await;
        let now = Utc::now();
        let seconds = chrono::Duration::seconds;

        let (code, body) = probe(&state).await;
        assert_eq!((code, body["failed"].clone()), (503, serde_json::json!(["scheduler", "call_loop"])), "{body}");
        assert!(body["scheduler_last_seen_seconds"].is_null(), "never reported: {body}");

        state.update_loops(|l| (l.scheduler_alive_at, l.dialer_alive_at) = (Some(now), Some(now - seconds(60))));
        let (code, body) = probe(&state).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["status"], "ok");
        assert_eq!(body["failed"], serde_json::json!([]));
        assert_eq!(body["database_writable"], true);

        state.update_loops(|l| l.scheduler_alive_at = Some(now - seconds(331)));
        let (code, body) = probe(&state).await;
        assert_eq!((code, body["failed"].clone()), (503, serde_json::json!(["scheduler"])), "{body}");
        assert_eq!(body["scheduler_alive"], false);
        assert_eq!(body["call_loop_alive"], true);
        assert!(body["scheduler_last_seen_seconds"].as_i64().unwrap() >= 331, "{body}");

        state.update_loops(|l| (l.scheduler_alive_at, l.dialer_alive_at) = (Some(now), Some(now - seconds(91))));
        let (code, body) = probe(&state).await;
        assert_eq!((code, body["failed"].clone()), (503, serde_json::json!(["call_loop"])), "{body}");
        assert_eq!(body["status"], "unhealthy");
        stop.cancel();
    }
}
