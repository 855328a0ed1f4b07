//! Reconciliation of attempts that hold a concurrency slot without a final status.
//!
//! - With a provider call id, once past the longest possible call (or at start-up,
//!   when webhooks may have been missed): fetch the call; a final status is applied,
//!   an id the provider does not know becomes `unknown` and frees its slot.
//! - Without a call id (a create-call that got no reply, or a crash between writing
//!   the attempt and storing the reply): ask the provider for calls to that number
//!   from that caller ID since the attempt. A call found is adopted; none found means
//!   none was created, and the attempt is closed as `unknown` (never redialled).

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::calls::{self, StatusEvent};
use crate::db::{self, attempts::AttemptState};
use crate::domain::status::Status;
use crate::provider::CallSnapshot;
use crate::state::AppState;

/// A create-call in flight can take ~1 minute with retries; a `dialing` attempt with
/// no call id older than this was orphaned by a crash.
const ORPHAN_AFTER: chrono::Duration = chrono::Duration::minutes(5);
/// How long after a request with no reply the provider is asked about it.
const UNKNOWN_AFTER: chrono::Duration = chrono::Duration::seconds(60);
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
                            None => Found::None,
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
        Found::None => {
            if current.status != Status::Unknown {
                let error = "no final status and the provider has no record of the call";
                let progress = db::attempts::Progress { error: Some(error), ..Default::default() };
                db::attempts::set_status(tx, &current, Status::Unknown, &progress, now_ms)?;
                calls::after_final(tx, &current, Status::Unknown, now_ms)?;
            }
            db::attempts::end(tx, current.id, now_ms)?;
            Ok(true)
        }
    }
}

/// At start-up, every attempt made before this process started; then every minute,
/// those past their cut-offs (a call id: ring timeout + max call length + 5 minutes).
pub async fn run(state: AppState, started_ms: i64, shutdown: CancellationToken) {
    let startup = Cutoffs { stale_ms: started_ms, orphan_ms: started_ms, unknown_ms: started_ms };
    if let Err(e) = pass(&state, startup).await {
        tracing::error!(error = format!("{e:#}"), "start-up reconciliation failed");
    }
    let d = &state.config.dialing;
    let stale = chrono::Duration::seconds(i64::from(d.ring_timeout_seconds) + i64::from(d.max_call_seconds) + 300);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.cancelled() => return,
        }
        let now = Utc::now();
        let cutoffs = Cutoffs {
            stale_ms: db::to_ms(now - stale),
            orphan_ms: db::to_ms(now - ORPHAN_AFTER),
            unknown_ms: db::to_ms(now - UNKNOWN_AFTER),
        };
        if let Err(e) = pass(&state, cutoffs).await {
            tracing::error!(error = format!("{e:#}"), "reconciliation failed");
        }
    }
}
