//! Pacing (ours): calls per minute per campaign, live metrics, recommendations and
//! the optional auto-adjust. Pure: `db::pacing` counts the attempt rows, the claim
//! (`dialer::limits`) and the dashboard apply these rules to the counts.
//!
//! **Calls per minute** is a token bucket of size 1, written as GCRA: a campaign may
//! start a call at `now` when `now >= previous start + interval_ms(effective cpm)`.
//! The previous start is the newest `attempts.created_at` of the campaign, so the
//! rule survives restarts and can never burst (a bucket of one token holds no credit
//! for time spent idle).
//!
//! **Definitions** (over the attempts *started* in the rolling 30 days before now):
//! - *ended*: a final status with a known outcome (`ended_at` set; not `unknown`,
//!   `canceled` or `invalid`, which never reached a person).
//! - *answered*: `answered_at` set, or status `completed` / `voicemail`.
//! - *live answer*: answered, and `answered_by` is NULL, `human` or `unknown` (not a
//!   machine), once its 2 s have passed (or it ended), so a call answered a moment
//!   ago is not judged early.
//! - *abandoned*: a live answer whose `connected_at` (message or agent reached the
//!   person) is NULL or later than `answered_at + 2000` ms, or whose transfer failed
//!   (`transfer_result = 'failed'`).
//!
//! Abandonment rate = abandoned / live answers. The 3 % limit, the 2-second rule and
//! the 30-day measuring period are the FTC Telemarketing Sales Rule's safe harbor
//! (16 CFR 310.4(b)(4)) and FCC 47 CFR 64.1200(a)(7); see `compliance.md` §1.2.

use serde::Serialize;

use crate::campaigns::Checked;

/// The rolling window of abandonment and answer rates: 30 days, in ms.
pub const WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;
/// A live answer not reached by the message or an agent within this many ms is
/// abandoned (TSR 310.4(b)(4)(iii), FCC 64.1200(a)(7)(i)).
pub const ABANDON_AFTER_MS: i64 = 2_000;
/// Abandonment above this share of live answers: reduce pace (TSR, FCC: 3 %).
pub const MAX_ABANDONMENT: f64 = 0.03;
/// Answer rate below this share of ended calls: suggest other hours and a number
/// health check (ours, from the issue).
pub const LOW_ANSWER_RATE: f64 = 0.20;
/// Ended calls needed before the answer rate is judged (ours): one busy signal
/// among the first calls must not raise an alarm.
pub const MIN_ANSWER_SAMPLE: i64 = 20;
/// Calls in flight above this share of the concurrency limit: at capacity (ours).
pub const CAPACITY_SHARE: f64 = 0.80;

/// Milliseconds between call starts at `cpm` calls per minute, rounded up so the
/// pace is never faster than asked. `cpm` 0 is treated as 1.
pub fn interval_ms(cpm: u32) -> i64 {
    let cpm = i64::from(cpm.max(1));
    (60_000 + cpm - 1) / cpm
}

/// GCRA: the earliest instant (UTC ms) the next call may start, given the previous
/// call's start (UTC ms; `None` = no call yet, so at once).
pub fn next_start_ms(previous_start_ms: Option<i64>, cpm: u32) -> Option<i64> {
    previous_start_ms.map(|p| p.saturating_add(interval_ms(cpm)))
}

/// Live answers and abandoned calls of one campaign over the rolling 30 days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Abandonment {
    pub live_answers: i64,
    pub abandoned: i64,
}

impl Abandonment {
    /// Abandoned / live answers, 0.0–1.0; `None` without any live answer.
    pub fn rate(&self) -> Option<f64> {
        (self.live_answers > 0).then(|| self.abandoned.max(0) as f64 / self.live_answers as f64)
    }
}

/// The pace the claim applies, calls per minute (ours). The target when auto-adjust
/// is off or the 30-day abandonment rate is at most 3 %; above that, the target
/// scaled by 3 % / rate (e.g. 6 % → half the target), floored at 1 call per
/// minute, never above the target. Slowing down is always the safe direction, so
/// no minimum sample is required.
pub fn effective_cpm(target: u32, auto_adjust: bool, abandonment: &Abandonment) -> u32 {
    let target = target.max(1);
    match abandonment.rate() {
        Some(r) if auto_adjust && r > MAX_ABANDONMENT => {}
        _ => return target,
    }
    // target × 3 % / (abandoned / live), in integers: floats would turn 60 × 3 % / 6 %
    // into 29.999… and floor it to 29.
    let (live, abandoned) = (abandonment.live_answers.max(1) as u128, abandonment.abandoned.max(1) as u128);
    let scaled = u128::from(target) * 3 * live / (100 * abandoned);
    // `scaled` < target because the rate is over 3 %; the clamp keeps it in 1..=target.
    u32::try_from(scaled).unwrap_or(target).clamp(1, target)
}

/// Counts behind [`Metrics`], from `db::pacing::counts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Ended calls with a known outcome in the 30-day window.
    pub ended: i64,
    /// Of those, answered (by a person or a machine).
    pub answered: i64,
    pub abandonment: Abandonment,
    /// Calls of the campaign with no final status yet.
    pub in_flight: i64,
    /// Calls started in the last 60 s and the last 300 s.
    pub last_minute: i64,
    pub last_5_minutes: i64,
    /// Leads of the campaign whose batch fired and that wait for their call (capped
    /// at `db::attempts::COUNT_CAP`).
    pub queue_depth: i64,
}

/// What pacing a campaign is configured with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaceSettings {
    /// `calls_per_minute`; `None` = only the global calls per second paces.
    pub target_cpm: Option<u32>,
    pub auto_adjust: bool,
    /// The campaign's `max_concurrent_calls` bounded by the global one (or the global one).
    pub concurrency_limit: u32,
}

impl PaceSettings {
    /// From a campaign's settings and `dialing.max_concurrent_calls` (the global limit).
    pub fn of(settings: &Checked, global_max_concurrent: u32) -> PaceSettings {
        PaceSettings {
            target_cpm: settings.calls_per_minute,
            auto_adjust: settings.auto_adjust,
            concurrency_limit: settings
                .max_concurrent_calls
                .map_or(global_max_concurrent, |c| c.min(global_max_concurrent)),
        }
    }
}

/// One campaign's live pacing metrics. Rates are fractions 0.0–1.0 (`None` when
/// there is nothing to divide by); windows are rolling, ending now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub window_days: u32,
    pub ended_calls: i64,
    pub answered_calls: i64,
    /// answered / ended over 30 days.
    pub answer_rate: Option<f64>,
    pub live_answers: i64,
    pub abandoned_calls: i64,
    /// abandoned / live answers over 30 days.
    pub abandonment_rate: Option<f64>,
    pub in_flight: i64,
    pub concurrency_limit: u32,
    /// in_flight / concurrency_limit.
    pub concurrency_usage: f64,
    pub calls_last_minute: i64,
    pub calls_last_5_minutes: i64,
    /// Calls per minute actually started, averaged over the last 5 minutes.
    pub actual_cpm: f64,
    pub target_cpm: Option<u32>,
    /// The pace the claim applies now (auto-adjust included); `None` without a target.
    pub effective_cpm: Option<u32>,
    pub auto_adjust: bool,
    pub queue_depth: i64,
}

impl Metrics {
    pub fn new(counts: &Counts, pace: &PaceSettings) -> Metrics {
        let ratio = |n: i64, d: i64| (d > 0).then(|| n.max(0) as f64 / d as f64);
        let limit = pace.concurrency_limit.max(1);
        Metrics {
            window_days: (WINDOW_MS / (24 * 3600 * 1000)) as u32,
            ended_calls: counts.ended,
            answered_calls: counts.answered,
            answer_rate: ratio(counts.answered, counts.ended),
            live_answers: counts.abandonment.live_answers,
            abandoned_calls: counts.abandonment.abandoned,
            abandonment_rate: counts.abandonment.rate(),
            in_flight: counts.in_flight,
            concurrency_limit: limit,
            concurrency_usage: counts.in_flight.max(0) as f64 / f64::from(limit),
            calls_last_minute: counts.last_minute,
            calls_last_5_minutes: counts.last_5_minutes,
            actual_cpm: counts.last_5_minutes.max(0) as f64 / 5.0,
            target_cpm: pace.target_cpm,
            effective_cpm: pace.target_cpm.map(|t| effective_cpm(t, pace.auto_adjust, &counts.abandonment)),
            auto_adjust: pace.auto_adjust,
            queue_depth: counts.queue_depth,
        }
    }
}

/// Words for the dashboard.
impl Metrics {
    pub fn answer_rate_text(&self) -> String {
        match self.answer_rate {
            Some(r) => format!("{} ({} of {} ended calls)", percent(r), self.answered_calls, self.ended_calls),
            None => "no ended call yet".into(),
        }
    }

    pub fn abandonment_text(&self) -> String {
        match self.abandonment_rate {
            Some(r) => format!("{} ({} of {} live answers)", percent(r), self.abandoned_calls, self.live_answers),
            None => "no live answer yet".into(),
        }
    }

    pub fn concurrency_text(&self) -> String {
        format!("{} of {} ({})", self.in_flight, self.concurrency_limit, percent(self.concurrency_usage))
    }

    pub fn pace_text(&self) -> String {
        let target = match (self.target_cpm, self.effective_cpm) {
            (Some(t), Some(e)) if e < t => format!("target {t}, slowed to {e} by auto-adjust"),
            (Some(t), _) => format!("target {t}"),
            (None, _) => "no target (global calls per second only)".into(),
        };
        format!(
            "{:.1} per minute over 5 min ({} in the last minute); {target}",
            self.actual_cpm, self.calls_last_minute
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Advice {
    /// Answer rate under 20 % (with ≥ 20 ended calls): other hours, number health.
    LowAnswerRate,
    /// Abandonment over 3 %: reduce the pace.
    ReducePace,
    /// Concurrency over 80 %: at capacity.
    AtCapacity,
}

impl Advice {
    pub fn as_str(&self) -> &'static str {
        match self {
            Advice::LowAnswerRate => "low_answer_rate",
            Advice::ReducePace => "reduce_pace",
            Advice::AtCapacity => "at_capacity",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recommendation {
    pub kind: Advice,
    /// One sentence for people, with the numbers behind it.
    pub message: String,
}

/// Percent with one decimal, e.g. "12.5 %".
pub fn percent(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0)
}

/// Advice from the metrics, in the order above; empty when nothing needs attention.
pub fn recommendations(m: &Metrics) -> Vec<Recommendation> {
    let mut out = Vec::new();
    if let Some(rate) = m.answer_rate.filter(|r| m.ended_calls >= MIN_ANSWER_SAMPLE && *r < LOW_ANSWER_RATE) {
        out.push(Recommendation {
            kind: Advice::LowAnswerRate,
            message: format!(
                "Answer rate under 20 %: {} ({} of {} calls in {} days). Try other calling hours and check the \
                 caller numbers' health (spam scores on the Numbers page).",
                percent(rate),
                m.answered_calls,
                m.ended_calls,
                m.window_days
            ),
        });
    }
    if let Some(rate) = m.abandonment_rate.filter(|r| *r > MAX_ABANDONMENT) {
        let action = match (m.auto_adjust, m.effective_cpm) {
            (true, Some(cpm)) => format!("auto-adjust has slowed it to {cpm} calls per minute"),
            _ => "lower calls_per_minute or turn on auto_adjust".to_string(),
        };
        out.push(Recommendation {
            kind: Advice::ReducePace,
            message: format!(
                "Abandonment over 3 %: {} ({} of {} live answers in {} days). Reduce the pace: {action}.",
                percent(rate),
                m.abandoned_calls,
                m.live_answers,
                m.window_days
            ),
        });
    }
    if m.concurrency_usage > CAPACITY_SHARE {
        out.push(Recommendation {
            kind: Advice::AtCapacity,
            message: format!(
                "At capacity: {} of {} concurrent calls in use ({}). A faster pace will not place more calls \
                 without more concurrency.",
                m.in_flight,
                m.concurrency_limit,
                percent(m.concurrency_usage)
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn abandoned(abandoned: i64, live_answers: i64) -> Abandonment {
        Abandonment { live_answers, abandoned }
    }

    #[test]
    fn the_interval_is_rounded_up_so_the_pace_is_never_faster() {
        assert_eq!(interval_ms(120), 500);
        assert_eq!(interval_ms(6), 10_000);
        assert_eq!(interval_ms(7), 8_572);
        assert_eq!(interval_ms(0), 60_000);
        assert_eq!(next_start_ms(None, 6), None);
        assert_eq!(next_start_ms(Some(1_000), 6), Some(11_000));
    }

    #[test]
    fn auto_adjust_slows_in_proportion_above_three_percent_only() {
        assert_eq!(effective_cpm(60, true, &abandoned(3, 100)), 60, "3 % is allowed");
        assert_eq!(effective_cpm(60, true, &abandoned(6, 100)), 30, "6 % → half");
        assert_eq!(effective_cpm(60, false, &abandoned(50, 100)), 60, "off: the target");
        assert_eq!(effective_cpm(60, true, &abandoned(0, 0)), 60, "no live answer yet");
        assert_eq!(effective_cpm(10, true, &abandoned(1, 1)), 1, "floored at 1");
    }

    fn metrics(ended: i64, answered: i64, abandonment: Abandonment, in_flight: i64) -> Metrics {
        let counts = Counts { ended, answered, abandonment, in_flight, ..Counts::default() };
        Metrics::new(&counts, &PaceSettings { target_cpm: Some(60), auto_adjust: false, concurrency_limit: 5 })
    }

    fn kinds(m: &Metrics) -> Vec<Advice> {
        recommendations(m).into_iter().map(|r| r.kind).collect()
    }

    #[test]
    fn each_threshold_gives_its_recommendation() {
        assert_eq!(kinds(&metrics(100, 50, abandoned(1, 40), 2)), []);
        assert_eq!(kinds(&metrics(20, 3, abandoned(0, 3), 0)), [Advice::LowAnswerRate]);
        assert_eq!(kinds(&metrics(19, 0, abandoned(0, 0), 0)), [], "under 20 ended calls: no judgement");
        assert_eq!(kinds(&metrics(20, 4, abandoned(0, 4), 0)), [], "exactly 20 % is not under 20 %");
        assert_eq!(kinds(&metrics(100, 50, abandoned(2, 50), 0)), [Advice::ReducePace], "4 %");
        assert_eq!(kinds(&metrics(100, 50, abandoned(0, 50), 4)), [], "4 of 5 = 80 % is not over 80 %");
        assert_eq!(kinds(&metrics(100, 50, abandoned(0, 50), 5)), [Advice::AtCapacity]);
        let all = metrics(40, 2, abandoned(1, 2), 5);
        assert_eq!(kinds(&all), [Advice::LowAnswerRate, Advice::ReducePace, Advice::AtCapacity]);
        assert!(recommendations(&all)[0].message.contains("5.0 % (2 of 40 calls in 30 days)"));
    }

    #[test]
    fn metrics_show_the_counts_behind_the_rates() {
        let counts = Counts {
            ended: 10,
            answered: 4,
            abandonment: abandoned(1, 4),
            in_flight: 2,
            last_minute: 3,
            last_5_minutes: 10,
            queue_depth: 7,
        };
        let m = Metrics::new(&counts, &PaceSettings { target_cpm: Some(60), auto_adjust: true, concurrency_limit: 4 });
        assert_eq!(m.answer_rate, Some(0.4));
        assert_eq!(m.abandonment_rate, Some(0.25));
        assert_eq!((m.concurrency_usage, m.actual_cpm), (0.5, 2.0));
        assert_eq!(m.effective_cpm, Some(7), "60 × 3 % / 25 %");
        assert_eq!(m.queue_depth, 7);
        let m = Metrics::new(&Counts::default(), &PaceSettings::default());
        assert_eq!((m.answer_rate, m.abandonment_rate, m.effective_cpm, m.concurrency_limit), (None, None, None, 1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Auto-adjust never exceeds the target, never stops a campaign, and only
        /// slows down when abandonment is over 3 %.
        #[test]
        fn effective_pace_is_bounded(target in 1u32..=6000, live in 0i64..10_000, share in 0.0f64..=1.0, on: bool) {
            let ab = abandoned((live as f64 * share) as i64, live);
            let cpm = effective_cpm(target, on, &ab);
            prop_assert!((1..=target).contains(&cpm));
            if !on || ab.rate().is_none_or(|r| r <= MAX_ABANDONMENT) {
                prop_assert_eq!(cpm, target);
            }
            // A higher rate never gives a faster pace.
            let worse = abandoned((ab.abandoned + 1).min(live), live);
            prop_assert!(effective_cpm(target, on, &worse) <= cpm);
        }

        /// GCRA with a bucket of one: starts allowed by the rule, whatever the idle
        /// time before them, are at least 60 000 / cpm ms apart: no burst.
        #[test]
        fn allowed_starts_are_never_closer_than_the_interval(
            cpm in 1u32..=6000,
            gaps in proptest::collection::vec(0i64..120_000, 1..40),
        ) {
            let mut starts: Vec<i64> = Vec::new();
            let mut now = 0i64;
            for gap in gaps {
                now += gap;
                let allowed = next_start_ms(starts.last().copied(), cpm).is_none_or(|next| now >= next);
                if allowed {
                    starts.push(now);
                }
            }
            for pair in starts.windows(2) {
                prop_assert!(pair[1] - pair[0] >= interval_ms(cpm));
                prop_assert!((pair[1] - pair[0]) as f64 >= 60_000.0 / f64::from(cpm));
            }
        }
    }
}
