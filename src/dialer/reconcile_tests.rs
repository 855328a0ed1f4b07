//! The reconciler's decisions and the create-call result's record, on a SQLite file
//! through the real claim: an `unknown` attempt the provider has no call for is
//! undone and dialled again; a call found is adopted; nothing stays `unknown`.

use chrono::{DateTime, Duration, Utc};

use super::{Cutoffs, Found, cutoffs, resolve};
use crate::db::{self, Db};
use crate::dialer::claim::Claimed;
use crate::dialer::fixtures::{add_numbers, claim_at, count, dial, plain_leads, rules, seed_leads, store, used_on};
use crate::dialer::{NotPlaced, record};
use crate::domain::status::Status;
use crate::numbers::pool::LocalPresence;
use crate::provider::errors::Action;
use crate::provider::{CallSnapshot, ProviderError};

const T0: &str = "2026-06-10T15:00:00Z";

fn t0() -> DateTime<Utc> {
    T0.parse().unwrap()
}

/// One lead claimed at t0 from one caller number; the create-call got `error`.
fn claimed_then(error: ProviderError, action: Action) -> (crate::dialer::fixtures::Store, Claimed, i64) {
    let s = store();
    let number = add_numbers(&s.db, &[("+12022370100".into(), 100, 5)])[0];
    seed_leads(&s.db, &plain_leads(1), t0());
    let call = dial(claim_at(&s.db, &rules("UTC", LocalPresence::Off, 10), t0()));
    let c = call.clone();
    let at = t0() + Duration::seconds(1);
    s.db.write_blocking(move |tx| record(tx, &c, Err(NotPlaced::Provider(error, action)), at, db::to_ms(at))).unwrap();
    (s, call, number)
}

fn attempt(db: &Db, id: i64) -> Option<db::attempts::AttemptState> {
    db.read_blocking(move |c| db::attempts::state(c, id)).unwrap()
}

fn lead_status(db: &Db) -> String {
    db.read_blocking(|c| Ok(c.query_row("SELECT status FROM leads", [], |r| r.get(0))?)).unwrap()
}

fn reconcile(db: &Db, id: i64, found: Found, at: DateTime<Utc>) -> bool {
    let seen = attempt(db, id).unwrap();
    db.write_blocking(move |tx| resolve(tx, &seen, found, db::to_ms(at))).unwrap()
}

#[test]
fn no_reply_leaves_the_attempt_unknown_holding_its_slots_and_the_lead_without_outcome() {
    let (s, call, number) = claimed_then(ProviderError::Unknown("timeout".into()), Action::Reconcile);
    let a = attempt(&s.db, call.attempt_id).unwrap();
    assert_eq!(a.status, Status::Unknown);
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL"), 1, "concurrency slot kept");
    assert_eq!(used_on(&s.db, number, &call.usage_day), 1, "caller-ID slot kept");
    assert_eq!(lead_status(&s.db), "dialing", "no outcome until the provider is asked");
}

#[test]
fn unknown_with_no_call_at_the_provider_is_undone_and_the_lead_dialled_again() {
    let (s, call, number) = claimed_then(ProviderError::Unknown("HTTP 500".into()), Action::Reconcile);
    assert!(reconcile(&s.db, call.attempt_id, Found::None, t0() + Duration::seconds(70)));
    assert!(attempt(&s.db, call.attempt_id).is_none(), "no call was placed: no attempt kept");
    assert_eq!(used_on(&s.db, number, &call.usage_day), 0, "caller-ID slot returned");
    assert_eq!(lead_status(&s.db), "scheduled");
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM attempts WHERE status = 'unknown'"), 0);
    // Dialled again as attempt 1 (max_attempts untouched), once.
    let again = dial(claim_at(&s.db, &rules("UTC", LocalPresence::Off, 10), t0() + Duration::seconds(71)));
    assert_eq!(again.lead_id, call.lead_id);
    assert_eq!(count(&s.db, "SELECT attempt_number FROM attempts"), 1);
}

#[test]
fn unknown_with_a_call_at_the_provider_adopts_it() {
    let (s, call, _) = claimed_then(ProviderError::Unknown("timeout".into()), Action::Reconcile);
    let snap = CallSnapshot {
        call_id: "CA123".into(),
        status: Status::Completed,
        answered_by: Some("human".into()),
        duration_seconds: Some(12),
        created_at: None,
    };
    assert!(reconcile(&s.db, call.attempt_id, Found::Call(snap), t0() + Duration::seconds(70)));
    let a = attempt(&s.db, call.attempt_id).unwrap();
    assert_eq!((a.status, a.provider_call_id.as_deref()), (Status::Completed, Some("CA123")));
    assert_eq!(lead_status(&s.db), "completed");
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL"), 0);
}

#[test]
fn a_placed_call_the_provider_no_longer_reports_is_closed_unknown_and_never_retried() {
    let (s, call, _) = claimed_then(ProviderError::Unknown("timeout".into()), Action::Reconcile);
    let id = call.attempt_id;
    s.db.write_blocking(move |tx| db::attempts::set_provider_call_id(tx, id, "CAgone")).unwrap();
    assert!(reconcile(&s.db, id, Found::None, t0() + Duration::hours(2)));
    assert_eq!(attempt(&s.db, id).unwrap().status, Status::Unknown);
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL"), 0, "its slot is freed");
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM attempts WHERE retry_at IS NOT NULL"), 0, "not retried");
    assert_eq!(lead_status(&s.db), "unknown");
}

#[test]
fn no_call_found_by_a_provider_that_lists_only_live_calls_is_unknown_not_redialled() {
    let (s, call, _) = claimed_then(ProviderError::Unknown("timeout".into()), Action::Reconcile);
    let id = call.attempt_id;
    assert!(reconcile(&s.db, id, Found::NotListed, t0() + Duration::seconds(70)));
    let a = attempt(&s.db, id).expect("the attempt is kept, not undone");
    assert_eq!(a.status, Status::Unknown);
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL"), 0, "its slot is freed");
    assert_eq!(lead_status(&s.db), "unknown", "not back in the queue");
}

#[test]
fn a_webhook_that_moved_the_attempt_first_wins() {
    let (s, call, _) = claimed_then(ProviderError::Unknown("timeout".into()), Action::Reconcile);
    let seen = attempt(&s.db, call.attempt_id).unwrap();
    let id = call.attempt_id;
    s.db.write_blocking(move |tx| db::attempts::set_provider_call_id(tx, id, "CAhook")).unwrap();
    let at = db::to_ms(t0() + Duration::seconds(70));
    assert!(!s.db.write_blocking(move |tx| resolve(tx, &seen, Found::None, at)).unwrap());
    assert!(attempt(&s.db, id).is_some(), "not undone: the call exists");
}

#[test]
fn refusals_follow_the_error_table() {
    // 10004: nothing created, the claim is undone.
    let (s, call, number) = claimed_then(ProviderError::Throttle("10004".into()), Action::LowerConcurrency);
    assert!(attempt(&s.db, call.attempt_id).is_none());
    assert_eq!(used_on(&s.db, number, &call.usage_day), 0);
    // Geographic permissions: attempt failed, caller-ID slot returned.
    let geo = ProviderError::Config { code: 21215, message: "geo".into() };
    let (s, call, number) = claimed_then(geo, Action::FailAndAlertGeo);
    assert_eq!(attempt(&s.db, call.attempt_id).unwrap().status, Status::Failed);
    assert_eq!(used_on(&s.db, number, &call.usage_day), 0);
    // 21210: the caller number leaves rotation with the reason in its history.
    let unverified = ProviderError::Config { code: 21210, message: "not verified".into() };
    let (s, call, _) = claimed_then(unverified, Action::DropCallerId);
    assert!(attempt(&s.db, call.attempt_id).is_none());
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM caller_numbers WHERE enabled = 0"), 1);
    assert_eq!(lead_status(&s.db), "scheduled");
    // Invalid number: the lead is invalid.
    let invalid = ProviderError::Lead { code: 21211, message: "bad".into() };
    let (s, call, _) = claimed_then(invalid, Action::LeadInvalid);
    assert_eq!(attempt(&s.db, call.attempt_id).unwrap().status, Status::Invalid);
}

#[test]
fn orphans_of_a_previous_run_wait_the_reconcile_delay_and_those_of_this_run_longer() {
    let now = db::to_ms(t0());
    let after = Duration::seconds(60);
    let stale = Duration::seconds(25 + 3600);
    let started = now - 10_000;
    let c: Cutoffs = cutoffs(now, started, stale, after);
    assert_eq!(c.unknown_ms, now - 60_000);
    assert_eq!(c.stale_ms, now - (25 + 3600 + 60) * 1000);
    // Started 10 s ago: a previous run's orphan must be 60 s old like an unknown.
    assert_eq!(c.orphan_ms, now - 60_000);
    // Started an hour ago: this run's own `dialing` rows may be requests in flight.
    let c = cutoffs(now, now - 3_600_000, stale, after);
    assert_eq!(c.orphan_ms, now - 5 * 60_000);
}

#[test]
fn an_opt_out_stays_whatever_the_reconciler_finds_later() {
    let s = store();
    add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
    seed_leads(&s.db, &plain_leads(1), t0());
    let call = dial(claim_at(&s.db, &rules("UTC", LocalPresence::Off, 10), t0()));
    let id = call.attempt_id;
    s.db.write_blocking(move |tx| {
        db::attempts::set_provider_call_id(tx, id, "v3:x")?;
        let a = db::call_flow::get(tx, id)?.unwrap();
        db::call_flow::opt_out(tx, &a, db::to_ms(t0()))?;
        Ok(())
    })
    .unwrap();
    assert_eq!(lead_status(&s.db), "do_not_call");
    // The call's final webhook was lost; the provider no longer reports it.
    assert!(reconcile(&s.db, id, Found::None, t0() + Duration::hours(2)));
    assert_eq!(attempt(&s.db, id).unwrap().status, Status::Unknown);
    assert_eq!(lead_status(&s.db), "do_not_call", "an opt-out is never undone");
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM leads WHERE next_call_at IS NOT NULL"), 0, "and never queued");
}
