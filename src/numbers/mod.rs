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

use chrono_tz::Tz;

use crate::compliance::tz::TzMap;
use crate::domain::phone::E164;
use crate::numbers::npa::NpaMap;
use crate::numbers::pool::LeadPlace;

/// Where a phone number is: area code → state (libphonenumber geocoding data) and
/// number → time zones (libphonenumber time-zone data).
pub struct Places {
    pub npa: NpaMap,
    pub tz: std::sync::Arc<TzMap>,
}

impl Places {
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
