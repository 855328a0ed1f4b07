//! dialer: a single-binary outbound dialer. Modules in layering order (each depends
//! only on those above it); see ARCHITECTURE.md for the map and the invariants.

/// Pure domain types: phone numbers, statuses, batch arithmetic.
pub mod domain;
/// Calling hours and phone → time zone data (pure rules).
pub mod compliance;
/// Caller-ID rotation (pure pick).
pub mod numbers;
/// Configuration tree and its validation.
pub mod config;
/// The SQLite store; the only module that touches rusqlite.
pub mod db;
/// CSV import of leads.
pub mod leads;
/// Bulk schedule and cancel operations.
pub mod schedules;
/// Applying provider call events (webhooks, reconciliation).
pub mod calls;
/// Telephony providers behind one trait, and the simulated carrier.
pub mod provider;
/// Shared application state.
pub mod state;
/// The batch scheduler loop.
pub mod scheduler;
/// The call loop: claim, dial, record; reconciliation.
pub mod dialer;
/// HTTP: dashboard, API, webhooks.
pub mod web;
/// `run(config, listener, shutdown)`.
pub mod app;
/// Command line.
pub mod cli;
/// Logging setup.
pub mod telemetry;
