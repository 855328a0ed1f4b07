//! systemd integration over the `sd_notify` protocol (the `sd-notify` crate): `READY=1`
//! once the listener is bound and the loops run, `STOPPING=1` when shutdown begins, and
//! `WATCHDOG=1` every half `WatchdogSec` while the process is doing its job. Every
//! call is a no-op when `NOTIFY_SOCKET` is unset (not started by systemd, tests).
//!
//! The watchdog is the point: a ping is sent only while the scheduler and the call
//! loop have reported recently (`AppState::loops_alive`) and the database takes a
//! write. A wedged loop or a store that refuses writes stops the pings, and systemd
//! (`WatchdogSec`, `Restart=on-watchdog`/`on-failure`) kills and restarts the service.

use std::time::Duration;

use chrono::Utc;
use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Tells systemd the service is up (`Type=notify` holds dependants until then).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd shutdown has begun (it then waits up to `TimeoutStopSec`).
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping: draining requests and calls")]);
}

fn send(state: &[NotifyState]) {
    // A notification that cannot be sent (socket gone) must not stop the dialer;
    // systemd then judges us by its own timeouts.
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "systemd notification failed");
    }
}

/// How often to consider a ping: half of `WATCHDOG_USEC` (systemd's advice), or
/// None when the watchdog is off. `WATCHDOG_PID`, when set, must be this process.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|timeout| timeout / 2).filter(|d| !d.is_zero())
}

/// What one watchdog tick does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ping,
    /// Withhold the ping, for this reason (logged; systemd restarts us if it lasts).
    Skip(String),
}

/// The watchdog's rule: ping only when the scheduler and the call loop are alive and
/// the database took a write (`db` is the outcome of that write, or why it failed).
pub fn decide(scheduler_alive: bool, dialer_alive: bool, db: Result<(), String>) -> Verdict {
    let mut wrong = Vec::new();
    if !scheduler_alive {
        wrong.push("the scheduler has not reported".to_string());
    }
    if !dialer_alive {
        wrong.push("the call loop has not reported".to_string());
    }
    if let Err(e) = db {
        wrong.push(format!("the database refused a write: {e}"));
    }
    if wrong.is_empty() { Verdict::Ping } else { Verdict::Skip(wrong.join("; ")) }
}

/// Pings the watchdog every `interval` while [`decide`] says so, until `shutdown`.
/// Runs only when [`watchdog_interval`] is Some.
pub async fn watchdog(state: AppState, interval: Duration, shutdown: CancellationToken) {
    // The first tick one interval from now, not at once: READY=1 comes first.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut skipping = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        // A write stuck behind a lock counts as a refusal once it outlasts the tick:
        // the next tick must not start late, or systemd would kill a healthy process.
        let db = match tokio::time::timeout(interval, state.db.ping_write()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err(format!("no answer within {} ms", interval.as_millis())),
        };
        let (scheduler_alive, dialer_alive) = state.loops_alive(Utc::now());
        match decide(scheduler_alive, dialer_alive, db) {
            Verdict::Ping => {
                if skipping {
                    tracing::info!("watchdog: healthy again, pinging systemd");
                    skipping = false;
                }
                send(&[NotifyState::Watchdog]);
            }
            Verdict::Skip(reason) => {
                tracing::error!(%reason, "watchdog: not pinging systemd; it restarts the service if this lasts");
                skipping = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_only_when_both_loops_are_alive_and_the_database_writes() {
        assert_eq!(decide(true, true, Ok(())), Verdict::Ping);
        for (scheduler, dialer, db) in [
            (false, true, Ok(())),
            (true, false, Ok(())),
            (false, false, Ok(())),
            (true, true, Err("disk I/O error".to_string())),
            (false, false, Err("locked".to_string())),
        ] {
            assert!(matches!(decide(scheduler, dialer, db.clone()), Verdict::Skip(_)), "{scheduler} {dialer} {db:?}");
        }
    }

    #[test]
    fn the_skip_reason_names_every_failure() {
        let Verdict::Skip(reason) = decide(false, true, Err("database is locked".into())) else {
            panic!("expected a skip");
        };
        assert!(reason.contains("scheduler"), "{reason}");
        assert!(!reason.contains("call loop"), "{reason}");
        assert!(reason.contains("database is locked"), "{reason}");
        let Verdict::Skip(reason) = decide(true, false, Ok(())) else { panic!("expected a skip") };
        assert_eq!(reason, "the call loop has not reported");
    }
}
