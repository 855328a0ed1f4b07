//! The dashboard's Pacing panel in a real headless Chromium, driven over WebDriver
//! (chromedriver + fantoccini): the running Default campaign, paced at 600 calls per
//! minute, dials 25 leads through a simulated carrier where nobody answers; the
//! panel shows its numbers (the same as `GET /api/campaigns/1`'s `pacing`) and the
//! "answer rate under 20 %" recommendation. Shared machinery in `support/browser.rs`.
//!
//! Needs `/usr/bin/chromium` and `chromedriver` (Debian: `chromium chromium-driver`).
//! Without them the test prints `SKIPPED: ...` and passes, except with `CI=true`,
//! where it fails: CI must run it.

mod support;

use std::time::Duration;

use chrono::Utc;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use support::browser::{WAIT, find, in_browser, screenshot, text};
use support::count;

const LEADS: i64 = 25;

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_pacing_panel_shows_metrics_and_advice() {
    in_browser("pacing panel", pacing_journey).await;
}

/// An attribute of the first element matching `css`, as a number.
async fn attr(c: &Client, css: &str, name: &str) -> i64 {
    let value = find(c, css).await.attr(name).await.unwrap().unwrap_or_default();
    value.parse().unwrap_or_else(|_| panic!("{css} [{name}] should be a number, is {value:?}"))
}

async fn pacing_journey(c: Client) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    // Nobody answers: every call ends busy or unanswered, so the answer rate is 0 %.
    support::outcomes(&mut config, [0.0, 0.0, 0.5, 0.5, 0.0]);
    let app = support::spawn(config);
    app.ready().await;
    let resp = app
        .http
        .patch(app.url("/api/campaigns/1"))
        .json(&json!({"settings": {"max_attempts": 1, "calls_per_minute": 600}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // Before any call: the running Default campaign, no recommendation yet.
    support::browser::open(&c, &app, "/").await;
    c.wait().at_most(WAIT).for_element(Locator::Id("pacing-1")).await.expect("the Default campaign's pacing");
    assert_eq!(text(&c, "#pacing-1 h3").await, "Default");
    assert_eq!(text(&c, "#pacing-1 .answer-rate").await, "no ended call yet");
    assert!(text(&c, "#pacing-1 .pace").await.ends_with("; target 600"), "the target pace is shown");
    assert!(c.find(Locator::Css("#pacing-1 li.recommendation")).await.is_err(), "nothing to advise yet");

    app.import_csv(&support::leads_csv(LEADS as usize)).await;
    let start = Utc::now() + chrono::Duration::seconds(1);
    let (status, body) = app
        .post_json(
            "/api/schedule-bulk-calls",
            json!({"select": {"status": "pending"}, "start_at": start.to_rfc3339(), "parallel_calls": 50,
                   "interval_seconds": 1}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.wait_for(Duration::from_secs(60), "every lead reaches an outcome", support::all_leads_final).await;
    assert_eq!(count(&app.db(), "SELECT COUNT(*) FROM attempts WHERE answered_at IS NULL"), LEADS);

    // The panel after the calls: the numbers behind the rates, and the advice.
    support::browser::open(&c, &app, "/").await;
    c.wait().at_most(WAIT).for_element(Locator::Id("pacing-1")).await.unwrap();
    let api: Value = app.get_json("/api/campaigns/1").await["pacing"].clone();
    assert_eq!(attr(&c, "#pacing-1 .answer-rate", "data-ended").await, LEADS);
    assert_eq!(attr(&c, "#pacing-1 .answer-rate", "data-answered").await, 0);
    assert_eq!(text(&c, "#pacing-1 .answer-rate").await, format!("0.0 % (0 of {LEADS} ended calls)"));
    for (css, name, field) in [
        (".answer-rate", "data-ended", "ended_calls"),
        (".answer-rate", "data-answered", "answered_calls"),
        (".abandonment", "data-abandoned", "abandoned_calls"),
        (".abandonment", "data-live", "live_answers"),
        (".concurrency", "data-in-flight", "in_flight"),
        (".concurrency", "data-limit", "concurrency_limit"),
        (".pace", "data-last-5-minutes", "calls_last_5_minutes"),
    ] {
        let shown = attr(&c, &format!("#pacing-1 {css}"), name).await;
        assert_eq!(json!(shown), api[field], "{field}: the page vs GET /api/campaigns/1 ({api})");
    }
    assert_eq!(text(&c, "#pacing-1 .queue-depth").await, "0");
    assert_eq!(text(&c, "#pacing-1 .abandonment").await, "no live answer yet, 30 days");
    let advice = find(&c, "#pacing-1 li.recommendation[data-kind='low_answer_rate']").await.text().await.unwrap();
    assert!(
        advice.starts_with(&format!("Answer rate under 20 %: 0.0 % (0 of {LEADS} calls in 30 days).")),
        "advice: {advice:?}"
    );
    assert!(advice.contains("other calling hours") && advice.contains("health"), "advice: {advice:?}");
    assert_eq!(api["recommendations"][0]["kind"], "low_answer_rate", "{api}");
    assert_eq!(api["recommendations"].as_array().map(Vec::len), Some(1), "only the answer rate is off: {api}");
    screenshot(&c, "pacing-panel.png").await;
}
