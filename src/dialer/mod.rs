//! The call loop: claim (one transaction: lead, compliance, caller ID, attempt row)
//! → provider create call → record the provider's answer. Calls-per-second pacing
//! spaces claims; the claim itself refuses to exceed `max_concurrent_calls`.

pub mod claim;
pub mod health;
pub mod limits;
pub mod reconcile;
pub mod rotation;
pub mod test_call;

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
use crate::provider::errors::{self, Action};
use crate::provider::{CallRequest, ProviderError};
use crate::state::{AppState, LoopStatus};

/// Safety net for idle waits; wake-ups normally come from `Wake::dialer`.
const MAX_IDLE: Duration = Duration::from_secs(60);

/// Create-call requests refused as "not processed" (429/20429, no connection) are
/// sent again this many times, with exponential backoff from `RETRY_BASE`.
const RETRIES: u32 = 3;
const RETRY_BASE: Duration = Duration::from_millis(250);
/// How long the loop holds after the provider was unreachable or throttling.
const HOLD_TRANSIENT: chrono::Duration = chrono::Duration::seconds(60);
/// How long it holds after the provider refused our credentials.
const HOLD_CONFIG: chrono::Duration = chrono::Duration::minutes(5);
/// How long it holds after the provider's concurrency limit (the lowered cap does
/// the rest: calls must end before new ones start).
const HOLD_THROTTLE: chrono::Duration = chrono::Duration::seconds(10);
/// One slot of a lowered in-flight cap comes back per this many calls placed.
pub const RESTORE_EVERY: u32 = 10;
/// A provider alert stays on the dashboard this long after it last happened.
pub const ALERT_TTL: chrono::Duration = chrono::Duration::hours(24);

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
        // `select!` picks a ready branch at random: without this a due slot could win
        // over the shutdown and start another call after the signal.
        if shutdown.is_cancelled() {
            return;
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
    /// The provider's error and what the error table says to do about it.
    Provider(ProviderError, Action),
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
    let provider = state.provider.name();
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
        result = state.provider.create_call(&request).await.map_err(|e| {
            state.metrics.provider_error(provider, &e);
            let action = errors::action(provider, &e);
            NotPlaced::Provider(e, action)
        });
        match &result {
            Err(NotPlaced::Provider(e, Action::RetryWithBackoff)) if attempt < RETRIES => {
                tracing::warn!(attempt_id = call.attempt_id, error = %e, "create call not processed; retrying");
            }
            _ => break,
        }
    }
    if let Err(NotPlaced::Provider(e, action)) = &result {
        tracing::warn!(attempt_id = call.attempt_id, lead_id = call.lead_id, error = %e, ?action, "create call failed");
    }
    let now = Utc::now();
    let configured = state.config.dialing.max_concurrent_calls;
    // The hold is set before the record wakes the loop, so the loop cannot slip in
    // another request to a provider that just refused one.
    let mut retry_at = now;
    state.update_loops(|l| retry_at = after_request(l, configured, provider, &call, &result, now));
    let unknown = matches!(result, Err(NotPlaced::Provider(_, Action::Reconcile)));
    let recorded = state.db.write(move |tx| record(tx, &call, result, retry_at, db::to_ms(now))).await;
    match recorded {
        Ok(true) => state.wake.dialer.notify_one(),
        Ok(false) => {}
        Err(e) => tracing::error!(error = format!("{e:#}"), "recording create-call result failed"),
    }
    if unknown {
        state.wake.reconcile.notify_one();
    }
}

/// What a create-call's result does to dialing: holds, the lowered in-flight cap and
/// its gradual return, dashboard alerts. Returns when the lead may be tried again
/// if its claim is undone.
fn after_request(
    l: &mut LoopStatus,
    configured: u32,
    provider: &str,
    call: &Claimed,
    result: &Result<String, NotPlaced>,
    now: chrono::DateTime<Utc>,
) -> chrono::DateTime<Utc> {
    l.provider_alerts.retain(|_, (_, at)| now - *at < ALERT_TTL);
    let (e, action) = match result {
        Ok(_) => {
            (l.effective_max_concurrent, l.placed_since_throttle) =
                restored(l.effective_max_concurrent, l.placed_since_throttle, configured);
            return now;
        }
        Err(NotPlaced::HoursClosed) => return now,
        Err(NotPlaced::Provider(e, action)) => (e, *action),
    };
    let (until, reason) = match action {
        Action::RetryWithBackoff => (now + HOLD_TRANSIENT, format!("the provider is unreachable or throttling: {e}")),
        Action::LowerConcurrency => {
            let cap = lowered(l.effective_max_concurrent.unwrap_or(configured));
            (l.effective_max_concurrent, l.placed_since_throttle) = (Some(cap), 0);
            let reason = format!("the provider's concurrency limit was reached ({e}); calls at once lowered to {cap}");
            (now + HOLD_THROTTLE, reason)
        }
        Action::PauseForCredentials => {
            let what = errors::operator_text(provider, e).unwrap_or("The provider refused our credentials");
            (now + HOLD_CONFIG, format!("{what} ({e})"))
        }
        Action::FailAndAlertGeo => {
            let country = country_of(&call.to);
            let text = format!(
                "The provider refused a call to {} for its geographic permissions ({e}): allow {country} in {}",
                call.to,
                errors::GEO_SETTING
            );
            l.provider_alerts.insert(format!("geo:{country}"), (text, now));
            return now;
        }
        Action::DropCallerId => {
            let text = format!(
                "Caller ID {} is not a number of the provider account nor a verified caller ID ({e}): it was \
                 taken out of rotation; verify or buy it, then enable it on the Numbers page",
                call.from
            );
            l.provider_alerts.insert(format!("caller_id:{}", call.from), (text, now));
            return now;
        }
        Action::Reconcile | Action::LeadInvalid | Action::Fail => return now,
    };
    l.hold = Some((until, reason));
    until
}

/// "GB (+44)" for an E.164 number, for alerts; the number itself if it cannot be read.
fn country_of(e164: &str) -> String {
    match phonenumber::parse(None, e164) {
        Ok(n) => match n.country().id() {
            Some(id) => format!("{} (+{})", id.as_ref(), n.country().code()),
            None => format!("+{}", n.country().code()),
        },
        Err(_) => e164.to_string(),
    }
}

/// The in-flight cap after the provider's concurrency limit: half the current one.
pub fn lowered(current: u32) -> u32 {
    (current / 2).max(1)
}

/// After one more call placed: a lowered cap gains a slot every [`RESTORE_EVERY`]
/// calls and is dropped (None) once back at `configured`. Returns (cap, count).
pub fn restored(effective: Option<u32>, placed: u32, configured: u32) -> (Option<u32>, u32) {
    match effective {
        None => (None, 0),
        Some(cap) if placed + 1 >= RESTORE_EVERY => ((cap + 1 < configured).then_some(cap + 1), 0),
        Some(cap) => (Some(cap), placed + 1),
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
    let (error, action) = match error {
        // Nothing was created: the claim is undone and the lead waits for its turn.
        NotPlaced::HoursClosed => {
            let states: Vec<&str> = call.states.iter().map(String::as_str).collect();
            let gate = call.compliance.gate_with(call.window, call.allowed_days);
            let next = gate.next_open(&call.zones, &states, db::from_ms(now_ms)).unwrap_or(retry_at);
            let why = "not placed: the number's calling hours closed while the request was retried";
            db::attempts::unplace(tx, &attempt, db::to_ms(next), why, now_ms)?;
            return Ok(true);
        }
        NotPlaced::Provider(e, action) => (e, action),
    };
    let status = match action {
        Action::RetryWithBackoff | Action::LowerConcurrency | Action::PauseForCredentials => {
            db::attempts::unplace(tx, &attempt, db::to_ms(retry_at), &format!("not placed: {error}"), now_ms)?;
            return Ok(true);
        }
        Action::DropCallerId => {
            // The number cannot dial on this account: out of rotation (with its reason
            // in the number's history), and the lead goes to another number.
            db::attempts::unplace(tx, &attempt, now_ms, &format!("not placed: {error}"), now_ms)?;
            let reason = format!("the provider refused it as caller ID: {error}");
            let change = db::number_admin::Change {
                rotation_enabled: Some(false),
                attention: Some(Some(reason.clone())),
                ..Default::default()
            };
            db::number_admin::apply(tx, call.caller_number_id, &change, &reason, "provider", now_ms)?;
            return Ok(true);
        }
        // The call may exist: it keeps its cap slot and its concurrency slot until
        // the reconciler learns what the provider did.
        Action::Reconcile => {
            db::reconcile::mark_unknown(tx, attempt.id, &error.to_string())?;
            return Ok(false);
        }
        Action::LeadInvalid => Status::Invalid,
        Action::FailAndAlertGeo | Action::Fail => Status::Failed,
    };
    // Refused: nothing was created, so the caller number gets its slot back.
    db::numbers::release(tx, call.caller_number_id, &call.usage_day, now_ms)?;
    let message = error.to_string();
    let progress = db::attempts::Progress { error: Some(&message), ..Default::default() };
    db::attempts::set_status(tx, &attempt, status, &progress, now_ms)?;
    crate::calls::after_final(tx, &attempt, status, now_ms)?;
    Ok(true)
}

#[cfg(test)]
mod throttle_tests {
    use super::*;

    #[test]
    fn a_concurrency_limit_halves_the_cap_and_placed_calls_restore_it() {
        assert_eq!(lowered(20), 10);
        assert_eq!(lowered(1), 1);
        let (mut cap, mut placed) = (Some(lowered(4)), 0);
        let mut calls = 0;
        while cap.is_some() {
            (cap, placed) = restored(cap, placed, 4);
            calls += 1;
            assert!(cap.is_none_or(|c| c < 4), "never above the configured cap");
        }
        assert_eq!(calls, 2 * RESTORE_EVERY, "one slot back per {RESTORE_EVERY} calls: 2 → 3 → 4");
        assert_eq!(restored(None, 5, 4), (None, 0), "an unlowered cap stays the configured one");
    }
}
