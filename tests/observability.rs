//! Issue 6's observability: `/metrics` scraped during and after a run against the
//! simulated carrier (with 429s, 5xx and forged callbacks) equals the store and the
//! carrier's own fault counts; `/healthz` names a database that refuses writes; the
//! `dialer serve` binary's logs (plain under journald, JSON) never contain a secret.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dialer::config::ProviderKind;
use prometheus_parse::{Scrape, Value};
use serde_json::json;
use support::{count, spawn};

const LEADS: usize = 60;

/// GETs `/metrics` through `client` (which carries the API token), checks the
/// format's envelope and parses it with a Prometheus text parser.
async fn scrape(client: &reqwest::Client, base: &str) -> (String, Scrape) {
    let resp = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("application/openmetrics-text; version=1.0.0"), "{kind}");
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "an OpenMetrics exposition ends with # EOF");
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    (text, parsed)
}

/// The sum of the samples named `name` whose labels include `labels`.
fn sum(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(_) | Value::Summary(_) => panic!("{name} is not a single value"),
        })
        .sum()
}

fn by_status(conn: &rusqlite::Connection, sql: &str) -> BTreeMap<String, i64> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_equal_the_store_and_the_carriers_fault_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    let faults = &mut config.simulator.faults;
    // Each fires ~10 times over the ~75 requests (none at all: p < 1e-5).
    faults.rate_limited = 0.15;
    faults.server_error = 0.15;
    faults.invalid_signatures = 0.1;
    let sim = support::sim::spawn_simulator(config.simulator.clone());
    sim.configure(&mut config, ProviderKind::Twilio);
    let app = spawn(config);
    app.ready().await;
    assert_eq!(app.import_csv(&support::leads_csv(LEADS)).await["imported"], LEADS);
    support::sim::schedule_pending(&app, 1).await;

    // During the run: the exposition parses and never shows more calls at once than allowed.
    let mut scrapes_in_flight = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !support::all_leads_final(&app.db()) {
        let (_, during) = scrape(&app.http, &app.base).await;
        let in_flight = sum(&during, "dialer_calls_in_flight", &[]);
        assert!(in_flight <= 5.0, "at most max_concurrent_calls (5) in flight, got {in_flight}");
        scrapes_in_flight += usize::from(in_flight > 0.0);
        assert!(Instant::now() < deadline, "the run never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(scrapes_in_flight > 0, "some scrape saw calls under way");
    app.wait_for(Duration::from_secs(30), "every call ended", |c| {
        count(c, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL") == 0
    })
    .await;

    // The forged copy of a callback is answered before the real one, so once every
    // lead is final all of them have been timed; poll only for the scrape to catch up.
    let faults = sim.ledger().await["faults"].clone();
    let forged = faults["forged_callbacks"].as_f64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (text, after) = loop {
        let (text, after) = scrape(&app.http, &app.base).await;
        if sum(&after, "dialer_webhook_duration_seconds_count", &[("code", "403")]) == forged
            || Instant::now() > deadline
        {
            break (text, after);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let db = app.db();

    let ended = by_status(&db, "SELECT status, COUNT(*) FROM attempts WHERE ended_at IS NOT NULL GROUP BY status");
    assert!(ended.get("completed").is_some_and(|n| *n > 0), "{ended:?}");
    assert_eq!(ended.values().sum::<i64>(), LEADS as i64, "one ended attempt per lead: {ended:?}");
    for status in ["completed", "voicemail", "no_answer", "busy", "failed", "canceled", "unknown", "invalid"] {
        let stored = ended.get(status).copied().unwrap_or(0) as f64;
        assert_eq!(sum(&after, "dialer_calls_total", &[("outcome", status)]), stored, "calls {status}");
    }
    assert_eq!(sum(&after, "dialer_calls_total", &[]), LEADS as f64);
    assert_eq!(sum(&after, "dialer_calls_in_flight", &[]), 0.0, "nothing in flight at the end");
    assert_eq!(sum(&after, "dialer_queue_depth", &[]), 0.0);
    for (status, n) in by_status(&db, "SELECT status, COUNT(*) FROM leads GROUP BY status") {
        assert_eq!(sum(&after, "dialer_leads", &[("status", &status)]), n as f64, "leads {status}");
    }
    assert_eq!(sum(&after, "dialer_caller_numbers", &[("status", "active"), ("health", "healthy")]), 3.0);
    assert_eq!(sum(&after, "dialer_caller_numbers", &[]), 3.0);
    assert_eq!(sum(&after, "dialer_caller_numbers_dialable", &[]), 3.0);
    assert_eq!(sum(&after, "dialer_loop_up", &[]), 2.0, "both loops up");

    // Provider errors: exactly the carrier's own count of each fault it served.
    let rate_limited = faults["rate_limited"].as_f64().unwrap();
    let server_errors = faults["server_error"].as_f64().unwrap();
    assert!(rate_limited > 0.0 && server_errors > 0.0, "the faults fired: {faults}");
    let errors = |class, code| sum(&after, "dialer_provider_errors_total", &[("class", class), ("code", code)]);
    assert_eq!(errors("retry", "20429"), rate_limited, "429s counted: {faults}");
    assert_eq!(errors("unknown", "500"), server_errors, "500s counted: {faults}");
    assert_eq!(sum(&after, "dialer_provider_errors_total", &[]), rate_limited + server_errors);

    // Webhook latency: every forged callback refused (403) and the real ones handled.
    assert!(forged > 0.0, "{faults}");
    assert_eq!(sum(&after, "dialer_webhook_duration_seconds_count", &[("code", "403")]), forged);
    let handled = sum(&after, "dialer_webhook_duration_seconds_count", &[("provider", "twilio"), ("route", "status")]);
    assert!(handled >= LEADS as f64, "at least one status callback per call, got {handled}");
    let histogram = after
        .samples
        .iter()
        .find(|s| s.metric == "dialer_webhook_duration_seconds" && s.labels.get("code") == Some("200"))
        .unwrap_or_else(|| panic!("no 200 webhook histogram in\n{text}"));
    let Value::Histogram(buckets) = &histogram.value else { panic!("{histogram:?}") };
    assert!(buckets.last().is_some_and(|b| b.less_than.is_infinite() && b.count > 0.0), "{buckets:?}");
    for line in [
        "# TYPE dialer_calls counter",
        "# TYPE dialer_calls_in_flight gauge",
        "# TYPE dialer_webhook_duration_seconds histogram",
        "# UNIT dialer_webhook_duration_seconds seconds",
        "# TYPE dialer_provider_errors counter",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}");
    }
}

/// A database that refuses writes (another connection holds the write lock) makes
/// `/healthz` 503 naming the database, within the probe's 3 s bound; released, it
/// is 200 again. `/healthz` needs no token; `/metrics` does.
#[tokio::test(flavor = "multi_thread")]
async fn healthz_names_a_database_that_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(support::config(dir.path()));
    app.healthy().await;
    let anonymous = reqwest::Client::new();
    let url = app.url("/healthz");
    let healthz = || async {
        let resp = anonymous.get(&url).send().await.unwrap();
        (resp.status().as_u16(), resp.json::<serde_json::Value>().await.unwrap())
    };
    let (code, body) = healthz().await;
    assert_eq!((code, &body["status"]), (200, &json!("ok")), "{body}");
    let metrics = anonymous.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status().as_u16(), 401, "/metrics needs a session or an API token");

    let blocker = rusqlite::Connection::open(&app.db_path).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    let (code, body) = healthz().await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["failed"], json!(["database"]), "{body}");
    assert_eq!(body["database_writable"], false);
    assert!(started.elapsed() < Duration::from_secs(5), "answered within its bound: {:?}", started.elapsed());
    blocker.execute_batch("ROLLBACK").unwrap();
    let (code, body) = healthz().await;
    assert_eq!(code, 200, "{body}");
}

#[path = "observability/logs.rs"]
mod logs;
