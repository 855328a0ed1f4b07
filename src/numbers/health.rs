//! Caller-number health: spam-score bands, warm-up caps, a score derived from a number's own
//! outcomes, and enforcement (rest / quarantine / restore) under a pool's resting-share limit.
//! Pure rules. Bands are from the spec; all other thresholds are ours ([`Warmup`], [`Policy`],
//! [`Derivation`]).

use std::{cmp::Reverse, collections::BTreeMap};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// Spam-score band (spec): 0–25 healthy, 26–50 warning, 51–75 at risk, 76–100 flagged.
/// Ordered best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Healthy,
    Warning,
    AtRisk,
    Flagged,
}

impl Band {
    /// Band of a spam score, points (spec bands). Never scored (None) is healthy and scores above
    /// 100 are flagged (both ours).
    pub fn of(score: Option<u8>) -> Band {
        match score {
            None | Some(0..=25) => Band::Healthy,
            Some(26..=50) => Band::Warning,
            Some(51..=75) => Band::AtRisk,
            Some(_) => Band::Flagged,
        }
    }

    /// Machine name, as serialized: "healthy", "warning", "at_risk", "flagged".
    pub fn as_str(self) -> &'static str {
        ["healthy", "warning", "at_risk", "flagged"][self as usize]
    }

    /// Human label: "healthy", "warning", "at risk", "flagged".
    pub fn label(self) -> &'static str {
        ["healthy", "warning", "at risk", "flagged"][self as usize]
    }

    /// "at risk (spam score band 51–75)", for action reasons.
    fn described(self) -> String {
        let (lo, hi) = ([0, 26, 51, 76][self as usize], [25, 50, 75, 100][self as usize]);
        format!("{} (spam score band {lo}–{hi})", self.label())
    }
}

/// Warm-up of new numbers (ours): a linear daily-cap ramp after first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warmup {
    /// Off → the full `max_daily_calls` from day 0. Default on.
    pub enabled: bool,
    /// Cap on the first day of use, calls per local day. Default 25.
    pub start_calls: u32,
    /// Length of the ramp, local days; the full cap applies from this day on. Default 14.
    pub days: u32,
}

impl Default for Warmup {
    fn default() -> Self {
        Warmup { enabled: true, start_calls: 25, days: 14 }
    }
}

/// Enforcement knobs (all ours). Percentages above 100 act as 100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Cut to the daily cap in the Warning band or worse, percent. Default 50.
    pub warning_cap_reduction_percent: u8,
    /// Length of one rest period, hours. Default 48.
    pub rest_hours: u32,
    /// Most of a pool that may be resting or quarantined at once, percent. Default 30.
    pub max_resting_share_percent: u8,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { warning_cap_reduction_percent: 50, rest_hours: 48, max_resting_share_percent: 30 }
    }
}

/// Warmed daily cap, calls per local day, on local day `day` after first use (0 = first day;
/// None = never used, as day 0): `start + (max - start) * day / days` floored, `max` once
/// `day >= days`, where `start = min(start_calls, max)`. Disabled → `max`. Rule: ours.
pub fn warmed_cap_on_day(max_daily_calls: u32, day: Option<u32>, warmup: Warmup) -> u32 {
    let (start, day) = (warmup.start_calls.min(max_daily_calls), day.unwrap_or(0));
    if !warmup.enabled || day >= warmup.days {
        return max_daily_calls;
    }
    let ramp = u64::from(max_daily_calls - start) * u64::from(day) / u64::from(warmup.days);
    start.saturating_add(u32::try_from(ramp).unwrap_or(u32::MAX)).min(max_daily_calls)
}

/// Warmed daily cap, calls per local day, for a number first used on local date `first_used`:
/// [`warmed_cap_on_day`] with day = `today - first_used`. Never used (None), or first used after
/// `today` (clock skew) → the day-0 cap. Rule: ours.
pub fn warmed_cap(max_daily_calls: u32, first_used: Option<NaiveDate>, today: NaiveDate, warmup: Warmup) -> u32 {
    let day = first_used.map(|f| u32::try_from(today.signed_duration_since(f).num_days().max(0)).unwrap_or(u32::MAX));
    warmed_cap_on_day(max_daily_calls, day, warmup)
}

/// Effective daily cap, calls per local day: the warmed cap, cut by
/// `warning_cap_reduction_percent` (floored, at least 1 if the warmed cap is at least 1) in the
/// Warning band or worse (at-risk and flagged numbers still dialling because of the share limit
/// get the same cut). Never above `max_daily_calls`. Rule: ours.
pub fn effective_cap(
    max_daily_calls: u32,
    first_used: Option<NaiveDate>,
    today: NaiveDate,
    band: Band,
    warmup: Warmup,
    policy: &Policy,
) -> u32 {
    let warmed = warmed_cap(max_daily_calls, first_used, today, warmup);
    if band == Band::Healthy || warmed == 0 {
        return warmed;
    }
    let keep = 100 - u64::from(policy.warning_cap_reduction_percent.min(100));
    u32::try_from(u64::from(warmed) * keep / 100).unwrap_or(u32::MAX).clamp(1, warmed)
}

/// One recent call from a number, for [`derived_score`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub answered: bool,
    /// Talk time, seconds; None when unknown (left out of the short-call share).
    pub duration_seconds: Option<u32>,
}

/// Knobs for [`derived_score`] (ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Derivation {
    /// Fewest samples that give a score or an answer rate, calls. Default 20.
    pub min_calls: usize,
    /// Answered calls shorter than this count as hang-ups on a spam label, seconds. Default 6.
    pub short_call_seconds: u32,
}

impl Default for Derivation {
    fn default() -> Self {
        Derivation { min_calls: 20, short_call_seconds: 6 }
    }
}

/// Answer rate (0.0–1.0, answered / samples) of a number's recent calls; None with fewer than
/// `min_calls` samples or none at all. Rule: ours.
pub fn answer_rate(samples: &[Sample], d: &Derivation) -> Option<f64> {
    if samples.is_empty() || samples.len() < d.min_calls {
        return None;
    }
    Some(samples.iter().filter(|s| s.answered).count() as f64 / samples.len() as f64)
}

/// Spam score, points 0–100, from a number's own recent calls (the caller passes the last N,
/// newest first). Formula (ours): `round(70 * deficit + 30 * short_share)` with
/// `deficit = clamp(1 - rate / median, 0, 1)` ([`answer_rate`] against the pool's median) and
/// `short_share` = share of answered calls of known duration shorter than `short_call_seconds`
/// (0 if none). Monotone: a lower answer rate or more short calls never lowers it; at or above
/// the median with no short calls it is 0. None with fewer than `min_calls` samples, or when the
/// median is unknown, not finite, or not above 0.
pub fn derived_score(samples: &[Sample], pool_median_answer_rate: Option<f64>, d: &Derivation) -> Option<u8> {
    let rate = answer_rate(samples, d)?;
    let median = pool_median_answer_rate.filter(|m| m.is_finite() && *m > 0.0)?;
    let timed: Vec<u32> = samples.iter().filter(|s| s.answered).filter_map(|s| s.duration_seconds).collect();
    let short = timed.iter().filter(|t| **t < d.short_call_seconds).count();
    let short_share = if timed.is_empty() { 0.0 } else { short as f64 / timed.len() as f64 };
    let deficit = (1.0 - rate / median).clamp(0.0, 1.0);
    Some((70.0 * deficit + 30.0 * short_share).round().clamp(0.0, 100.0) as u8)
}

/// Median of the pool's answer rates (0.0–1.0; pass numbers with at least `min_calls` samples,
/// see [`answer_rate`]); mean of the middle two for an even count; non-finite values ignored;
/// None when nothing is left. Rule: ours.
pub fn median(rates: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = rates.iter().copied().filter(|r| r.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[mid]),
        _ => Some((v[mid - 1] + v[mid]) / 2.0),
    }
}

/// A caller number's lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Resting,
    Quarantined,
    Retired,
}

/// A caller number as [`enforce`] sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub id: i64,
    /// Numbers with equal `pool` form one pool (None is one pool too).
    pub pool: Option<String>,
    pub status: Status,
    pub band: Band,
    /// End of the current rest; None while resting counts as ended.
    pub rest_until: Option<DateTime<Utc>>,
    /// Off → never taken out of rotation automatically; flagged instead (ours: a number the
    /// user pinned has nothing to rotate to).
    pub rotation_enabled: bool,
}

/// What [`enforce`] asks the store to do with one number; reasons are human sentences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Active and at risk → resting until `until` (now + `rest_hours`).
    Rest { id: i64, until: DateTime<Utc>, reason: String },
    /// Flagged, active or resting → quarantined until a person acts.
    Quarantine { id: i64, reason: String },
    /// Resting, rest ended, now healthy or warning → active.
    Restore { id: i64, reason: String },
    /// Resting, rest ended, still at risk → resting until `until` (now + `rest_hours`).
    ExtendRest { id: i64, until: DateTime<Utc>, reason: String },
    /// Would rest or quarantine, but the share limit is reached or rotation is off for it:
    /// left active, the user is told.
    Flag { id: i64, reason: String },
}

/// Numbers of a pool of `pool_size` that may be resting or quarantined at once:
/// `floor(share_percent * pool_size / 100)`, share clamped to 100 (ours). Small pools get 0: at
/// 30 % a pool needs 4 numbers before one may rest.
pub fn share_limit(pool_size: u32, share_percent: u8) -> u32 {
    u32::try_from(u64::from(share_percent.min(100)) * u64::from(pool_size) / 100).unwrap_or(u32::MAX)
}

/// Enforcement for every pool (rules ours, bands from the spec). Per pool (equal `pool`;
/// retired numbers ignored and not counted): ended rests are restored (healthy/warning) first,
/// or extended (at risk); resting flagged numbers are quarantined; then active at-risk (rest) and
/// flagged (quarantine) numbers take the room left under [`share_limit`], worst band first, then
/// lowest id, and the rest are flagged and left active. So resting + quarantined never rises above
/// the limit (nor above where it already was). Pools whose limit is 0 (e.g. 2 numbers at 30 %)
/// never rest anything: every would-be rest or quarantine is a Flag saying the pool is too small.
/// Quarantined numbers are never restored. Output: pools in name order (None first), restores
/// first in each.
pub fn enforce(numbers: &[View], policy: &Policy, now: DateTime<Utc>) -> Vec<Action> {
    let hours = policy.rest_hours;
    let until =
        TimeDelta::try_hours(hours.into()).and_then(|d| now.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let share = policy.max_resting_share_percent.min(100);
    let mut pools: BTreeMap<Option<&str>, Vec<&View>> = BTreeMap::new();
    for v in numbers.iter().filter(|v| v.status != Status::Retired) {
        pools.entry(v.pool.as_deref()).or_default().push(v);
    }
    let mut actions = Vec::new();
    for (pool, mut members) in pools {
        members.sort_by_key(|v| (Reverse(v.band), v.id));
        let size = u32::try_from(members.len()).unwrap_or(u32::MAX);
        let (limit, mut out, mut later) = (share_limit(size, share), 0u32, Vec::new());
        for v in &members {
            let (id, said, ended) = (v.id, v.band.described(), v.rest_until.is_none_or(|u| u <= now));
            match v.status {
                Status::Resting if v.band == Band::Flagged => later
                    .push(Action::Quarantine { id, reason: format!("{said}: quarantined until someone reviews it") }),
                Status::Resting if ended && v.band <= Band::Warning => {
                    actions.push(Action::Restore { id, reason: format!("rest ended and now {said}: back to active") });
                    continue;
                }
                Status::Resting if ended => {
                    let reason = format!("still {said} after its rest: resting another {hours} h");
                    later.push(Action::ExtendRest { id, until, reason });
                }
                Status::Resting | Status::Quarantined => {}
                Status::Active | Status::Retired => continue,
            }
            out += 1;
        }
        actions.append(&mut later);
        let place = pool.map_or_else(|| "the default pool".to_string(), |p| format!("pool \"{p}\""));
        for v in members.iter().filter(|v| v.status == Status::Active && v.band >= Band::AtRisk) {
            let (id, said) = (v.id, v.band.described());
            let verb = if v.band == Band::Flagged { "quarantine" } else { "rest" };
            let why = if !v.rotation_enabled {
                "rotation is off for it".to_string()
            } else if out < limit {
                out += 1;
                actions.push(match v.band {
                    Band::Flagged => {
                        Action::Quarantine { id, reason: format!("{said}: quarantined until someone reviews it") }
                    }
                    _ => Action::Rest { id, until, reason: format!("{said}: resting {hours} h") },
                });
                continue;
            } else if limit == 0 {
                format!("{place} is too small for any number to rest ({size} numbers at {share} %; add numbers to it)")
            } else {
                format!("{out} of {size} numbers in {place} are already out (limit {limit})")
            };
            actions.push(Action::Flag { id, reason: format!("{said}: would {verb}, but {why}; left active") });
        }
    }
    actions
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
