//! The test-call page in a real headless Chromium: from the nav, call one number
//! now through the Default campaign, follow the live status page until the call's
//! outcome shows, and see a refused number (on the DNC list) explained, not dialled.
//!
//! Needs `/usr/bin/chromium` and `chromedriver`; skipped with a message outside CI
//! when they are missing, a failure with `CI=true`.

mod support;

use std::time::{Duration, Instant};

use dialer::config::{Callee, ProviderKind};
use fantoccini::{Client, Locator};
use support::browser::{WAIT, find, in_browser, load_after_click, screenshot, text};
use support::sim::spawn_simulator;

const NO_ANSWER: &str = "+14152370201";
const LISTED: &str = "+14152370202";

#[tokio::test(flavor = "multi_thread")]
async fn test_call_page_places_a_call_and_shows_it_live() {
    in_browser("test call page", journey).await;
}

/// The status cell's text, tolerating the page's own refresh between polls.
async fn status_when(c: &Client, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(el) = c.find(Locator::Css("#test-call-status")).await
            && let Ok(t) = el.text().await
            && ok(t.trim())
        {
            return t.trim().to_string();
        }
        assert!(Instant::now() < deadline, "timed out waiting for the test call's status");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn journey(c: Client) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = support::config(dir.path()).simulator;
    settings.callees.insert(NO_ANSWER.into(), Callee::NoAnswer);
    settings.ring_seconds = [1.5, 1.5];
    let sim = spawn_simulator(settings);
    let mut config = support::config(dir.path());
    sim.configure(&mut config, ProviderKind::Twilio);
    let app = support::spawn(config);
    app.ready().await;
    let (code, _) = app.post_json("/api/dnc", serde_json::json!({"numbers": [LISTED], "reason": "asked"})).await;
    assert!(code < 300);

    // 1. A listed number is refused with the reason, and nothing is dialled.
    support::browser::open(&c, &app, "/").await;
    load_after_click(&c, "header.top nav a[href='/test-call']").await;
    find(&c, "#test-call-number").await.send_keys("(415) 237-0202").await.unwrap();
    load_after_click(&c, "#test-call-submit").await;
    let refused = text(&c, "#test-call-message").await;
    assert!(refused.contains("do-not-call"), "{refused}");
    assert!(sim.calls().await.is_empty());

    // 2. A callee who does not answer: the page follows the call until its outcome.
    let field = find(&c, "#test-call-number").await;
    field.clear().await.unwrap();
    field.send_keys(NO_ANSWER).await.unwrap();
    load_after_click(&c, "#test-call-submit").await;
    c.wait().at_most(WAIT).for_element(Locator::Id("test-call")).await.expect("the call's status page");
    assert!(c.current_url().await.unwrap().path().starts_with("/test-call/"));
    let live = status_when(&c, |_| true).await;
    assert!(["dialing", "ringing"].contains(&live.as_str()), "first shown while under way: {live}");
    let done = status_when(&c, |t| t == "no_answer").await;
    assert_eq!(done, "no_answer");
    assert_eq!(find(&c, "#test-call").await.attr("data-live").await.unwrap().as_deref(), Some("false"));
    let events = support::browser::table_rows(&c, "#test-call-events tbody tr").await;
    assert!(events.iter().any(|r| r[1] == "no-answer"), "provider events listed: {events:?}");
    screenshot(&c, "test_call.png").await;
    let calls = sim.calls().await;
    assert_eq!(calls.len(), 1, "exactly one call placed: {calls:?}");
    assert_eq!(calls[0]["to"], NO_ANSWER);
}
