//! dialer: a single-binary outbound dialer. Modules in layering order (each depends
//! only on those above it); see ARCHITECTURE.md for the map and the invariants.

/// `run(config, listener, shutdown)`.
pub mod app;
/// Users, passwords, sessions, API tokens, CSRF and the login rate limit.
pub mod auth;
/// Applying provider call events (webhooks, reconciliation).
pub mod calls;
/// Campaign lifecycle rules.
pub mod campaigns;
/// Command line.
pub mod cli;
/// Calling hours and phone → time zone data (pure rules).
pub mod compliance;
/// Configuration tree and its validation.
pub mod config;
/// The SQLite store; the only module that touches rusqlite.
pub mod db;
/// The call loop: claim, dial, record; reconciliation.
pub mod dialer;
/// Pure domain types: phone numbers, statuses, batch arithmetic.
pub mod domain;
/// CSV import of leads.
pub mod leads;
/// Prometheus counters and histograms.
pub mod metrics;
/// Caller-ID rotation (pure pick).
pub mod numbers;
/// Telephony providers behind one trait, and the simulated carrier.
pub mod provider;
/// The batch scheduler loop.
pub mod scheduler;
/// Bulk schedule and cancel operations.
pub mod schedules;
/// Shared application state.
pub mod state;
/// systemd readiness, stopping and watchdog notifications.
pub mod systemd;
/// Logging setup.
pub mod telemetry;
/// HTTP: dashboard, API, webhooks.
pub mod web;
