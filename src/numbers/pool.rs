//! Which caller number places a lead's call: local-presence tiers over the numbers
//! that may dial now, and a weighted [`Rotor`] per tier (ours).
//!
//! Tiers, best first: the lead's area code; the lead's state (overlays and
//! neighbouring area codes of the same state, from libphonenumber's geocoding data);
//! a number sharing one of the lead's time zones; any number. `prefer` takes the
//! first tier that has a number with capacity; `strict` only the first two (a number
//! from elsewhere is never used, and the lead waits); `off` treats all as one tier.
//!
//! A [`Pool`] is the call loop's in-memory view of the numbers that may dial today,
//! loaded from the store (`db::numbers::pool_rows`) and thrown away when a number's
//! settings change (the store bumps a version), a slot is given back, or the local
//! day turns; a reload starts the rotation again from the lowest id. Caps are not
//! decided here: the store reserves every slot with a guarded update, and `used`
//! only keeps full numbers out of the rotation. If the store refuses a slot the pool
//! thought free (another process dialled from it), [`Pool::full`] drops the number
//! and the claim chooses again.

use std::collections::HashMap;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::numbers::rotation::Rotor;

/// `rotation.local_presence` in `dialer.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalPresence {
    /// Only a number with the lead's area code or state; otherwise the lead waits.
    Strict,
    /// Area code, then state, then time zone, then any number.
    #[default]
    Prefer,
    /// Any number, weighted rotation only.
    Off,
}

/// Why the caller number was chosen, recorded on every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    AreaCode,
    State,
    TimeZone,
    Any,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::AreaCode => "area_code",
            Tier::State => "state",
            Tier::TimeZone => "timezone",
            Tier::Any => "any",
        }
    }

    /// Same area code or same state: what `strict` accepts.
    pub fn is_local(self) -> bool {
        matches!(self, Tier::AreaCode | Tier::State)
    }
}

/// A number that may dial today, as the rotation sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolNumber {
    pub id: i64,
    pub number: String,
    /// `rotation_priority`, 1..=10.
    pub priority: u8,
    pub area_code: Option<u16>,
    /// Two-letter state or province of the area code.
    pub state: Option<String>,
    pub zones: Vec<Tz>,
    /// Campaign pool name, None = shared.
    pub pool: Option<String>,
    /// Effective cap today (warming and health applied) and calls already placed.
    pub cap: u32,
    pub used: u32,
    /// Local date of its first call; None = never used (warming not started).
    pub first_used_day: Option<String>,
}

/// Where a lead is, for local presence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadPlace {
    pub area_code: Option<u16>,
    pub state: Option<String>,
    pub zones: Vec<Tz>,
    /// The campaign's pool; None = every number.
    pub pool: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Dial from `id`; `candidates` numbers with capacity were in `tier`.
    Number { id: i64, tier: Tier, candidates: usize },
    /// `strict`: numbers have capacity, but none local to this lead.
    NoLocal,
    /// No number of the lead's pool has capacity today.
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    AreaCode(Option<String>, u16),
    State(Option<String>, String),
    TimeZone(Option<String>, Vec<Tz>),
    Any(Option<String>),
}

#[derive(Debug, Clone)]
pub struct Pool {
    /// `rotation_meta.version` the pool was loaded at.
    pub version: i64,
    /// Local day (configured zone) the caps and usage are for.
    pub day: String,
    numbers: Vec<PoolNumber>,
    rotors: HashMap<Key, Rotor>,
}

impl Pool {
    /// `numbers` in id order; numbers already at their cap are kept out of rotation.
    pub fn new(version: i64, day: String, mut numbers: Vec<PoolNumber>) -> Pool {
        numbers.sort_by_key(|n| n.id);
        Pool { version, day, numbers, rotors: HashMap::new() }
    }

    pub fn number(&self, id: i64) -> Option<&PoolNumber> {
        self.numbers.binary_search_by_key(&id, |n| n.id).ok().map(|i| &self.numbers[i])
    }

    fn number_mut(&mut self, id: i64) -> Option<&mut PoolNumber> {
        self.numbers.binary_search_by_key(&id, |n| n.id).ok().map(|i| &mut self.numbers[i])
    }

    /// Whether any number of `pool` (None = any) has a call left today.
    pub fn has_capacity(&self, pool: Option<&str>) -> bool {
        self.numbers.iter().any(|n| n.used < n.cap && in_pool(n, pool))
    }

    /// Picks the caller number for `lead` and records the pick in its tier's
    /// rotation. The caller must then reserve the slot and call [`Pool::used`].
    pub fn choose(&mut self, lead: &LeadPlace, mode: LocalPresence) -> Choice {
        let pool = lead.pool.clone();
        let mut keys = Vec::with_capacity(4);
        if mode != LocalPresence::Off {
            if let Some(code) = lead.area_code {
                keys.push((Tier::AreaCode, Key::AreaCode(pool.clone(), code)));
            }
            if let Some(state) = &lead.state {
                keys.push((Tier::State, Key::State(pool.clone(), state.clone())));
            }
        }
        if mode == LocalPresence::Prefer && !lead.zones.is_empty() {
            let mut zones = lead.zones.clone();
            zones.sort_by_key(|z| z.name());
            keys.push((Tier::TimeZone, Key::TimeZone(pool.clone(), zones)));
        }
        if mode != LocalPresence::Strict {
            keys.push((Tier::Any, Key::Any(pool.clone())));
        }
        for (tier, key) in keys {
            let rotor = self.rotors.entry(key.clone()).or_insert_with(|| {
                Rotor::new(
                    self.numbers
                        .iter()
                        .filter(|n| n.used < n.cap && in_pool(n, pool.as_deref()) && matches(n, &key))
                        .map(|n| (n.id, n.priority)),
                )
            });
            let candidates = rotor.len();
            if let Some(id) = rotor.pick() {
                return Choice::Number { id, tier, candidates };
            }
        }
        if self.has_capacity(pool.as_deref()) { Choice::NoLocal } else { Choice::Empty }
    }

    /// `id` turned out to have no room (another process used it): out of rotation.
    pub fn full(&mut self, id: i64) {
        if let Some(n) = self.number_mut(id) {
            n.used = n.cap;
        }
        self.rotors.values_mut().for_each(|r| {
            r.remove(id);
        });
    }

    /// Records the first call of `id` (its warming starts), as the store did.
    pub fn first_used(&mut self, id: i64, day: &str) {
        if let Some(n) = self.number_mut(id) {
            n.first_used_day.get_or_insert_with(|| day.to_string());
        }
    }

    /// One more call placed from `id`: at its cap it leaves every rotation.
    pub fn used(&mut self, id: i64) {
        let Some(n) = self.number_mut(id) else { return };
        n.used = n.used.saturating_add(1);
        if n.used >= n.cap {
            self.rotors.values_mut().for_each(|r| {
                r.remove(id);
            });
        }
    }
}

fn in_pool(n: &PoolNumber, pool: Option<&str>) -> bool {
    pool.is_none_or(|p| n.pool.as_deref() == Some(p))
}

fn matches(n: &PoolNumber, key: &Key) -> bool {
    match key {
        Key::AreaCode(_, code) => n.area_code == Some(*code),
        Key::State(_, state) => n.state.as_deref() == Some(state.as_str()),
        Key::TimeZone(_, zones) => n.zones.iter().any(|z| zones.contains(z)),
        Key::Any(_) => true,
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
