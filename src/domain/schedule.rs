//! Batch arithmetic for bulk schedules: batch `i` of a schedule fires at
//! `start + i × interval` and carries leads `[i × parallel, (i + 1) × parallel)`.

use std::ops::Range;

use chrono::{DateTime, Duration, Utc};

/// Allowed "parallel calls per batch" (API bounds; the dashboard offers 1, 3, 5, 10).
pub const PARALLEL_RANGE: std::ops::RangeInclusive<u32> = 1..=50;
/// Allowed interval between batches, seconds.
pub const INTERVAL_RANGE: std::ops::RangeInclusive<u32> = 1..=3600;

/// One planned batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    pub index: u32,
    pub due_at: DateTime<Utc>,
    /// Positions in the schedule's ordered lead list.
    pub leads: Range<usize>,
}

/// Splits `n_leads` into batches of `parallel` leads, `interval_seconds` apart.
/// `parallel` and `interval_seconds` must be ≥ 1 (callers check the ranges above).
pub fn plan(n_leads: usize, parallel: u32, interval_seconds: u32, start: DateTime<Utc>) -> Vec<BatchPlan> {
    let parallel = parallel.max(1) as usize;
    (0..n_leads.div_ceil(parallel))
        .map(|idx| BatchPlan {
            index: idx as u32,
            due_at: start + Duration::seconds(idx as i64 * i64::from(interval_seconds)),
            leads: idx * parallel..((idx + 1) * parallel).min(n_leads),
        })
        .collect()
}

/// When the last batch fires: `start + (batches − 1) × interval`. This is the
/// estimate the API and the dashboard call "estimated completion"; calls placed by
/// that batch then take their own ring and talk time.
pub fn estimated_completion(
    n_leads: usize,
    parallel: u32,
    interval_seconds: u32,
    start: DateTime<Utc>,
) -> DateTime<Utc> {
    let batches = n_leads.div_ceil(parallel.max(1) as usize);
    start + Duration::seconds(batches.saturating_sub(1) as i64 * i64::from(interval_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn twenty_leads_in_fives() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let batches = plan(20, 5, 60, start);
        assert_eq!(batches.len(), 4);
        assert_eq!(batches[3].due_at, start + Duration::seconds(180));
        assert_eq!(batches[3].leads, 15..20);
        assert_eq!(estimated_completion(20, 5, 60, start), batches[3].due_at);
    }

    #[test]
    fn last_batch_is_partial() {
        let start = DateTime::from_timestamp(0, 0).unwrap();
        let batches = plan(7, 3, 30, start);
        assert_eq!(batches.iter().map(|b| b.leads.len()).collect::<Vec<_>>(), vec![3, 3, 1]);
        assert!(plan(0, 3, 30, start).is_empty());
    }

    proptest! {
        #[test]
        fn every_lead_in_exactly_one_batch(n in 0usize..500, p in 1u32..=50, i in 1u32..=3600) {
            let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
            let batches = plan(n, p, i, start);
            let mut next = 0;
            for (idx, b) in batches.iter().enumerate() {
                prop_assert_eq!(b.leads.start, next);
                prop_assert!(b.leads.len() <= p as usize && !b.leads.is_empty());
                prop_assert_eq!(b.due_at, start + Duration::seconds(idx as i64 * i as i64));
                next = b.leads.end;
            }
            prop_assert_eq!(next, n);
        }
    }
}
