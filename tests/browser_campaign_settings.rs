//! A campaign's own page in a real headless Chromium: edit its settings through the
//! form (the API and the claim read what was saved), see a bad value refused with
//! its field named and nothing stored, then run a call whose busy outcome is retried
//! and read on the lead's page why the retry follows.
//!
//! Needs `/usr/bin/chromium` and `chromedriver`; skips without them except with
//! `CI=true` (see `support/browser.rs`).

mod support;

use std::time::Duration;

use chrono::Utc;
use fantoccini::{Client, Locator};
use serde_json::json;
use support::browser::{WAIT, find, in_browser, load_after_click, screenshot, text, wait_for_text};
use support::count;

#[tokio::test(flavor = "multi_thread")]
async fn campaign_settings_form_and_retry_reason() {
    in_browser("campaign settings journey", settings_journey).await;
}

/// Sets a field's value as typing would (time inputs take typed keys in the locale's
/// format, so the value is set directly and an `input` event fired).
async fn set_field(c: &Client, name: &str, value: &str) {
    let script = "const f = document.querySelector(arguments[0]); f.value = arguments[1]; \
                  f.dispatchEvent(new Event('input', {bubbles: true}));";
    let css = format!("#campaign-settings [name='{name}']");
    c.execute(script, vec![json!(css), json!(value)]).await.unwrap();
}

async fn tick(c: &Client, name: &str, value: &str, on: bool) {
    let b = find(c, &format!("#campaign-settings input[name='{name}'][value='{value}']")).await;
    if (b.prop("checked").await.unwrap().as_deref() == Some("true")) != on {
        b.click().await.unwrap();
    }
}

async fn settings_journey(c: Client) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    // Every call is busy: the first attempt of each lead is followed by a retry.
    support::outcomes(&mut config, [0.0, 0.0, 1.0, 0.0, 0.0]);
    let app = support::spawn(config);
    app.ready().await;
    let (status, created) = app.post_json("/api/campaigns", json!({"name": "Evening"})).await;
    assert_eq!(status, 201, "{created}");
    let id = created["campaign"]["id"].as_i64().unwrap();

    // 1. From the list, the campaign's name leads to its page; blank form = defaults.
    support::browser::open(&c, &app, "/campaigns").await;
    load_after_click(&c, &format!("#campaigns tr[data-id='{id}'] .cname a")).await;
    assert_eq!(c.current_url().await.unwrap().path(), format!("/campaigns/{id}"));
    assert_eq!(text(&c, "#campaign-status").await, "draft");
    let attempts = find(&c, "#max-attempts").await;
    assert_eq!(attempts.attr("placeholder").await.unwrap().as_deref(), Some("3"));

    // 2. Save hours, weekdays only, 2 attempts a minute apart, voicemail retried too, a pace.
    set_field(&c, "calling_hours_start", "09:00").await;
    set_field(&c, "calling_hours_end", "17:30").await;
    for day in ["sat", "sun"] {
        tick(&c, "allowed_days", day, false).await;
    }
    set_field(&c, "max_attempts", "2").await;
    set_field(&c, "retry_delay_minutes", "1").await;
    tick(&c, "retry_outcomes", "voicemail", true).await;
    set_field(&c, "calls_per_minute", "30").await;
    set_field(&c, "message", "Hello from the admissions office.").await;
    load_after_click(&c, "#campaign-settings-save").await;
    assert_eq!(text(&c, "#campaign-message").await, "Settings saved; they apply from the next call.");
    let saved = app.get_json(&format!("/api/campaigns/{id}")).await["campaign"]["settings"].clone();
    assert_eq!(
        saved,
        json!({"calling_hours_start": "09:00", "calling_hours_end": "17:30",
               "allowed_days": ["mon", "tue", "wed", "thu", "fri"], "calls_per_minute": 30,
               "max_attempts": 2, "retry_delay_minutes": 1,
               "retry_outcomes": ["no_answer", "busy", "failed", "voicemail"],
               "message": "Hello from the admissions office."}),
        "the API reads what the form saved"
    );
    // The page shows the stored values again.
    let value = |name: &'static str| {
        let c = c.clone();
        async move { find(&c, &format!("#campaign-settings [name='{name}']")).await.prop("value").await.unwrap() }
    };
    assert_eq!(value("max_attempts").await.as_deref(), Some("2"));
    assert_eq!(value("calling_hours_end").await.as_deref(), Some("17:30"));
    screenshot(&c, "campaign-page.png").await;

    // 3. A bad value is refused with its field named; what was typed stays; nothing stored.
    set_field(&c, "max_attempts", "11").await;
    load_after_click(&c, "#campaign-settings-save").await;
    assert_eq!(text(&c, "#campaign-error").await, "max_attempts: 1 to 10");
    assert_eq!(value("max_attempts").await.as_deref(), Some("11"));
    let after = app.get_json(&format!("/api/campaigns/{id}")).await["campaign"]["settings"].clone();
    assert_eq!(after, saved, "a refused form stores nothing");

    // 4. A call in this campaign: open its hours all day, then the busy outcome is retried
    //    and the lead's page says why.
    let patched = app
        .http
        .patch(app.url(&format!("/api/campaigns/{id}")))
        .json(&json!({"settings": {"max_attempts": 2, "retry_delay_minutes": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status().as_u16(), 200);
    app.import_csv(&support::leads_csv(1)).await;
    let start = Utc::now() + chrono::Duration::seconds(1);
    let (status, body) = app
        .post_json(
            "/api/schedule-bulk-calls",
            json!({"select": {"status": "pending"}, "start_at": start.to_rfc3339(), "parallel_calls": 1,
                   "interval_seconds": 1, "campaign_id": id}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.wait_for(Duration::from_secs(30), "the first attempt ends busy and a retry is queued", |db| {
        count(db, "SELECT COUNT(*) FROM leads WHERE status = 'scheduled' AND wait_reason = 'retry'") == 1
    })
    .await;
    let lead_id = count(&app.db(), "SELECT lead_id FROM attempts");
    support::browser::open(&c, &app, &format!("/leads/{lead_id}")).await;
    c.wait().at_most(WAIT).for_element(Locator::Id("attempts")).await.unwrap();
    wait_for_text(&c, "#attempts tbody tr:first-child .next-step", "the retry reason", |t| {
        t.starts_with("busy: attempt 2 of 2 after 1 min, at ")
    })
    .await;
    assert_eq!(text(&c, "#wait-reason").await, "(a retry: see the attempts below)");
    screenshot(&c, "campaign-settings.png").await;
}
