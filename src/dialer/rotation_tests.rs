//! Rotation through the claim on a real SQLite file: simultaneous claims from two
//! handles stop exactly at the caps, caps reset at local midnight of the configured
//! zone (DST days included), weighted shares survive the claim, and status changes
//! made mid-run take effect at the next claim. The property test over random pools
//! and interleavings is in `rotation_props.rs`.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::db::number_admin::Change;
use crate::db::{self, Db};
use crate::dialer::claim::{Claim, Claimed, Idle, Rules, claim};
use crate::dialer::fixtures::{
    NEW_YORK, Store, add_numbers, capped_until, claim_at, count, dial, next_midnight, plain_leads, rules, seed_leads,
    set, status, store, used_on, utc,
};
use crate::numbers::pool::LocalPresence;

// ---------------------------------------------------------------------------------
// 1. Concurrency
// ---------------------------------------------------------------------------------

/// 200 claims at once, half through a second `Db` handle with its own rotation cache
/// (a second process on the same file): exactly the 50 slots of the 5 numbers are
/// dialled, every other claim says "no caller capacity until local midnight".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_simultaneous_claims_from_two_processes_fill_exactly_the_caps() {
    let s = store();
    let numbers: Vec<(String, u32, u8)> = (0..5).map(|i| (format!("+121223701{i:02}"), 10, 5)).collect();
    let number_ids = add_numbers(&s.db, &numbers);
    let start = Utc::now();
    let lead_ids = seed_leads(&s.db, &plain_leads(200), start - Duration::minutes(1));
    let second = Db::open(&s.path).unwrap();
    let first_rules = rules(NEW_YORK, LocalPresence::Prefer, 1000);
    let second_rules = rules(NEW_YORK, LocalPresence::Prefer, 1000);

    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (db, rules) =
                if i % 2 == 0 { (s.db.clone(), first_rules.clone()) } else { (second.clone(), second_rules.clone()) };
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                db.write(move |tx| claim(tx, &rules, Utc::now())).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let end = Utc::now();
    let tz: Tz = NEW_YORK.parse().unwrap();
    let day = start.with_timezone(&tz).date_naive().to_string();

    // The store: 50 attempts, 50 distinct leads, 10 per number, nothing over a cap.
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM attempts"), 50);
    assert_eq!(count(&s.db, "SELECT COUNT(DISTINCT lead_id) FROM attempts"), 50);
    for id in &number_ids {
        assert_eq!(used_on(&s.db, *id, &day), 10, "number {id}");
        let from_it = count(&s.db, &format!("SELECT COUNT(*) FROM attempts WHERE caller_number_id = {id}"));
        assert_eq!(from_it, 10, "attempts from number {id}");
    }
    let over = "SELECT COUNT(*) FROM number_usage u JOIN caller_numbers n ON n.id = u.number_id
                WHERE u.calls > n.max_daily_calls";
    assert_eq!(count(&s.db, over), 0);
    let waiting = "SELECT COUNT(*) FROM leads WHERE status = 'scheduled'
                   AND id NOT IN (SELECT lead_id FROM attempts)";
    assert_eq!(count(&s.db, waiting), 150, "the leads not dialled are still scheduled");
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM leads"), lead_ids.len() as i64);

    // The answers: 50 calls, 150 "no caller capacity" until local midnight, no errors.
    let errors: Vec<String> = results.iter().filter_map(|r| r.as_ref().err()).map(|e| format!("{e:#}")).collect();
    let dials: Vec<&Claimed> =
        results.iter().filter_map(|r| if let Ok(Claim::Dial(c)) = r { Some(c) } else { None }).collect();
    let dialled: HashSet<i64> = dials.iter().map(|c| c.lead_id).collect();
    let midnights = [next_midnight(tz, start), next_midnight(tz, end)];
    let capped: Vec<&Idle> = results
        .iter()
        .filter_map(|r| match r {
            Ok(Claim::Idle(idle @ Idle::NoCallerCapacity { .. })) => Some(idle),
            _ => None,
        })
        .collect();
    assert_eq!(dials.len(), 50, "calls placed");
    assert_eq!(dialled.len(), 50, "no lead dialled twice");
    assert!(
        errors.is_empty(),
        "{} of 200 claims failed instead of answering Dial or NoCallerCapacity; first: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(capped.len(), 150, "every other claim stops for want of caller capacity: {results:?}");
    for idle in capped {
        let Idle::NoCallerCapacity { resume_at } = idle else { unreachable!() };
        assert!(midnights.contains(resume_at), "{idle:?} should resume at local midnight {midnights:?}");
        assert!(format!("{idle:?}").starts_with("NoCallerCapacity"), "the reason is named: {idle:?}");
    }
}

/// The same race made deterministic: process A loads its rotation, process B (its own
/// handle and cache) fills the number, then A claims again. A must answer
/// NoCallerCapacity (or dial another number), not fail.
#[test]
fn a_number_filled_by_another_process_is_not_an_error() {
    let s = store();
    let id = add_numbers(&s.db, &[("+12122370101".to_string(), 3, 5)])[0];
    // In use since an earlier day: no first use below, so nothing bumps the rotation version.
    s.db.write_blocking(|tx| Ok(tx.execute("UPDATE caller_numbers SET first_used_day = '2026-01-05'", [])?)).unwrap();
    seed_leads(&s.db, &plain_leads(10), utc(2026, 1, 1, 0, 0, 0));
    let second = Db::open(&s.path).unwrap();
    let (first_rules, second_rules) =
        (rules(NEW_YORK, LocalPresence::Prefer, 100), rules(NEW_YORK, LocalPresence::Prefer, 100));
    let now = utc(2026, 6, 15, 15, 0, 0);
    assert_eq!(dial(claim_at(&s.db, &first_rules, now)).caller_number_id, id); // A: 1 of 3
    assert_eq!(dial(claim_at(&second, &second_rules, now)).caller_number_id, id); // B: 2 of 3
    assert_eq!(dial(claim_at(&second, &second_rules, now)).caller_number_id, id); // B: 3 of 3
    assert_eq!(used_on(&s.db, id, "2026-06-15"), 3);
    let result = s.db.write_blocking(|tx| claim(tx, &first_rules, now));
    let resume_at = match result {
        Ok(Claim::Idle(Idle::NoCallerCapacity { resume_at })) => resume_at,
        other => panic!("process A, whose rotation still sees room, should answer NoCallerCapacity: {other:?}"),
    };
    assert_eq!(resume_at, utc(2026, 6, 16, 4, 0, 0));
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM attempts"), 3);
}

// ---------------------------------------------------------------------------------
// 2. Day boundary in the configured zone
// ---------------------------------------------------------------------------------

/// One number with cap 2 in New York, ten leads due since January.
fn one_number_in_new_york() -> (Store, Rules, i64) {
    let s = store();
    let id = add_numbers(&s.db, &[("+12122370101".to_string(), 2, 5)])[0];
    seed_leads(&s.db, &plain_leads(10), utc(2026, 1, 1, 0, 0, 0));
    (s, rules(NEW_YORK, LocalPresence::Prefer, 100), id)
}

/// Fills the number's cap at `at` and checks the calls count for local day `day`.
fn fill_cap(s: &Store, rules: &Rules, id: i64, at: DateTime<Utc>, day: &str) {
    for _ in 0..2 {
        let call = dial(claim_at(&s.db, rules, at));
        assert_eq!((call.caller_number_id, call.usage_day.as_str()), (id, day), "filled at {at}");
    }
    assert_eq!(used_on(&s.db, id, day), 2);
}

/// Caps are per local day of `rules.timezone`: at UTC midnight (New York evening) the
/// number is still full, it stays full until one second before local midnight and
/// dials again at local midnight, on an ordinary day and across both DST changes.
/// Expected instants are computed by hand.
#[test]
fn caps_reset_at_local_midnight_not_utc_midnight() {
    // (local day that starts, the day before, its local midnight in UTC)
    let cases = [
        ("2026-06-15", "2026-06-14", utc(2026, 6, 15, 4, 0, 0)), // ordinary day, EDT (UTC-4)
        ("2026-01-20", "2026-01-19", utc(2026, 1, 20, 5, 0, 0)), // ordinary day, EST (UTC-5)
        ("2026-03-08", "2026-03-07", utc(2026, 3, 8, 5, 0, 0)),  // spring-forward day: 00:00 EST
        ("2026-03-09", "2026-03-08", utc(2026, 3, 9, 4, 0, 0)),  // the day after: 00:00 EDT
        ("2026-11-01", "2026-10-31", utc(2026, 11, 1, 4, 0, 0)), // fall-back day: 00:00 EDT
        ("2026-11-02", "2026-11-01", utc(2026, 11, 2, 5, 0, 0)), // the day after: 00:00 EST
    ];
    for (day, before, midnight) in cases {
        let (s, rules, id) = one_number_in_new_york();
        let utc_midnight = midnight.date_naive().and_time(NaiveTime::MIN).and_utc();
        // 23:00 UTC the day before = 18:00 or 19:00 in New York.
        fill_cap(&s, &rules, id, utc_midnight - Duration::hours(1), before);
        // UTC has turned (the UTC date is already `day`), New York has not.
        assert_eq!(capped_until(claim_at(&s.db, &rules, utc_midnight)), midnight, "{day}: at UTC midnight");
        assert_eq!(
            capped_until(claim_at(&s.db, &rules, midnight - Duration::seconds(1))),
            midnight,
            "{day}: 1 s before"
        );
        let call = dial(claim_at(&s.db, &rules, midnight));
        assert_eq!(call.usage_day, day, "the call at local midnight counts for the new local day");
        assert_eq!((used_on(&s.db, id, day), used_on(&s.db, id, before)), (1, 2));
        let stored_day: String =
            s.db.read_blocking(|c| {
                Ok(c.query_row("SELECT usage_day FROM attempts WHERE id = ?1", [call.attempt_id], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(stored_day, day);
    }
}

/// The fall-back day has 25 hours and the spring-forward day 23: one cap covers the
/// whole local day either way (not 24 hours from midnight).
#[test]
fn a_25_hour_and_a_23_hour_local_day_each_have_one_cap() {
    // 2026-11-01: 00:00 EDT = 04:00 UTC, 01:00–02:00 happens twice, 2026-11-02 00:00 EST = 05:00 UTC.
    let (s, rules, id) = one_number_in_new_york();
    fill_cap(&s, &rules, id, utc(2026, 11, 1, 4, 30, 0), "2026-11-01"); // 00:30 EDT
    let resets = utc(2026, 11, 2, 5, 0, 0);
    for at in [
        utc(2026, 11, 1, 5, 30, 0),  // 01:30 EDT
        utc(2026, 11, 1, 6, 30, 0),  // 01:30 EST, the repeated hour
        utc(2026, 11, 2, 0, 0, 0),   // UTC midnight, 19:00 EST
        utc(2026, 11, 2, 4, 30, 0),  // 23:30 EST: 24 hours after 00:30 EDT, same local day
        utc(2026, 11, 2, 4, 59, 59), // 23:59:59 EST
    ] {
        assert_eq!(capped_until(claim_at(&s.db, &rules, at)), resets, "fall-back day, at {at}");
    }
    assert_eq!(dial(claim_at(&s.db, &rules, resets)).usage_day, "2026-11-02");

    // 2026-03-08: 00:00 EST = 05:00 UTC, 02:00 EST jumps to 03:00 EDT, 2026-03-09 00:00 EDT = 04:00 UTC.
    let (s, rules, id) = one_number_in_new_york();
    fill_cap(&s, &rules, id, utc(2026, 3, 8, 5, 30, 0), "2026-03-08"); // 00:30 EST
    let resets = utc(2026, 3, 9, 4, 0, 0);
    for at in [
        utc(2026, 3, 8, 7, 0, 0),   // 03:00 EDT, just after the gap
        utc(2026, 3, 9, 0, 0, 0),   // UTC midnight, 20:00 EDT
        utc(2026, 3, 9, 3, 59, 59), // 23:59:59 EDT: only 23 hours after midnight
    ] {
        assert_eq!(capped_until(claim_at(&s.db, &rules, at)), resets, "spring-forward day, at {at}");
    }
    assert_eq!(dial(claim_at(&s.db, &rules, resets)).usage_day, "2026-03-09");
}

// ---------------------------------------------------------------------------------
// 3. Weighted shares
// ---------------------------------------------------------------------------------

/// Dials 40 leads one by one from numbers A, B, C with priorities 10, 5, 5 (local
/// presence off) and checks, after every call, that each number is within one call of
/// its 50/25/25 share; returns the caller sequence. `already_used`: the numbers placed
/// calls on earlier days (their warming has started), so no first use happens here.
fn weighted_sequence(already_used: bool) -> String {
    let s = store();
    let ids = add_numbers(
        &s.db,
        &[
            ("+12122370101".to_string(), 1000, 10),
            ("+13052370102".to_string(), 1000, 5),
            ("+19072370103".to_string(), 1000, 5),
        ],
    );
    if already_used {
        s.db.write_blocking(|tx| Ok(tx.execute("UPDATE caller_numbers SET first_used_day = '2026-01-05'", [])?))
            .unwrap();
    }
    seed_leads(&s.db, &plain_leads(40), utc(2026, 1, 1, 0, 0, 0));
    let rules = rules(NEW_YORK, LocalPresence::Off, 1000);
    let now = utc(2026, 6, 15, 15, 0, 0);
    let shares = [0.5, 0.25, 0.25];
    let mut counts = [0u32; 3];
    let mut sequence = String::new();
    for k in 1..=40u32 {
        let call = dial(claim_at(&s.db, &rules, now));
        let index = ids.iter().position(|id| *id == call.caller_number_id).unwrap();
        counts[index] += 1;
        sequence.push(['A', 'B', 'C'][index]);
        for (i, share) in shares.iter().enumerate() {
            let ideal = f64::from(k) * share;
            assert!(
                (f64::from(counts[i]) - ideal).abs() < 1.0,
                "after call {k}: counts {counts:?} vs ideal 50/25/25; sequence {sequence}"
            );
        }
    }
    let tiers = count(&s.db, "SELECT COUNT(*) FROM attempts WHERE caller_tier = 'any' AND caller_candidates = 3");
    assert_eq!(tiers, 40, "local presence off: one tier of all three numbers");
    sequence
}

/// Priorities 10, 5, 5 through the real claim (load, reserve, first use, attempt),
/// starting from brand-new numbers: A B A C A B A C …
#[test]
fn weighted_shares_hold_through_the_claim() {
    assert_eq!(weighted_sequence(false), "ABAC".repeat(10));
}

/// The same with numbers that already placed calls on earlier days: no first use, so
/// no reload of the rotation during the run.
#[test]
fn weighted_shares_hold_through_the_claim_for_numbers_in_use() {
    assert_eq!(weighted_sequence(true), "ABAC".repeat(10));
}

// ---------------------------------------------------------------------------------
// 4. Statuses change mid-run
// ---------------------------------------------------------------------------------

/// Resting a number (or turning its rotation off) takes it out of the next claims at
/// once, because the store's rotation version changed; restoring it brings it back.
#[test]
fn a_number_rested_mid_run_is_skipped_until_restored() {
    let s = store();
    let numbers: Vec<(String, u32, u8)> = (1..=3).map(|i| (format!("+121223701{i:02}"), 100, 5)).collect();
    let [a, b, c] = add_numbers(&s.db, &numbers)[..] else { unreachable!() };
    seed_leads(&s.db, &plain_leads(60), utc(2026, 1, 1, 0, 0, 0));
    let rules = rules(NEW_YORK, LocalPresence::Off, 1000);
    let now = utc(2026, 6, 15, 15, 0, 0);
    let version = || s.db.read_blocking(db::numbers::version).unwrap();
    let callers =
        |n: usize| -> Vec<i64> { (0..n).map(|_| dial(claim_at(&s.db, &rules, now)).caller_number_id).collect() };

    let before = callers(6);
    assert_eq!(before.iter().copied().collect::<HashSet<_>>(), HashSet::from([a, b, c]));

    let v = version();
    set(&s.db, b, status("resting", Some(now + Duration::hours(48))), now);
    assert!(version() > v, "a status change bumps rotation_meta.version");
    let resting = callers(10);
    assert!(!resting.contains(&b), "resting number used: {resting:?}");
    assert!(resting.contains(&a) && resting.contains(&c), "{resting:?}");

    set(&s.db, c, Change { rotation_enabled: Some(false), ..Change::default() }, now);
    let only_a = callers(4);
    assert_eq!(only_a, vec![a; 4], "rotation disabled on c, b resting");

    set(&s.db, b, status("active", None), now);
    set(&s.db, c, Change { rotation_enabled: Some(true), ..Change::default() }, now);
    let after = callers(6);
    assert_eq!(after.iter().filter(|id| **id == b).count(), 2, "restored: back in equal turns {after:?}");
    assert_eq!(after.iter().filter(|id| **id == c).count(), 2, "re-enabled: back in equal turns {after:?}");
    // The attempts agree with what the claims returned.
    let all: Vec<i64> = [before, resting, only_a, after].concat();
    for id in [a, b, c] {
        let stored = count(&s.db, &format!("SELECT COUNT(*) FROM attempts WHERE caller_number_id = {id}"));
        assert_eq!(stored, all.iter().filter(|n| **n == id).count() as i64, "attempts from {id}");
    }
}
