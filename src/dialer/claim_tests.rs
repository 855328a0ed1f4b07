//! Property tests of the claim on a real SQLite file: whatever the interleaving of
//! claims and call endings, no lead is dialled twice, in-flight calls never exceed
//! `max_concurrent_calls`, no caller number passes its daily cap, DNC numbers are
//! never dialled, and the claim only stops for a stated reason.

use proptest::prelude::*;

use super::*;
use crate::compliance::hours::CallingWindow;
use crate::compliance::rules::{Profile, StateRules};
use crate::dialer::fixtures::{self, Store, add_numbers, claim_at, count, plain_leads, seed_leads, store, utc};

/// Caller numbers with `caps` (priority 5) and `n_leads` leads in 415 that fired now;
/// every `dnc_every`-th lead, starting with the first, is on the DNC list (0 = none).
fn setup(n_leads: usize, caps: &[u32], dnc_every: usize) -> (Store, DateTime<Utc>) {
    let s = store();
    let now = Utc::now();
    let numbers: Vec<(String, u32, u8)> =
        caps.iter().enumerate().map(|(i, cap)| (format!("+1202555{:04}", 100 + i), *cap, 5)).collect();
    add_numbers(&s.db, &numbers);
    let leads = plain_leads(n_leads);
    if dnc_every > 0 {
        s.db.write_blocking(|tx| {
            for (phone, _) in leads.iter().step_by(dnc_every) {
                tx.execute("INSERT INTO dnc (phone, source, created_at) VALUES (?1, 'test', 0)", [phone])?;
            }
            Ok(())
        })
        .unwrap();
    }
    seed_leads(&s.db, &leads, now);
    (s, now)
}

/// Rules for tests: all-day window, UTC, warming off (caps are exactly as given).
fn rules(max_concurrent_calls: u32) -> Rules {
    fixtures::rules("UTC", LocalPresence::Prefer, max_concurrent_calls)
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
        let (s, now) = setup(n_leads, &caps, dnc_every);
        let db = &s.db;
        let rules = rules(max_concurrent);
        let mut in_flight: Vec<i64> = Vec::new();
        for claim_next in steps {
            if claim_next {
                let result = claim_at(db, &rules, now);
                match result {
                    Claim::Dial(c) => in_flight.push(c.attempt_id),
                    Claim::Idle(Idle::MaxConcurrent { in_flight: n }) => {
                        prop_assert_eq!(n as usize, in_flight.len());
                        prop_assert_eq!(in_flight.len(), max_concurrent as usize);
                    }
                    Claim::Idle(Idle::NoCallerCapacity { .. }) => {
                        let used = count(db, "SELECT COALESCE(SUM(calls),0) FROM number_usage");
                        prop_assert_eq!(used, caps.iter().map(|c| i64::from(*c)).sum::<i64>(), "stopped with capacity left");
                    }
                    Claim::Idle(Idle::NothingDue { .. }) => {
                        let due = count(db, "SELECT COUNT(*) FROM leads WHERE status = 'scheduled'");
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
    let (s, _) = setup(1, &[10], 0);
    // 03:00 in Los Angeles: the lead waits until 08:00 local.
    s.db.write_blocking(|tx| Ok(tx.execute("UPDATE leads SET timezone = 'America/Los_Angeles'", [])?)).unwrap();
    let at = utc(2026, 11, 23, 11, 0, 0);
    let us = Compliance { profile: Profile::Us, window: CallingWindow::us_federal(), rules: StateRules::embedded() };
    let rules = Rules { compliance: Arc::new(us), ..rules(5) };
    let result = claim_at(&s.db, &rules, at);
    let opens = utc(2026, 11, 23, 16, 0, 0);
    assert!(matches!(result, Claim::Idle(Idle::NothingDue { next: Some(t) }) if t == opens), "{result:?}");
    let result = claim_at(&s.db, &rules, opens);
    assert!(matches!(result, Claim::Dial(_)), "{result:?}");
}

/// A lead called three times in the last 24 hours (other schedules, any caller ID)
/// waits until the oldest of those calls is 24 hours old, then is dialled.
#[test]
fn a_lead_is_called_at_most_three_times_in_any_24_hours() {
    let (s, _) = setup(1, &[10], 0);
    let at = utc(2026, 11, 23, 15, 0, 0);
    let hours_ago = |h: i64| db::to_ms(at - chrono::Duration::hours(h));
    s.db.write_blocking(|tx| {
        for h in [30, 20, 10, 1] {
            tx.execute(
                "INSERT INTO attempts (lead_id, caller_number_id, caller_number, to_number, usage_day, provider,
                                       status, created_at, ended_at)
                 SELECT id, 1, '+12025550100', phone, '2026-11-22', 'test', 'no_answer', ?1, ?1 FROM leads",
                [hours_ago(h)],
            )?;
        }
        Ok(())
    })
    .unwrap();
    let rules = Rules { max_calls_per_lead_24h: 3, ..rules(5) };
    let result = claim_at(&s.db, &rules, at);
    // The call 30 h ago no longer counts; the one 20 h ago frees a slot in 4 hours.
    let free = at + chrono::Duration::hours(4);
    assert!(matches!(result, Claim::Idle(Idle::NothingDue { next: Some(t) }) if t == free), "{result:?}");
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM leads WHERE wait_reason = 'lead_24h_cap'"), 1);
    let result = claim_at(&s.db, &rules, free - chrono::Duration::seconds(1));
    assert!(matches!(result, Claim::Idle(_)), "{result:?}");
    assert!(matches!(claim_at(&s.db, &rules, free), Claim::Dial(_)));
}

/// A Florida number (305) follows Florida's 08:00–20:00 and its 3 calls in 24 hours,
/// whatever the configured cap; the state comes from the area code.
#[test]
fn florida_hours_and_its_three_calls_a_day_apply_by_area_code() {
    let s = store();
    add_numbers(&s.db, &[("+12025550100".to_string(), 10, 5)]);
    seed_leads(&s.db, &[("+13052371234".to_string(), Some("America/New_York".to_string()))], utc(2026, 1, 1, 0, 0, 0));
    let us = Compliance { profile: Profile::Us, window: CallingWindow::us_federal(), rules: StateRules::embedded() };
    let rules = Rules { compliance: Arc::new(us), max_calls_per_lead_24h: 5, ..rules(5) };
    // 20:30 EST: inside the federal window, outside Florida's.
    let at = utc(2026, 11, 24, 1, 30, 0);
    let opens = utc(2026, 11, 24, 13, 0, 0);
    let result = claim_at(&s.db, &rules, at);
    assert!(matches!(result, Claim::Idle(Idle::NothingDue { next: Some(t) }) if t == opens), "{result:?}");
    s.db.write_blocking(|tx| {
        for h in [20, 10, 1] {
            let ms = db::to_ms(opens - chrono::Duration::hours(h));
            tx.execute(
                "INSERT INTO attempts (lead_id, caller_number_id, caller_number, to_number, usage_day, provider,
                                       status, created_at, ended_at)
                 SELECT id, 1, '+12025550100', phone, '2026-11-23', 'test', 'busy', ?1, ?1 FROM leads",
                [ms],
            )?;
        }
        Ok(())
    })
    .unwrap();
    let result = claim_at(&s.db, &rules, opens);
    assert!(matches!(result, Claim::Idle(_)), "a fourth call in 24 h to a Florida number: {result:?}");
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM leads WHERE wait_reason = 'lead_24h_cap'"), 1);
}
