//! Property test of the rotation through the claim on a real SQLite file: for random
//! pools and random interleavings of claims, call endings and status changes, local
//! presence picks the right tier, no number passes its cap, only active enabled
//! numbers dial, and the claim only stops for a true reason.

use std::collections::{BTreeMap, HashSet};

use chrono::Duration;
use chrono_tz::Tz;
use proptest::prelude::*;

use crate::db::number_admin::Change;
use crate::db::{self, Db};
use crate::dialer::claim::{Claim, Claimed, Idle, claim, lead_zones};
use crate::dialer::fixtures::{NEW_YORK, add_numbers, count, places, rules, seed_leads, set, status, store, utc};
use crate::domain::status::Status;
use crate::numbers::pool::LocalPresence;

// ---------------------------------------------------------------------------------
// Model: random pools, leads and steps, and what the store must look like
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

// ---------------------------------------------------------------------------------
// The property: local presence, caps and statuses under random interleavings
// ---------------------------------------------------------------------------------

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
