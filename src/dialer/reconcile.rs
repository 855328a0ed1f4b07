//! Reconciliation of attempts that hold a concurrency slot without a final status.
//!
//! - With a provider call id, once past the longest possible call (or at start-up,
//!   when webhooks may have been missed): fetch the call; a final status is applied;
//!   an id the provider no longer reports closes the attempt as `unknown` (never
//!   retried: the call was placed and may have reached the person).
//! - Without a call id (a create-call that got no reply: `unknown`; or a crash between
//!   writing the attempt and storing the reply: `dialing`), once
//!   `provider.reconcile_after_seconds` old: ask the provider for calls to that number
//!   from that caller ID since the attempt. A call found is adopted; none found means
//!   none was created, so the claim is undone (`db::attempts::unplace`: the row goes,
//!   the caller-ID slot returns) and the lead is dialled again — but only with a
//!   provider whose list includes ended calls (`Provider::lists_ended_calls`: Twilio,
//!   Vapi). Telnyx lists only live calls, so there "none found" cannot tell "never
//!   created" from "created, ended, webhooks lost": the attempt is closed as `unknown`
//!   and not redialled. No lead is dialled twice unless the provider's list missed a
//!   call older than the cut-off.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::calls::{self, StatusEvent};
use crate::db::{self, attempts::AttemptState};
use crate::domain::status::Status;
use crate::provider::CallSnapshot;
use crate::state::AppState;

/// A create-call in flight can take ~1 minute with retries; a `dialing` attempt with
/// no call id older than this was orphaned by a crash of a previous run... or is
/// stuck in this one.
const ORPHAN_AFTER: chrono::Duration = chrono::Duration::minutes(5);
/// The longest sleep between passes.
const PERIOD: Duration = Duration::from_secs(60);
/// Calls created this long before the attempt row still count as its call (clocks).
const CLOCK_SLACK: chrono::Duration = chrono::Duration::seconds(60);

/// Which attempts a pass looks at: created before these instants (UTC ms).
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    /// Attempts with a call id.
    pub stale_ms: i64,
    /// `dialing` attempts without a call id.
    pub orphan_ms: i64,
    /// `unknown` attempts (no reply to create-call) still holding a slot.
    pub unknown_ms: i64,
}

enum Found {
    Call(CallSnapshot),
    None,
    /// Not in the provider's list, but the list shows only live calls: it may have
    /// been placed and ended.
    NotListed,
}

/// One pass. Returns how many attempts it resolved.
pub async fn pass(state: &AppState, cutoffs: Cutoffs) -> anyhow::Result<usize> {
    let open = state.db.read(|c| db::attempts::unresolved(c, i64::MAX)).await?;
    let mut resolved = 0;
    for attempt in open {
        let found = match &attempt.provider_call_id {
            Some(call_id) if attempt.created_at < cutoffs.stale_ms => match state.provider.fetch_call(call_id).await {
                Ok(Some(snap)) if snap.status.is_final() => Found::Call(snap),
                Ok(Some(_)) => continue,
                Ok(None) => Found::None,
                Err(e) => {
                    tracing::warn!(attempt_id = attempt.id, error = %e, "reconcile: provider lookup failed");
                    continue;
                }
            },
            None if (attempt.status == Status::Unknown && attempt.created_at < cutoffs.unknown_ms)
                || (attempt.status == Status::Dialing && attempt.created_at < cutoffs.orphan_ms) =>
            {
                let since = db::from_ms(attempt.created_at) - CLOCK_SLACK;
                match state.provider.find_calls(&attempt.to_number, &attempt.caller_number, since).await {
                    Ok(calls) => {
                        let known = state
                            .db
                            .read(move |c| {
                                calls
                                    .into_iter()
                                    .map(|call| Ok((db::attempts::call_id_taken(c, &call.call_id)?, call)))
                                    .collect::<anyhow::Result<Vec<_>>>()
                            })
                            .await?;
                        match known.into_iter().find(|(taken, _)| !taken) {
                            Some((_, call)) => Found::Call(call),
                            None if state.provider.lists_ended_calls() => Found::None,
                            None => Found::NotListed,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(attempt_id = attempt.id, error = %e, "reconcile: provider lookup failed");
                        continue;
                    }
                }
            }
            _ => continue,
        };
        let now_ms = db::to_ms(Utc::now());
        let id = attempt.id;
        let done = state.db.write(move |tx| resolve(tx, &attempt, found, now_ms)).await?;
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

/// Applies what the provider said. Returns true when the attempt's slot was freed.
fn resolve(tx: &db::Tx, seen: &AttemptState, found: Found, now_ms: i64) -> anyhow::Result<bool> {
    // Re-read inside the transaction: a webhook may have moved the attempt since.
    let Some(current) = db::attempts::state(tx, seen.id)? else { return Ok(false) };
    if current.status != seen.status || current.provider_call_id != seen.provider_call_id {
        return Ok(false);
    }
    match found {
        Found::Call(call) => {
            let event = StatusEvent {
                attempt_id: Some(current.id),
                sequence: format!("reconcile:{}", call.status),
                status: Some(call.status),
                raw_status: call.status.as_str().into(),
                answered_by: call.answered_by,
                duration_seconds: call.duration_seconds,
                params_json: "[]".into(),
                call_id: call.call_id,
            };
            Ok(matches!(calls::apply(tx, &event, now_ms)?, calls::Applied::Final(_)))
        }
        Found::None if current.provider_call_id.is_some() => {
            // The provider answered with this id once, so a call was placed, but it
            // cannot say how it ended (Telnyx reports only live calls; its webhooks were
            // lost). Closed as `unknown`, which is never retried: a guessed `failed`
            // would be retried and could reach a person a second time.
            let error = "a call was placed, but no final status came and the provider no longer reports it";
            let progress = db::attempts::Progress { error: Some(error), ..Default::default() };
            db::attempts::set_status(tx, &current, Status::Unknown, &progress, now_ms)?;
            calls::after_final(tx, &current, Status::Unknown, now_ms)?;
            db::attempts::end(tx, current.id, now_ms)?;
            Ok(true)
        }
        Found::NotListed => {
            let error = "no reply to the create-call and the provider lists only live calls: \
                         it may have been placed, so it is not redialled";
            let progress = db::attempts::Progress { error: Some(error), ..Default::default() };
            db::attempts::set_status(tx, &current, Status::Unknown, &progress, now_ms)?;
            calls::after_final(tx, &current, Status::Unknown, now_ms)?;
            db::attempts::end(tx, current.id, now_ms)?;
            Ok(true)
        }
        Found::None => {
            // Not placed: the provider has no call to this number from this caller ID
            // since the attempt. The claim is undone and the lead dialled again now.
            let why = "not placed: no reply, and the provider has no record of the call";
            db::attempts::unplace(tx, &current, now_ms, why, now_ms)?;
            Ok(true)
        }
    }
}

/// The cut-offs of a pass at `now` (UTC ms): calls with an id after ring timeout +
/// max call length + `after`; requests with no reply after `after`; orphans after
/// [`ORPHAN_AFTER`], or `after` for those of a previous run (before `started_ms`).
pub fn cutoffs(now_ms: i64, started_ms: i64, stale: chrono::Duration, after: chrono::Duration) -> Cutoffs {
    let after_ms = after.num_milliseconds();
    Cutoffs {
        stale_ms: now_ms - (stale + after).num_milliseconds(),
        orphan_ms: (now_ms - ORPHAN_AFTER.num_milliseconds()).max(started_ms.min(now_ms - after_ms)),
        unknown_ms: now_ms - after_ms,
    }
}

/// At start-up, every attempt with a call id made before this process started, and
/// those without one once `provider.reconcile_after_seconds` old; then a pass every
/// minute (or every `reconcile_after_seconds` if shorter), and `reconcile_after_seconds`
/// after a create-call that got no reply (`Wake::reconcile`).
pub async fn run(state: AppState, started_ms: i64, shutdown: CancellationToken) {
    let startup = Cutoffs { stale_ms: started_ms, ..cutoffs_now(&state, started_ms) };
    if let Err(e) = pass(&state, startup).await {
        tracing::error!(error = format!("{e:#}"), "start-up reconciliation failed");
    }
    let after = Duration::from_secs_f64(state.config.provider.reconcile_after_seconds);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PERIOD.min(after)) => {}
            _ = state.wake.reconcile.notified() => {
                // The new `unknown` attempt is due `after` from its creation.
                tokio::select! {
                    _ = tokio::time::sleep(after) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            _ = shutdown.cancelled() => return,
        }
        if let Err(e) = pass(&state, cutoffs_now(&state, started_ms)).await {
            tracing::error!(error = format!("{e:#}"), "reconciliation failed");
        }
    }
}

fn cutoffs_now(state: &AppState, started_ms: i64) -> Cutoffs {
    let d = &state.config.dialing;
    let stale = chrono::Duration::seconds(i64::from(d.ring_timeout_seconds) + i64::from(d.max_call_seconds));
    let after = chrono::Duration::milliseconds((state.config.provider.reconcile_after_seconds * 1000.0) as i64);
    cutoffs(db::to_ms(Utc::now()), started_ms, stale, after)
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
