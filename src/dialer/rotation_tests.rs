//! Rotation through the claim on a real SQLite file: simultaneous claims from two
//! handles stop exactly at the caps, caps reset at local midnight of the configured
//! zone (DST days included), local presence and number statuses hold for random pools
//! and random interleavings, and weighted shares survive the claim.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use crate::compliance::hours::CallingWindow;
use crate::db::leads::NewLead;
use crate::db::number_admin::{self, Change};
use crate::db::numbers::NewNumber;
use crate::db::schedules::NewSchedule;
use crate::db::{self, Db};
use crate::dialer::claim::{Claim, Claimed, Idle, Rules, claim, lead_zones};
use crate::domain::status::Status;
use crate::numbers::Places;
use crate::numbers::health::{Policy, Warmup};
use crate::numbers::pool::LocalPresence;

const NEW_YORK: &str = "America/New_York";

fn places() -> Arc<Places> {
    static PLACES: OnceLock<Arc<Places>> = OnceLock::new();
    PLACES
        .get_or_init(|| {
            Arc::new(Places {
                npa: crate::numbers::npa::NpaMap::embedded(),
                tz: Arc::new(crate::compliance::tz::TzMap::embedded()),
            })
        })
        .clone()
}

/// All-day window, warming off (caps are exactly `max_daily_calls`), a fresh rotation cache.
fn rules(timezone: &str, local_presence: LocalPresence, max_concurrent_calls: u32) -> Rules {
    Rules {
        max_concurrent_calls,
        window: CallingWindow::parse("00:00", "24:00").unwrap(),
        timezone: timezone.parse().unwrap(),
        provider: "test",
        local_presence,
        warmup: Warmup { enabled: false, start_calls: 25, days: 14 },
        policy: Policy::default(),
        places: places(),
        rotation: Arc::default(),
    }
}

struct Store {
    db: Db,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotation.db");
    let db = Db::open(&path).unwrap();
    Store { db, path, _dir: dir }
}

/// Adds caller numbers (E.164, cap, priority); returns their ids in order.
fn add_numbers(db: &Db, numbers: &[(String, u32, u8)]) -> Vec<i64> {
    let new: Vec<NewNumber> = numbers
        .iter()
        .map(|(number, cap, priority)| NewNumber {
            number: number.clone(),
            label: None,
            max_daily_calls: *cap,
            rotation_priority: *priority,
            pool: None,
        })
        .collect();
    let ids = db.write_blocking(|tx| db::numbers::add(tx, &new, "test", 0)).unwrap();
    assert_eq!(ids.len(), numbers.len());
    ids
}

/// Leads (E.164, stored zones) scheduled in one batch that fired at `due`; returns their ids.
fn seed_leads(db: &Db, leads: &[(String, Option<String>)], due: DateTime<Utc>) -> Vec<i64> {
    let due_ms = db::to_ms(due);
    db.write_blocking(|tx| {
        let import_id = db::imports::start(tx, "test", due_ms)?;
        let mut ids = Vec::new();
        for (i, (phone, timezone)) in leads.iter().enumerate() {
            let lead = NewLead {
                line: i as u64,
                uuid: None,
                phone: phone.clone(),
                whatsapp: String::new(),
                name: String::new(),
                email: String::new(),
                partner: String::new(),
                state: String::new(),
                timezone: timezone.clone(),
                timezone_source: "default",
                status: Status::Pending,
            };
            assert_eq!(db::leads::upsert(tx, &lead, import_id, due_ms)?, db::leads::Upsert::Inserted);
            ids.push(tx.last_insert_rowid());
        }
        let schedule = NewSchedule {
            start_at_ms: due_ms,
            timezone: "UTC",
            parallel_calls: 50,
            interval_seconds: 1,
            total_leads: leads.len(),
            total_batches: 1,
        };
        let schedule_id = db::schedules::insert(tx, &schedule, due_ms)?;
        let batch_id = db::schedules::insert_batch(tx, schedule_id, 0, due_ms, leads.len())?;
        db::leads::mark_scheduled(tx, &ids, schedule_id, batch_id, due_ms)?;
        let fired = db::schedules::fire_due(tx, due_ms, 60_000)?;
        assert_eq!(fired.fired.len(), 1);
        Ok(ids)
    })
    .unwrap()
}

/// `n` US leads in 415 (San Francisco), zones unknown.
fn plain_leads(n: usize) -> Vec<(String, Option<String>)> {
    (0..n).map(|i| (format!("+1415700{i:04}"), None)).collect()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn claim_at(db: &Db, rules: &Rules, at: DateTime<Utc>) -> Claim {
    db.write_blocking(|tx| claim(tx, rules, at)).unwrap()
}

fn dial(result: Claim) -> Claimed {
    match result {
        Claim::Dial(c) => c,
        other => panic!("expected a call, got {other:?}"),
    }
}

/// The resume time of a claim that stopped because every number is at its cap.
fn capped_until(result: Claim) -> DateTime<Utc> {
    match result {
        Claim::Idle(Idle::NoCallerCapacity { resume_at }) => resume_at,
        other => panic!("expected NoCallerCapacity, got {other:?}"),
    }
}

fn count(db: &Db, sql: &str) -> i64 {
    db.read_blocking(|c| Ok(c.query_row(sql, [], |r| r.get(0))?)).unwrap()
}

fn used_on(db: &Db, number_id: i64, day: &str) -> u32 {
    db.read_blocking(|c| db::numbers::used_on(c, number_id, day)).unwrap()
}

/// Start of the local day after `at`'s local date in `tz`, computed with chrono alone
/// (New York's midnight always exists: its transitions are at 02:00).
fn next_midnight(tz: Tz, at: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = at.with_timezone(&tz).date_naive().succ_opt().unwrap();
    tz.from_local_datetime(&tomorrow.and_time(NaiveTime::MIN)).single().unwrap().with_timezone(&Utc)
}

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
// 4. Weighted shares
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
// 5. Statuses change mid-run
// ---------------------------------------------------------------------------------

fn set(db: &Db, id: i64, change: Change, at: DateTime<Utc>) {
    assert!(db.write_blocking(|tx| number_admin::apply(tx, id, &change, "test", "user", db::to_ms(at))).unwrap());
}

fn status(status: &str, until: Option<DateTime<Utc>>) -> Change {
    Change { status: Some((status.to_string(), until.map(db::to_ms))), ..Change::default() }
}

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

// ---------------------------------------------------------------------------------
// 3. Property test: local presence, caps and statuses under random interleavings
// ---------------------------------------------------------------------------------

const AREA_CODES: [u16; 5] = [212, 646, 305, 907, 415];
const STATUSES: [&str; 4] = ["active", "resting", "quarantined", "retired"];

#[derive(Debug, Clone)]
struct NumberSpec {
    priority: u8,
    cap: u32,
    code: usize,
    status: usize,
    enabled: bool,
}

#[derive(Debug, Clone)]
enum Step {
    Claim,
    /// End the oldest call in flight.
    End,
    /// Change number `number % len`'s status and rotation switch.
    Set {
        number: usize,
        status: usize,
        enabled: bool,
    },
}

fn status_index() -> impl Strategy<Value = usize> {
    prop_oneof![5 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize), 1 => Just(3usize)]
}

fn number_spec() -> impl Strategy<Value = NumberSpec> {
    (1u8..=10, 0u32..6, 0..AREA_CODES.len(), status_index(), proptest::bool::weighted(0.8))
        .prop_map(|(priority, cap, code, status, enabled)| NumberSpec { priority, cap, code, status, enabled })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Claim),
        3 => Just(Step::End),
        1 => (0usize..8, status_index(), proptest::bool::weighted(0.8))
            .prop_map(|(number, status, enabled)| Step::Set { number, status, enabled }),
    ]
}

fn presence() -> impl Strategy<Value = LocalPresence> {
    prop_oneof![Just(LocalPresence::Strict), Just(LocalPresence::Prefer), Just(LocalPresence::Off)]
}

/// A caller number as the store has it just before a claim.
#[derive(Debug)]
struct NumberNow {
    id: i64,
    usable: bool,
    room: bool,
    area_code: Option<u16>,
    state: Option<String>,
    zones: Vec<Tz>,
}

fn numbers_now(db: &Db, day: &str) -> Vec<NumberNow> {
    let rows: Vec<(i64, String, String, bool, u32, u32)> = db
        .read_blocking(|c| {
            let mut stmt = c.prepare(
                "SELECT n.id, n.number, n.status, n.enabled, n.max_daily_calls, COALESCE(u.calls, 0)
                 FROM caller_numbers n LEFT JOIN number_usage u ON u.number_id = n.id AND u.day = ?1 ORDER BY n.id",
            )?;
            let rows = stmt
                .query_map([day], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .unwrap();
    rows.into_iter()
        .map(|(id, number, status, enabled, cap, used)| {
            let usable = enabled && status == "active";
            let (area_code, state, zones) = places().of(&number);
            NumberNow { id, usable, room: usable && used < cap, area_code, state, zones }
        })
        .collect()
}

/// A lead as local presence sees it.
#[derive(Debug)]
struct LeadNow {
    area_code: Option<u16>,
    state: Option<String>,
    zones: Vec<Tz>,
}

fn lead_now(db: &Db, lead_id: i64, default: Tz) -> LeadNow {
    let (phone, timezone): (String, Option<String>) = db
        .read_blocking(|c| {
            Ok(c.query_row("SELECT phone, timezone FROM leads WHERE id = ?1", [lead_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })
        .unwrap();
    let (area_code, state, _) = places().of(&phone);
    LeadNow { area_code, state, zones: lead_zones(timezone.as_deref(), default) }
}

/// The tier local presence must pick for `lead` given the numbers with room, and how many
/// numbers with room that tier has; None = `strict` and no local number has room.
fn expected_tier(mode: LocalPresence, lead: &LeadNow, numbers: &[NumberNow]) -> Option<(&'static str, usize)> {
    let room: Vec<&NumberNow> = numbers.iter().filter(|n| n.room).collect();
    let same_code = |n: &NumberNow| lead.area_code.is_some() && n.area_code == lead.area_code;
    let same_state = |n: &NumberNow| lead.state.is_some() && n.state == lead.state;
    let same_zone = |n: &NumberNow| n.zones.iter().any(|z| lead.zones.contains(z));
    let tiers: Vec<(&'static str, usize)> = match mode {
        LocalPresence::Off => vec![("any", room.len())],
        LocalPresence::Strict => vec![
            ("area_code", room.iter().filter(|n| same_code(n)).count()),
            ("state", room.iter().filter(|n| same_state(n)).count()),
        ],
        LocalPresence::Prefer => vec![
            ("area_code", room.iter().filter(|n| same_code(n)).count()),
            ("state", room.iter().filter(|n| same_state(n)).count()),
            ("timezone", room.iter().filter(|n| same_zone(n)).count()),
            ("any", room.len()),
        ],
    };
    tiers.into_iter().find(|(_, n)| *n > 0)
}

fn waiting_for_local(db: &Db) -> HashSet<i64> {
    db.read_blocking(|c| {
        let mut stmt =
            c.prepare("SELECT id FROM leads WHERE status = 'scheduled' AND wait_reason = 'no_local_number'")?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(ids)
    })
    .unwrap()
}

/// Checks one call against the numbers as they were just before its claim.
fn check_call(
    db: &Db,
    mode: LocalPresence,
    default: Tz,
    call: &Claimed,
    before: &[NumberNow],
) -> Result<(), TestCaseError> {
    let (number_id, tier, candidates): (i64, String, i64) = db
        .read_blocking(|c| {
            Ok(c.query_row(
                "SELECT caller_number_id, caller_tier, caller_candidates FROM attempts WHERE id = ?1",
                [call.attempt_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .unwrap();
    prop_assert_eq!(number_id, call.caller_number_id);
    let number = before.iter().find(|n| n.id == number_id).unwrap();
    prop_assert!(number.usable, "dialled from a resting/quarantined/retired/disabled number: {:?}", number);
    prop_assert!(number.room, "dialled from a number at its cap: {:?}", number);
    prop_assert!(candidates >= 1, "caller_candidates {}", candidates);
    let lead = lead_now(db, call.lead_id, default);
    match tier.as_str() {
        "area_code" => prop_assert!(lead.area_code.is_some() && number.area_code == lead.area_code),
        "state" => prop_assert!(lead.state.is_some() && number.state == lead.state),
        "timezone" => prop_assert!(number.zones.iter().any(|z| lead.zones.contains(z))),
        "any" => {}
        other => prop_assert!(false, "unknown tier {}", other),
    }
    match mode {
        LocalPresence::Strict => prop_assert!(tier == "area_code" || tier == "state", "strict used tier {}", tier),
        LocalPresence::Off => prop_assert_eq!(tier.as_str(), "any"),
        LocalPresence::Prefer => {
            if tier != "area_code" {
                let local = before.iter().find(|n| n.room && lead.area_code.is_some() && n.area_code == lead.area_code);
                prop_assert!(local.is_none(), "tier {} although {:?} had room for {:?}", tier, local, lead);
            }
        }
    }
    let expected = expected_tier(mode, &lead, before);
    prop_assert_eq!(Some((tier.as_str(), candidates as usize)), expected, "lead {:?}, numbers {:?}", lead, before);
    Ok(())
}

/// Invariants of the whole store after any step.
fn check_store(db: &Db, day: &str, in_flight: usize) -> Result<(), TestCaseError> {
    let over = "SELECT COUNT(*) FROM number_usage u JOIN caller_numbers n ON n.id = u.number_id
                WHERE u.calls > n.max_daily_calls";
    prop_assert_eq!(count(db, over), 0, "a number is over its cap");
    let ledger = format!(
        "SELECT COUNT(*) FROM caller_numbers n WHERE
           (SELECT COUNT(*) FROM attempts a WHERE a.caller_number_id = n.id AND a.usage_day = '{day}')
           <> COALESCE((SELECT calls FROM number_usage u WHERE u.number_id = n.id AND u.day = '{day}'), 0)"
    );
    prop_assert_eq!(count(db, &ledger), 0, "number_usage disagrees with the attempts");
    prop_assert_eq!(
        count(db, "SELECT COUNT(*) FROM attempts"),
        count(db, "SELECT COUNT(DISTINCT lead_id) FROM attempts"),
        "a lead was dialled twice"
    );
    prop_assert_eq!(count(db, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL"), in_flight as i64);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random pools (statuses, rotation switches, priorities, caps, area codes), random
    /// leads (US and one country outside NANP), any local-presence mode, random
    /// interleavings of claims, call endings and status changes: no cap is passed, only
    /// active enabled numbers dial, every attempt's tier is the first tier with room
    /// (area code, state, zone, any; strict stops after state) with `caller_candidates`
    /// the numbers with room in it, and the claim only stops for a true reason.
    #[test]
    fn local_presence_caps_and_statuses_hold_for_random_pools(
        numbers in proptest::collection::vec(number_spec(), 1..=8),
        leads in proptest::collection::vec(0..=AREA_CODES.len(), 1..=40),
        mode in presence(),
        max_concurrent in 1u32..=4,
        steps in proptest::collection::vec(step(), 1..100),
    ) {
        let s = store();
        let now = utc(2026, 6, 15, 16, 0, 0);
        let now_ms = db::to_ms(now);
        let ny: Tz = NEW_YORK.parse().unwrap();
        let day = "2026-06-15";
        let specs: Vec<(String, u32, u8)> = numbers
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("+1{}2370{i:03}", AREA_CODES[n.code]), n.cap, n.priority))
            .collect();
        let ids = add_numbers(&s.db, &specs);
        for (id, n) in ids.iter().zip(&numbers) {
            let until = (n.status == 1).then(|| now + Duration::hours(48));
            let change = Change { rotation_enabled: Some(n.enabled), ..status(STATUSES[n.status], until) };
            set(&s.db, *id, change, now);
        }
        let lead_rows: Vec<(String, Option<String>)> = leads
            .iter()
            .enumerate()
            .map(|(i, code)| {
                let phone = match AREA_CODES.get(*code) {
                    Some(code) => format!("+1{code}700{i:04}"),
                    None => format!("+9198765{i:05}"), // India: no area code, no state
                };
                let zones = places().of(&phone).2;
                let stored = (!zones.is_empty()).then(|| zones.iter().map(|z| z.name()).collect::<Vec<_>>().join("&"));
                (phone, stored)
            })
            .collect();
        seed_leads(&s.db, &lead_rows, utc(2026, 6, 15, 12, 0, 0));
        let rules = rules(NEW_YORK, mode, max_concurrent);
        let mut in_flight: Vec<i64> = Vec::new();
        let mut calls: BTreeMap<i64, i64> = BTreeMap::new();

        for step in steps {
            match step {
                Step::Claim => {
                    let before = numbers_now(&s.db, day);
                    let waiting_before = waiting_for_local(&s.db);
                    let result = s.db.write_blocking(|tx| claim(tx, &rules, now));
                    let result = match result {
                        Ok(r) => r,
                        Err(e) => return Err(TestCaseError::fail(format!("claim failed: {e:#}"))),
                    };
                    // Leads the claim put aside for want of a local number: strict only,
                    // some number had room, none of it local.
                    for lead_id in waiting_for_local(&s.db).difference(&waiting_before) {
                        let lead = lead_now(&s.db, *lead_id, ny);
                        prop_assert_eq!(mode, LocalPresence::Strict);
                        prop_assert!(before.iter().any(|n| n.room), "no_local_number with no room at all");
                        prop_assert_eq!(expected_tier(mode, &lead, &before), None, "lead {:?} had a local number", lead);
                    }
                    match result {
                        Claim::Dial(call) => {
                            check_call(&s.db, mode, ny, &call, &before)?;
                            prop_assert_eq!(call.usage_day.as_str(), day);
                            prop_assert!(calls.insert(call.lead_id, call.caller_number_id).is_none());
                            in_flight.push(call.attempt_id);
                        }
                        Claim::Idle(Idle::MaxConcurrent { in_flight: n }) => {
                            prop_assert_eq!(n as usize, in_flight.len());
                            prop_assert_eq!(in_flight.len(), max_concurrent as usize);
                        }
                        Claim::Idle(Idle::NoCallerCapacity { resume_at }) => {
                            prop_assert!(before.iter().all(|n| !n.room), "stopped with room left: {:?}", before);
                            prop_assert!(resume_at > now && resume_at <= utc(2026, 6, 16, 4, 0, 0), "{}", resume_at);
                        }
                        Claim::Idle(Idle::NothingDue { .. }) => {
                            let due = format!(
                                "SELECT COUNT(*) FROM leads WHERE status = 'scheduled' AND next_call_at <= {now_ms}"
                            );
                            prop_assert_eq!(count(&s.db, &due), 0, "stopped with leads due");
                        }
                    }
                }
                Step::End => {
                    if !in_flight.is_empty() {
                        let id = in_flight.remove(0);
                        s.db.write_blocking(|tx| {
                            let state = db::attempts::state(tx, id)?.unwrap();
                            db::attempts::set_status(tx, &state, Status::Completed, &Default::default(), now_ms)
                        })
                        .unwrap();
                    }
                }
                Step::Set { number, status: st, enabled } => {
                    let id = ids[number % ids.len()];
                    let until = (st == 1).then(|| now + Duration::hours(48));
                    set(&s.db, id, Change { rotation_enabled: Some(enabled), ..status(STATUSES[st], until) }, now);
                }
            }
            check_store(&s.db, day, in_flight.len())?;
        }
    }
}
