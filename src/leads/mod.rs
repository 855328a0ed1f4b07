//! Leads: CSV import (shared by the dashboard upload, the API and `dialer import`).

pub mod columns;
pub mod import;
pub mod lines;
pub mod row;
pub mod sniff;
