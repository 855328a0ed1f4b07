//! Prometheus metrics kept in memory (counters and histograms observed as things
//! happen); gauges read from the store at scrape time live in `web::metrics`.

/// Shared by handlers and loops through `AppState::metrics`.
#[derive(Default)]
pub struct Metrics {}
