//! The claim: in one write transaction, pick the next due lead that may be called
//! now, pick and reserve a caller number, and write the attempt. Everything that can
//! start a call goes through here, so concurrency, caps and "one attempt per lead
//! per schedule" are decided in one place, on the single writer.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::compliance::hours::CallingWindow;
use crate::compliance::{Compliance, lead_states};
use crate::db::{self, Tx};
use crate::dialer::limits::{CampaignLimits, Limit};
use crate::dialer::rotation::load_pool;
use crate::domain::status::Status;
use crate::numbers::Places;
use crate::numbers::health::{Policy, Warmup};
use crate::numbers::pool::{Choice, LeadPlace, LocalPresence, Pool};

/// What the claim needs to know, copied out of the app state.
#[derive(Clone)]
pub struct Rules {
    pub max_concurrent_calls: u32,
    /// Calling hours: profile, configured window, state rules.
    pub compliance: Arc<Compliance>,
    /// Zone for "today" (caps) and leads whose zone is unknown.
    pub timezone: Tz,
    pub provider: &'static str,
    /// Calls to one lead in any rolling 24 hours (`compliance.max_calls_per_lead_24h`).
    pub max_calls_per_lead_24h: u32,
    pub local_presence: LocalPresence,
    pub warmup: Warmup,
    pub policy: Policy,
    /// Area code → state and zone data for local presence.
    pub places: Arc<Places>,
    /// The rotation's in-memory state, shared by every claim; reloaded when the
    /// numbers change. `None` = load on the next claim.
    pub rotation: Arc<Mutex<Option<Pool>>>,
}

impl Rules {
    /// Forgets the in-memory rotation (after a failed write, whose picks were rolled back).
    pub fn reset_rotation(&self) {
        *self.rotation.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// A claimed call, written to the store and ready for the provider.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub attempt_id: i64,
    pub lead_id: i64,
    pub to: String,
    pub from: String,
    pub caller_number_id: i64,
    /// The caller number's id at the provider (Vapi `phoneNumberId`), when known.
    pub from_provider_id: Option<String>,
    /// The campaign's answering-machine detection.
    pub amd: crate::domain::flow::AmdMode,
    pub usage_day: String,
    /// The lead's zones and states, to re-check calling hours before a retried request.
    pub zones: Vec<Tz>,
    pub states: Vec<String>,
    /// The campaign's hours (intersected with the configured ones) and days.
    pub window: CallingWindow,
    pub allowed_days: [bool; 7],
    pub compliance: Arc<Compliance>,
}

/// Why nothing was claimed, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idle {
    /// `max_concurrent_calls` calls are in flight; a final status frees a slot.
    MaxConcurrent { in_flight: i64 },
    /// Every active caller number is at its daily cap (or there are none). Resumes
    /// by itself at local midnight or when a resting number is re-checked, and at
    /// once when a number is added, restored or given room.
    NoCallerCapacity { resume_at: DateTime<Utc> },
    /// No lead is due now; `next` is when the earliest deferred one is.
    NothingDue { next: Option<DateTime<Utc>> },
}

#[derive(Debug, Clone)]
pub enum Claim {
    Dial(Claimed),
    Idle(Idle),
}

const DAY_MS: i64 = 24 * 3600 * 1000;
/// How long a due lead waits when a call to it (a test call) is still under way.
const IN_CALL_WAIT_MS: i64 = 60_000;

/// How many due leads one claim looks at before giving the writer back.
const SCAN: u32 = 64;

pub fn claim(tx: &Tx, rules: &Rules, now: DateTime<Utc>) -> anyhow::Result<Claim> {
    let mut rotation = rules.rotation.lock().unwrap_or_else(|e| e.into_inner());
    let result = claim_with(tx, rules, &mut rotation, now);
    if result.is_err() {
        // Picks made in this transaction are rolled back with it.
        *rotation = None;
    }
    result
}

fn claim_with(tx: &Tx, rules: &Rules, rotation: &mut Option<Pool>, now: DateTime<Utc>) -> anyhow::Result<Claim> {
    let now_ms = db::to_ms(now);
    let in_flight = db::attempts::in_flight(tx)?;
    if in_flight >= i64::from(rules.max_concurrent_calls) {
        return Ok(Claim::Idle(Idle::MaxConcurrent { in_flight }));
    }
    let day = local_day(rules.timezone, now);
    let version = db::numbers::version(tx)?;
    if rotation.as_ref().is_none_or(|p| p.version != version || p.day != day) {
        *rotation = Some(load_pool(tx, rules, &day, version, now)?);
    }
    let Some(pool) = rotation.as_mut() else { unreachable!("loaded above") };
    let mut limits = CampaignLimits::load(tx, db::to_ms(local_midnight_today(rules.timezone, now)), now_ms)?;
    // A campaign at its own concurrency skips its leads; if that is all there is,
    // the loop waits for a call to end rather than scanning again at once.
    let mut campaign_full = false;
    if !pool.has_capacity(None) {
        return Ok(Claim::Idle(Idle::NoCallerCapacity { resume_at: capacity_returns(tx, rules.timezone, now)? }));
    }
    // Campaigns waiting for their calls-per-minute pace are left out of the scan.
    let paced = limits.paced(tx)?;
    'leads: for lead in db::attempts::due_leads_except(tx, now_ms, SCAN, &paced)? {
        if db::attempts::on_dnc(tx, &lead.phone)? {
            db::leads::set_status(tx, lead.id, Status::DoNotCall, now_ms)?;
            continue;
        }
        if db::attempts::lead_in_call(tx, lead.id)? {
            // A test call to this number is under way: never two calls at once.
            db::attempts::defer(tx, lead.id, now_ms + IN_CALL_WAIT_MS, "in_call")?;
            continue;
        }
        let campaign = limits.settings(lead.campaign_id).clone();
        let made = db::attempts::count_in_schedule(tx, lead.id, lead.schedule_id)?;
        if made >= campaign.max_attempts {
            // Every attempt this campaign allows is used: never again. Only reachable if
            // a lead was put back by hand or max_attempts was lowered meanwhile.
            db::leads::set_status(tx, lead.id, Status::Failed, now_ms)?;
            tracing::warn!(lead_id = lead.id, made, "lead has used every attempt in this schedule; not redialled");
            continue;
        }
        if campaign.require_consent && !lead.has_consent {
            // Back to pending, not dialled: it can be scheduled again once consent is recorded.
            db::attempts::skip_no_consent(tx, lead.id, now_ms)?;
            continue;
        }
        match limits.full(tx, lead.campaign_id)? {
            Some(Limit::Concurrency) => {
                campaign_full = true;
                continue;
            }
            // Its next call may start at `next` (`limits.next_pace()` wakes the loop then).
            Some(Limit::Pace { .. }) => continue,
            Some(Limit::Daily) => {
                let next = next_local_midnight(rules.timezone, now);
                db::attempts::defer(tx, lead.id, db::to_ms(next), "campaign_daily_cap")?;
                continue;
            }
            None => {}
        }
        let window = match campaign.window {
            Some(w) => rules.compliance.window.intersect(&w),
            None => Some(rules.compliance.window),
        };
        let Some(window) = window else {
            // The campaign's hours and the configured ones do not overlap.
            db::attempts::defer(tx, lead.id, db::to_ms(now + chrono::Duration::days(1)), "calling_hours")?;
            continue;
        };
        let gate = rules.compliance.gate_with(window, campaign.allowed_days);
        let (area_code, area_state, _) = rules.places.of(&lead.phone);
        let states = lead_states(area_state.as_deref(), &lead.state);
        let state_refs: Vec<&str> = states.iter().map(String::as_str).collect();
        let recent = db::attempts::lead_calls_since(tx, lead.id, now_ms - DAY_MS)?;
        let cap = gate
            .max_calls_per_24h(&state_refs)
            .map_or(rules.max_calls_per_lead_24h, |c| c.min(rules.max_calls_per_lead_24h));
        let cap = cap.max(1) as usize;
        if recent.len() >= cap {
            // Rolling 24 h: the lead may be called again when the oldest of its last
            // `cap` calls is 24 hours old.
            db::attempts::defer(tx, lead.id, recent[recent.len() - cap] + DAY_MS, "lead_24h_cap")?;
            continue;
        }
        let zones = lead_zones(lead.timezone.as_deref(), campaign.timezone.unwrap_or(rules.timezone));
        if !gate.is_open(&zones, &state_refs, now) {
            // Wait for the window in the lead's own zone(s); if it never opens (zones
            // whose windows do not overlap), look again in a day.
            let next = gate.next_open(&zones, &state_refs, now).unwrap_or(now + chrono::Duration::days(1));
            db::attempts::defer(tx, lead.id, db::to_ms(next), "calling_hours")?;
            continue;
        }
        let place =
            LeadPlace { area_code, state: states.first().cloned(), zones: zones.clone(), pool: campaign.pool.clone() };
        let (number, tier, candidates) = loop {
            let (id, tier, candidates) = match pool.choose(&place, rules.local_presence) {
                Choice::Number { id, tier, candidates } => (id, tier, candidates),
                Choice::NoLocal => break (None, None, 0),
                Choice::Empty if place.pool.is_some() => {
                    // This campaign's pool is full; other campaigns may still dial.
                    let next = capacity_returns(tx, rules.timezone, now)?;
                    db::attempts::defer(tx, lead.id, db::to_ms(next), "no_pool_number")?;
                    continue 'leads;
                }
                Choice::Empty => {
                    return Ok(Claim::Idle(Idle::NoCallerCapacity {
                        resume_at: capacity_returns(tx, rules.timezone, now)?,
                    }));
                }
            };
            let Some(number) = pool.number(id).cloned() else { unreachable!("picked from the pool") };
            if db::numbers::reserve(tx, id, &day, number.cap)? {
                pool.used(id);
                break (Some(number), Some(tier), candidates);
            }
            // Full although the pool saw room: another process dialled from it.
            pool.full(id);
        };
        let (Some(number), Some(tier)) = (number, tier) else {
            let next = capacity_returns(tx, rules.timezone, now)?;
            db::attempts::defer(tx, lead.id, db::to_ms(next), "no_local_number")?;
            continue;
        };
        let number_id = number.id;
        if number.first_used_day.is_none() {
            db::numbers::mark_first_used(tx, number_id, &day)?;
            pool.first_used(number_id, &day);
        }
        let attempt_id = db::attempts::insert(
            tx,
            &db::attempts::NewAttempt {
                lead: &lead,
                caller_number_id: number_id,
                caller_number: &number.number,
                usage_day: &day,
                provider: rules.provider,
                tier: tier.as_str(),
                candidates: candidates as i64,
                attempt_number: made + 1,
            },
            now_ms,
        )?;
        return Ok(Claim::Dial(Claimed {
            attempt_id,
            lead_id: lead.id,
            to: lead.phone,
            from: number.number,
            caller_number_id: number_id,
            // Vapi dials by the number's provider id (set when imported from the account).
            from_provider_id: db::provider_numbers::provider_id(tx, number_id)?,
            // The campaign's answering-machine detection (default detect_message_end).
            amd: campaign.amd,
            usage_day: day,
            zones,
            states,
            window,
            allowed_days: campaign.allowed_days,
            compliance: rules.compliance.clone(),
        }));
    }
    let pace = limits.next_pace();
    if campaign_full && pace.is_none() {
        return Ok(Claim::Idle(Idle::MaxConcurrent { in_flight }));
    }
    let next = db::attempts::next_due_lead(tx, now_ms)?;
    // More due leads than one scan may remain (all deferred above): come back at once.
    let more_due = !db::attempts::due_leads_except(tx, now_ms, 1, &paced)?.is_empty();
    let next = if more_due { Some(now) } else { next.map(db::from_ms).into_iter().chain(pace).min() };
    Ok(Claim::Idle(Idle::NothingDue { next }))
}

/// When caller capacity may come back by itself: local midnight (caps reset) or the
/// next resting number's re-check, whichever is first.
fn capacity_returns(tx: &Tx, tz: Tz, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let midnight = next_local_midnight(tz, now);
    let rest = db::numbers::earliest_rest_until(tx)?.map(db::from_ms).filter(|t| *t > now);
    Ok(rest.map_or(midnight, |r| r.min(midnight)))
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
