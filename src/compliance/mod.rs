//! Compliance rules: calling hours in the called party's zone, state rules, phone →
//! zone data. Pure: evaluated by the claim at the moment of dialling and again right
//! before a re-sent request.

pub mod hours;
pub mod rules;
pub mod tz;

use crate::compliance::hours::CallingWindow;
use crate::compliance::rules::{Gate, Profile, StateRules};

/// Everything that decides whether a lead may be called at an instant: the profile's
/// outer window (US: 08:00–21:00 local, FCC 47 CFR 64.1200(c)(1)), the configured
/// window (which can only narrow it), and the state rules data file.
#[derive(Debug, Clone)]
pub struct Compliance {
    pub profile: Profile,
    pub window: CallingWindow,
    pub rules: StateRules,
}

impl Compliance {
    pub fn gate(&self) -> Gate<'_> {
        self.gate_with(self.window, [true; 7])
    }

    /// The gate for a campaign: its hours (already intersected with the configured
    /// ones) and allowed days (Monday first).
    pub fn gate_with(&self, window: CallingWindow, allowed_days: [bool; 7]) -> Gate<'_> {
        Gate { profile: self.profile, campaign_window: window, allowed_days, rules: &self.rules }
    }
}

/// The states whose rules apply to a lead: its area code's state and its address
/// state, both (the stricter wins; pitfalls §17). Two-letter codes only.
pub fn lead_states(area_code_state: Option<&str>, csv_state: &str) -> Vec<String> {
    let mut states: Vec<String> = Vec::with_capacity(2);
    let csv = csv_state.trim().to_ascii_uppercase();
    for s in [area_code_state.map(str::to_string), Some(csv)].into_iter().flatten() {
        if s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()) && !states.contains(&s) {
            states.push(s);
        }
    }
    states
}
