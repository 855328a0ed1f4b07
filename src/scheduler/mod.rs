//! The batch scheduler: fires due batches from the store. It keeps no jobs in
//! memory; each pass re-derives what is due, then sleeps until the earliest pending
//! batch or until a schedule is added or cancelled (no polling).

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::db;
use crate::state::AppState;

/// Longest sleep between passes even with nothing pending: a guard against clock
/// jumps (suspend/resume), not the mechanism.
const MAX_SLEEP: Duration = Duration::from_secs(300);

/// One pass: fire what is due, mark what is too late as missed.
/// Returns the outcome so tests can step it.
pub async fn tick(state: &AppState) -> anyhow::Result<db::schedules::FireOutcome> {
    let now = Utc::now();
    let grace_ms = i64::from(state.config.dialing.missed_batch_grace_minutes) * 60_000;
    let (outcome, completed) = state
        .db
        .write(move |tx| {
            let outcome = db::schedules::fire_due(tx, db::to_ms(now), grace_ms)?;
            Ok((outcome, db::campaigns::complete_finished(tx, db::to_ms(now))?))
        })
        .await?;
    for campaign_id in completed {
        tracing::info!(campaign_id, "campaign completed: every lead has an outcome");
    }
    for (batch_id, schedule_id, index, late_ms) in &outcome.fired {
        tracing::info!(schedule_id, batch_index = index, batch_id, late_ms, "batch fired");
    }
    for (batch_id, schedule_id, index, released) in &outcome.missed {
        tracing::warn!(
            schedule_id,
            batch_index = index,
            batch_id,
            released,
            "batch missed: past the grace period, leads returned to pending"
        );
    }
    if !outcome.fired.is_empty() {
        state.wake.dialer.notify_one();
    }
    state.update_loops(|l| l.scheduler_alive_at = Some(now));
    Ok(outcome)
}

pub async fn run(state: AppState, shutdown: CancellationToken) {
    loop {
        let sleep = match tick(&state).await {
            Ok(outcome) => match outcome.next_due_ms {
                Some(due) => {
                    let wait_ms = (due - db::to_ms(Utc::now())).max(0) as u64;
                    Duration::from_millis(wait_ms).min(MAX_SLEEP)
                }
                None => MAX_SLEEP,
            },
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "scheduler pass failed; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = state.wake.scheduler.notified() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
