//! State calling rules (`data/state_rules.toml`) and the per-lead calling [`Gate`].
//!
//! Sources: FCC 47 CFR 64.1200(c)(1) (08:00–21:00 at the called party's location, the outer bound under
//! [`Profile::Us`]); Fla. Stat. §501.616(6), 15 O.S. §775C.4 and Md. Com. Law §14-4502 (08:00–20:00, at most 3 calls
//! per rolling 24 h); Sunday and holiday rules for AL, LA and MS from vendor charts (**secondary** sources, see the
//! data file and compliance.md §1.6). Not legal advice.
//!
//! The effective window is an **intersection**: federal (profile `Us`) ∩ campaign ∩ every applicable state's window, so
//! campaign hours can narrow the federal window but never widen it. Applicable states are the area code's state and the
//! lead's address state; both apply and the stricter rule wins (pitfalls.md §17). All instants are UTC; windows,
//! weekdays, holidays and blackouts are judged in each candidate zone's local wall-clock time and local date, with
//! offsets computed by chrono-tz at each call. Pure: no I/O and no clock; the loader of an operator file
//! (`compliance.state_rules_path`) lives elsewhere.

use std::num::NonZeroU32;

use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use toml::Value;

use crate::compliance::hours::CallingWindow;

/// Seconds per day.
const DAY: i64 = 86_400;
/// How far [`Gate::next_open`] searches, in days.
const SEARCH_DAYS: i64 = 400;
/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i64 = 719_163;
/// Longest user value echoed back in an error message, in characters.
const MAX_ECHO: usize = 32;
/// The rules shipped with the binary.
const EMBEDDED: &str = include_str!("../../data/state_rules.toml");

/// `compliance.profile`: `Us` (FCC 47 CFR 64.1200(c)(1): 08:00–21:00 at the called party's location, outer bound) or
/// `None` (no outer window; operators outside the US).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Federal 08:00–21:00 local outer bound.
    #[default]
    Us,
    /// No outer bound: only the campaign and state windows apply.
    None,
}

/// One `[[state]]` entry of the rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRule {
    /// Two-letter uppercase USPS code, e.g. `"FL"`.
    pub code: String,
    /// State window in the called party's local time; `None` = no state-level window.
    pub window: Option<CallingWindow>,
    /// Rolling-24 h cap per phone number across caller IDs and campaigns.
    pub max_calls_per_24h: Option<u32>,
    /// No calls on Sunday (local date).
    pub no_sunday: bool,
    /// Local dates with no calls, sorted and deduplicated.
    pub holidays: Vec<NaiveDate>,
    /// A consent record is required before calls made with an automated system.
    pub automated_consent_required: bool,
    /// Where the rule comes from.
    pub source: String,
    /// Date of the last review.
    pub reviewed: NaiveDate,
}

/// One `[[blackout]]` entry: no calls to leads in `states` from `from` to `to`, both inclusive, judged on the lead's
/// local date (declared emergencies, proclaimed holidays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blackout {
    /// Two-letter uppercase codes.
    pub states: Vec<String>,
    /// First blocked local date.
    pub from: NaiveDate,
    /// Last blocked local date (inclusive).
    pub to: NaiveDate,
    /// Why (shown to operators).
    pub reason: String,
}

/// Parsed rules file: state entries (sorted by code) and blackouts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateRules {
    states: Vec<StateRule>,
    blackouts: Vec<Blackout>,
}

impl StateRules {
    /// The rules shipped in `data/state_rules.toml`. The file is tested to parse, so a failure here is a build defect,
    /// not an input error.
    pub fn embedded() -> StateRules {
        StateRules::parse(EMBEDDED).expect("data/state_rules.toml parses (tested)")
    }

    /// Parses a rules file. Errors name the entry (1-based index and code) and the field; unknown keys, codes that are
    /// not two uppercase letters, duplicate codes, windows outside 00:00–24:00 or with start ≥ end, caps of 0 and
    /// blackouts ending before they start are errors. Dates are `"YYYY-MM-DD"` strings or TOML dates.
    pub fn parse(text: &str) -> anyhow::Result<StateRules> {
        let file: RawFile = toml::from_str(text).context("state rules")?;
        let mut rules = StateRules::default();
        for (idx, entry) in file.state.into_iter().enumerate() {
            let code = entry.get("code").and_then(Value::as_str).map_or("?".into(), echo);
            let label = format!("state rules: [[state]] entry {} (code {code:?})", idx + 1);
            let rule = entry.try_into().map_err(serde_msg).and_then(state_rule).map_err(|e| anyhow!("{label}: {e}"))?;
            if rules.get(&rule.code).is_some() {
                return Err(anyhow!("{label}: duplicate code {:?}", rule.code));
            }
            rules.states.push(rule);
        }
        for (idx, entry) in file.blackout.into_iter().enumerate() {
            let blackout = entry.try_into().map_err(serde_msg).and_then(blackout);
            rules.blackouts.push(blackout.map_err(|e| anyhow!("state rules: [[blackout]] entry {}: {e}", idx + 1))?);
        }
        rules.states.sort_by(|a, b| a.code.cmp(&b.code));
        Ok(rules)
    }

    /// The entry for `code` (case-insensitive, surrounding whitespace ignored).
    pub fn get(&self, code: &str) -> Option<&StateRule> {
        self.states.iter().find(|rule| same_code(&rule.code, code))
    }

    /// All state entries, sorted by code.
    pub fn states(&self) -> &[StateRule] {
        &self.states
    }

    /// All blackouts, in file order.
    pub fn blackouts(&self) -> &[Blackout] {
        &self.blackouts
    }
}

/// What applies to one lead: its candidate zones, the states that apply (the area code's state AND the lead's address
/// state: both apply, stricter wins — pitfalls §17), the campaign's window and allowed weekdays.
#[derive(Debug, Clone, Copy)]
pub struct Gate<'a> {
    /// Outer bound: [`Profile::Us`] adds the federal 08:00–21:00 window.
    pub profile: Profile,
    /// Campaign hours, local time at the called party; can only narrow the window.
    pub campaign_window: CallingWindow,
    /// Allowed local weekdays, Monday first (`[0]` = Monday … `[6]` = Sunday).
    pub allowed_days: [bool; 7],
    /// State rules and blackouts.
    pub rules: &'a StateRules,
}

impl Gate<'_> {
    /// Whether a call to a lead in `zones` with `states` may start at UTC instant `at`: inside the effective window
    /// (federal outer bound when `Us` ∩ campaign ∩ every applicable state's window, end exclusive) in EVERY zone's
    /// local time, on an allowed weekday (each zone's local date), not a Sunday where a state forbids Sundays, not a
    /// holiday or blackout date of an applicable state (local date per zone). Empty `zones` → false (unknown zone is
    /// not dialable: pitfalls §16). Unknown state codes add no rule. Sub-second precision: 20:59:59.999 is open under
    /// `Us`, 21:00:00 is not.
    pub fn is_open(&self, zones: &[Tz], states: &[&str], at: DateTime<Utc>) -> bool {
        self.plan(states).open(zones, at.timestamp())
    }

    /// The earliest UTC instant ≥ `after` at which [`is_open`](Self::is_open) holds, searched up to 400 days ahead;
    /// `None` if there is none (zones whose windows never overlap, no allowed day, an empty window, empty `zones`).
    /// Returns `after` itself when already open; otherwise a whole UTC second, exact at window starts. A start inside a
    /// spring-forward gap opens at the first valid local instant after the gap; a start repeated by a fall-back opens
    /// at its first occurrence; a fall-back that moves the clock back into the window opens at the transition.
    ///
    /// Method: each zone alone is open on intervals computed exactly from its offset segments (transitions located by
    /// binary search, at most one per day); the answer is found by leapfrogging — move to the next opening of each zone
    /// in turn until one pass over all zones leaves the instant unchanged.
    pub fn next_open(&self, zones: &[Tz], states: &[&str], after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let plan = self.plan(states);
        let ts = after.timestamp();
        if zones.is_empty() || plan.never() {
            return None;
        }
        if plan.open(zones, ts) {
            return Some(after);
        }
        // Open/closed is constant within a whole second, so the answer is a later second.
        let limit = ts.checked_add(SEARCH_DAYS * DAY)?;
        let mut t = ts.checked_add(1)?;
        let mut spans = vec![Span::default(); zones.len()];
        loop {
            let mut moved = false;
            for (&tz, span) in zones.iter().zip(&mut spans) {
                let next = plan.zone_next(tz, t, limit, span)?;
                moved |= next != t;
                t = next;
            }
            if !moved {
                return DateTime::from_timestamp(t, 0);
            }
        }
    }

    /// The strictest rolling-24 h cap among the applicable states, if any (FL/OK/MD: 3; Fla. Stat. §501.616(6), 15 O.S.
    /// §775C.4, Md. Com. Law §14-4502).
    pub fn max_calls_per_24h(&self, states: &[&str]) -> Option<u32> {
        states.iter().filter_map(|code| self.rules.get(code)?.max_calls_per_24h).min()
    }

    /// Whether any applicable state requires a consent record before automated-system calls (FL/OK/MD).
    pub fn automated_consent_required(&self, states: &[&str]) -> bool {
        states.iter().any(|code| self.rules.get(code).is_some_and(|rule| rule.automated_consent_required))
    }

    /// Reduces everything that applies to `states` to integers.
    fn plan(&self, states: &[&str]) -> Plan {
        let mut plan =
            Plan { start: 0, end: DAY, days: self.allowed_days, holidays: Vec::new(), blackouts: Vec::new() };
        plan.narrow(&self.campaign_window);
        if self.profile == Profile::Us {
            plan.narrow(&CallingWindow::us_federal());
        }
        for rule in states.iter().filter_map(|code| self.rules.get(code)) {
            if let Some(window) = &rule.window {
                plan.narrow(window);
            }
            plan.days[6] &= !rule.no_sunday;
            plan.holidays.extend(rule.holidays.iter().map(day_number));
        }
        plan.holidays.sort_unstable();
        plan.holidays.dedup();
        let applies = |b: &&Blackout| b.states.iter().any(|s| states.iter().any(|code| same_code(s, code)));
        plan.blackouts =
            self.rules.blackouts.iter().filter(applies).map(|b| (day_number(&b.from), day_number(&b.to))).collect();
        plan
    }
}

/// The rules for one lead: effective window `[start, end)` in local seconds after midnight; local dates as days since
/// 1970-01-01.
struct Plan {
    start: i64,
    end: i64,
    /// Allowed weekdays, Monday first, with Sunday bans applied.
    days: [bool; 7],
    /// Sorted holiday dates.
    holidays: Vec<i64>,
    /// Inclusive blackout date ranges.
    blackouts: Vec<(i64, i64)>,
}

impl Plan {
    fn narrow(&mut self, window: &CallingWindow) {
        let secs = |t: chrono::NaiveTime| i64::from(t.num_seconds_from_midnight());
        self.start = self.start.max(secs(window.start()));
        self.end = self.end.min(window.end().map_or(DAY, secs));
    }

    fn never(&self) -> bool {
        self.start >= self.end || !self.days.contains(&true)
    }

    fn date_open(&self, day: i64) -> bool {
        // 1970-01-01 (day 0) was a Thursday, index 3 counting from Monday.
        let weekday = (day + 3).rem_euclid(7) as usize;
        self.days[weekday]
            && self.holidays.binary_search(&day).is_err()
            && !self.blackouts.iter().any(|&(from, to)| from <= day && day <= to)
    }

    fn open(&self, zones: &[Tz], ts: i64) -> bool {
        let zone_open = |tz: Tz| {
            offset_at(tz, ts).is_some_and(|off| {
                let local = ts + off;
                let secs = local.rem_euclid(DAY);
                self.start <= secs && secs < self.end && self.date_open(local.div_euclid(DAY))
            })
        };
        !zones.is_empty() && !self.never() && zones.iter().all(|&tz| zone_open(tz))
    }

    /// Earliest UTC second in `[t, limit]` at which zone `tz` alone is open. `span` caches the last offset span of
    /// `tz` looked up, so that repeated calls with increasing `t` (see [`Gate::next_open`]) skip the lookups.
    fn zone_next(&self, tz: Tz, t: i64, limit: i64, span: &mut Span) -> Option<i64> {
        let mut seg_start = t;
        while seg_start <= limit {
            if !(span.start <= seg_start && seg_start < span.end) {
                // One offset over [seg_start, end): at most a day, cut at the next transition.
                let off = offset_at(tz, seg_start)?;
                let mut end = (seg_start + DAY).min(limit + 1);
                if offset_at(tz, end)? != off {
                    end = first_change(tz, seg_start, end, off)?;
                }
                *span = Span { start: seg_start, end, off };
            }
            let (off, seg_end) = (span.off, span.end);
            for day in (seg_start + off).div_euclid(DAY)..=(seg_end - 1 + off).div_euclid(DAY) {
                let lo = seg_start.max(day * DAY + self.start - off);
                let hi = seg_end.min(day * DAY + self.end - off);
                if lo < hi && self.date_open(day) {
                    return Some(lo);
                }
            }
            seg_start = seg_end;
        }
        None
    }
}

/// UTC seconds `[start, end)` over which a zone's offset is `off` (the default is empty).
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: i64,
    end: i64,
    off: i64,
}

/// UTC offset of `tz` at UTC second `ts`, in seconds (`None` only outside chrono's range).
fn offset_at(tz: Tz, ts: i64) -> Option<i64> {
    let utc = DateTime::from_timestamp(ts, 0)?.naive_utc();
    Some(i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()))
}

/// First second in `(lo, hi]` whose offset differs from `off` (the offset at `lo`; the offset at `hi` differs).
fn first_change(tz: Tz, mut lo: i64, mut hi: i64, off: i64) -> Option<i64> {
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, mid)? == off {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi)
}

/// Days since 1970-01-01.
fn day_number(date: &NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - UNIX_EPOCH_CE_DAYS
}

fn same_code(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

fn echo(s: &str) -> String {
    s.chars().take(MAX_ECHO).collect()
}

/// The file as written; dates stay `Value`s so both `"YYYY-MM-DD"` and TOML dates work.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawFile {
    state: Vec<Value>,
    blackout: Vec<Value>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[state]] table")]
struct RawState {
    code: String,
    window: Option<RawWindow>,
    max_calls_per_24h: Option<NonZeroU32>,
    #[serde(default)]
    no_sunday: bool,
    #[serde(default)]
    holidays: Vec<Value>,
    #[serde(default)]
    automated_consent_required: bool,
    source: String,
    reviewed: Value,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    start: String,
    end: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[blackout]] table")]
struct RawBlackout {
    states: Vec<String>,
    from: Value,
    to: Value,
    reason: String,
}

/// One line from a serde error (`… in `field``).
fn serde_msg(e: toml::de::Error) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

fn field(name: &str) -> impl Fn(String) -> String + '_ {
    move |e| format!("field `{name}`: {e}")
}

fn state_rule(raw: RawState) -> Result<StateRule, String> {
    let window = raw.window.map(|w| CallingWindow::parse(&w.start, &w.end).map_err(|e| e.to_string()));
    let holidays = raw.holidays.iter().enumerate().map(list_item(date)).collect::<Result<Vec<_>, _>>();
    let mut rule = StateRule {
        code: state_code(&raw.code).map_err(field("code"))?,
        window: window.transpose().map_err(field("window"))?,
        max_calls_per_24h: raw.max_calls_per_24h.map(NonZeroU32::get),
        no_sunday: raw.no_sunday,
        holidays: holidays.map_err(field("holidays"))?,
        automated_consent_required: raw.automated_consent_required,
        source: text(&raw.source).map_err(field("source"))?,
        reviewed: date(&raw.reviewed).map_err(field("reviewed"))?,
    };
    rule.holidays.sort_unstable();
    rule.holidays.dedup();
    Ok(rule)
}

fn blackout(raw: RawBlackout) -> Result<Blackout, String> {
    let states = raw.states.iter().enumerate().map(list_item(|s: &String| state_code(s))).collect::<Result<_, _>>();
    let states: Vec<String> = states.map_err(field("states"))?;
    let (from, to) = (date(&raw.from).map_err(field("from"))?, date(&raw.to).map_err(field("to"))?);
    if states.is_empty() {
        return Err(field("states")("must list at least one state".into()));
    }
    if to < from {
        return Err(field("to")(format!("{to} is before `from` {from}")));
    }
    Ok(Blackout { states, from, to, reason: text(&raw.reason).map_err(field("reason"))? })
}

/// Adapts a per-item parser to `(index, item)`, naming the 1-based item in errors.
fn list_item<T, U>(parse: impl Fn(&T) -> Result<U, String>) -> impl Fn((usize, &T)) -> Result<U, String> {
    move |(idx, item)| parse(item).map_err(|e| format!("item {}: {e}", idx + 1))
}

fn text(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err("must not be empty".into()),
        s => Ok(s.to_string()),
    }
}

fn state_code(s: &str) -> Result<String, String> {
    match s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
        true => Ok(s.to_string()),
        false => Err(format!("{:?} is not a two-letter uppercase state code", echo(s))),
    }
}

fn date(value: &Value) -> Result<NaiveDate, String> {
    let bad = || format!("expected a date \"YYYY-MM-DD\", got {}", echo(&value.to_string()));
    match value {
        Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| bad()),
        Value::Datetime(toml::value::Datetime { date: Some(d), time: None, offset: None }) => {
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day)).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
