//! The year simulation's inputs: random leads (every US zone, Alaska, Hawaii,
//! Arizona, split-zone area codes, FL/OK/MD/AL/LA/MS, a few non-US numbers) imported
//! through the real CSV import, and random campaign settings.

use std::collections::{HashMap, HashSet};

use chrono_tz::Tz;
use rand::Rng;
use rand::rngs::StdRng;

use super::oracle::{Lead, Oracle, Plan};
use crate::campaigns::Settings;
use crate::db::Db;
use crate::dialer::fixtures::places;
use crate::domain::phone::E164;
use crate::domain::status::Status;

/// Area codes the leads use: (NPA, its state, coverage label). The state is ours
/// (the oracle's), not read from the product's area-code table.
pub(super) const AREAS: [(&str, &str, &str); 42] = [
    ("212", "NY", "ET"),
    ("404", "GA", "ET"),
    ("617", "MA", "ET"),
    ("305", "FL", "FL"),
    ("239", "FL", "FL"),
    ("407", "FL", "FL"),
    ("410", "MD", "MD"),
    ("301", "MD", "MD"),
    ("312", "IL", "CT"),
    ("214", "TX", "CT"),
    ("405", "OK", "OK"),
    ("918", "OK", "OK"),
    ("504", "LA", "LA"),
    ("601", "MS", "MS"),
    ("205", "AL", "AL"),
    ("615", "TN", "CT"),
    ("303", "CO", "MT"),
    ("801", "UT", "MT"),
    ("505", "NM", "MT"),
    ("406", "MT", "MT"),
    ("415", "CA", "PT"),
    ("206", "WA", "PT"),
    ("702", "NV", "PT"),
    ("503", "OR", "PT"),
    ("907", "AK", "AK"),
    ("808", "HI", "HI"),
    ("602", "AZ", "AZ"),
    ("520", "AZ", "AZ"),
    ("928", "AZ", "AZ"),
    // Area codes whose exchanges lie in two zones (or whose numbers have two).
    ("208", "ID", "split"),
    ("850", "FL", "split"),
    ("270", "KY", "split"),
    ("812", "IN", "split"),
    ("541", "OR", "split"),
    ("308", "NE", "split"),
    ("605", "SD", "split"),
    ("701", "ND", "split"),
    ("423", "TN", "split"),
    ("620", "KS", "split"),
    ("785", "KS", "split"),
    ("915", "TX", "split"),
    ("775", "NV", "split"),
];

/// Non-US numbers: (E.164 digits prefix, total digits). Perth and Mexico City only
/// match a multi-zone country code: their zone is unknown (the default applies).
const INTL: [(&str, usize); 6] = [("4420", 12), ("612", 11), ("618", 11), ("5255", 12), ("9198", 12), ("8133", 11)];
/// State columns given to some leads (often not the area code's state).
const STATES: [&str; 12] = ["FL", "OK", "MD", "AL", "LA", "MS", "TX", "NY", "CA", "ID", "HI", "AK"];
const ZONES: [&str; 9] = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Europe/London",
    "Asia/Kolkata",
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const RETRYABLE: [Status; 4] = [Status::NoAnswer, Status::Busy, Status::Failed, Status::Voicemail];

pub(super) struct Generator {
    /// NPA → libphonenumber prefixes under it, so split area codes give numbers
    /// from each of their zones.
    prefixes: HashMap<&'static str, Vec<&'static str>>,
    /// Phone → (area-code state, label).
    meta: HashMap<String, (Option<&'static str>, &'static str)>,
    used: HashSet<String>,
}

impl Generator {
    pub fn new() -> Generator {
        let mut prefixes: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
        for line in include_str!("../../data/tz_map_data.txt").lines().filter(|l| l.starts_with('1')) {
            let prefix = line.split('|').next().unwrap_or("");
            if let Some(area) = AREAS.iter().find(|a| prefix.len() >= 4 && &prefix[1..4] == a.0) {
                prefixes.entry(area.0).or_default().push(prefix);
            }
        }
        Generator { prefixes, meta: HashMap::new(), used: HashSet::new() }
    }

    /// A valid, unused number starting with `prefix`, `len` digits long.
    fn number(&mut self, rng: &mut StdRng, prefix: &str, len: usize) -> Option<String> {
        (0..50).find_map(|_| {
            let digits: String = (prefix.len()..len).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
            let phone = E164::parse(&format!("+{prefix}{digits}"), phonenumber::country::Id::US).ok()?;
            let phone = phone.as_str().to_string();
            (!self.used.contains(&phone)).then_some(phone)
        })
    }

    /// `n` leads as a CSV file, and the numbers listed as do-not-call before it arrives.
    pub fn csv(&mut self, rng: &mut StdRng, n: usize) -> (String, Vec<String>) {
        let mut csv = String::from("number,state,timezone,consent_at\n");
        let mut listed = Vec::new();
        for _ in 0..n {
            let (phone, area) = if rng.gen_bool(0.06) {
                let (prefix, len) = INTL[rng.gen_range(0..INTL.len())];
                (self.number(rng, prefix, len), None)
            } else {
                let area = AREAS[rng.gen_range(0..AREAS.len())];
                let options = &self.prefixes[area.0];
                let prefix = options[rng.gen_range(0..options.len())];
                (self.number(rng, prefix, 11), Some(area))
            };
            let Some(phone) = phone else { continue };
            self.used.insert(phone.clone());
            self.meta.insert(phone.clone(), (area.map(|a| a.1), area.map_or("intl", |a| a.2)));
            let state = match area {
                Some(a) if rng.gen_bool(0.25) => {
                    if rng.gen_bool(0.5) {
                        a.1
                    } else {
                        STATES[rng.gen_range(0..STATES.len())]
                    }
                }
                _ => "",
            };
            let zone = if rng.gen_bool(0.1) { ZONES[rng.gen_range(0..ZONES.len())] } else { "" };
            let consent = if rng.gen_bool(0.6) { "2025-06-01" } else { "" };
            csv.push_str(&format!("{phone},{state},{zone},{consent}\n"));
            if rng.gen_bool(0.03) {
                listed.push(phone);
            }
        }
        (csv, listed)
    }

    /// Imports `csv` with the real import; hands the stored leads to the oracle,
    /// after checking that their zones never leave out one the number or the
    /// `timezone` column gives. Returns how many were imported.
    pub fn import(&mut self, db: &Db, csv: &str, oracle: &mut Oracle) -> usize {
        let places = places();
        let ctx = crate::leads::import::Context { db, region: phonenumber::country::Id::US, places: &places };
        let summary = crate::leads::import::run(&ctx, "sim.csv", csv.as_bytes(), &mut |_| {}).unwrap();
        assert_eq!(summary.rejected, 0, "{:?}", summary.errors);
        let rows: Vec<(i64, String, String, Option<String>, String)> = db
            .read_blocking(|c| {
                Ok(c.prepare("SELECT id, phone, state, timezone, timezone_source FROM leads WHERE import_id = ?1")?
                    .query_map([summary.import_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                    .collect::<Result<_, _>>()?)
            })
            .unwrap();
        let columns: HashMap<&str, &str> = csv
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').nth(2).map(|z| (l.split(',').next().unwrap(), z)))
            .collect();
        for (id, phone, state, stored, source) in rows {
            let zones: Vec<Tz> = stored.as_deref().unwrap_or("").split('&').filter_map(|z| z.parse().ok()).collect();
            let digits = phone.trim_start_matches('+');
            let from_number = places.tz.zones_for_digits(digits).unwrap_or_default();
            let column = columns.get(phone.as_str()).and_then(|z| z.parse::<Tz>().ok());
            // A state or zone column may narrow the number's zones (compliance.md §3.4),
            // never drop the column's own zone nor widen past the number's.
            let narrowed = column.map_or(!state.is_empty(), |c| from_number.contains(&c));
            let missing: Vec<&Tz> =
                column.iter().chain(from_number.iter().filter(|_| !narrowed)).filter(|z| !zones.contains(z)).collect();
            if !missing.is_empty() || (zones.is_empty() && !from_number.is_empty()) {
                oracle
                    .violations
                    .push(format!("lead {phone} ({state}, {source}): zones {zones:?} leave out {missing:?}"));
            }
            let (area_state, kind) = self.meta[&phone];
            oracle.leads.insert(id, Lead { phone, area_state, csv_state: state, zones, kind });
        }
        summary.imported as usize
    }
}

/// Random campaign settings within what `Settings::check` accepts.
pub(super) fn random_plan(rng: &mut StdRng) -> Plan {
    let hours = rng.gen_bool(0.6).then(|| {
        let start = rng.gen_range(5 * 60..=15 * 60) * 60;
        let end = (start + rng.gen_range(30..=16 * 60) * 60).min(24 * 3600);
        (start, end)
    });
    let mut days = [true; 7];
    if rng.gen_bool(0.5) {
        days = std::array::from_fn(|_| rng.gen_bool(0.7));
        days[rng.gen_range(0..7)] = true;
    }
    let retry_outcomes = if rng.gen_bool(0.7) {
        RETRYABLE.iter().copied().filter(|_| rng.gen_bool(0.6)).collect()
    } else {
        vec![Status::NoAnswer, Status::Busy, Status::Failed] // the documented default
    };
    Plan {
        hours,
        days,
        max_attempts: rng.gen_range(1..=5),
        // Half of them short, so several retries fit in a day and the 24-hour caps bind.
        retry_delay_minutes: if rng.gen_bool(0.5) { rng.gen_range(1..=60) } else { rng.gen_range(1..=600) },
        retry_outcomes,
        max_calls_per_day: rng.gen_bool(0.3).then(|| rng.gen_range(5..=200)),
        max_concurrent_calls: rng.gen_bool(0.3).then(|| rng.gen_range(1..=10)),
        timezone: rng.gen_bool(0.3).then(|| ZONES[rng.gen_range(0..ZONES.len())].parse().unwrap()),
        require_consent: rng.gen_bool(0.1),
    }
}

/// The settings JSON for `plan`, checked as the API checks it.
pub(super) fn settings_json(plan: &Plan) -> String {
    let hhmm = |s: u32| format!("{:02}:{:02}", s / 3600, s % 3600 / 60);
    let default_outcomes = plan.retry_outcomes == [Status::NoAnswer, Status::Busy, Status::Failed];
    let settings = Settings {
        calling_hours_start: plan.hours.map(|h| hhmm(h.0)),
        calling_hours_end: plan.hours.map(|h| hhmm(h.1)),
        allowed_days: (plan.days != [true; 7])
            .then(|| DAYS.iter().zip(plan.days).filter(|d| d.1).map(|d| d.0.to_string()).collect()),
        max_concurrent_calls: plan.max_concurrent_calls,
        max_calls_per_day: plan.max_calls_per_day,
        max_attempts: Some(plan.max_attempts),
        retry_delay_minutes: Some(plan.retry_delay_minutes),
        retry_outcomes: (!default_outcomes).then(|| plan.retry_outcomes.iter().map(|s| s.as_str().into()).collect()),
        timezone: plan.timezone.map(|z| z.name().into()),
        require_consent: Some(plan.require_consent),
        ..Settings::default()
    };
    settings.check().unwrap();
    serde_json::to_string(&settings).unwrap()
}
