//! One end-to-end journey through the Numbers page in a real headless Chromium, driven
//! over WebDriver (chromedriver + fantoccini): bulk-edit caller numbers, read a
//! number's history and add one by paste, checking the page against the JSON API. The
//! dashboard journey is in `browser.rs`; the shared machinery in `support/browser.rs`.
//!
//! Needs `/usr/bin/chromium` and `chromedriver` (Debian: `chromium chromium-driver`).
//! Without them the test prints `SKIPPED: ...` and passes, except with `CI=true`,
//! where it fails: CI must run it.

mod support;

use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use support::browser::{WAIT, find, in_browser, load_after_click, screenshot, table_rows, text, wait_text};

#[tokio::test(flavor = "multi_thread")]
async fn numbers_page_bulk_edit() {
    in_browser("numbers page journey", numbers_journey).await;
}

/// The Numbers page: bulk-edit two of the three configured numbers (priority, then
/// cap), quarantine one, read its history, add one by paste; the page against the
/// JSON API after each step.
async fn numbers_journey(c: Client) {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.ready().await;

    // 1. One row per configured number, as the API lists them.
    support::browser::open(&c, &app, "/numbers").await;
    c.wait().at_most(WAIT).for_element(Locator::Id("numbers")).await.expect("the numbers table");
    let listed = api_numbers(&app).await;
    let shown = number_rows(&c).await;
    let expected: Vec<(i64, String)> =
        listed.iter().map(|n| (n["id"].as_i64().unwrap(), n["number"].as_str().unwrap().to_string())).collect();
    assert_eq!(shown, expected, "rows (id, number) on the page vs GET /api/numbers");
    let numbers: Vec<&str> = shown.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(numbers, ["+12025550101", "+12025550102", "+12025550103"], "the configured numbers");
    let ids: Vec<i64> = shown.iter().map(|(id, _)| *id).collect();
    let (picked, other) = (&ids[..2], ids[2]);
    for &id in &ids {
        assert_eq!(cell(&c, id, ".priority").await, "5");
        assert_eq!(cell(&c, id, ".cap").await, "100 / 100");
        assert_eq!(cell(&c, id, ".usage .count").await, "0/100");
        assert_eq!(cell(&c, id, ".nstatus").await, "active");
        assert_eq!(cell(&c, id, ".pool").await, "shared");
        assert_eq!(cell(&c, id, ".rotation").await, "on");
    }

    // 2. Tick the first two, set their priority to 9.
    let priority_reason = "favour the DC pair";
    bulk_edit(&c, picked, "set_priority", "9", priority_reason).await;
    wait_text(&c, "#numbers-message", "Updated 2 number(s).").await;
    for &id in picked {
        assert_eq!(cell(&c, id, ".priority").await, "9", "priority of ticked number {id}");
    }
    assert_eq!(cell(&c, other, ".priority").await, "5", "priority of the unticked number");
    let listed = api_numbers(&app).await;
    for &id in &ids {
        let want = if picked.contains(&id) { 9 } else { 5 };
        assert_eq!(by_id(&listed, id)["rotation_priority"], json!(want), "API priority of {id}: {listed:?}");
    }

    // 3. The same two: daily cap 40 (warming is off, so effective = max).
    let cap_reason = "new carrier limit";
    bulk_edit(&c, picked, "set_cap", "40", cap_reason).await;
    wait_text(&c, "#numbers-message", "Updated 2 number(s).").await;
    for &id in picked {
        assert_eq!(cell(&c, id, ".cap").await, "40 / 40", "cap of ticked number {id}");
        assert_eq!(cell(&c, id, ".usage .count").await, "0/40", "usage of ticked number {id}");
        assert_eq!(cell(&c, id, ".priority").await, "9", "priority kept on {id}");
    }
    assert_eq!(cell(&c, other, ".cap").await, "100 / 100", "cap of the unticked number");
    let listed = api_numbers(&app).await;
    for &id in &ids {
        let want = if picked.contains(&id) { 40 } else { 100 };
        let n = by_id(&listed, id);
        assert_eq!((&n["max_daily_calls"], &n["effective_cap"]), (&json!(want), &json!(want)), "API cap of {id}");
    }

    // 4. Quarantine the first: it leaves rotation, capacity drops to the other two.
    let quarantined = ids[0];
    let quarantine_reason = "spam complaints";
    bulk_edit(&c, &[quarantined], "quarantine", "", quarantine_reason).await;
    wait_text(&c, "#numbers-message", "Updated 1 number(s).").await;
    assert_eq!(cell(&c, quarantined, ".nstatus").await, "quarantined");
    for &id in &ids[1..] {
        assert_eq!(cell(&c, id, ".nstatus").await, "active", "status of {id}");
    }
    let row_class = find(&c, &row_css(quarantined)).await.attr("class").await.unwrap().unwrap_or_default();
    assert!(row_class.split_whitespace().any(|k| k == "off"), "a quarantined row is dimmed: class {row_class:?}");
    let all = app.get_json("/api/numbers").await;
    assert_eq!(by_id(all["numbers"].as_array().unwrap(), quarantined)["status"], "quarantined");
    assert_eq!(all["capacity_today"], json!(140), "40 + 100 still dialling: {all}");
    let summary = text(&c, "#numbers-summary").await;
    assert!(
        summary.contains("2 number(s) dialling") && summary.contains("capacity today 140 calls"),
        "summary: {summary:?}"
    );

    // 5. Its own page: status, priority, and the history of all three changes.
    load_after_click(&c, &format!("{} a[href='/numbers/{quarantined}']", row_css(quarantined))).await;
    assert_eq!(c.current_url().await.unwrap().path(), format!("/numbers/{quarantined}"));
    assert_eq!(text(&c, "#number-status").await, "quarantined");
    assert_eq!(text(&c, "#number-priority").await, "9");
    let history = table_rows(&c, "#number-history tbody tr").await;
    let events: Vec<[&str; 3]> = history.iter().map(|r| [r[1].as_str(), r[2].as_str(), r[3].as_str()]).collect();
    let priority_change = format!("priority 5 → 9: {priority_reason}");
    let cap_change = format!("daily cap 100 → 40: {cap_reason}");
    let status_change = format!("active → quarantined: {quarantine_reason}");
    assert!(
        events.starts_with(&[
            ["status", &status_change, "user"],
            ["edit", &cap_change, "user"],
            ["edit", &priority_change, "user"],
        ]),
        "history (newest first): {events:?}"
    );
    let detail = app.get_json(&format!("/api/numbers/{quarantined}")).await;
    let api_events: Vec<[&str; 3]> = detail["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| [e["kind"].as_str().unwrap(), e["detail"].as_str().unwrap(), e["actor"].as_str().unwrap()])
        .collect();
    assert_eq!(events, api_events, "history, page vs GET /api/numbers/{quarantined}");
    assert_eq!(detail["number"]["status"], "quarantined");

    // 6. Add one by paste; a 555 number (not a real exchange) is rejected.
    support::browser::open(&c, &app, "/numbers").await;
    find(&c, "#add-list").await.send_keys("+14152370199\n+12025550199").await.unwrap();
    load_after_click(&c, "#add-submit").await;
    let message = text(&c, "#numbers-message").await;
    assert!(
        message.starts_with("Added 1 number(s); 0 already listed; 1 line(s) rejected."),
        "add message: {message:?}"
    );
    let rejections = table_rows(&c, "#number-rejections tbody tr").await;
    assert_eq!(rejections.len(), 1, "rejected lines: {rejections:?}");
    assert_eq!(rejections[0][2], "+12025550199", "the rejected value: {rejections:?}");
    assert!(rejections[0][3].contains("555 exchange"), "the reason: {rejections:?}");
    let shown = number_rows(&c).await;
    assert_eq!(shown.len(), 4, "a fourth row: {shown:?}");
    let listed = api_numbers(&app).await;
    let added = listed.iter().find(|n| n["number"] == "+14152370199").unwrap_or_else(|| panic!("added: {listed:?}"));
    let added_id = added["id"].as_i64().unwrap();
    assert!(shown.contains(&(added_id, "+14152370199".to_string())), "the new row: {shown:?}");
    assert_eq!((&added["status"], &added["rotation_enabled"]), (&json!("active"), &json!(true)), "{added}");
    assert_eq!(cell(&c, added_id, ".nstatus").await, "active");
    assert_eq!(cell(&c, added_id, ".priority").await, added["rotation_priority"].to_string());

    // 7. A screenshot of the Numbers page for the docs.
    support::browser::open(&c, &app, "/numbers").await;
    c.wait().at_most(WAIT).for_element(Locator::Id("numbers")).await.unwrap();
    screenshot(&c, "numbers.png").await;

    app.stop();
}

/// `GET /api/numbers`' list.
async fn api_numbers(app: &support::TestApp) -> Vec<Value> {
    let all = app.get_json("/api/numbers").await;
    all["numbers"].as_array().unwrap_or_else(|| panic!("GET /api/numbers lacks numbers: {all}")).clone()
}

fn by_id(numbers: &[Value], id: i64) -> &Value {
    numbers.iter().find(|n| n["id"].as_i64() == Some(id)).unwrap_or_else(|| panic!("no number {id}: {numbers:?}"))
}

fn row_css(id: i64) -> String {
    format!("#numbers tr[data-id='{id}']")
}

/// The text of one cell (`.priority`, `.cap`, …) of number `id`'s row.
async fn cell(c: &Client, id: i64, css: &str) -> String {
    text(c, &format!("{} {css}", row_css(id))).await
}

/// The Numbers table's rows as (id, number).
async fn number_rows(c: &Client) -> Vec<(i64, String)> {
    let mut rows = Vec::new();
    for tr in c.find_all(Locator::Css("#numbers tbody tr[data-id]")).await.unwrap() {
        let id = tr.attr("data-id").await.unwrap().expect("data-id");
        let id = id.parse().unwrap_or_else(|_| panic!("data-id {id:?}"));
        let number = tr.find(Locator::Css("td.mono a")).await.unwrap().text().await.unwrap();
        rows.push((id, number.trim().to_string()));
    }
    rows
}

/// Ticks the rows of `ids` by clicking their checkboxes, fills in the bulk bar and
/// applies it; returns once the page it redirects to has loaded.
async fn bulk_edit(c: &Client, ids: &[i64], action: &str, value: &str, reason: &str) {
    for &id in ids {
        let tick = find(c, &format!("{} input.pick-number[name=ids]", row_css(id))).await;
        assert!(!tick.is_selected().await.unwrap(), "row {id} starts unticked");
        tick.click().await.unwrap();
        assert!(tick.is_selected().await.unwrap(), "row {id} ticked");
    }
    find(c, "#bulk-action").await.select_by_value(action).await.unwrap();
    for (css, typed) in [("#bulk-value", value), ("#bulk-reason", reason)] {
        let input = find(c, css).await;
        input.clear().await.unwrap();
        input.send_keys(typed).await.unwrap();
    }
    load_after_click(c, "#bulk-apply").await;
}
