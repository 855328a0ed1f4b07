//! Property tests of the claim on a real SQLite file: whatever the interleaving of
//! claims and call endings, no lead is dialled twice, in-flight calls never exceed
//! `max_concurrent_calls`, no caller number passes its daily cap, DNC numbers are
//! never dialled, and the claim only stops for a stated reason.

use proptest::prelude::*;

use super::*;
use crate::db::Db;
use crate::db::leads::NewLead;
use crate::db::schedules::NewSchedule;

fn setup(n_leads: usize, caps: &[u32], dnc_every: usize) -> (Db, tempfile::TempDir, DateTime<Utc>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("claim.db")).unwrap();
    let now = Utc::now();
    let now_ms = db::to_ms(now);
    db.write_blocking(|tx| {
        let numbers: Vec<db::numbers::NewNumber> = caps
            .iter()
            .enumerate()
            .map(|(i, cap)| db::numbers::NewNumber {
                number: format!("+1202555{:04}", 100 + i),
                label: None,
                max_daily_calls: *cap,
                rotation_priority: 5,
                pool: None,
            })
            .collect();
        db::numbers::add(tx, &numbers, "test", now_ms)?;
        let import_id = db::imports::start(tx, "test", now_ms)?;
        let mut ids = Vec::new();
        for i in 0..n_leads {
            let phone = format!("+1415700{i:04}");
            if dnc_every > 0 && i % dnc_every == 0 {
                tx.execute("INSERT INTO dnc (phone, source, created_at) VALUES (?1, 'test', 0)", [&phone])?;
            }
            let lead = NewLead {
                line: i as u64,
                uuid: None,
                phone,
                whatsapp: String::new(),
                name: String::new(),
                email: String::new(),
                partner: String::new(),
                state: String::new(),
                timezone: None,
                timezone_source: "default",
                status: Status::Pending,
            };
            db::leads::upsert(tx, &lead, import_id, now_ms)?;
            ids.push(tx.last_insert_rowid());
        }
        let schedule = NewSchedule {
            start_at_ms: now_ms,
            timezone: "UTC",
            parallel_calls: 50,
            interval_seconds: 1,
            total_leads: n_leads,
            total_batches: 1,
        };
        let schedule_id = db::schedules::insert(tx, &schedule, now_ms)?;
        let batch_id = db::schedules::insert_batch(tx, schedule_id, 0, now_ms, n_leads)?;
        db::leads::mark_scheduled(tx, &ids, schedule_id, batch_id, now_ms)?;
        db::schedules::fire_due(tx, now_ms, 60_000)?;
        Ok(())
    })
    .unwrap();
    (db, dir, now)
}

/// Rules for tests: all-day window, UTC, warming off (caps are exactly as given).
pub(crate) fn rules(max_concurrent_calls: u32) -> Rules {
    let tz = Arc::new(crate::compliance::tz::TzMap::embedded());
    Rules {
        max_concurrent_calls,
        window: CallingWindow::parse("00:00", "24:00").unwrap(),
        timezone: "UTC".parse().unwrap(),
        provider: "test",
        local_presence: LocalPresence::Prefer,
        warmup: Warmup { enabled: false, start_calls: 25, days: 14 },
        policy: Policy::default(),
        places: Arc::new(Places { npa: crate::numbers::npa::NpaMap::embedded(), tz }),
        rotation: Arc::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn claims_respect_every_limit(
        n_leads in 1usize..30,
        caps in proptest::collection::vec(0u32..6, 1..4),
        max_concurrent in 1u32..5,
        dnc_every in 0usize..5,
        // true = claim, false = end the oldest call in flight
        steps in proptest::collection::vec(any::<bool>(), 1..80),
    ) {
        let (db, _dir, now) = setup(n_leads, &caps, dnc_every);
        let rules = rules(max_concurrent);
        let mut in_flight: Vec<i64> = Vec::new();
        for claim_next in steps {
            if claim_next {
                let result = db.write_blocking(|tx| claim(tx, &rules, now)).unwrap();
                match result {
                    Claim::Dial(c) => in_flight.push(c.attempt_id),
                    Claim::Idle(Idle::MaxConcurrent { in_flight: n }) => {
                        prop_assert_eq!(n as usize, in_flight.len());
                        prop_assert_eq!(in_flight.len(), max_concurrent as usize);
                    }
                    Claim::Idle(Idle::NoCallerCapacity { .. }) => {
                        let used: i64 = db.read_blocking(|c| Ok(c.query_row("SELECT COALESCE(SUM(calls),0) FROM number_usage", [], |r| r.get(0))?)).unwrap();
                        prop_assert_eq!(used, caps.iter().map(|c| i64::from(*c)).sum::<i64>(), "stopped with capacity left");
                    }
                    Claim::Idle(Idle::NothingDue { .. }) => {
                        let due: i64 = db.read_blocking(|c| Ok(c.query_row("SELECT COUNT(*) FROM leads WHERE status = 'scheduled'", [], |r| r.get(0))?)).unwrap();
                        prop_assert_eq!(due, 0, "stopped with leads due");
                    }
                }
            } else if !in_flight.is_empty() {
                let id = in_flight.remove(0);
                db.write_blocking(|tx| {
                    let state = db::attempts::state(tx, id)?.unwrap();
                    db::attempts::set_status(tx, &state, Status::Completed, &Default::default(), db::to_ms(now))
                }).unwrap();
            }
            prop_assert!(in_flight.len() <= max_concurrent as usize);
        }
        let (attempts, distinct, over_cap, dnc_dialled): (i64, i64, i64, i64) = db.read_blocking(|c| Ok(c.query_row(
            "SELECT (SELECT COUNT(*) FROM attempts), (SELECT COUNT(DISTINCT lead_id) FROM attempts),
                    (SELECT COUNT(*) FROM number_usage u JOIN caller_numbers n ON n.id = u.number_id WHERE u.calls > n.max_daily_calls),
                    (SELECT COUNT(*) FROM attempts a JOIN dnc d ON d.phone = a.to_number)",
            [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?)).unwrap();
        prop_assert_eq!(attempts, distinct, "a lead was dialled twice");
        prop_assert_eq!(over_cap, 0);
        prop_assert_eq!(dnc_dialled, 0);
        let per_number: Vec<(i64, i64)> = db.read_blocking(|c| {
            let mut s = c.prepare("SELECT caller_number_id, COUNT(*) FROM attempts GROUP BY 1")?;
            let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        }).unwrap();
        for (number_id, n) in per_number {
            prop_assert!(n <= i64::from(caps[(number_id - 1) as usize]), "number {} over its cap", number_id);
        }
    }
}

#[test]
fn leads_outside_their_hours_wait_until_the_window_opens() {
    let (db, _dir, _) = setup(1, &[10], 0);
    // 03:00 in Los Angeles: the lead waits until 08:00 local.
    db.write_blocking(|tx| Ok(tx.execute("UPDATE leads SET timezone = 'America/Los_Angeles'", [])?)).unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 11, 0, 0).unwrap();
    let rules = Rules { window: CallingWindow::us_federal(), ..rules(5) };
    let result = db.write_blocking(|tx| claim(tx, &rules, at)).unwrap();
    let opens = Utc.with_ymd_and_hms(2026, 11, 23, 16, 0, 0).unwrap();
    assert!(matches!(result, Claim::Idle(Idle::NothingDue { next: Some(t) }) if t == opens), "{result:?}");
    let result = db.write_blocking(|tx| claim(tx, &rules, opens)).unwrap();
    assert!(matches!(result, Claim::Dial(_)), "{result:?}");
}
