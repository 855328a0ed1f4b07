//! Test calls against the store: what a refused or finished test call leaves behind,
//! which leads may be test-called, and that a campaign never dials a lead while a
//! test call to it is under way.

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::db;
use crate::dialer::claim::{Claim, Idle};
use crate::dialer::fixtures::*;
use crate::dialer::{NotPlaced, record};
use crate::domain::status::Status;
use crate::numbers::pool::LocalPresence;
use crate::provider::{ProviderError, errors::Action};

fn t0() -> DateTime<Utc> {
    "2026-06-10T15:00:00Z".parse().unwrap()
}

/// (status, next_call_at, wait_reason) of the lead with `phone`.
fn lead(db: &crate::db::Db, phone: &str) -> (String, Option<i64>, Option<String>) {
    let phone = phone.to_string();
    db.read_blocking(move |c| {
        Ok(c.query_row("SELECT status, next_call_at, wait_reason FROM leads WHERE phone = ?1", [phone], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?)
    })
    .unwrap()
}

/// One imported lead, +14157000000, back to `pending` as a cancelled schedule leaves it.
fn pending_lead(s: &Store) {
    seed_leads(&s.db, &plain_leads(1), t0());
    s.db.write_blocking(|tx| {
        tx.execute(
            "UPDATE leads SET status = 'pending', schedule_id = NULL, batch_id = NULL, next_call_at = NULL",
            [],
        )?;
        Ok(())
    })
    .unwrap();
}

fn refuse(s: &Store, call: &Claimed, error: ProviderError, action: Action) {
    let c = call.clone();
    s.db.write_blocking(move |tx| {
        record(tx, &c, Err(NotPlaced::Provider(error, action)), t0() + Duration::minutes(5), db::to_ms(t0()))
    })
    .unwrap();
}

#[test]
fn a_refused_test_call_is_kept_as_failed_and_the_new_number_can_be_tested_again() {
    let s = store();
    let numbers = add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
    let r = rules("UTC", LocalPresence::Off, 10);
    let call = s.db.write_blocking(|tx| claim(tx, &r, 1, "+14157009999", None, t0())).unwrap().unwrap();
    let bad_key = ProviderError::Config { code: 401, message: "bad key".into() };
    refuse(&s, &call, bad_key, Action::PauseForCredentials);
    let (status, error): (String, String) = {
        let id = call.attempt_id;
        s.db.read_blocking(move |c| {
            Ok(c.query_row("SELECT status, error FROM attempts WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))?)
        })
        .unwrap()
    };
    assert_eq!(status, "failed", "the operator sees the refusal on the test call's page");
    assert!(error.contains("bad key"), "{error}");
    assert_eq!(used_on(&s.db, numbers[0], &call.usage_day), 0, "the caller-ID slot is returned");
    assert_eq!(lead(&s.db, "+14157009999"), ("pending".into(), None, None), "not queued anywhere");
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM leads WHERE test_only = 1"), 1);
    let again = s.db.write_blocking(|tx| claim(tx, &r, 1, "+14157009999", None, t0() + Duration::minutes(10)));
    assert!(again.unwrap().is_ok(), "the number can be test-called again");
}

#[test]
fn a_refused_test_call_to_a_pending_lead_does_not_put_it_in_a_campaign_queue() {
    let s = store();
    add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
    pending_lead(&s);
    let r = rules("UTC", LocalPresence::Off, 10);
    let call = s.db.write_blocking(|tx| claim(tx, &r, 1, "+14157000000", None, t0())).unwrap().unwrap();
    refuse(&s, &call, ProviderError::Retry("429".into()), Action::RetryWithBackoff);
    assert_eq!(lead(&s.db, "+14157000000").0, "pending");
    let next = claim_at(&s.db, &r, t0() + Duration::minutes(2));
    assert!(matches!(next, Claim::Idle(Idle::NothingDue { .. })), "the campaign loop leaves it alone: {next:?}");
}

#[test]
fn a_finished_test_call_leaves_the_leads_status_alone() {
    let s = store();
    add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
    pending_lead(&s);
    let r = rules("UTC", LocalPresence::Off, 10);
    let call = s.db.write_blocking(|tx| claim(tx, &r, 1, "+14157000000", None, t0())).unwrap().unwrap();
    assert_eq!(lead(&s.db, "+14157000000").0, "pending", "not `dialing`: still schedulable");
    let id = call.attempt_id;
    s.db.write_blocking(move |tx| {
        let event = crate::calls::StatusEvent {
            attempt_id: Some(id),
            call_id: "CA1".into(),
            sequence: "1".into(),
            status: Some(Status::NoAnswer),
            raw_status: "no-answer".into(),
            answered_by: None,
            duration_seconds: None,
            params_json: "[]".into(),
        };
        crate::calls::apply(tx, &event, db::to_ms(t0()))
    })
    .unwrap();
    assert_eq!(lead(&s.db, "+14157000000").0, "pending");
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM attempts WHERE status = 'no_answer' AND retry_at IS NULL"), 1);
}

#[test]
fn leads_marked_do_not_call_or_invalid_are_never_test_called() {
    for marked in ["do_not_call", "invalid"] {
        let s = store();
        add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
        pending_lead(&s);
        // Marked, and (for do_not_call) its DNC entry removed since: still never called.
        let sql = format!("UPDATE leads SET status = '{marked}'");
        s.db.write_blocking(move |tx| Ok(tx.execute(&sql, [])?)).unwrap();
        let r = rules("UTC", LocalPresence::Off, 10);
        let got = s.db.write_blocking(|tx| claim(tx, &r, 1, "+14157000000", None, t0())).unwrap();
        assert!(matches!(got, Err(Refusal::Marked(_, ref m)) if m == marked), "{marked}: {got:?}");
        assert_eq!(count(&s.db, "SELECT COUNT(*) FROM attempts"), 0);
    }
}

#[test]
fn a_campaign_waits_while_a_test_call_to_its_lead_is_under_way() {
    let s = store();
    add_numbers(&s.db, &[("+12022370100".into(), 100, 5), ("+12022370101".into(), 100, 5)]);
    pending_lead(&s);
    let r = rules("UTC", LocalPresence::Off, 10);
    let test = s.db.write_blocking(|tx| claim(tx, &r, 1, "+14157000000", None, t0())).unwrap().unwrap();
    // Scheduled while the test call rings (its status stayed `pending`).
    s.db.write_blocking(|tx| {
        tx.execute(
            "UPDATE leads SET status = 'scheduled', schedule_id = 1, batch_id = 1, next_call_at = ?1",
            [db::to_ms(t0())],
        )?;
        Ok(())
    })
    .unwrap();
    let next = claim_at(&s.db, &r, t0() + Duration::seconds(1));
    assert!(!matches!(next, Claim::Dial(_)), "never two calls at once to one number: {next:?}");
    let (status, next_at, reason) = lead(&s.db, "+14157000000");
    assert_eq!((status.as_str(), reason.as_deref()), ("scheduled", Some("in_call")));
    assert_eq!(next_at, Some(db::to_ms(t0() + Duration::seconds(61))));
    // Once the test call has ended, the campaign dials it.
    let id = test.attempt_id;
    s.db.write_blocking(move |tx| db::attempts::end(tx, id, db::to_ms(t0()))).unwrap();
    assert!(matches!(claim_at(&s.db, &r, t0() + Duration::seconds(62)), Claim::Dial(_)));
}
