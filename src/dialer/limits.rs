//! A campaign's own limits inside one claim: its settings (hours, days, pool), its
//! calls in flight against `max_concurrent_calls` and its calls today against
//! `max_calls_per_day`. Counted from attempt rows in the claim transaction, so they
//! hold like the global caps.

use std::collections::HashMap;

use crate::campaigns::Checked;
use crate::db::{self, Tx};

/// Why a campaign takes no call now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_concurrent_calls` of the campaign are in flight: wait for one to end.
    Concurrency,
    /// `max_calls_per_day` placed today: wait for local midnight.
    Daily,
}

pub struct CampaignLimits {
    settings: HashMap<i64, Checked>,
    default: Checked,
    in_flight: HashMap<i64, i64>,
    today: HashMap<i64, i64>,
    /// Start of the local day (UTC ms) the daily cap counts from.
    midnight_ms: i64,
}

impl CampaignLimits {
    pub fn load(tx: &Tx, midnight_ms: i64) -> anyhow::Result<CampaignLimits> {
        let settings = db::campaigns::settings_all(tx)?
            .into_iter()
            .map(|(id, json)| (id, db::campaigns::parse_settings(id, &json)))
            .collect();
        Ok(CampaignLimits {
            settings,
            default: Checked::default(),
            in_flight: HashMap::new(),
            today: HashMap::new(),
            midnight_ms,
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
        Ok(None)
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
            Ok(id)
        })
        .unwrap()
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
