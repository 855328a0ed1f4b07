//! Capacity planning: how many caller numbers a target daily volume needs, with spares for rests
//! and quarantine and the warm-up ramp of new numbers. Pure arithmetic over [`health`] rules.
//!
//! [`health`]: crate::numbers::health

use crate::numbers::health::{Policy, Warmup, share_limit, warmed_cap_on_day};

/// Largest `calls_per_day` [`plan`] accepts, calls per day (ours: beyond it the input is a typo).
pub const MAX_CALLS_PER_DAY: u32 = 10_000_000;
/// Longest warm-up [`plan`] accepts, days (ours: the ramp is tabulated day by day).
pub const MAX_WARMUP_DAYS: u32 = 366;

/// A capacity plan (formulas ours; all counts are whole numbers, rounded up).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plan {
    /// Target volume, calls per day.
    pub calls_per_day: u32,
    /// `max_daily_calls` assumed for every number, calls per day.
    pub cap_per_number: u32,
    /// Spare numbers for rests and quarantine, percent of `numbers_steady` (20–30 recommended).
    pub buffer_percent: u8,
    /// `ceil(calls_per_day / cap_per_number)`, numbers.
    pub numbers_steady: u32,
    /// `ceil(numbers_steady * (100 + buffer_percent) / 100)`, numbers.
    pub numbers_with_buffer: u32,
    /// Numbers needed on day 0 if all are new: `ceil(calls_per_day / day-0 cap)` with the buffer.
    pub numbers_during_warmup: u32,
    /// `warmup.days`, or 0 when warm-up is off or starts at or above the cap, days.
    pub days_to_full_capacity: u32,
    /// Of `numbers_with_buffer`, how many may rest or be quarantined at once
    /// ([`share_limit`] with `max_resting_share_percent`), numbers.
    pub max_resting_at_once: u32,
    /// `(day, calls per day)` possible with `numbers_with_buffer` new numbers, day 0 through
    /// `days_to_full_capacity`; for display.
    pub ramp: Vec<(u32, u32)>,
}

/// Plans `calls_per_day` (calls per day) on numbers of `cap_per_number` (calls per day each) with
/// `buffer_percent` spares. Errors name the field: `cap_per_number` 0, `calls_per_day` above
/// [`MAX_CALLS_PER_DAY`], `buffer_percent` above 100, `warmup.start_calls` 0 or `warmup.days`
/// above [`MAX_WARMUP_DAYS`] with warm-up on. Rules: ours.
pub fn plan(
    calls_per_day: u32,
    cap_per_number: u32,
    buffer_percent: u8,
    warmup: Warmup,
    policy: &Policy,
) -> Result<Plan, String> {
    if cap_per_number == 0 {
        return Err("cap_per_number must be at least 1 call per day".into());
    }
    if calls_per_day > MAX_CALLS_PER_DAY {
        let (max, got) = (thousands(MAX_CALLS_PER_DAY), thousands(calls_per_day));
        return Err(format!("calls_per_day must be at most {max} (got {got})"));
    }
    if buffer_percent > 100 {
        return Err(format!("buffer_percent must be at most 100 (got {buffer_percent})"));
    }
    if warmup.enabled && warmup.start_calls == 0 {
        return Err("warmup.start_calls must be at least 1 when warm-up is on".into());
    }
    if warmup.enabled && warmup.days > MAX_WARMUP_DAYS {
        return Err(format!("warmup.days must be at most {MAX_WARMUP_DAYS} (got {})", warmup.days));
    }
    let with_buffer = |n: u64| n.saturating_mul(100 + u64::from(buffer_percent)).div_ceil(100);
    let numbers_steady = u64::from(calls_per_day).div_ceil(cap_per_number.into());
    let numbers_with_buffer = saturate(with_buffer(numbers_steady));
    let day0_cap = warmed_cap_on_day(cap_per_number, None, warmup).max(1);
    let days_to_full_capacity = if warmup.enabled && warmup.start_calls < cap_per_number { warmup.days } else { 0 };
    let ramp = (0..=days_to_full_capacity)
        .map(|day| {
            let cap = warmed_cap_on_day(cap_per_number, Some(day), warmup);
            (day, saturate(u64::from(numbers_with_buffer) * u64::from(cap)))
        })
        .collect();
    Ok(Plan {
        calls_per_day,
        cap_per_number,
        buffer_percent,
        numbers_steady: saturate(numbers_steady),
        numbers_with_buffer,
        numbers_during_warmup: saturate(with_buffer(u64::from(calls_per_day).div_ceil(day0_cap.into()))),
        days_to_full_capacity,
        max_resting_at_once: share_limit(numbers_with_buffer, policy.max_resting_share_percent),
        ramp,
    })
}

/// Plain-text rendering for `dialer plan --calls-per-day N`: a few lines, notes when the buffer
/// is outside 20–30 % or no number may rest, and the warm-up ramp as a small table (at most
/// about 15 rows; longer ramps are sampled, always keeping the first and last day).
pub fn render_text(p: &Plan) -> String {
    let mut s = format!(
        "Plan for {} calls/day at {} calls/day per number\n",
        thousands(p.calls_per_day),
        thousands(p.cap_per_number)
    );
    let rows = [
        ("Numbers needed (steady)", p.numbers_steady),
        (&format!("With a {} % buffer", p.buffer_percent), p.numbers_with_buffer),
        ("Needed on day 0 if all are new", p.numbers_during_warmup),
        ("Days to full capacity", p.days_to_full_capacity),
        ("May rest at once", p.max_resting_at_once),
    ];
    for (label, n) in rows {
        s += &format!("  {:<32}{:>12}\n", format!("{label}:"), thousands(n));
    }
    if !(20..=30).contains(&p.buffer_percent) {
        s += "Note: a buffer of 20–30 % is recommended.\n";
    }
    if p.max_resting_at_once == 0 && p.numbers_with_buffer > 0 {
        s += "Note: with this few numbers none may rest; at-risk numbers are only flagged.\n";
    }
    match p.ramp.as_slice() {
        [] | [_] => {
            let full = p.ramp.last().map_or(0, |r| r.1);
            s += &format!("Full capacity from day 0: {} calls/day.\n", thousands(full));
        }
        ramp => {
            s += &format!(
                "Warm-up with {} new numbers:\n  {:>5}  {:>12}\n",
                thousands(p.numbers_with_buffer),
                "day",
                "calls/day"
            );
            let step = ramp.len().div_ceil(15);
            for (i, (day, calls)) in ramp.iter().enumerate() {
                if i % step == 0 || i + 1 == ramp.len() {
                    s += &format!("  {day:>5}  {:>12}\n", thousands(*calls));
                }
            }
        }
    }
    s
}

/// One sentence comparing the pool today (`current_numbers` numbers giving
/// `current_effective_capacity_per_day` calls per day, the sum of their effective caps) with the
/// plan's `numbers_with_buffer`, e.g. "You have 12 numbers (1,040 calls/day today); add 52 for
/// 5,000 calls/day with a 25 % buffer."
pub fn shortfall(plan: &Plan, current_effective_capacity_per_day: u32, current_numbers: u32) -> String {
    let have = format!(
        "You have {} ({} calls/day today)",
        count(current_numbers, "number"),
        thousands(current_effective_capacity_per_day)
    );
    let target = format!("{} calls/day with a {} % buffer", thousands(plan.calls_per_day), plan.buffer_percent);
    let missing = plan.numbers_with_buffer.saturating_sub(current_numbers);
    if missing > 0 {
        format!("{have}; add {} for {target}.", thousands(missing))
    } else if current_effective_capacity_per_day < plan.calls_per_day {
        format!("{have}; that is enough numbers for {target} once warm-ups and rests end.")
    } else {
        format!("{have}; that covers {target}.")
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn count(n: u32, noun: &str) -> String {
    format!("{} {noun}{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// 1234567 → "1,234,567".
fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn default_plan(calls: u32, cap: u32) -> Plan {
        plan(calls, cap, 25, Warmup::default(), &Policy::default()).unwrap()
    }

    #[test]
    fn worked_example() {
        let p = default_plan(5_000, 100);
        let got = (p.numbers_steady, p.numbers_with_buffer, p.numbers_during_warmup, p.days_to_full_capacity);
        assert_eq!(got, (50, 63, 250, 14));
        assert_eq!(p.max_resting_at_once, 18);
        assert_eq!(p.ramp.len(), 15);
        assert_eq!((p.ramp[0], p.ramp[7], p.ramp[14]), ((0, 1_575), (7, 3_906), (14, 6_300)));
        let text = render_text(&p);
        assert!(text.starts_with("Plan for 5,000 calls/day at 100 calls/day per number\n"), "{text}");
        assert!(text.contains("  With a 25 % buffer:") && text.contains("     14         6,300\n"), "{text}");
        assert!(!text.contains("Note"), "{text}");
    }

    #[test]
    fn no_warmup_and_small_caps() {
        let off = Warmup { enabled: false, ..Warmup::default() };
        let p = plan(1_000, 100, 20, off, &Policy::default()).unwrap();
        assert_eq!((p.numbers_during_warmup, p.days_to_full_capacity, p.ramp.clone()), (12, 0, vec![(0, 1_200)]));
        assert!(render_text(&p).contains("Full capacity from day 0: 1,200 calls/day."));
        let p = default_plan(100, 20);
        assert_eq!((p.numbers_steady, p.numbers_during_warmup, p.days_to_full_capacity), (5, 7, 0));
        let p = plan(10, 10, 0, Warmup::default(), &Policy::default()).unwrap();
        assert_eq!((p.numbers_with_buffer, p.max_resting_at_once), (1, 0));
        let text = render_text(&p);
        assert!(text.contains("20–30 % is recommended") && text.contains("none may rest"), "{text}");
        assert_eq!(default_plan(0, 100).numbers_with_buffer, 0);
    }

    #[test]
    fn errors_name_the_field() {
        let (w, p) = (Warmup::default(), Policy::default());
        let err = |r: Result<Plan, String>| r.unwrap_err();
        assert!(err(plan(100, 0, 25, w, &p)).starts_with("cap_per_number"));
        assert_eq!(err(plan(10_000_001, 100, 25, w, &p)), "calls_per_day must be at most 10,000,000 (got 10,000,001)");
        assert!(err(plan(100, 100, 101, w, &p)).starts_with("buffer_percent"));
        assert!(err(plan(100, 100, 25, Warmup { start_calls: 0, ..w }, &p)).starts_with("warmup.start_calls"));
        assert!(err(plan(100, 100, 25, Warmup { days: 367, ..w }, &p)).starts_with("warmup.days"));
        assert!(plan(100, 100, 25, Warmup { enabled: false, start_calls: 0, days: u32::MAX }, &p).is_ok());
    }

    #[test]
    fn shortfall_sentences() {
        let p = default_plan(5_000, 100);
        let want = "You have 12 numbers (1,040 calls/day today); add 51 for 5,000 calls/day with a 25 % buffer.";
        assert_eq!(shortfall(&p, 1_040, 12), want);
        let want = "You have 70 numbers (3,100 calls/day today); that is enough numbers for 5,000 calls/day with a \
                    25 % buffer once warm-ups and rests end.";
        assert_eq!(shortfall(&p, 3_100, 70), want);
        assert!(shortfall(&p, 7_000, 70).ends_with("; that covers 5,000 calls/day with a 25 % buffer."));
        assert!(shortfall(&p, 0, 1).starts_with("You have 1 number (0 calls/day today); add 62 for"));
        assert_eq!(
            (thousands(0), thousands(999), thousands(1_000), thousands(u32::MAX)),
            ("0".into(), "999".into(), "1,000".into(), "4,294,967,295".into())
        );
    }

    proptest! {
        /// Steady numbers are the fewest that carry the volume; the buffer and warm-up only add;
        /// the ramp never falls and ends at full capacity; rendering never panics.
        #[test]
        fn plans_are_consistent(calls in 0u32..=MAX_CALLS_PER_DAY, cap in 1u32.., buffer in 0u8..=100,
                                start in 1u32..500, days in 0u32..=MAX_WARMUP_DAYS, enabled: bool, share: u8) {
            let w = Warmup { enabled, start_calls: start, days };
            let policy = Policy { max_resting_share_percent: share, ..Policy::default() };
            let p = plan(calls, cap, buffer, w, &policy).unwrap();
            let (steady, cap64) = (u64::from(p.numbers_steady), u64::from(cap));
            prop_assert!(steady * cap64 >= u64::from(calls));
            prop_assert!(steady.saturating_sub(1) * cap64 < u64::from(calls).max(1));
            prop_assert!(p.numbers_steady <= p.numbers_with_buffer && p.numbers_with_buffer <= p.numbers_during_warmup);
            prop_assert!(p.max_resting_at_once <= p.numbers_with_buffer);
            prop_assert_eq!(p.ramp.len() as u64, u64::from(p.days_to_full_capacity) + 1);
            prop_assert!(p.ramp.windows(2).all(|w| w[0].1 <= w[1].1));
            let full = saturate(u64::from(p.numbers_with_buffer) * cap64);
            prop_assert_eq!(p.ramp.last().map(|r| r.1), Some(full));
            prop_assert!(render_text(&p).lines().count() <= 30);
            prop_assert!(shortfall(&p, calls / 2, p.numbers_steady).starts_with("You have"));
        }
    }
}
