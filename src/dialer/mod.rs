//! The call loop: claim (one transaction: lead, compliance, caller ID, attempt row)
//! → provider create call → record the provider's answer. Calls-per-second pacing
//! spaces claims; the claim itself refuses to exceed `max_concurrent_calls`.

pub mod claim;
pub mod reconcile;

use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db::{self, Tx};
use crate::dialer::claim::{Claim, Claimed, Idle};
use crate::domain::status::Status;
use crate::provider::{CallRequest, ProviderError};
use crate::state::AppState;

/// Safety net for idle waits; wake-ups normally come from `Wake::dialer`.
const MAX_IDLE: Duration = Duration::from_secs(60);

pub async fn run(state: AppState, shutdown: CancellationToken, tracker: TaskTracker) {
    // Claims are spaced 1/CPS apart: the provider never sees more than
    // `calls_per_second` create-call requests in any one-second window.
    let spacing = Duration::from_secs_f64(1.0 / state.config.dialing.calls_per_second);
    let mut next_slot = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_slot) => {}
            _ = shutdown.cancelled() => return,
        }
        let rules = state.rules();
        let now = Utc::now();
        let claimed = state.db.write(move |tx| claim::claim(tx, &rules, now)).await;
        state.update_loops(|l| l.dialer_alive_at = Some(now));
        let wait = match claimed {
            Ok(Claim::Dial(call)) => {
                next_slot = Instant::now() + spacing;
                state.update_loops(|l| l.dialer_idle = None);
                tracker.spawn(place(state.clone(), call));
                continue;
            }
            Ok(Claim::Idle(idle)) => {
                let wait = match &idle {
                    Idle::MaxConcurrent { .. } => MAX_IDLE,
                    Idle::NoCallerCapacity { resume_at } => until(*resume_at),
                    Idle::NothingDue { next: Some(next) } => until(*next),
                    Idle::NothingDue { next: None } => MAX_IDLE,
                };
                state.update_loops(|l| l.dialer_idle = Some(idle));
                wait
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "claim failed; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.wake.dialer.notified() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

fn until(at: chrono::DateTime<Utc>) -> Duration {
    (at - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(MAX_IDLE)
}

/// Asks the provider for the call and records its answer. Runs detached from the
/// loop so several create-call requests can be under way at once.
async fn place(state: AppState, call: Claimed) {
    let request = CallRequest { attempt_id: call.attempt_id, to: call.to.clone(), from: call.from.clone() };
    let result = state.provider.create_call(&request).await;
    if let Err(e) = &result {
        tracing::warn!(attempt_id = call.attempt_id, lead_id = call.lead_id, error = %e, "create call failed");
    }
    let alert = match &result {
        Err(ProviderError::Config { .. }) => Some(result.as_ref().err().map(ToString::to_string)),
        Ok(_) => Some(None),
        Err(_) => None,
    };
    let now_ms = db::to_ms(Utc::now());
    let recorded = state.db.write(move |tx| record(tx, &call, result, now_ms)).await;
    match recorded {
        Ok(true) => state.wake.dialer.notify_one(),
        Ok(false) => {}
        Err(e) => tracing::error!(error = format!("{e:#}"), "recording create-call result failed"),
    }
    if let Some(alert) = alert {
        state.update_loops(|l| l.provider_alert = alert);
    }
}

/// Stores the provider's answer. Returns true when the attempt ended (slot freed).
fn record(tx: &Tx, call: &Claimed, result: Result<String, ProviderError>, now_ms: i64) -> anyhow::Result<bool> {
    let Some(attempt) = db::attempts::state(tx, call.attempt_id)? else { return Ok(false) };
    let error = match result {
        Ok(call_id) => {
            db::attempts::set_provider_call_id(tx, call.attempt_id, &call_id)?;
            return Ok(false);
        }
        Err(e) => e,
    };
    if attempt.status != Status::Dialing {
        // A webhook already moved it: the call exists whatever the response said.
        return Ok(false);
    }
    let (status, placed) = match &error {
        ProviderError::Lead { .. } => (Status::Invalid, false),
        ProviderError::Unknown(_) => (Status::Unknown, true),
        _ => (Status::Failed, false),
    };
    if !placed {
        // Nothing was created: give the caller number its slot back.
        db::numbers::release(tx, call.caller_number_id, &call.usage_day)?;
    }
    let message = error.to_string();
    let progress = db::attempts::Progress { error: Some(&message), ..Default::default() };
    db::attempts::set_status(tx, &attempt, status, &progress, now_ms)?;
    Ok(true)
}
