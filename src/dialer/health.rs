//! The health loop: every `rotation.health_check_minutes` (and when a rest ends),
//! derive spam scores from each number's own recent calls, then apply the health
//! policy (`numbers::health::enforce`): rest at-risk numbers, quarantine flagged
//! ones, restore rested numbers that improved, and flag what the resting-share
//! limit kept dialling. Every change goes to the number's history, by `health`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use crate::config::Rotation;
use crate::db::number_admin::{self, Change};
use crate::db::{self, Db, from_ms, to_ms};
use crate::dialer::claim::local_day;
use crate::numbers::health::{self, Action, Band, Derivation, Sample, Status, View};
use crate::state::AppState;

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let every = Duration::from_secs(u64::from(state.config.rotation.health_check_minutes) * 60);
    loop {
        let wait = match check(&state.db, &state.config.rotation, state.resolved.timezone, Utc::now()).await {
            Ok(changed) => {
                if changed > 0 {
                    state.wake.dialer.notify_one();
                }
                let next_rest = state.db.read(db::numbers::earliest_rest_until).await.ok().flatten();
                next_rest
                    .map(|ms| (from_ms(ms) - Utc::now()).to_std().unwrap_or(Duration::ZERO) + Duration::from_secs(1))
                    .map_or(every, |d| d.min(every))
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "health check failed");
                every
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.wake.health.notified() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// One pass at `now` with the `[rotation]` settings and the configured zone;
/// returns how many numbers changed status.
pub async fn check(db: &Db, r: &Rotation, timezone: Tz, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let derivation = Derivation { min_calls: r.health_min_calls as usize, short_call_seconds: r.short_call_seconds };
    let (window, policy, day) = (r.health_window_calls, r.policy(), local_day(timezone, now));
    // Read on a reader connection: sampling every number's last calls must not hold
    // the writer (and with it every claim) for the length of the scan.
    let (numbers, samples) = db
        .read(move |c| {
            let numbers = number_admin::list(c, &day)?;
            let mut samples = Vec::with_capacity(numbers.len());
            for n in &numbers {
                let calls = number_admin::recent_calls(c, n.id, window)?;
                samples.push(
                    calls
                        .iter()
                        .map(|c| Sample { answered: c.answered, duration_seconds: c.duration_seconds })
                        .collect::<Vec<_>>(),
                );
            }
            Ok((numbers, samples))
        })
        .await?;
    let rates: Vec<f64> = samples.iter().filter_map(|s| health::answer_rate(s, &derivation)).collect();
    let median = health::median(&rates);
    let mut changes: Vec<(i64, Change, String)> = Vec::new();
    let mut views = Vec::with_capacity(numbers.len());
    for (n, s) in numbers.iter().zip(&samples) {
        let mut score = n.spam_score;
        // A score set by hand or imported stands until a person changes it.
        if n.spam_source.as_deref().is_none_or(|src| src == "derived")
            && let Some(derived) = health::derived_score(s, median, &derivation)
            && Some(derived) != n.spam_score
        {
            let change = Change { spam_score: Some((Some(derived), "derived".into())), ..Change::default() };
            changes.push((n.id, change, "from its last calls".into()));
            score = Some(derived);
        }
        views.push(View {
            id: n.id,
            pool: n.pool.clone(),
            status: status_of(&n.status),
            band: Band::of(score),
            rest_until: n.rest_until.map(from_ms),
            rotation_enabled: n.rotation_enabled,
        });
    }
    let mut changed = 0;
    for action in health::enforce(&views, &policy, now) {
        // A flag repeats every pass while the condition holds; it only changes the
        // note (and history) when its text changes, and frees no capacity.
        changed += usize::from(!matches!(action, Action::Flag { .. }));
        changes.push(match action {
            Action::Rest { id, until, reason } | Action::ExtendRest { id, until, reason } => {
                (id, Change { status: Some(("resting".into(), Some(to_ms(until)))), ..Change::default() }, reason)
            }
            Action::Quarantine { id, reason } => {
                (id, Change { status: Some(("quarantined".into(), None)), ..Change::default() }, reason)
            }
            Action::Restore { id, reason } => {
                (id, Change { status: Some(("active".into(), None)), ..Change::default() }, reason)
            }
            Action::Flag { id, reason } => {
                (id, Change { attention: Some(Some(reason.clone())), ..Change::default() }, reason)
            }
        });
    }
    if changes.is_empty() {
        return Ok(0);
    }
    let now_ms = to_ms(now);
    db.write(move |tx| {
        for (id, change, reason) in &changes {
            number_admin::apply(tx, *id, change, reason, "health", now_ms)?;
        }
        Ok(())
    })
    .await?;
    Ok(changed)
}

pub fn status_of(s: &str) -> Status {
    match s {
        "resting" => Status::Resting,
        "quarantined" => Status::Quarantined,
        "retired" => Status::Retired,
        _ => Status::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialer::fixtures::{add_numbers, store};

    /// Ended calls for `number_id`: `answered` of `total` answered, each lasting `seconds`.
    fn calls(db: &Db, number_id: i64, total: u32, answered: u32, seconds: u32) {
        db.write_blocking(|tx| {
            let lead: i64 = tx.query_row(
                "INSERT INTO leads (uuid, phone, created_at, updated_at) VALUES (hex(randomblob(16)), ?1, 0, 0)
                 RETURNING id",
                [format!("+1415700{number_id:02}00")],
                |r| r.get(0),
            )?;
            for i in 0..total {
                let status = if i < answered { "completed" } else { "no_answer" };
                tx.execute(
                    "INSERT INTO attempts (lead_id, caller_number_id, caller_number, to_number, usage_day, provider,
                                           status, created_at, ended_at, duration_seconds)
                     VALUES (?1, ?2, '', '', '2026-01-01', 'test', ?3, 0, 1, ?4)",
                    rusqlite::params![lead, number_id, status, seconds],
                )?;
            }
            Ok(())
        })
        .unwrap();
    }

    /// Scores are derived from each number's own calls against the pool's median;
    /// the one far below it is rested, within the resting share; a score set by
    /// hand is left alone.
    #[tokio::test]
    async fn derived_scores_rest_the_number_that_nobody_answers() {
        let s = store();
        let numbers: Vec<(String, u32, u8)> = (0..4).map(|i| (format!("+1202237010{i}"), 100, 5)).collect();
        let ids = add_numbers(&s.db, &numbers);
        for id in &ids[..3] {
            calls(&s.db, *id, 30, 15, 60); // 50 % answered, long calls
        }
        calls(&s.db, ids[3], 30, 3, 2); // 10 % answered, all hung up at once
        let r = Rotation { max_resting_share_percent: 25, ..Rotation::default() };
        let now = Utc::now();
        let tz: Tz = "America/New_York".parse().unwrap();
        assert_eq!(check(&s.db, &r, tz, now).await.unwrap(), 1);
        let rows = s.db.read_blocking(|c| number_admin::list(c, "")).unwrap();
        let bad = rows.iter().find(|n| n.id == ids[3]).unwrap();
        // 70 × (1 − 0.1/0.5) + 30 × 1 = 86: flagged → quarantined (1 of 4 = the 25 % share).
        assert_eq!((bad.spam_score, bad.spam_source.as_deref()), (Some(86), Some("derived")));
        assert_eq!(bad.status, "quarantined");
        assert!(rows.iter().filter(|n| n.id != ids[3]).all(|n| n.spam_score == Some(0) && n.status == "active"));

        // A person's score stands: the next pass does not overwrite it.
        let manual = Change { spam_score: Some((Some(40), "manual".into())), ..Change::default() };
        s.db.write_blocking(|tx| number_admin::apply(tx, ids[0], &manual, "", "user", 0)).unwrap();
        check(&s.db, &r, tz, now).await.unwrap();
        let rows = s.db.read_blocking(|c| number_admin::list(c, "")).unwrap();
        assert_eq!(rows.iter().find(|n| n.id == ids[0]).unwrap().spam_score, Some(40));
    }
}
