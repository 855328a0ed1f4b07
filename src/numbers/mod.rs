//! Caller numbers: which of our numbers places the next call (rotation, local
//! presence), how many calls each may place today (caps, warming, health), and
//! how many numbers a target volume needs (plan). Pure rules; the store and the
//! claim supply the data.

pub mod edit;
pub mod health;
pub mod npa;
pub mod plan;
pub mod pool;
pub mod rotation;

use std::collections::HashMap;

use chrono_tz::Tz;

use crate::compliance::tz::TzMap;
use crate::domain::phone::E164;
use crate::numbers::npa::NpaMap;
use crate::numbers::pool::LeadPlace;

/// Where a phone number is: area code → state (libphonenumber geocoding data) and
/// number → time zones (libphonenumber time-zone data); and a state's zones, the
/// union of its area codes' zones (so complete wherever the two data sets are).
pub struct Places {
    pub npa: NpaMap,
    pub tz: std::sync::Arc<TzMap>,
    states: HashMap<String, Vec<Tz>>,
}

impl Places {
    pub fn new(npa: NpaMap, tz: std::sync::Arc<TzMap>) -> Places {
        let mut states: HashMap<String, Vec<Tz>> = HashMap::new();
        for code in 200..1000u16 {
            let (Some(state), Some(zones)) = (npa.state(code), tz.zones_for_digits(&format!("1{code}"))) else {
                continue;
            };
            let entry = states.entry(state.to_string()).or_default();
            for z in zones {
                if !entry.contains(&z) {
                    entry.push(z);
                }
            }
        }
        states.values_mut().for_each(|z| z.sort_by_key(|z| z.name()));
        Places { npa, tz, states }
    }

    /// The zones of a two-letter state or province code (e.g. "TX" → Chicago, Denver).
    pub fn state_zones(&self, state: &str) -> Option<&[Tz]> {
        self.states.get(state.trim().to_ascii_uppercase().as_str()).map(Vec::as_slice)
    }

    /// Area code (NANP only), its state, and the number's zones.
    pub fn of(&self, e164: &str) -> (Option<u16>, Option<String>, Vec<Tz>) {
        let Some(phone) = E164::from_stored(e164) else { return (None, None, Vec::new()) };
        let area_code = phone.nanp_area_code().and_then(|a| a.parse::<u16>().ok());
        let state = area_code.and_then(|a| self.npa.state(a)).map(str::to_string);
        let zones = self.tz.zones_for_digits(phone.digits()).unwrap_or_default();
        (area_code, state, zones)
    }
}

/// A lead's place for local presence: its number's area code and state (else the
/// CSV's two-letter state), and the zones used for its calling hours.
pub fn lead_place(places: &Places, phone: &str, csv_state: &str, zones: &[Tz]) -> LeadPlace {
    let (area_code, state, _) = places.of(phone);
    let csv_state = csv_state.trim().to_ascii_uppercase();
    let state = state.or_else(|| (csv_state.len() == 2).then_some(csv_state));
    LeadPlace { area_code, state, zones: zones.to_vec(), pool: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_zones_come_from_their_area_codes() {
        let p = Places::new(NpaMap::embedded(), std::sync::Arc::new(TzMap::embedded()));
        let names = |s: &str| p.state_zones(s).unwrap().iter().map(|z| z.name()).collect::<Vec<_>>();
        assert_eq!(names("NY"), ["America/New_York"]);
        assert!(names("TX").contains(&"America/Chicago") && names("TX").contains(&"America/Denver"), "El Paso");
        assert!(names("FL").contains(&"America/Chicago"), "the panhandle");
        assert_eq!(names("hi"), ["Pacific/Honolulu"]);
        assert!(p.state_zones("ZZ").is_none());
    }
}
