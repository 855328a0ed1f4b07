//! Compliance rules: calling hours in the called party's zone, phone → zone data.
//! Pure: evaluated by the claim at the moment of dialling.

pub mod hours;
pub mod tz;
