//! The year simulation's oracle: what every dial must satisfy, written from the rules
//! (FCC 08:00–21:00, the state facts in compliance.md §1.6, the campaign settings the
//! simulation chose) with chrono-tz local times, never by asking the production
//! `Gate`. It sees every dial and every ended call and keeps a list of violations.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use crate::domain::status::Status;

/// The zone the app uses for leads without one (`dialing.timezone`'s default).
pub(super) const DEFAULT_ZONE: Tz = chrono_tz::America::New_York;

/// States whose law ends calls at 20:00 local (FL §501.616(6), OK §775C.4, MD
/// §14-4502; LA and MS per the vendor charts the rules file cites).
const EIGHT_PM: [&str; 5] = ["FL", "OK", "MD", "LA", "MS"];
/// At most 3 calls per rolling 24 h, whatever the caller number (FL, OK, MD).
const THREE_A_DAY: [&str; 3] = ["FL", "OK", "MD"];
/// No calls on Sunday (AL, LA, MS).
const NO_SUNDAY: [&str; 3] = ["AL", "LA", "MS"];

/// A lead as the simulation made it and the import stored it.
#[derive(Debug, Clone)]
pub(super) struct Lead {
    pub phone: String,
    /// The state of its area code, from the simulation's own table (None outside NANP).
    pub area_state: Option<&'static str>,
    /// The CSV's state column (may be empty).
    pub csv_state: String,
    /// Zones the import stored; empty = unknown (the campaign's or the default zone).
    pub zones: Vec<Tz>,
    /// A label for coverage counts ("AK", "HI", "AZ", "split", "intl", …).
    pub kind: &'static str,
}

impl Lead {
    pub fn states(&self) -> Vec<String> {
        let mut out: Vec<String> = self.area_state.map(str::to_string).into_iter().collect();
        let csv = self.csv_state.trim().to_ascii_uppercase();
        if csv.len() == 2 && !out.contains(&csv) {
            out.push(csv);
        }
        out
    }

    pub fn in_state(&self, set: &[&str]) -> bool {
        self.states().iter().any(|s| set.contains(&s.as_str()))
    }
}

/// A campaign's settings as the simulation chose them (the JSON is made from this).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    /// Campaign hours, seconds after local midnight, end exclusive; None = unset.
    pub hours: Option<(u32, u32)>,
    /// Monday first; all true when unset.
    pub days: [bool; 7],
    pub max_attempts: u32,
    pub retry_delay_minutes: u32,
    pub retry_outcomes: Vec<Status>,
    pub max_calls_per_day: Option<u32>,
    pub max_concurrent_calls: Option<u32>,
    pub timezone: Option<Tz>,
    pub require_consent: bool,
}

/// One dial as the claim wrote it, with what the simulation knew at that instant.
#[derive(Debug, Clone)]
pub(super) struct Dial {
    pub lead: i64,
    pub at: DateTime<Utc>,
    pub campaign: i64,
    pub schedule: i64,
    pub attempt_number: u32,
    /// Calls in flight just before this one: all campaigns, this campaign.
    pub in_flight: usize,
    pub in_flight_campaign: usize,
    /// The simulation paused or cancelled the campaign and has not resumed it.
    pub campaign_stopped: bool,
    pub lead_in_flight: bool,
    /// When the lead's schedule started (no dial before its batch fired).
    pub schedule_start: DateTime<Utc>,
}

/// A DNC listing: from, until (None = still listed).
type Listed = (DateTime<Utc>, Option<DateTime<Utc>>);

/// What may follow a lead's last ended call.
#[derive(Debug, Clone, Copy)]
enum After {
    /// Not before this instant (the retry delay).
    NotBefore(DateTime<Utc>),
    /// Never again (outcome not retried).
    Never,
}

pub(super) struct Oracle {
    pub leads: HashMap<i64, Lead>,
    /// Listed intervals per phone: [from, to).
    dnc: HashMap<String, Vec<Listed>>,
    holidays: HashMap<String, Vec<NaiveDate>>,
    blackouts: Vec<(Vec<String>, NaiveDate, NaiveDate)>,
    /// `compliance.max_calls_per_lead_24h`.
    cap_24h: usize,
    max_concurrent: usize,
    dials: HashMap<i64, Vec<DateTime<Utc>>>,
    per_schedule: HashMap<(i64, i64), u32>,
    after: HashMap<i64, After>,
    /// Dials per campaign per local date in the default zone (where "today" is).
    per_day: HashMap<(i64, NaiveDate), u32>,
    pub violations: Vec<String>,
    /// Largest number of dials any FL lead had in a rolling 24 h, and any lead
    /// outside FL/OK/MD (which only the global cap holds).
    pub fl_max_24h: usize,
    pub other_max_24h: usize,
}

impl Oracle {
    /// Reads holidays and blackouts from the shipped rules file with plain `toml`
    /// (not the product's parser): the dates are data, the rules above are law.
    pub fn new(cap_24h: u32, max_concurrent: u32) -> Oracle {
        let file: toml::Value = toml::from_str(include_str!("../../data/state_rules.toml")).unwrap();
        let date = |v: &toml::Value| NaiveDate::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d").unwrap();
        let mut holidays = HashMap::new();
        for s in file.get("state").and_then(|s| s.as_array()).into_iter().flatten() {
            let days = s.get("holidays").and_then(|h| h.as_array()).map(|h| h.iter().map(date).collect());
            holidays.insert(s["code"].as_str().unwrap().to_string(), days.unwrap_or_default());
        }
        let blackouts = file.get("blackout").and_then(|b| b.as_array()).into_iter().flatten();
        let blackouts = blackouts
            .map(|b| {
                let states = b["states"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
                (states, date(&b["from"]), date(&b["to"]))
            })
            .collect();
        Oracle {
            leads: HashMap::new(),
            dnc: HashMap::new(),
            holidays,
            blackouts,
            cap_24h: cap_24h as usize,
            max_concurrent: max_concurrent as usize,
            dials: HashMap::new(),
            per_schedule: HashMap::new(),
            after: HashMap::new(),
            per_day: HashMap::new(),
            violations: Vec::new(),
            fl_max_24h: 0,
            other_max_24h: 0,
        }
    }

    pub fn dnc_add(&mut self, phone: &str, at: DateTime<Utc>) {
        let spans = self.dnc.entry(phone.to_string()).or_default();
        if spans.last().is_none_or(|(_, to)| to.is_some()) {
            spans.push((at, None));
        }
    }

    pub fn dnc_remove(&mut self, phone: &str, at: DateTime<Utc>) {
        if let Some((_, to @ None)) = self.dnc.get_mut(phone).and_then(|s| s.last_mut()) {
            *to = Some(at);
        }
    }

    pub fn listed(&self, phone: &str, at: DateTime<Utc>) -> bool {
        self.dnc.get(phone).is_some_and(|s| s.iter().any(|(from, to)| *from <= at && to.is_none_or(|to| at < to)))
    }

    /// The zones the lead is judged in: its stored zones, else the campaign's zone,
    /// else the app's default (ARCHITECTURE: "column zone, number zones, else the default").
    pub fn zones(lead: &Lead, plan: &Plan) -> Vec<Tz> {
        if lead.zones.is_empty() { vec![plan.timezone.unwrap_or(DEFAULT_ZONE)] } else { lead.zones.clone() }
    }

    /// Why `lead` may not be called at `at` under `plan`, or None if it may.
    pub fn closed(&self, lead: &Lead, plan: &Plan, at: DateTime<Utc>) -> Option<String> {
        let (mut start, mut end) = (8 * 3600, 21 * 3600);
        if let Some((s, e)) = plan.hours {
            (start, end) = (start.max(s), end.min(e));
        }
        let states = lead.states();
        if lead.in_state(&EIGHT_PM) {
            end = end.min(20 * 3600);
        }
        for tz in Oracle::zones(lead, plan) {
            let local = at.with_timezone(&tz);
            let (secs, date) = (local.num_seconds_from_midnight(), local.date_naive());
            let why = if secs < start || secs >= end {
                "outside hours"
            } else if !plan.days[date.weekday().num_days_from_monday() as usize] {
                "day not allowed"
            } else if date.weekday() == Weekday::Sun && lead.in_state(&NO_SUNDAY) {
                "state Sunday"
            } else if states.iter().any(|s| self.holidays.get(s).is_some_and(|h| h.contains(&date))) {
                "state holiday"
            } else if self
                .blackouts
                .iter()
                .any(|(bs, f, t)| *f <= date && date <= *t && states.iter().any(|s| bs.contains(s)))
            {
                "blackout"
            } else {
                continue;
            };
            return Some(format!("{why}: {} in {tz} ({}..{} s)", local.format("%a %F %T"), start, end));
        }
        None
    }

    /// Checks one dial against every rule and records it.
    pub fn dial(&mut self, d: &Dial, plan: &Plan) {
        let lead = self.leads[&d.lead].clone();
        let mut bad = Vec::new();
        if let Some(why) = self.closed(&lead, plan, d.at) {
            bad.push(why);
        }
        if self.listed(&lead.phone, d.at) {
            bad.push("number on the DNC list".into());
        }
        let n = self.per_schedule.entry((d.lead, d.schedule)).or_default();
        *n += 1;
        if *n > plan.max_attempts || *n != d.attempt_number {
            bad.push(format!("attempt {} (#{} by count) of max {}", d.attempt_number, n, plan.max_attempts));
        }
        let times = self.dials.entry(d.lead).or_default();
        times.push(d.at);
        let in_24h = times.iter().filter(|t| **t > d.at - Duration::hours(24)).count();
        let cap = if lead.in_state(&THREE_A_DAY) { 3.min(self.cap_24h) } else { self.cap_24h };
        if in_24h > cap {
            bad.push(format!("{in_24h} calls in 24 h (cap {cap})"));
        }
        if lead.in_state(&["FL"]) {
            self.fl_max_24h = self.fl_max_24h.max(in_24h);
        } else if !lead.in_state(&THREE_A_DAY) {
            self.other_max_24h = self.other_max_24h.max(in_24h);
        }
        match self.after.get(&d.lead) {
            Some(After::Never) => bad.push("redialled after an outcome that is not retried".into()),
            Some(After::NotBefore(t)) if d.at < *t => bad.push(format!("retried before its delay ({t})")),
            _ => {}
        }
        let day = d.at.with_timezone(&DEFAULT_ZONE).date_naive();
        let today = self.per_day.entry((d.campaign, day)).or_default();
        *today += 1;
        if plan.max_calls_per_day.is_some_and(|m| *today > m) {
            bad.push(format!("campaign call {today} today (max {:?})", plan.max_calls_per_day));
        }
        if plan.max_concurrent_calls.is_some_and(|m| d.in_flight_campaign >= m as usize) {
            bad.push(format!("campaign already had {} in flight", d.in_flight_campaign));
        }
        if d.in_flight >= self.max_concurrent {
            bad.push(format!("{} calls already in flight", d.in_flight));
        }
        if d.campaign_stopped {
            bad.push("campaign paused or cancelled".into());
        }
        if d.lead_in_flight {
            bad.push("lead already in a call".into());
        }
        if d.at < d.schedule_start {
            bad.push(format!("before its schedule's start {}", d.schedule_start));
        }
        if !bad.is_empty() {
            self.violations.push(format!("{} — dial {d:?} lead {lead:?} plan {plan:?}", bad.join("; ")));
        }
    }

    /// An ended call: what the retry rule must do next (compliance of the retry
    /// itself is checked when it is dialled). Returns the retry instant expected.
    pub fn ended(
        &mut self,
        lead: i64,
        at: DateTime<Utc>,
        outcome: Status,
        attempt: u32,
        plan: &Plan,
        cancelled: bool,
    ) -> Option<DateTime<Utc>> {
        let retry = plan.retry_outcomes.contains(&outcome) && attempt < plan.max_attempts && !cancelled;
        let next = retry.then(|| at + Duration::minutes(i64::from(plan.retry_delay_minutes)));
        self.after.insert(lead, next.map_or(After::Never, After::NotBefore));
        next
    }

    /// The lead left its schedule without an outcome (campaign cancelled while it
    /// waited for a retry): it may be scheduled and called afresh.
    pub fn released(&mut self, lead: i64) {
        if matches!(self.after.get(&lead), Some(After::NotBefore(_))) {
            self.after.remove(&lead);
        }
    }
}
