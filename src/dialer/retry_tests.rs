//! Retries through the real claim and the real outcome path (`calls::after_final`) on
//! a SQLite file: the delay, the outcomes retried, `max_attempts`, and the rolling
//! 24-hour cap on top of them.

use chrono::{DateTime, Duration, Utc};

use crate::calls;
use crate::db::{self, Db};
use crate::dialer::claim::{Claim, Idle};
use crate::dialer::fixtures::{add_numbers, claim_at, count, dial, plain_leads, rules, seed_leads, store, utc};
use crate::domain::status::Status;
use crate::numbers::pool::LocalPresence;

/// Ends attempt `id` with `status` at `at`, as a final webhook does.
fn end(db: &Db, id: i64, status: Status, at: DateTime<Utc>) {
    db.write_blocking(|tx| {
        let a = db::attempts::state(tx, id)?.unwrap();
        db::attempts::set_status(tx, &a, status, &Default::default(), db::to_ms(at))?;
        calls::after_final(tx, &a, status, db::to_ms(at))
    })
    .unwrap();
}

fn settings(db: &Db, json: &str) {
    db.write_blocking(|tx| db::campaigns::set_settings(tx, 1, json, "test", 0)).unwrap();
}

fn notes(db: &Db) -> Vec<(i64, String)> {
    db.read_blocking(|c| {
        Ok(c.prepare("SELECT attempt_number, COALESCE(next_step, '') FROM attempts ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    })
    .unwrap()
}

#[test]
fn busy_and_no_answer_are_retried_after_the_delay_up_to_max_attempts() {
    let s = store();
    add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
    let t0 = utc(2026, 6, 10, 15, 0, 0);
    seed_leads(&s.db, &plain_leads(1), t0);
    let r = rules("UTC", LocalPresence::Off, 10);
    let first = dial(claim_at(&s.db, &r, t0));
    end(&s.db, first.attempt_id, Status::Busy, t0 + Duration::seconds(20));
    let due = t0 + Duration::seconds(20) + Duration::minutes(60);
    let waiting = claim_at(&s.db, &r, due - Duration::seconds(1));
    assert!(matches!(waiting, Claim::Idle(Idle::NothingDue { next: Some(t) }) if t == due), "{waiting:?}");
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM leads WHERE status = 'scheduled' AND wait_reason = 'retry'"), 1);
    let second = dial(claim_at(&s.db, &r, due));
    end(&s.db, second.attempt_id, Status::NoAnswer, due + Duration::seconds(30));
    let third = dial(claim_at(&s.db, &r, due + Duration::minutes(61)));
    end(&s.db, third.attempt_id, Status::Busy, due + Duration::minutes(62));
    // Three of three used: the lead keeps its outcome and is never due again.
    assert!(matches!(claim_at(&s.db, &r, due + Duration::days(2)), Claim::Idle(Idle::NothingDue { next: None })));
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM leads WHERE status = 'busy' AND next_call_at IS NULL"), 1);
    let n = notes(&s.db);
    assert_eq!(n.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(n[0].1.starts_with("busy: attempt 2 of 3 after 60 min"), "{}", n[0].1);
    assert!(n[1].1.starts_with("no_answer: attempt 3 of 3"), "{}", n[1].1);
    assert_eq!(n[2].1, "not retried: 3 of 3 attempts used");
}

#[test]
fn completed_and_unchosen_outcomes_are_never_retried() {
    let s = store();
    add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
    let t0 = utc(2026, 6, 10, 15, 0, 0);
    seed_leads(&s.db, &plain_leads(3), t0);
    let r = rules("UTC", LocalPresence::Off, 10);
    let a = dial(claim_at(&s.db, &r, t0));
    let b = dial(claim_at(&s.db, &r, t0));
    let c = dial(claim_at(&s.db, &r, t0));
    end(&s.db, a.attempt_id, Status::Completed, t0);
    end(&s.db, b.attempt_id, Status::Voicemail, t0);
    end(&s.db, c.attempt_id, Status::Invalid, t0);
    assert!(matches!(claim_at(&s.db, &r, t0 + Duration::days(3)), Claim::Idle(Idle::NothingDue { next: None })));
    let n = notes(&s.db);
    assert_eq!(n[0].1, "not retried: the call was completed");
    assert_eq!(n[1].1, "not retried: voicemail is not among this campaign's retry outcomes");
    assert_eq!(n[2].1, "not retried: the number is invalid");

    // Voicemail chosen: retried.
    settings(&s.db, r#"{"retry_outcomes": ["voicemail"], "retry_delay_minutes": 5}"#);
    seed_leads(&s.db, &[("+14157009999".into(), None)], t0);
    let d = dial(claim_at(&s.db, &r, t0));
    end(&s.db, d.attempt_id, Status::Voicemail, t0);
    assert_eq!(dial(claim_at(&s.db, &r, t0 + Duration::minutes(5))).lead_id, d.lead_id);
}

#[test]
fn retries_also_respect_the_rolling_24_hour_cap() {
    let s = store();
    add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
    let t0 = utc(2026, 6, 10, 15, 0, 0);
    seed_leads(&s.db, &plain_leads(1), t0);
    settings(&s.db, r#"{"max_attempts": 5, "retry_delay_minutes": 1}"#);
    let r = rules("UTC", LocalPresence::Off, 10); // max_calls_per_lead_24h = 3
    let mut at = t0;
    for _ in 0..3 {
        let call = dial(claim_at(&s.db, &r, at));
        end(&s.db, call.attempt_id, Status::NoAnswer, at);
        at += Duration::minutes(1);
    }
    // The 4th attempt is due by the retry delay but waits for the first call to be 24 h old.
    let fourth = claim_at(&s.db, &r, at);
    assert!(matches!(fourth, Claim::Idle(Idle::NothingDue { next: Some(t) }) if t == t0 + Duration::hours(24)));
    assert_eq!(count(&s.db, "SELECT COUNT(*) FROM leads WHERE wait_reason = 'lead_24h_cap'"), 1);
    assert_eq!(dial(claim_at(&s.db, &r, t0 + Duration::hours(24))).lead_id, 1);
}

#[test]
fn a_campaign_that_requires_consent_skips_leads_without_one() {
    let s = store();
    add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
    let t0 = utc(2026, 6, 10, 15, 0, 0);
    let ids = seed_leads(&s.db, &plain_leads(2), t0);
    s.db.write_blocking(|tx| Ok(tx.execute("UPDATE leads SET consent_at = 1 WHERE id = ?1", [ids[1]])?)).unwrap();
    settings(&s.db, r#"{"require_consent": true}"#);
    let r = rules("UTC", LocalPresence::Off, 10);
    assert_eq!(dial(claim_at(&s.db, &r, t0)).lead_id, ids[1]);
    assert!(matches!(claim_at(&s.db, &r, t0), Claim::Idle(Idle::NothingDue { next: None })));
    let skipped = format!(
        "SELECT COUNT(*) FROM leads WHERE id = {} AND status = 'pending' AND wait_reason = 'no_consent'",
        ids[0]
    );
    assert_eq!(count(&s.db, &skipped), 1);
}

#[test]
fn a_paused_campaigns_backlog_does_not_hide_a_running_campaigns_lead() {
    let s = store();
    add_numbers(&s.db, &[("+12022370100".into(), 1000, 5)]);
    let t0 = utc(2026, 6, 10, 15, 0, 0);
    // 200 leads due first, in a campaign that is then paused…
    let paused = seed_leads(&s.db, &plain_leads(200), t0);
    let id =
        s.db.write_blocking(|tx| {
            let id = db::campaigns::create(tx, "Paused", "test", 0)?.unwrap();
            for to in [crate::campaigns::CampaignStatus::Scheduled, crate::campaigns::CampaignStatus::Paused] {
                db::campaigns::transition(tx, id, to, "t", "test", 0)?.unwrap();
            }
            tx.execute("UPDATE schedules SET campaign_id = ?1", [id])?;
            tx.execute("UPDATE leads SET campaign_id = ?1 WHERE schedule_id IS NOT NULL", [id])?;
            Ok(id)
        })
        .unwrap();
    // …and one lead of the running Default campaign due a minute later.
    let running = seed_leads(&s.db, &[("+14157009999".into(), None)], t0 + Duration::minutes(1));
    let r = rules("UTC", LocalPresence::Off, 10);
    assert_eq!(dial(claim_at(&s.db, &r, t0 + Duration::minutes(2))).lead_id, running[0]);
    assert!(matches!(claim_at(&s.db, &r, t0 + Duration::minutes(2)), Claim::Idle(Idle::NothingDue { .. })));
    assert_eq!(count(&s.db, &format!("SELECT COUNT(*) FROM attempts WHERE lead_id <= {}", paused[199])), 0);
    // Resumed, its leads go out again, oldest first.
    s.db.write_blocking(|tx| {
        db::campaigns::transition(tx, id, crate::campaigns::CampaignStatus::Running, "t", "test", 0)?.unwrap();
        Ok(())
    })
    .unwrap();
    assert_eq!(dial(claim_at(&s.db, &r, t0 + Duration::minutes(2))).lead_id, paused[0]);
}
