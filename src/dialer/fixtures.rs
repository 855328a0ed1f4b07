//! Shared test fixtures for the dialer: a real SQLite store in a temporary directory,
//! caller numbers and fired leads seeded into it, test rules, and small helpers to
//! claim and to read the store back.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::compliance::Compliance;
use crate::compliance::hours::CallingWindow;
use crate::compliance::rules::{Profile, StateRules};
use crate::db::leads::NewLead;
use crate::db::number_admin::{self, Change};
use crate::db::numbers::NewNumber;
use crate::db::schedules::NewSchedule;
use crate::db::{self, Db};
use crate::dialer::claim::{Claim, Claimed, Idle, Rules, claim};
use crate::domain::status::Status;
use crate::numbers::Places;
use crate::numbers::health::{Policy, Warmup};
use crate::numbers::pool::LocalPresence;

pub(crate) const NEW_YORK: &str = "America/New_York";

pub(crate) fn places() -> Arc<Places> {
    static PLACES: OnceLock<Arc<Places>> = OnceLock::new();
    PLACES
        .get_or_init(|| {
            Arc::new(Places::new(
                crate::numbers::npa::NpaMap::embedded(),
                Arc::new(crate::compliance::tz::TzMap::embedded()),
            ))
        })
        .clone()
}

/// Calling hours all day: no profile outer window, no state rules.
pub(crate) fn all_day() -> Arc<Compliance> {
    Arc::new(Compliance {
        profile: Profile::None,
        window: CallingWindow::parse("00:00", "24:00").unwrap(),
        rules: StateRules::default(),
    })
}

/// All-day window, warming off (caps are exactly `max_daily_calls`), a fresh rotation cache.
pub(crate) fn rules(timezone: &str, local_presence: LocalPresence, max_concurrent_calls: u32) -> Rules {
    Rules {
        max_concurrent_calls,
        compliance: all_day(),
        timezone: timezone.parse().unwrap(),
        provider: "test",
        max_calls_per_lead_24h: 3,
        local_presence,
        warmup: Warmup { enabled: false, start_calls: 25, days: 14 },
        policy: Policy::default(),
        places: places(),
        rotation: Arc::default(),
    }
}

pub(crate) struct Store {
    pub(crate) db: Db,
    pub(crate) path: PathBuf,
    _dir: tempfile::TempDir,
}

pub(crate) fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dialer.db");
    let db = Db::open(&path).unwrap();
    Store { db, path, _dir: dir }
}

/// Adds caller numbers (E.164, cap, priority); returns their ids in order.
pub(crate) fn add_numbers(db: &Db, numbers: &[(String, u32, u8)]) -> Vec<i64> {
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
pub(crate) fn seed_leads(db: &Db, leads: &[(String, Option<String>)], due: DateTime<Utc>) -> Vec<i64> {
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
                consent_at: None,
                consent_source: String::new(),
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
            campaign_id: 1,
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
pub(crate) fn plain_leads(n: usize) -> Vec<(String, Option<String>)> {
    (0..n).map(|i| (format!("+1415700{i:04}"), None)).collect()
}

/// A UTC instant.
pub(crate) fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// One claim at `at`, in its own write transaction.
pub(crate) fn claim_at(db: &Db, rules: &Rules, at: DateTime<Utc>) -> Claim {
    db.write_blocking(|tx| claim(tx, rules, at)).unwrap()
}

/// The call a claim placed; panics on any other answer.
pub(crate) fn dial(result: Claim) -> Claimed {
    match result {
        Claim::Dial(c) => c,
        other => panic!("expected a call, got {other:?}"),
    }
}

/// The resume time of a claim that stopped because every number is at its cap.
pub(crate) fn capped_until(result: Claim) -> DateTime<Utc> {
    match result {
        Claim::Idle(Idle::NoCallerCapacity { resume_at }) => resume_at,
        other => panic!("expected NoCallerCapacity, got {other:?}"),
    }
}

/// The single integer `sql` selects.
pub(crate) fn count(db: &Db, sql: &str) -> i64 {
    db.read_blocking(|c| Ok(c.query_row(sql, [], |r| r.get(0))?)).unwrap()
}

/// Calls number `number_id` placed on local day `day`.
pub(crate) fn used_on(db: &Db, number_id: i64, day: &str) -> u32 {
    db.read_blocking(|c| db::numbers::used_on(c, number_id, day)).unwrap()
}

/// Start of the local day after `at`'s local date in `tz`, computed with chrono alone
/// (New York's midnight always exists: its transitions are at 02:00).
pub(crate) fn next_midnight(tz: Tz, at: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = at.with_timezone(&tz).date_naive().succ_opt().unwrap();
    tz.from_local_datetime(&tomorrow.and_time(NaiveTime::MIN)).single().unwrap().with_timezone(&Utc)
}

/// Applies an operator's change to number `id` at `at` (the number must exist).
pub(crate) fn set(db: &Db, id: i64, change: Change, at: DateTime<Utc>) {
    assert!(db.write_blocking(|tx| number_admin::apply(tx, id, &change, "test", "user", db::to_ms(at))).unwrap());
}

/// A change of status only, `until` for statuses that end (resting).
pub(crate) fn status(status: &str, until: Option<DateTime<Utc>>) -> Change {
    Change { status: Some((status.to_string(), until.map(db::to_ms))), ..Change::default() }
}
