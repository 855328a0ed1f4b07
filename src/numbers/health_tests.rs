//! Health rules: bands, warming, effective caps, derived scores, enforcement.
use super::*;
use proptest::prelude::*;

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + chrono::Days::new(day.into())
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap()
}

fn view(id: i64, status: Status, band: Band, rest_hours_from_now: Option<i64>) -> View {
    let rest_until = rest_hours_from_now.map(|h| now() + TimeDelta::hours(h));
    View { id, pool: Some("a".into()), status, band, rest_until, rotation_enabled: true }
}

fn kind(a: &Action) -> (&'static str, i64) {
    match a {
        Action::Rest { id, .. } => ("rest", *id),
        Action::Quarantine { id, .. } => ("quarantine", *id),
        Action::Restore { id, .. } => ("restore", *id),
        Action::ExtendRest { id, .. } => ("extend", *id),
        Action::Flag { id, .. } => ("flag", *id),
    }
}

#[test]
fn bands_follow_the_spec() {
    let scores = [None, Some(25), Some(26), Some(50), Some(51), Some(75), Some(76), Some(100), Some(255)];
    let names = scores.map(|s| Band::of(s).as_str());
    assert_eq!(
        names,
        ["healthy", "healthy", "warning", "warning", "at_risk", "at_risk", "flagged", "flagged", "flagged"]
    );
    assert_eq!(
        (Band::AtRisk.label(), serde_json::to_string(&Band::AtRisk).unwrap()),
        ("at risk", "\"at_risk\"".into())
    );
}

#[test]
fn warmup_ramps_linearly_to_the_cap() {
    let w = Warmup::default();
    let cap = |max, first: Option<u32>, today, w| warmed_cap(max, first.map(date), date(today), w);
    let got = [cap(100, None, 0, w), cap(100, Some(3), 3, w), cap(100, Some(0), 7, w), cap(100, Some(0), 13, w)];
    assert_eq!(got, [25, 25, 62, 94]);
    let got = [cap(100, Some(0), 400, w), cap(10, None, 0, w), cap(100, Some(9), 0, w)];
    assert_eq!(got, [100, 10, 25]);
    let got = [cap(100, None, 0, Warmup { days: 0, ..w }), cap(100, None, 0, Warmup { enabled: false, ..w })];
    assert_eq!(got, [100, 100]);
}

#[test]
fn warning_and_worse_cut_the_cap() {
    let (off, p) = (Warmup { enabled: false, ..Warmup::default() }, Policy::default());
    let cap = |max, band, p: &Policy| effective_cap(max, None, date(0), band, off, p);
    let bands = [Band::Healthy, Band::Warning, Band::AtRisk, Band::Flagged];
    assert_eq!(bands.map(|b| cap(101, b, &p)), [101, 50, 50, 50]);
    assert_eq!((cap(1, Band::Warning, &p), cap(0, Band::Warning, &p)), (1, 0));
    assert_eq!(cap(80, Band::Warning, &Policy { warning_cap_reduction_percent: 200, ..p }), 1);
    assert_eq!(effective_cap(100, None, date(0), Band::Warning, Warmup::default(), &p), 12);
}

#[test]
fn derived_score_and_median() {
    let d = Derivation::default();
    let calls = |answered: usize, short: usize, n: usize| -> Vec<Sample> {
        (0..n)
            .map(|i| Sample { answered: i < answered, duration_seconds: Some(if i < short { 3 } else { 60 }) })
            .collect()
    };
    let score = |a, s, n, m| derived_score(&calls(a, s, n), m, &d);
    let got = [score(10, 0, 20, Some(0.5)), score(10, 0, 20, Some(1.0)), score(10, 5, 20, Some(0.5))];
    assert_eq!(got, [Some(0), Some(35), Some(15)]);
    assert_eq!([score(0, 0, 20, Some(0.5)), score(20, 20, 20, Some(0.1))], [Some(70), Some(30)]);
    assert_eq!([score(10, 0, 19, Some(0.5)), score(5, 0, 20, None), score(5, 0, 20, Some(0.0))], [None; 3]);
    assert_eq!((score(5, 0, 20, Some(f64::NAN)), answer_rate(&[], &Derivation { min_calls: 0, ..d })), (None, None));
    assert_eq!([median(&[]), median(&[f64::NAN]), median(&[0.5, 0.1, 0.3])], [None, None, Some(0.3)]);
    assert_eq!(median(&[0.4, 0.1, 0.2, f64::INFINITY, 0.3]), Some(0.25));
}

#[test]
fn enforce_restores_first_then_worst_band_gets_the_room() {
    use {Band::*, Status::*};
    let mut pool = vec![view(1, Active, AtRisk, None), view(2, Active, Flagged, None)];
    pool.extend([view(3, Resting, Warning, Some(-1)), view(4, Resting, AtRisk, Some(5))]);
    pool.extend([view(5, Resting, AtRisk, Some(0)), view(6, Quarantined, Healthy, None)]);
    pool.extend([view(7, Retired, Flagged, None), view(8, Resting, Flagged, Some(5))]);
    pool.extend((11..=20).map(|id| view(id, Active, Healthy, None)));
    // 17 counted → limit 5; out after the restore: 4, 5, 6, 8 → room for one.
    let actions = enforce(&pool, &Policy::default(), now());
    let kinds: Vec<_> = actions.iter().map(kind).collect();
    assert_eq!(kinds, [("restore", 3), ("quarantine", 8), ("extend", 5), ("quarantine", 2), ("flag", 1)]);
    let reason = "at risk (spam score band 51–75): would rest, but 5 of 17 numbers in pool \"a\" are already out \
                  (limit 5); left active";
    assert_eq!(actions[4], Action::Flag { id: 1, reason: reason.into() });
    assert!(matches!(actions[2], Action::ExtendRest { until, .. } if until == now() + TimeDelta::hours(48)));
}

#[test]
fn reasons_rotation_off_and_tiny_pools() {
    let mut pool: Vec<View> = (1..=10).map(|id| view(id, Status::Active, Band::Healthy, None)).collect();
    pool[0].band = Band::AtRisk;
    pool[1] = View { band: Band::Flagged, rotation_enabled: false, pool: None, ..pool[1].clone() };
    let (until, p) = (now() + TimeDelta::hours(48), Policy::default());
    let flag = "flagged (spam score band 76–100): would quarantine, but rotation is off for it; left active";
    let rest = "at risk (spam score band 51–75): resting 48 h";
    let want = [Action::Flag { id: 2, reason: flag.into() }, Action::Rest { id: 1, until, reason: rest.into() }];
    assert_eq!(enforce(&pool, &p, now()), want);
    let tiny: Vec<View> = pool[..2].iter().map(|v| View { band: Band::AtRisk, pool: None, ..v.clone() }).collect();
    let flag = "at risk (spam score band 51–75): would rest, but the default pool is too small for any number to \
                rest (2 numbers at 30 %; add numbers to it); left active";
    assert_eq!(enforce(&tiny[..], &p, now())[0], Action::Flag { id: 1, reason: flag.into() });
    assert_eq!((share_limit(3, 30), share_limit(4, 30), share_limit(10, 255)), (0, 1, 10));
}

fn arb_views() -> impl Strategy<Value = Vec<View>> {
    let one = (0u8..3, 0usize..4, proptest::option::of(0u8..=100), proptest::option::of(-72i64..72), any::<bool>());
    proptest::collection::vec(one, 0..40).prop_map(|v| {
        let statuses = [Status::Active, Status::Resting, Status::Quarantined, Status::Retired];
        let pools = [None, Some("a".to_string()), Some("b".to_string())];
        let view = |(i, (pool, status, score, rest, rotation_enabled)): (usize, (u8, usize, _, _, bool))| View {
            pool: pools[usize::from(pool)].clone(),
            rotation_enabled,
            ..view(1000 - i as i64, statuses[status], Band::of(score), rest)
        };
        v.into_iter().enumerate().map(view).collect()
    })
}

/// (pool size, resting + quarantined) per pool, retired numbers left out.
fn tally(views: &[View]) -> BTreeMap<Option<String>, (u32, u32)> {
    let mut m = BTreeMap::<_, (u32, u32)>::new();
    for v in views.iter().filter(|v| v.status != Status::Retired) {
        let e = m.entry(v.pool.clone()).or_default();
        *e = (e.0 + 1, e.1 + u32::from(matches!(v.status, Status::Resting | Status::Quarantined)));
    }
    m
}

proptest! {
    /// The share limit is never newly crossed; quarantined and retired numbers are never
    /// touched (so never restored); each number gets at most one action.
    #[test]
    fn enforcement_respects_the_share_limit(views in arb_views(), share in 0u8..=110, hours in any::<u32>()) {
        let policy = Policy { max_resting_share_percent: share, rest_hours: hours, ..Policy::default() };
        let actions = enforce(&views, &policy, now());
        let (mut after, mut seen) = (views.clone(), std::collections::BTreeSet::new());
        for a in &actions {
            let (what, id) = kind(a);
            prop_assert!(seen.insert(id));
            let v = after.iter_mut().find(|v| v.id == id).unwrap();
            prop_assert!(!matches!(v.status, Status::Retired | Status::Quarantined));
            v.status = match what {
                "rest" | "extend" => Status::Resting,
                "quarantine" => Status::Quarantined,
                "restore" => Status::Active,
                _ => v.status,
            };
        }
        let before = tally(&views);
        for (pool, (size, out)) in tally(&after) {
            prop_assert!(out <= share_limit(size, share).max(before[&pool].1), "{pool:?}: {actions:?}");
        }
    }

    #[test]
    fn effective_cap_is_at_most_max(max: u32, first in proptest::option::of(0u32..60), today in 0u32..60,
                                    score: Option<u8>, start: u32, days: u32, enabled: bool, cut: u8) {
        let w = Warmup { enabled, start_calls: start, days };
        let p = Policy { warning_cap_reduction_percent: cut, ..Policy::default() };
        let cap = effective_cap(max, first.map(date), date(today), Band::of(score), w, &p);
        prop_assert!(cap <= warmed_cap(max, first.map(date), date(today), w) && cap <= max);
    }

    #[test]
    fn warmed_cap_never_falls_with_age(max: u32, start: u32, days in 0u32..100, d1 in 0u32..200, d2 in 0u32..200) {
        let (w, young, old) = (Warmup { enabled: true, start_calls: start, days }, d1.min(d2), d1.max(d2));
        let cap = |day: Option<u32>| warmed_cap(max, day.map(|_| date(0)), date(day.unwrap_or(0)), w);
        prop_assert!(cap(None) <= cap(Some(young)) && cap(Some(young)) <= cap(Some(old)));
    }

    /// Turning an answered call that was not short into an unanswered one (lower answer rate,
    /// all else equal), or raising the pool median, never lowers the score.
    #[test]
    fn derived_score_is_monotone(calls in proptest::collection::vec((any::<bool>(), any::<Option<u8>>()), 20..60),
                                 median in 0.01f64..1.0, pick: proptest::sample::Index) {
        let d = Derivation::default();
        let sample = |&(answered, secs): &(bool, Option<u8>)| {
            Sample { answered, duration_seconds: secs.map(|s| u32::from(s % 20)) }
        };
        let mut samples: Vec<Sample> = calls.iter().map(sample).collect();
        let before = derived_score(&samples, Some(median), &d).unwrap();
        prop_assert!(derived_score(&samples, Some(median * 1.5), &d).unwrap() >= before);
        let long: Vec<usize> = (0..samples.len())
            .filter(|&i| samples[i].answered && samples[i].duration_seconds.is_none_or(|t| t >= 6))
            .collect();
        if !long.is_empty() {
            samples[long[pick.index(long.len())]].answered = false;
            prop_assert!(derived_score(&samples, Some(median), &d).unwrap() >= before);
        }
    }
}
