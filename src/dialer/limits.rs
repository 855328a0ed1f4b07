//! A campaign's own limits inside one claim: its settings (hours, days, pool), its
//! calls in flight against `max_concurrent_calls`, its calls today against
//! `max_calls_per_day` and its pace against `calls_per_minute`
//! (`campaigns::pacing`). Counted from attempt rows in the claim transaction, so they
//! hold like the global caps and survive restarts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::campaigns::Checked;
use crate::campaigns::pacing;
use crate::db::{self, Tx};

/// Why a campaign takes no call now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_concurrent_calls` of the campaign are in flight: wait for one to end.
    Concurrency,
    /// `max_calls_per_day` placed today: wait for local midnight.
    Daily,
    /// `calls_per_minute` (auto-adjust applied): the next call may start at `next`.
    Pace { next: DateTime<Utc> },
}

pub struct CampaignLimits {
    settings: HashMap<i64, Checked>,
    default: Checked,
    in_flight: HashMap<i64, i64>,
    today: HashMap<i64, i64>,
    /// Start of the local day (UTC ms) the daily cap counts from.
    midnight_ms: i64,
    /// The claim's instant (UTC ms).
    now_ms: i64,
    /// Per campaign: when its pace lets the next call start, if later than now.
    pace: HashMap<i64, Option<i64>>,
}

impl CampaignLimits {
    pub fn load(tx: &Tx, midnight_ms: i64, now_ms: i64) -> anyhow::Result<CampaignLimits> {
        let settings = db::campaigns::settings_running(tx)?
            .into_iter()
            .map(|(id, json)| (id, db::campaigns::parse_settings(id, &json)))
            .collect();
        Ok(CampaignLimits {
            settings,
            default: Checked::default(),
            in_flight: HashMap::new(),
            today: HashMap::new(),
            midnight_ms,
            now_ms,
            pace: HashMap::new(),
        })
    }

    pub fn settings(&self, campaign_id: i64) -> &Checked {
        self.settings.get(&campaign_id).unwrap_or(&self.default)
    }

    /// Whether campaign `id` may place one more call now.
    pub fn full(&mut self, tx: &Tx, id: i64) -> anyhow::Result<Option<Limit>> {
        let (concurrency, daily) = {
            let s = self.settings(id);
            (s.max_concurrent_calls, s.max_calls_per_day)
        };
        if let Some(max) = concurrency {
            let n = match self.in_flight.get(&id) {
                Some(n) => *n,
                None => *self.in_flight.entry(id).or_insert(db::attempts::in_flight_for_campaign(tx, id)?),
            };
            if n >= i64::from(max) {
                return Ok(Some(Limit::Concurrency));
            }
        }
        if let Some(max) = daily {
            let n = match self.today.get(&id) {
                Some(n) => *n,
                None => *self.today.entry(id).or_insert(db::attempts::campaign_calls_since(tx, id, self.midnight_ms)?),
            };
            if n >= i64::from(max) {
                return Ok(Some(Limit::Daily));
            }
        }
        if let Some(next) = self.pace_closed(tx, id)? {
            return Ok(Some(Limit::Pace { next: db::from_ms(next) }));
        }
        Ok(None)
    }

    /// Running campaigns whose pace lets no call start now: the claim leaves their
    /// leads out of its scan, so a paced campaign's backlog neither hides other
    /// campaigns' leads nor makes the loop come back at once.
    pub fn paced(&mut self, tx: &Tx) -> anyhow::Result<Vec<i64>> {
        let mut paced = Vec::new();
        for id in db::pacing::running_ids(tx)? {
            if self.settings(id).calls_per_minute.is_some() && self.pace_closed(tx, id)?.is_some() {
                paced.push(id);
            }
        }
        Ok(paced)
    }

    /// The earliest instant a campaign found paced in this claim may call again.
    pub fn next_pace(&self) -> Option<DateTime<Utc>> {
        self.pace.values().flatten().min().map(|ms| db::from_ms(*ms))
    }

    /// GCRA (`campaigns::pacing`): `Some(next start, UTC ms)` while campaign `id` must
    /// wait, `None` when it may start a call now or has no `calls_per_minute`.
    fn pace_closed(&mut self, tx: &Tx, id: i64) -> anyhow::Result<Option<i64>> {
        if let Some(known) = self.pace.get(&id) {
            return Ok(*known);
        }
        let (target, auto_adjust) = {
            let s = self.settings(id);
            (s.calls_per_minute, s.auto_adjust)
        };
        let Some(target) = target else { return Ok(None) };
        let previous = db::pacing::last_start(tx, id)?;
        let mut next = pacing::next_start_ms(previous, target);
        // The effective pace is never above the target: the 30-day count (a range
        // scan) is only needed when the target alone would let a call start now.
        if auto_adjust && next.is_none_or(|n| n <= self.now_ms) {
            let abandonment = db::pacing::abandonment(tx, id, self.now_ms)?;
            next = pacing::next_start_ms(previous, pacing::effective_cpm(target, true, &abandonment));
        }
        let closed = next.filter(|n| *n > self.now_ms);
        self.pace.insert(id, closed);
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use crate::campaigns::CampaignStatus;
    use crate::db::{self, Db};
    use crate::dialer::claim::{Claim, Idle};
    use crate::dialer::fixtures::{add_numbers, claim_at, count, plain_leads, rules, seed_leads, store, utc};
    use crate::numbers::pool::LocalPresence;

    /// A running campaign with `settings` (JSON) that owns every seeded schedule.
    fn campaign(db: &Db, settings: &str) -> i64 {
        db.write_blocking(|tx| {
            let id = db::campaigns::create(tx, "C", "test", 0)?.unwrap();
            db::campaigns::set_settings(tx, id, settings, "test", 0)?;
            db::campaigns::transition(tx, id, CampaignStatus::Scheduled, "t", "test", 0)?.unwrap();
            db::campaigns::transition(tx, id, CampaignStatus::Running, "t", "test", 0)?.unwrap();
            tx.execute("UPDATE schedules SET campaign_id = ?1", [id])?;
            tx.execute("UPDATE leads SET campaign_id = ?1 WHERE schedule_id IS NOT NULL", [id])?;
            Ok(id)
        })
        .unwrap()
    }

    #[test]
    fn calls_per_minute_spaces_calls_exactly_and_survives_a_restart() {
        let s = store();
        add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
        let at = utc(2026, 6, 10, 15, 0, 0);
        seed_leads(&s.db, &plain_leads(3), at);
        campaign(&s.db, r#"{"calls_per_minute": 6}"#);
        let r = rules("UTC", LocalPresence::Off, 10);
        assert!(matches!(claim_at(&s.db, &r, at), Claim::Dial(_)));
        // 6 per minute = one call every 10 s: the loop is told to come back then,
        // not at once (a spin) and not later (an oversleep).
        let ten = at + Duration::seconds(10);
        let early = claim_at(&s.db, &r, ten - Duration::milliseconds(1));
        assert!(matches!(early, Claim::Idle(Idle::NothingDue { next: Some(t) }) if t == ten), "{early:?}");
        // A restart: fresh rules, nothing in memory; the pace comes from the attempt rows.
        let fresh = rules("UTC", LocalPresence::Off, 10);
        assert!(matches!(claim_at(&s.db, &fresh, at + Duration::seconds(5)), Claim::Idle(Idle::NothingDue { .. })));
        assert!(matches!(claim_at(&s.db, &fresh, ten), Claim::Dial(_)));
        // Idle time earns no credit (bucket of one): 50 s later, one call, then 10 s again.
        let later = ten + Duration::seconds(50);
        assert!(matches!(claim_at(&s.db, &fresh, later), Claim::Dial(_)));
        assert!(matches!(claim_at(&s.db, &fresh, later), Claim::Idle(_)));
        let starts: Vec<i64> =
            s.db.read_blocking(|c| {
                let mut stmt = c.prepare("SELECT created_at FROM attempts ORDER BY created_at")?;
                Ok(stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(starts, [db::to_ms(at), db::to_ms(ten), db::to_ms(later)]);
    }

    #[test]
    fn auto_adjust_slows_a_campaign_over_three_percent_abandonment() {
        let s = store();
        add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
        let at = utc(2026, 6, 10, 15, 0, 0);
        seed_leads(&s.db, &plain_leads(14), at - Duration::days(1));
        let id = campaign(&s.db, r#"{"calls_per_minute": 60, "auto_adjust": true}"#);
        let r = rules("UTC", LocalPresence::Off, 20);
        // Ten calls yesterday, all answered by a person; one never reached by the
        // message: 10 % abandonment → 60 × 3 % / 10 % = 18 per minute (3 334 ms apart).
        let yesterday = at - Duration::days(1);
        for i in 0..10 {
            assert!(matches!(claim_at(&s.db, &r, yesterday + Duration::minutes(i)), Claim::Dial(_)));
        }
        s.db.write_blocking(|tx| {
            tx.execute(
                "UPDATE attempts SET status = 'completed', answered_by = 'human', answered_at = created_at + 5000,
                 connected_at = created_at + 5100, ended_at = created_at + 30000",
                [],
            )?;
            Ok(tx.execute("UPDATE attempts SET connected_at = NULL WHERE id = (SELECT MIN(id) FROM attempts)", [])?)
        })
        .unwrap();
        assert!(matches!(claim_at(&s.db, &r, at), Claim::Dial(_)));
        let slowed = at + Duration::milliseconds(3334);
        let early = claim_at(&s.db, &r, at + Duration::seconds(1));
        assert!(matches!(early, Claim::Idle(Idle::NothingDue { next: Some(t) }) if t == slowed), "{early:?}");
        assert!(matches!(claim_at(&s.db, &r, slowed), Claim::Dial(_)));
        // Off: the target pace (one second) again.
        s.db.write_blocking(|tx| db::campaigns::set_settings(tx, id, r#"{"calls_per_minute": 60}"#, "test", 0))
            .unwrap();
        assert!(matches!(claim_at(&s.db, &r, slowed + Duration::seconds(1)), Claim::Dial(_)));
    }

    #[test]
    fn a_paced_campaign_does_not_hide_other_campaigns_leads() {
        let s = store();
        add_numbers(&s.db, &[("+12022370100".into(), 1000, 5)]);
        let at = utc(2026, 6, 10, 15, 0, 0);
        // More paced leads than one claim scans, due before the other campaign's one.
        seed_leads(&s.db, &plain_leads(100), at - Duration::seconds(1));
        let paced = campaign(&s.db, r#"{"calls_per_minute": 1}"#);
        seed_leads(&s.db, &[("+14157009999".into(), None)], at);
        let r = rules("UTC", LocalPresence::Off, 10);
        let first = claim_at(&s.db, &r, at);
        let Claim::Dial(first) = first else { panic!("{first:?}") };
        assert_eq!(count(&s.db, &format!("SELECT campaign_id FROM attempts WHERE id = {}", first.attempt_id)), paced);
        let Claim::Dial(other) = claim_at(&s.db, &r, at) else { panic!("the default campaign's lead is dialled") };
        assert_eq!(other.to, "+14157009999");
        let idle = claim_at(&s.db, &r, at);
        let minute = at + Duration::minutes(1);
        assert!(matches!(idle, Claim::Idle(Idle::NothingDue { next: Some(t) }) if t == minute), "{idle:?}");
    }

    #[test]
    fn a_campaign_at_its_own_concurrency_waits_for_a_call_to_end() {
        let s = store();
        add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
        let at = utc(2026, 6, 10, 15, 0, 0);
        seed_leads(&s.db, &plain_leads(3), at);
        campaign(&s.db, r#"{"max_concurrent_calls": 1}"#);
        let r = rules("UTC", LocalPresence::Off, 10);
        assert!(matches!(claim_at(&s.db, &r, at), Claim::Dial(_)));
        // The global limit (10) has room; the campaign's (1) does not, and the claim
        // says so instead of "more due now" (which would spin the loop).
        assert!(matches!(claim_at(&s.db, &r, at), Claim::Idle(Idle::MaxConcurrent { in_flight: 1 })));
        s.db.write_blocking(|tx| Ok(tx.execute("UPDATE attempts SET ended_at = 1, status = 'busy'", [])?)).unwrap();
        assert!(matches!(claim_at(&s.db, &r, at), Claim::Dial(_)));
    }

    #[test]
    fn a_campaign_daily_cap_waits_for_local_midnight() {
        let s = store();
        add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
        let at = utc(2026, 6, 10, 15, 0, 0);
        seed_leads(&s.db, &plain_leads(3), at);
        campaign(&s.db, r#"{"max_calls_per_day": 2}"#);
        let r = rules("America/New_York", LocalPresence::Off, 10);
        assert!(matches!(claim_at(&s.db, &r, at), Claim::Dial(_)));
        assert!(matches!(claim_at(&s.db, &r, at), Claim::Dial(_)));
        let midnight = utc(2026, 6, 11, 4, 0, 0);
        let third = claim_at(&s.db, &r, at);
        assert!(matches!(third, Claim::Idle(Idle::NothingDue { next: Some(t) }) if t == midnight), "{third:?}");
        assert_eq!(count(&s.db, "SELECT COUNT(*) FROM leads WHERE wait_reason = 'campaign_daily_cap'"), 1);
        assert!(matches!(claim_at(&s.db, &r, midnight), Claim::Dial(_)));
    }

    #[test]
    fn campaign_hours_and_days_narrow_the_window() {
        let s = store();
        add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
        // Tuesday 2026-06-09 15:00 UTC = 08:00 in San Francisco.
        let tuesday = utc(2026, 6, 9, 15, 0, 0);
        seed_leads(&s.db, &[("+14157001234".into(), Some("America/Los_Angeles".into()))], tuesday);
        campaign(
            &s.db,
            r#"{"calling_hours_start": "09:00", "calling_hours_end": "17:00", "allowed_days": ["mon", "thu"]}"#,
        );
        let r = rules("UTC", LocalPresence::Off, 10);
        // Thursday 09:00 PDT = 16:00 UTC.
        let thursday = utc(2026, 6, 11, 16, 0, 0);
        let result = claim_at(&s.db, &r, tuesday);
        assert!(matches!(result, Claim::Idle(Idle::NothingDue { next: Some(t) }) if t == thursday), "{result:?}");
        assert!(matches!(claim_at(&s.db, &r, thursday - Duration::seconds(1)), Claim::Idle(_)));
        assert!(matches!(claim_at(&s.db, &r, thursday), Claim::Dial(_)));
    }

    #[test]
    fn a_campaign_dials_only_from_its_pool_and_waits_when_the_pool_is_full() {
        let s = store();
        let ids = add_numbers(&s.db, &[("+12022370100".into(), 100, 5), ("+12022370101".into(), 1, 5)]);
        s.db.write_blocking(|tx| {
            Ok(tx.execute("UPDATE caller_numbers SET pool = 'admissions' WHERE id = ?1", [ids[1]])?)
        })
        .unwrap();
        let at = utc(2026, 6, 10, 15, 0, 0);
        seed_leads(&s.db, &plain_leads(2), at);
        campaign(&s.db, r#"{"pool": "admissions"}"#);
        let r = rules("UTC", LocalPresence::Off, 10);
        let Claim::Dial(first) = claim_at(&s.db, &r, at) else { panic!("the pool number dials") };
        assert_eq!(first.caller_number_id, ids[1]);
        // The pool's only number is at its cap: the lead waits; the shared number is not used.
        assert!(matches!(claim_at(&s.db, &r, at), Claim::Idle(Idle::NothingDue { .. })));
        assert_eq!(count(&s.db, "SELECT COUNT(*) FROM leads WHERE wait_reason = 'no_pool_number'"), 1);
        assert_eq!(count(&s.db, &format!("SELECT COUNT(*) FROM attempts WHERE caller_number_id = {}", ids[0])), 0);
    }
}
