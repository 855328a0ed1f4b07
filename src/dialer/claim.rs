//! The claim: in one write transaction, pick the next due lead that may be called
//! now, pick and reserve a caller number, and write the attempt. Everything that can
//! start a call goes through here, so concurrency, caps and "one attempt per lead
//! per schedule" are decided in one place, on the single writer.

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::compliance::hours::CallingWindow;
use crate::db::{self, Tx};
use crate::domain::status::Status;
use crate::numbers::rotation;

/// What the claim needs to know, copied out of the app state.
#[derive(Clone)]
pub struct Rules {
    pub max_concurrent_calls: u32,
    pub window: CallingWindow,
    /// Zone for "today" (caps) and leads whose zone is unknown.
    pub timezone: Tz,
    pub provider: &'static str,
}

/// A claimed call, written to the store and ready for the provider.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub attempt_id: i64,
    pub lead_id: i64,
    pub to: String,
    pub from: String,
    pub caller_number_id: i64,
    pub usage_day: String,
    /// The lead's zones and window, to re-check calling hours before a retried request.
    pub zones: Vec<Tz>,
    pub window: CallingWindow,
}

/// Why nothing was claimed, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idle {
    /// `max_concurrent_calls` calls are in flight; a final status frees a slot.
    MaxConcurrent { in_flight: i64 },
    /// Every enabled caller number is at its daily cap (or there are none).
    NoCallerCapacity { resume_at: DateTime<Utc> },
    /// No lead is due now; `next` is when the earliest deferred one is.
    NothingDue { next: Option<DateTime<Utc>> },
}

#[derive(Debug, Clone)]
pub enum Claim {
    Dial(Claimed),
    Idle(Idle),
}

/// How many due leads one claim looks at before giving the writer back.
const SCAN: u32 = 64;

pub fn claim(tx: &Tx, rules: &Rules, now: DateTime<Utc>) -> anyhow::Result<Claim> {
    let now_ms = db::to_ms(now);
    let in_flight = db::attempts::in_flight(tx)?;
    if in_flight >= i64::from(rules.max_concurrent_calls) {
        return Ok(Claim::Idle(Idle::MaxConcurrent { in_flight }));
    }
    let day = local_day(rules.timezone, now);
    for lead in db::attempts::due_leads(tx, now_ms, SCAN)? {
        if db::attempts::on_dnc(tx, &lead.phone)? {
            db::leads::set_status(tx, lead.id, Status::DoNotCall, now_ms)?;
            continue;
        }
        if db::attempts::exists_for(tx, lead.id, lead.schedule_id)? {
            // Already dialled by this schedule: never again. Only reachable if a lead
            // was put back by hand; the unique index would refuse the insert anyway.
            db::leads::set_status(tx, lead.id, Status::Failed, now_ms)?;
            tracing::warn!(lead_id = lead.id, "lead already has an attempt in this schedule; not redialled");
            continue;
        }
        let zones = lead_zones(lead.timezone.as_deref(), rules.timezone);
        if !rules.window.is_open(&zones, now) {
            // Wait for the window in the lead's own zone(s); if it never opens (zones
            // whose windows do not overlap), look again in a day.
            let next = rules.window.next_open(&zones, now).unwrap_or(now + chrono::Duration::days(1));
            db::attempts::defer(tx, lead.id, db::to_ms(next))?;
            continue;
        }
        let candidates = db::numbers::candidates(tx, &day)?;
        let Some(number_id) = rotation::pick(&candidates) else {
            return Ok(Claim::Idle(Idle::NoCallerCapacity { resume_at: next_local_midnight(rules.timezone, now) }));
        };
        let cap = candidates.iter().find(|c| c.id == number_id).map_or(0, |c| c.cap);
        if !db::numbers::reserve(tx, number_id, &day, cap)? {
            anyhow::bail!("caller number {number_id} was full although the pick saw room");
        }
        let from = db::numbers::number(tx, number_id)?;
        let attempt_id = db::attempts::insert(
            tx,
            &db::attempts::NewAttempt {
                lead: &lead,
                caller_number_id: number_id,
                caller_number: &from,
                usage_day: &day,
                provider: rules.provider,
            },
            now_ms,
        )?;
        return Ok(Claim::Dial(Claimed {
            attempt_id,
            lead_id: lead.id,
            to: lead.phone,
            from,
            caller_number_id: number_id,
            usage_day: day,
            zones,
            window: rules.window,
        }));
    }
    let next = db::attempts::next_due_lead(tx, now_ms)?;
    // More due leads than one scan may remain (all deferred above): come back at once.
    let more_due = !db::attempts::due_leads(tx, now_ms, 1)?.is_empty();
    Ok(Claim::Idle(Idle::NothingDue { next: if more_due { Some(now) } else { next.map(db::from_ms) } }))
}

/// A lead's candidate zones: its stored zones ('&'-joined IANA names), else the default.
pub fn lead_zones(stored: Option<&str>, default: Tz) -> Vec<Tz> {
    let zones: Vec<Tz> = stored.unwrap_or("").split('&').filter_map(|z| z.parse().ok()).collect();
    if zones.is_empty() { vec![default] } else { zones }
}

/// The local date in `tz` at `now`, "YYYY-MM-DD": the key of daily caps.
pub fn local_day(tz: Tz, now: DateTime<Utc>) -> String {
    now.with_timezone(&tz).date_naive().to_string()
}

/// Start of the next local day in `tz`, as UTC (the moment daily caps reset).
pub fn next_local_midnight(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    start_of_local_day(tz, now.with_timezone(&tz).date_naive() + chrono::Duration::days(1))
}

/// Local midnight today in `tz`, as UTC (start of "calls today").
pub fn local_midnight_today(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    start_of_local_day(tz, now.with_timezone(&tz).date_naive())
}

fn start_of_local_day(tz: Tz, date: chrono::NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    // A zone may skip midnight on a DST day; then the first valid instant after it.
    (0..=180)
        .find_map(|min| tz.from_local_datetime(&(midnight + chrono::Duration::minutes(min))).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_day_follows_the_zone_not_utc() {
        let tz: Tz = "America/Los_Angeles".parse().unwrap();
        let t = Utc.with_ymd_and_hms(2026, 3, 10, 6, 30, 0).unwrap(); // 23:30 PDT on the 9th
        assert_eq!(local_day(tz, t), "2026-03-09");
        assert_eq!(next_local_midnight(tz, t), Utc.with_ymd_and_hms(2026, 3, 10, 7, 0, 0).unwrap());
    }

    #[test]
    fn zones_fall_back_to_default() {
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(lead_zones(None, ny), vec![ny]);
        assert_eq!(lead_zones(Some("Nowhere/Land"), ny), vec![ny]);
        assert_eq!(lead_zones(Some("America/Adak&America/Anchorage"), ny).len(), 2);
    }
}

#[cfg(test)]
#[path = "claim_tests.rs"]
mod claim_tests;
