//! Pure domain types: no I/O, no database, no HTTP. Everything else depends on these.

pub mod csv_safe;
pub mod flow;
pub mod phone;
pub mod schedule;
pub mod status;
