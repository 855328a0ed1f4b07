//! The retry rule (ours): after an attempt ends, does its lead get another one in the
//! same schedule, and when? Pure; applied in the same transaction as the final status
//! (`calls::apply`, the create-call result), so a lead is never left between states.
//!
//! The rule, in order:
//! 1. `completed`, `do_not_call`, `invalid`, `canceled` and `unknown` are never
//!    retried (a completed or opted-out lead is done; an `unknown` call may exist and
//!    a retry could place a second paid call — pitfalls.md).
//! 2. Only the campaign's `retry_outcomes` are retried (default no-answer, busy, failed).
//! 3. Never past `max_attempts` attempts in the schedule (the first call included).
//! 4. Not while the campaign is cancelled or completed.
//! 5. Otherwise the next attempt is due `retry_delay_minutes` after the call ended; the
//!    claim then applies calling hours, DNC and the rolling 24-hour cap as for any call.

use chrono::{DateTime, Duration, Utc};

use crate::campaigns::{CampaignStatus, Checked};
use crate::domain::status::Status;

/// What happens after an attempt's outcome, with the sentence shown on the lead's
/// attempt history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Attempt `attempt` (1-based, of `max`) becomes due at `at` (UTC).
    Retry { at: DateTime<Utc>, attempt: u32, max: u32, note: String },
    /// No further attempt in this schedule.
    Done { note: String },
}

impl Next {
    pub fn note(&self) -> &str {
        match self {
            Next::Retry { note, .. } | Next::Done { note } => note,
        }
    }
}

/// Decides what follows attempt number `attempt_number` (1-based) ending with
/// `outcome` at `ended` (UTC), under the campaign's checked settings and status.
pub fn next(
    settings: &Checked,
    campaign: CampaignStatus,
    outcome: Status,
    attempt_number: u32,
    ended: DateTime<Utc>,
) -> Next {
    let done = |why: String| Next::Done { note: why };
    match outcome {
        Status::Completed => return done("not retried: the call was completed".into()),
        Status::DoNotCall => return done("not retried: the lead opted out".into()),
        Status::Invalid => return done("not retried: the number is invalid".into()),
        Status::Unknown => {
            return done("not retried: the provider may have placed this call (unknown); never redialled".into());
        }
        Status::Canceled => return done("not retried: the call was canceled".into()),
        _ => {}
    }
    if !settings.retry_outcomes.contains(&outcome) {
        return done(format!("not retried: {outcome} is not among this campaign's retry outcomes"));
    }
    if attempt_number >= settings.max_attempts {
        return done(format!("not retried: {attempt_number} of {} attempts used", settings.max_attempts));
    }
    if campaign.is_final() {
        return done(format!("not retried: the campaign is {campaign}"));
    }
    let at = ended + Duration::minutes(i64::from(settings.retry_delay_minutes));
    let attempt = attempt_number + 1;
    let max = settings.max_attempts;
    let note = format!(
        "{outcome}: attempt {attempt} of {max} after {} min, at {} UTC (or when calling hours next allow)",
        settings.retry_delay_minutes,
        at.format("%Y-%m-%d %H:%M")
    );
    Next::Retry { at, attempt, max, note }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::status::ALL;

    fn t0() -> DateTime<Utc> {
        "2026-11-21T15:00:00Z".parse().unwrap()
    }

    #[test]
    fn default_settings_retry_no_answer_busy_failed_twice() {
        let s = Checked::default();
        let running = CampaignStatus::Running;
        let Next::Retry { at, attempt, max, note } = next(&s, running, Status::Busy, 1, t0()) else { panic!() };
        assert_eq!((at, attempt, max), (t0() + Duration::minutes(60), 2, 3));
        assert!(note.starts_with("busy: attempt 2 of 3 after 60 min, at 2026-11-21 16:00 UTC"), "{note}");
        assert!(matches!(next(&s, running, Status::NoAnswer, 2, t0()), Next::Retry { attempt: 3, .. }));
        assert_eq!(next(&s, running, Status::Failed, 3, t0()).note(), "not retried: 3 of 3 attempts used");
        assert_eq!(
            next(&s, running, Status::Voicemail, 1, t0()).note(),
            "not retried: voicemail is not among this campaign's retry outcomes"
        );
        assert_eq!(
            next(&s, CampaignStatus::Cancelled, Status::Busy, 1, t0()).note(),
            "not retried: the campaign is cancelled"
        );
        // Paused: the retry is queued; the pause holds it like any other lead.
        assert!(matches!(next(&s, CampaignStatus::Paused, Status::Busy, 1, t0()), Next::Retry { .. }));
    }

    proptest! {
        /// Whatever the settings: never retried past max_attempts, never a final
        /// lead state, only configured outcomes, never before the delay.
        #[test]
        fn never_over_max_attempts_or_outside_the_chosen_outcomes(
            max in 1u32..=10, delay in 1u32..=10_000, n in 1u32..=12, outcome in 0usize..ALL.len(),
            chosen in proptest::collection::vec(0usize..4, 0..4),
        ) {
            let outcomes: Vec<Status> = chosen.iter().map(|i| crate::campaigns::settings::RETRYABLE[*i]).collect();
            let s = Checked { max_attempts: max, retry_delay_minutes: delay, retry_outcomes: outcomes.clone(), ..Checked::default() };
            let outcome = ALL[outcome];
            match next(&s, CampaignStatus::Running, outcome, n, t0()) {
                Next::Retry { at, attempt, max: m, .. } => {
                    prop_assert!(attempt <= m && m == max && attempt == n + 1);
                    prop_assert!(outcomes.contains(&outcome));
                    prop_assert!(!matches!(outcome, Status::Completed | Status::DoNotCall | Status::Invalid | Status::Unknown));
                    prop_assert_eq!(at, t0() + Duration::minutes(i64::from(delay)));
                }
                Next::Done { note } => prop_assert!(note.starts_with("not retried")),
            }
        }
    }
}
