//! One end-to-end journey through the dashboard in a real headless Chromium, driven
//! over WebDriver (chromedriver + fantoccini): upload a CSV through the form, select
//! leads (two rows, then "all matching" across pages), schedule them through the
//! modal and check what the page says against what the JSON API reports. The Numbers
//! page journey is in `browser_numbers.rs`; the shared machinery in `support/browser.rs`.
//!
//! Needs `/usr/bin/chromium` and `chromedriver` (Debian: `chromium chromium-driver`).
//! Without them the test prints `SKIPPED: ...` and passes, except with `CI=true`,
//! where it fails: CI must run it.

mod support;

use chrono::{NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use fantoccini::{Client, Locator};
use serde_json::Value;
use support::browser::{WAIT, find, in_browser, number, screenshot, text, wait_displayed, wait_for_text, wait_text};

const SAMPLE_CSV: &str = "/work/shared/data/leads_sample.csv";

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_import_select_and_schedule() {
    in_browser("dashboard journey", dashboard_journey).await;
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
    support::browser::open(&c, &app, "/").await;
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
    support::browser::open(&c, &app, "/").await;
    c.wait().at_most(WAIT).for_element(Locator::Id("leads-table")).await.unwrap();
    screenshot(&c, "dashboard.png").await;

    app.stop();
}

fn tomorrow_in(tz: Tz) -> String {
    (Utc::now().with_timezone(&tz).date_naive() + chrono::Duration::days(1)).to_string()
}

/// "2026-11-22 10:00 America/New_York" → the wall-clock part.
fn wall_clock(shown: &str) -> NaiveDateTime {
    let prefix = shown.get(..16).unwrap_or_else(|| panic!("not a 'YYYY-MM-DD HH:MM ...' time: {shown:?}"));
    NaiveDateTime::parse_from_str(prefix, "%Y-%m-%d %H:%M")
        .unwrap_or_else(|e| panic!("not a 'YYYY-MM-DD HH:MM ...' time: {shown:?}: {e}"))
}
