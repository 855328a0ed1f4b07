//! A test call: one number called now through a campaign's call flow, to check the
//! setup end to end (provider credentials, caller IDs, webhooks, the message, the
//! transfer). It is refused exactly where a campaign call would be (DNC, calling
//! hours, the rolling 24-hour cap, no caller capacity, concurrency), takes its caller
//! ID from the rotation, and is placed and recorded by the call loop's own code
//! (`dialer::place`). It belongs to no schedule, so it is never retried.

use chrono::{DateTime, Utc};

use crate::compliance::lead_states;
use crate::db::{self, Tx, test_calls};
use crate::dialer::claim::{Claimed, Rules, lead_zones, local_day};
use crate::dialer::rotation::load_pool;
use crate::domain::phone::E164;
use crate::numbers::pool::{Choice, LeadPlace};
use crate::state::AppState;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Why a test call was not placed. The message is shown to the operator as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("number: {0}")]
    Number(String),
    #[error("campaign {0} does not exist")]
    UnknownCampaign(i64),
    #[error("{0} is on the do-not-call list")]
    Dnc(String),
    #[error("{0} is a lead with status {1}: it is in a schedule or a call; test with another number")]
    InSchedule(String, String),
    #[error("{0} is a lead marked {1}: it is never called")]
    Marked(String, String),
    #[error("outside calling hours for {number} (its local time){}", next.map(|n| format!("; next allowed at {} UTC", n.format("%Y-%m-%d %H:%M"))).unwrap_or_default())]
    CallingHours { number: String, next: Option<DateTime<Utc>> },
    #[error("{0} was called {1} time(s) in the last 24 hours, the most allowed")]
    Cap(String, usize),
    #[error("{0} calls are in flight (max_concurrent_calls); try again when one ends")]
    MaxConcurrent(i64),
    #[error("no caller number has capacity left today (or none local to this number with local presence strict)")]
    NoCaller,
}

/// Claims and places a test call to `raw_number` (any format the importer reads)
/// for `campaign_id`. Returns the attempt id; the call's progress is then the
/// attempt's (`db::test_calls::view`). Errors: store failures only.
pub async fn start(state: &AppState, campaign_id: i64, raw_number: &str) -> anyhow::Result<Result<i64, Refusal>> {
    let phone = match E164::parse(raw_number, state.resolved.region) {
        Ok(p) => p,
        Err(e) => return Ok(Err(Refusal::Number(e.to_string()))),
    };
    let zones = state.tz_map.zones_for_digits(phone.digits()).map(|z| {
        let names: Vec<&str> = z.iter().map(|tz| tz.name()).collect();
        names.join("&")
    });
    let rules = state.rules();
    let phone = phone.as_str().to_string();
    let claimed = state
        .db
        .write(move |tx| {
            let result = claim(tx, &rules, campaign_id, &phone, zones.as_deref(), Utc::now());
            if result.is_err() {
                rules.reset_rotation();
            }
            result
        })
        .await?;
    let call = match claimed {
        Ok(call) => call,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let attempt_id = call.attempt_id;
    tracing::info!(attempt_id, campaign_id, "test call placed");
    tokio::spawn(super::place(state.clone(), call));
    Ok(Ok(attempt_id))
}

fn claim(
    tx: &Tx,
    rules: &Rules,
    campaign_id: i64,
    phone: &str,
    zones: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<Claimed, Refusal>> {
    let now_ms = db::to_ms(now);
    let Some((_, campaign)) = db::campaigns::checked(tx, campaign_id)? else {
        return Ok(Err(Refusal::UnknownCampaign(campaign_id)));
    };
    if db::attempts::on_dnc(tx, phone)? {
        return Ok(Err(Refusal::Dnc(phone.to_string())));
    }
    let in_flight = db::attempts::in_flight(tx)?;
    if in_flight >= i64::from(rules.max_concurrent_calls) {
        return Ok(Err(Refusal::MaxConcurrent(in_flight)));
    }
    let lead = match test_calls::lead_for(tx, phone, zones, campaign_id, now_ms)? {
        Ok(lead) => lead,
        Err(test_calls::Busy::InSchedule(status)) => return Ok(Err(Refusal::InSchedule(phone.to_string(), status))),
        Err(test_calls::Busy::Marked(status)) => return Ok(Err(Refusal::Marked(phone.to_string(), status))),
    };
    // The same hours as a campaign call: configured ∩ campaign window, in every
    // candidate zone of the number, plus the state rules.
    let window = match campaign.window {
        Some(w) => rules.compliance.window.intersect(&w),
        None => Some(rules.compliance.window),
    };
    let (area_code, area_state, _) = rules.places.of(&lead.phone);
    let states = lead_states(area_state.as_deref(), &lead.state);
    let state_refs: Vec<&str> = states.iter().map(String::as_str).collect();
    let lead_tz = lead_zones(lead.timezone.as_deref(), campaign.timezone.unwrap_or(rules.timezone));
    let Some(window) = window else {
        return Ok(Err(Refusal::CallingHours { number: phone.to_string(), next: None }));
    };
    let gate = rules.compliance.gate_with(window, campaign.allowed_days);
    if !gate.is_open(&lead_tz, &state_refs, now) {
        let next = gate.next_open(&lead_tz, &state_refs, now);
        return Ok(Err(Refusal::CallingHours { number: phone.to_string(), next }));
    }
    let recent = db::attempts::lead_calls_since(tx, lead.id, now_ms - DAY_MS)?;
    let cap = gate
        .max_calls_per_24h(&state_refs)
        .map_or(rules.max_calls_per_lead_24h, |c| c.min(rules.max_calls_per_lead_24h))
        .max(1) as usize;
    if recent.len() >= cap {
        return Ok(Err(Refusal::Cap(phone.to_string(), recent.len())));
    }
    let day = local_day(rules.timezone, now);
    let version = db::numbers::version(tx)?;
    let mut rotation = rules.rotation.lock().unwrap_or_else(|e| e.into_inner());
    if rotation.as_ref().is_none_or(|p| p.version != version || p.day != day) {
        *rotation = Some(load_pool(tx, rules, &day, version, now)?);
    }
    let Some(pool) = rotation.as_mut() else { unreachable!("loaded above") };
    let place =
        LeadPlace { area_code, state: states.first().cloned(), zones: lead_tz.clone(), pool: campaign.pool.clone() };
    // A few picks: a number the pool thought had room may be full in the store.
    let mut picked = None;
    for _ in 0..8 {
        let Choice::Number { id, tier, candidates } = pool.choose(&place, rules.local_presence) else { break };
        let Some(number) = pool.number(id).cloned() else { break };
        if db::numbers::reserve(tx, id, &day, number.cap)? {
            pool.used(id);
            picked = Some((number, tier, candidates));
            break;
        }
        pool.full(id);
    }
    let Some((number, tier, candidates)) = picked else { return Ok(Err(Refusal::NoCaller)) };
    if number.first_used_day.is_none() {
        db::numbers::mark_first_used(tx, number.id, &day)?;
        pool.first_used(number.id, &day);
    }
    let made = db::attempts::count_in_schedule(tx, lead.id, None)?;
    let attempt_id = db::attempts::insert(
        tx,
        &db::attempts::NewAttempt {
            lead: &lead,
            caller_number_id: number.id,
            caller_number: &number.number,
            usage_day: &day,
            provider: rules.provider,
            tier: tier.as_str(),
            candidates: candidates as i64,
            attempt_number: made + 1,
        },
        now_ms,
    )?;
    Ok(Ok(Claimed {
        attempt_id,
        lead_id: lead.id,
        to: lead.phone,
        from: number.number,
        caller_number_id: number.id,
        from_provider_id: db::provider_numbers::provider_id(tx, number.id)?,
        amd: campaign.amd,
        usage_day: day,
        zones: lead_tz,
        states,
        window,
        allowed_days: campaign.allowed_days,
        compliance: rules.compliance.clone(),
    }))
}

#[cfg(test)]
#[path = "test_call_tests.rs"]
mod tests;
