//! Reconciliation: attempts that never got a final status. After a restart, an
//! attempt written but never answered by the provider becomes `unknown` (never
//! redialled); one with a provider call id is looked up at the provider.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::calls::{self, StatusEvent};
use crate::db;
use crate::domain::status::Status;
use crate::state::AppState;

/// Create-call requests give up after ~1 min of retries; an attempt with no call id
/// older than this was orphaned by a crash.
const ORPHAN_AFTER: Duration = Duration::from_secs(300);

/// One pass over attempts created before `cutoff_ms` with no final status; those
/// with no provider call id created before `orphan_cutoff_ms` are orphans of a crash
/// and become `unknown`. Returns how many attempts it resolved.
pub async fn pass(state: &AppState, cutoff_ms: i64, orphan_cutoff_ms: i64) -> anyhow::Result<usize> {
    let orphan_cutoff = orphan_cutoff_ms;
    let pending = state.db.read(move |c| db::attempts::unresolved(c, cutoff_ms)).await?;
    let mut resolved = 0;
    for attempt in pending {
        let event = match &attempt.provider_call_id {
            None if attempt.created_at < orphan_cutoff => None,
            None => continue,
            Some(call_id) => match state.provider.fetch_call(call_id).await {
                Ok(Some(snap)) if snap.status.is_final() => Some(StatusEvent {
                    attempt_id: Some(attempt.id),
                    call_id: snap.call_id,
                    sequence: "reconcile".into(),
                    status: Some(snap.status),
                    raw_status: snap.status.as_str().into(),
                    answered_by: snap.answered_by,
                    duration_seconds: snap.duration_seconds,
                    params_json: "[]".into(),
                }),
                Ok(Some(_)) => continue,
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(attempt_id = attempt.id, error = %e, "reconcile: provider lookup failed");
                    continue;
                }
            },
        };
        let now_ms = db::to_ms(Utc::now());
        let id = attempt.id;
        let done = state
            .db
            .write(move |tx| {
                if let Some(event) = event {
                    return Ok(matches!(calls::apply(tx, &event, now_ms)?, calls::Applied::Final(_)));
                }
                // Re-read inside the transaction: a webhook may have just resolved it.
                let Some(current) = db::attempts::state(tx, id)? else { return Ok(false) };
                if current.status.is_final() {
                    return Ok(false);
                }
                let error = "no final status from the provider; the call may have been placed";
                let progress = db::attempts::Progress { error: Some(error), ..Default::default() };
                db::attempts::set_status(tx, &current, Status::Unknown, &progress, now_ms)?;
                Ok(true)
            })
            .await?;
        if done {
            tracing::warn!(attempt_id = id, "reconciled an attempt with no final status");
            resolved += 1;
        }
    }
    if resolved > 0 {
        state.wake.dialer.notify_one();
    }
    Ok(resolved)
}

/// At start-up, every unresolved attempt; then every minute, those past the longest
/// possible call (ring timeout + max call length + 5 minutes).
/// `started_ms` is when this process started: no request made before it can still be
/// in flight.
pub async fn run(state: AppState, started_ms: i64, shutdown: CancellationToken) {
    if let Err(e) = pass(&state, started_ms, started_ms).await {
        tracing::error!(error = format!("{e:#}"), "start-up reconciliation failed");
    }
    let d = &state.config.dialing;
    let stale = Duration::from_secs(u64::from(d.ring_timeout_seconds) + u64::from(d.max_call_seconds) + 300);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.cancelled() => return,
        }
        let now_ms = db::to_ms(Utc::now());
        let cutoff = now_ms - stale.as_millis() as i64;
        if let Err(e) = pass(&state, cutoff, now_ms - ORPHAN_AFTER.as_millis() as i64).await {
            tracing::error!(error = format!("{e:#}"), "reconciliation failed");
        }
    }
}
