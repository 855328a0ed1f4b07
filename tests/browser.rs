//! One end-to-end journey through the dashboard in a real headless Chromium, driven
//! over WebDriver (chromedriver + fantoccini): upload a CSV through the form, select
//! leads (two rows, then "all matching" across pages), schedule them through the
//! modal and check what the page says against what the JSON API reports. A second
//! journey bulk-edits caller numbers on the Numbers page, reads a number's history
//! and adds one by paste, again against the JSON API.
//!
//! Needs `/usr/bin/chromium` and `chromedriver` (Debian: `chromium chromium-driver`).
//! Without them the test prints `SKIPPED: ...` and passes, except with `CI=true`,
//! where it fails: CI must run it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const SAMPLE_CSV: &str = "/work/shared/data/leads_sample.csv";
/// Upper bound for any single wait on the browser or the app.
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_import_select_and_schedule() {
    in_browser("dashboard journey", dashboard_journey).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn numbers_page_bulk_edit() {
    in_browser("numbers page journey", numbers_journey).await;
}

/// Runs `journey` in a fresh headless Chromium, or skips (see `browser_tools`).
async fn in_browser<J, F>(name: &str, journey: J)
where
    J: FnOnce(Client) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let Some(chromedriver) = browser_tools() else {
        return;
    };
    let started = Instant::now();

    let driver = ChromeDriver::start(&chromedriver).await;
    let client = driver.connect().await;
    // The journey runs in its own task so that a failed assertion still lets us close
    // the browser session before the panic is passed on (the guard then stops
    // chromedriver and anything it started).
    let outcome = tokio::spawn(journey(client.clone())).await;
    let closed = client.close().await;
    if let Err(e) = outcome {
        // `driver` is dropped while unwinding: it stops chromedriver and prints its log.
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("browser {name} did not finish: {e}"),
        }
    }
    closed.expect("close the browser session");
    drop(driver);
    eprintln!("browser test: {name} passed in {:.1?}", started.elapsed());
}

async fn dashboard_journey(c: Client) {
    let sample = std::fs::read_to_string(SAMPLE_CSV).expect("read the sample CSV");

    // What the JSON API makes of the same file, on a second, fresh app.
    let expected = {
        let dir = tempfile::tempdir().unwrap();
        let reference = support::spawn(support::config(dir.path()));
        reference.ready().await;
        let summary = reference.import_csv(&sample).await;
        reference.stop();
        summary
    };
    let figure =
        |key: &str| expected[key].as_u64().unwrap_or_else(|| panic!("API import summary lacks {key}: {expected}"));
    let (imported, duplicates, rejected) = (figure("imported"), figure("duplicates"), figure("rejected"));
    assert!(rejected > 0, "the sample file is expected to contain rejected rows: {expected}");

    // 1. The app under test.
    let dir = tempfile::tempdir().unwrap();
    let config = support::config(dir.path());
    let tz: Tz = config.dialing.timezone.parse().expect("configured time zone");
    let app = support::spawn(config);
    app.ready().await;

    // 2. Upload through the form. (The page is rendered after this instant: its
    // "tomorrow" is this one, or a later one if midnight passes meanwhile.)
    let rendered_tomorrow = tomorrow_in(tz);
    c.goto(&app.url("/")).await.unwrap();
    let file_input = c.wait().at_most(WAIT).for_element(Locator::Id("import-file")).await.unwrap();
    file_input.send_keys(SAMPLE_CSV).await.expect("choose the file");
    find(&c, "#import-submit").await.click().await.unwrap();
    let summary =
        c.wait().at_most(WAIT).for_element(Locator::Id("import-summary")).await.expect("import summary shown");
    assert!(summary.text().await.unwrap().contains("leads_sample.csv"), "summary names the uploaded file");
    assert_eq!(number(&c, "#import-imported").await, imported, "imported, page vs API");
    assert_eq!(number(&c, "#import-duplicates").await, duplicates, "duplicates, page vs API");
    assert_eq!(number(&c, "#import-rejected").await, rejected, "rejected, page vs API");
    let download = find(&c, "#rejected-download").await;
    let href = download.prop("href").await.unwrap().expect("rejected download has an href");
    let resp = app.http.get(&href).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GET {href}");
    let rejected_csv = resp.text().await.unwrap();
    assert!(rejected_csv.starts_with("line,field,value,reason,row"), "rejected rows CSV: {rejected_csv}");

    // 3. Tick two rows.
    let total = number(&c, "#total-count").await;
    assert_eq!(total, imported, "every imported lead is listed (no filter)");
    let boxes = c.find_all(Locator::Css("input.row-select")).await.unwrap();
    assert!(boxes.len() >= 2, "at least two rows on the first page");
    assert!(
        (boxes.len() as u64) < total,
        "the sample should span more than one page so that 'select all' is tested across pages \
         ({} rows shown, {total} leads)",
        boxes.len()
    );
    boxes[0].click().await.unwrap();
    boxes[1].click().await.unwrap();
    wait_text(&c, "#selected-count", "2").await;
    assert!(find(&c, "#schedule-button").await.is_displayed().await.unwrap(), "schedule button shown");

    // 4. Select every lead matching the (empty) filter, across pages.
    // "Select all" selects every lead matching the filter (the info line says how many)
    // and schedules the pending ones among them (the button's count).
    let schedulable: u64 =
        find(&c, "#leads-table").await.attr("data-schedulable").await.unwrap().unwrap().parse().unwrap();
    assert!(schedulable < total, "the sample has a lead that is already completed");
    find(&c, "#select-all").await.click().await.unwrap();
    wait_text(&c, "#selected-count", &schedulable.to_string()).await;
    let info = text(&c, "#selection-info").await;
    assert!(info.contains(&format!("All {total} leads")), "selection info: {info:?}");

    // 5. The modal and its live summary.
    find(&c, "#schedule-button").await.click().await.unwrap();
    let modal = find(&c, "#schedule-modal").await;
    wait_displayed(&modal, true, "the scheduling modal to open").await;
    let tomorrow = tomorrow_in(tz);
    let start_date = find(&c, "#start-date").await.prop("value").await.unwrap().unwrap_or_default();
    assert!(
        start_date == tomorrow || start_date == rendered_tomorrow,
        "start date {start_date:?} should default to tomorrow in {tz} ({tomorrow})"
    );
    assert_eq!(number(&c, "#sum-leads").await, schedulable);
    assert_eq!(find(&c, "#parallel-calls").await.prop("value").await.unwrap().as_deref(), Some("3"));
    assert_eq!(number(&c, "#sum-per-batch").await, 3.min(schedulable));
    assert_eq!(number(&c, "#sum-batches").await, schedulable.div_ceil(3));

    find(&c, "#parallel-calls").await.select_by_label("5").await.unwrap();
    find(&c, "#interval-seconds").await.select_by_value("30").await.unwrap();
    let batches = schedulable.div_ceil(5);
    wait_text(&c, "#sum-batches", &batches.to_string()).await;
    assert_eq!(number(&c, "#sum-per-batch").await, 5.min(schedulable));
    let sum_start = text(&c, "#sum-start").await;
    let start = wall_clock(&sum_start);
    assert_eq!(start.format("%Y-%m-%d %H:%M").to_string(), format!("{start_date} 10:00"), "summary start: {sum_start}");
    let expected_end = start + chrono::Duration::seconds((batches as i64 - 1) * 30);
    wait_for_text(&c, "#sum-end", "the estimated completion to follow the new interval", |end| {
        wall_clock(end) == expected_end
    })
    .await;

    // 6. Submit.
    find(&c, "#schedule-submit").await.click().await.unwrap();
    let confirmation = find(&c, "#schedule-confirmation").await;
    wait_displayed(&confirmation, true, "the schedule confirmation").await;
    let confirmed = confirmation.text().await.unwrap();
    assert!(confirmed.starts_with("Scheduled "), "confirmation: {confirmed:?}");

    let listed = app.get_json("/api/scheduled-bulk-calls").await;
    let rows = listed["scheduled_batches"].as_array().expect("scheduled_batches").clone();
    let schedule_id = rows.iter().filter_map(|b| b["schedule_id"].as_i64()).max().expect("a scheduled batch");
    let ours: Vec<&Value> = rows.iter().filter(|b| b["schedule_id"].as_i64() == Some(schedule_id)).collect();
    assert_eq!(ours.len(), rows.len(), "a fresh app holds only the new schedule: {listed}");
    let calls: u64 = ours.iter().map(|b| b["lead_count"].as_u64().unwrap()).sum();
    let batch_count = ours.len() as u64;
    assert_eq!(batch_count, calls.div_ceil(5), "5 calls per batch: {listed}");
    let skipped = total - calls;
    let mut expected_text = format!("Scheduled {calls} calls in {batch_count} batches");
    if skipped > 0 {
        expected_text.push_str(&format!(" ({skipped} skipped: not pending)"));
    }
    expected_text.push('.');
    assert_eq!(confirmed, expected_text, "confirmation vs GET /api/scheduled-bulk-calls: {listed}");
    eprintln!(
        "browser test: imported {imported}, duplicates {duplicates}, rejected {rejected}; {total} leads; \
         scheduled {calls} calls in {batch_count} batches ({skipped} skipped)"
    );

    // The batches fire at the times the modal showed, read in the configured zone.
    let mut due: Vec<chrono::DateTime<Utc>> = ours
        .iter()
        .map(|b| chrono::DateTime::parse_from_rfc3339(b["next_run_time"].as_str().unwrap()).unwrap().to_utc())
        .collect();
    due.sort();
    let first = tz.from_local_datetime(&start).earliest().unwrap().to_utc();
    assert_eq!(due[0], first, "first batch at the modal's start ({sum_start})");
    assert_eq!(*due.last().unwrap(), first + chrono::Duration::seconds((batch_count as i64 - 1) * 30));

    // The selection is cleared.
    let button = find(&c, "#schedule-button").await;
    wait_displayed(&button, false, "the schedule button to hide").await;
    // The count sits inside the hidden button: read its content, not its rendered text.
    let count = find(&c, "#selected-count").await.prop("textContent").await.unwrap();
    assert_eq!(count.as_deref(), Some("0"), "selection count after scheduling");

    // 7. A screenshot of the dashboard for the README.
    c.goto(&app.url("/")).await.unwrap();
    c.wait().at_most(WAIT).for_element(Locator::Id("leads-table")).await.unwrap();
    screenshot(&c, "dashboard.png").await;

    app.stop();
}

/// The Numbers page: bulk-edit two of the three configured numbers (priority, then
/// cap), quarantine one, read its history, add one by paste; the page against the
/// JSON API after each step.
async fn numbers_journey(c: Client) {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.ready().await;

    // 1. One row per configured number, as the API lists them.
    c.goto(&app.url("/numbers")).await.unwrap();
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
    c.goto(&app.url("/numbers")).await.unwrap();
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
    c.goto(&app.url("/numbers")).await.unwrap();
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

/// Each row's cell texts.
async fn table_rows(c: &Client, css: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for tr in c.find_all(Locator::Css(css)).await.unwrap() {
        let mut cells = Vec::new();
        for td in tr.find_all(Locator::Css("td")).await.unwrap() {
            cells.push(td.text().await.unwrap().trim().to_string());
        }
        rows.push(cells);
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

/// Clicks `css` (a link or submit button) and waits until the current document has
/// been replaced by a new one that has finished loading.
async fn load_after_click(c: &Client, css: &str) {
    const MARK: &str = "__dialerTestOldPage";
    c.execute(&format!("window.{MARK} = true;"), vec![]).await.unwrap();
    find(c, css).await.click().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        // While the old document is torn down the script may fail: just ask again.
        let loaded = c
            .execute(&format!("return window.{MARK} === undefined && document.readyState === 'complete';"), vec![])
            .await;
        if matches!(loaded, Ok(Value::Bool(true))) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for a new page after clicking {css}: {loaded:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Saves a screenshot of the window as `target/{name}`.
async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join(name), &png).unwrap();
}

fn tomorrow_in(tz: Tz) -> String {
    (Utc::now().with_timezone(&tz).date_naive() + chrono::Duration::days(1)).to_string()
}

// ---- page helpers ----

async fn find(c: &Client, css: &str) -> Element {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no element {css}: {e}"))
}

async fn text(c: &Client, css: &str) -> String {
    find(c, css).await.text().await.unwrap().trim().to_string()
}

async fn number(c: &Client, css: &str) -> u64 {
    let t = text(c, css).await;
    t.parse().unwrap_or_else(|_| panic!("{css} should show a number, shows {t:?}"))
}

/// "2026-11-22 10:00 America/New_York" → the wall-clock part.
fn wall_clock(shown: &str) -> NaiveDateTime {
    let prefix = shown.get(..16).unwrap_or_else(|| panic!("not a 'YYYY-MM-DD HH:MM ...' time: {shown:?}"));
    NaiveDateTime::parse_from_str(prefix, "%Y-%m-%d %H:%M")
        .unwrap_or_else(|e| panic!("not a 'YYYY-MM-DD HH:MM ...' time: {shown:?}: {e}"))
}

async fn wait_text(c: &Client, css: &str, want: &str) {
    wait_for_text(c, css, &format!("{css} to read {want:?}"), |t| t == want).await;
}

async fn wait_for_text(c: &Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let t = text(c, css).await;
        if ok(&t) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; {css} reads {t:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `element` is shown (or hidden) or `WAIT` passes.
async fn wait_displayed(element: &Element, shown: bool, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if element.is_displayed().await.unwrap() == shown {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- chromedriver ----

/// The chromedriver binary, or None (after saying so) when the browser tools are
/// missing outside CI. In CI a missing browser is a failure, never a skip.
fn browser_tools() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let driver = find_chromedriver();
    let missing = match &driver {
        None => Some("chromedriver not found (looked at /usr/bin/chromedriver and on PATH)".to_string()),
        Some(_) if !Path::new(CHROMIUM).exists() => Some(format!("chromium not found at {CHROMIUM}")),
        Some(_) => None,
    };
    if let Some(why) = missing {
        assert!(
            !ci,
            "CI requires Chromium and chromedriver for the browser test: {why}. \
             Install them with `apt-get install -y chromium chromium-driver`."
        );
        println!("SKIPPED: {why}; install `chromium chromium-driver` to run the browser test");
        return None;
    }
    driver
}

fn find_chromedriver() -> Option<PathBuf> {
    let default = PathBuf::from("/usr/bin/chromedriver");
    if default.is_file() {
        return Some(default);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("chromedriver")).find(|p| p.is_file())
}

/// A chromedriver child process in its own process group, so that dropping the
/// guard (also while unwinding from a failed assertion) ends it and every browser
/// process it started.
struct ChromeDriver {
    child: Child,
    port: u16,
    /// Holds the browser profile (`profile/`) and `chromedriver.log`.
    work: tempfile::TempDir,
}

impl ChromeDriver {
    async fn start(binary: &Path) -> ChromeDriver {
        let work = tempfile::tempdir().expect("temp dir for the browser profile");
        let log = work.path().join("chromedriver.log");
        let port = free_port();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(binary)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()))
        };
        let mut driver = ChromeDriver { child, port, work };
        driver.wait_ready().await;
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("chromedriver exited early with {status}");
            }
            if let Ok(resp) = http.get(format!("{}/status", self.url())).send().await
                && let Ok(body) = resp.json::<Value>().await
                && body["value"]["ready"] == json!(true)
            {
                return;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer on {} within {WAIT:?}", self.url());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn connect(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", self.work.path().join("profile").display()),
                ],
            }),
        );
        // fantoccini's rustls connector builds its config from the process-wide
        // CryptoProvider; both `ring` (reqwest) and `aws-lc-rs` (hyper-rustls) are
        // compiled in, so name one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = ClientBuilder::rustls();
        builder
            .expect("TLS roots for the WebDriver client")
            .capabilities(caps)
            .connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("open a Chromium session through chromedriver: {e}"))
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // SIGKILL to the whole group we created: chromedriver and its browsers.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(self.work.path().join("chromedriver.log"))
        {
            let tail: Vec<&str> = log.lines().filter(|l| l.starts_with('[')).rev().take(40).collect();
            eprintln!("--- chromedriver log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().unwrap().port()
}
