//! The call loop: claim (one transaction: lead, compliance, caller ID, attempt row)
//! → provider create call → record the provider's answer. Calls-per-second pacing
//! spaces claims; the claim itself refuses to exceed `max_concurrent_calls`.

pub mod claim;
pub mod health;
pub mod limits;
pub mod reconcile;
pub mod rotation;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod retry_tests;
#[cfg(test)]
mod year_sim;

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

/// Create-call requests refused as "not processed" (429/20429, no connection) are
/// sent again this many times, with exponential backoff from `RETRY_BASE`.
const RETRIES: u32 = 3;
const RETRY_BASE: Duration = Duration::from_millis(250);
/// How long the loop holds after the provider was unreachable or throttling.
const HOLD_TRANSIENT: chrono::Duration = chrono::Duration::seconds(60);
/// How long it holds after the provider refused our configuration (auth, permissions).
const HOLD_CONFIG: chrono::Duration = chrono::Duration::minutes(5);

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
        if let Some((until, _)) = state.loops().hold {
            let wait = (until - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            if !wait.is_zero() {
                state.update_loops(|l| l.dialer_alive_at = Some(Utc::now()));
                tokio::select! {
                    _ = tokio::time::sleep(wait.min(MAX_IDLE)) => {}
                    _ = shutdown.cancelled() => return,
                }
                continue;
            }
            state.update_loops(|l| l.hold = None);
        }
        let rules = state.rules();
        // `now` is read inside the transaction: the writer may have been busy, and the
        // calling-hours check must use the moment the claim is actually made.
        let claimed = state.db.write(move |tx| claim::claim(tx, &rules, Utc::now())).await;
        state.update_loops(|l| l.dialer_alive_at = Some(Utc::now()));
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
                // The transaction was rolled back: so were the rotation's picks.
                state.rules().reset_rotation();
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

/// Why a claimed call was not placed after all.
enum NotPlaced {
    Provider(ProviderError),
    /// The lead's calling hours closed while a refused request waited to be retried.
    HoursClosed,
}

/// Asks the provider for the call and records its answer. Runs detached from the
/// loop so several create-call requests can be under way at once.
async fn place(state: AppState, call: Claimed) {
    let request = CallRequest {
        attempt_id: call.attempt_id,
        to: call.to.clone(),
        from: call.from.clone(),
        from_provider_id: call.from_provider_id.clone(),
        amd: call.amd,
    };
    let mut delay = RETRY_BASE;
    let mut result = Err(NotPlaced::HoursClosed);
    for attempt in 0..=RETRIES {
        if attempt > 0 {
            tokio::time::sleep(delay).await;
            delay *= 2;
            let states: Vec<&str> = call.states.iter().map(String::as_str).collect();
            if !call.compliance.gate_with(call.window, call.allowed_days).is_open(&call.zones, &states, Utc::now()) {
                result = Err(NotPlaced::HoursClosed);
                break;
            }
        }
        result = state.provider.create_call(&request).await.map_err(NotPlaced::Provider);
        match &result {
            Err(NotPlaced::Provider(ProviderError::Retry(e))) if attempt < RETRIES => {
                tracing::warn!(attempt_id = call.attempt_id, error = %e, "create call not processed; retrying");
            }
            _ => break,
        }
    }
    if let Err(NotPlaced::Provider(e)) = &result {
        tracing::warn!(attempt_id = call.attempt_id, lead_id = call.lead_id, error = %e, "create call failed");
    }
    let now = Utc::now();
    let hold = match &result {
        Ok(_) => None,
        Err(NotPlaced::Provider(e @ ProviderError::Config { .. })) => {
            Some((now + HOLD_CONFIG, format!("the provider refused our configuration: {e}")))
        }
        Err(NotPlaced::Provider(e @ (ProviderError::Retry(_) | ProviderError::Throttle(_)))) => {
            Some((now + HOLD_TRANSIENT, format!("the provider is unreachable or throttling: {e}")))
        }
        Err(_) => None,
    };
    let retry_at = hold.as_ref().map_or(now, |(until, _)| *until);
    // The hold is set before the record wakes the loop, so the loop cannot slip in
    // another request to a provider that just refused one.
    state.update_loops(|l| match hold {
        Some((until, reason)) => {
            l.provider_alert = reason.contains("configuration").then(|| reason.clone());
            l.hold = Some((until, reason));
        }
        None => l.provider_alert = None,
    });
    let recorded = state.db.write(move |tx| record(tx, &call, result, retry_at, db::to_ms(now))).await;
    match recorded {
        Ok(true) => state.wake.dialer.notify_one(),
        Ok(false) => {}
        Err(e) => tracing::error!(error = format!("{e:#}"), "recording create-call result failed"),
    }
}

/// Stores the outcome of a create-call. Returns true when a concurrency slot was freed.
fn record(
    tx: &Tx,
    call: &Claimed,
    result: Result<String, NotPlaced>,
    retry_at: chrono::DateTime<Utc>,
    now_ms: i64,
) -> anyhow::Result<bool> {
    let Some(attempt) = db::attempts::state(tx, call.attempt_id)? else { return Ok(false) };
    let error = match result {
        Ok(call_id) => {
            db::attempts::set_provider_call_id(tx, call.attempt_id, &call_id)?;
            return Ok(false);
        }
        Err(e) => e,
    };
    if attempt.status != Status::Dialing || attempt.provider_call_id.is_some() {
        // A webhook already moved it: the call exists whatever the response said.
        return Ok(false);
    }
    let error = match error {
        // Nothing was created: the claim is undone and the lead waits for its turn.
        NotPlaced::HoursClosed => {
            let states: Vec<&str> = call.states.iter().map(String::as_str).collect();
            let gate = call.compliance.gate_with(call.window, call.allowed_days);
            let next = gate.next_open(&call.zones, &states, db::from_ms(now_ms)).unwrap_or(retry_at);
            db::attempts::unplace(tx, &attempt, db::to_ms(next), now_ms)?;
            return Ok(true);
        }
        NotPlaced::Provider(ProviderError::Retry(_) | ProviderError::Throttle(_) | ProviderError::Config { .. }) => {
            db::attempts::unplace(tx, &attempt, db::to_ms(retry_at), now_ms)?;
            return Ok(true);
        }
        NotPlaced::Provider(e) => e,
    };
    let status = match &error {
        ProviderError::Lead { .. } => Status::Invalid,
        // The call may exist: it keeps its cap slot and its concurrency slot until
        // the reconciler learns what the provider did.
        ProviderError::Unknown(_) => Status::Unknown,
        _ => Status::Failed,
    };
    if status != Status::Unknown {
        // Refused: nothing was created, so the caller number gets its slot back.
        db::numbers::release(tx, call.caller_number_id, &call.usage_day, now_ms)?;
    }
    let message = error.to_string();
    let progress = db::attempts::Progress { error: Some(&message), ..Default::default() };
    db::attempts::set_status(tx, &attempt, status, &progress, now_ms)?;
    crate::calls::after_final(tx, &attempt, status, now_ms)?;
    Ok(status != Status::Unknown)
}
