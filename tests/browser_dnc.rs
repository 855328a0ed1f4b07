//! One end-to-end journey through the DNC page in a real headless Chromium, driven over
//! WebDriver (chromedriver + fantoccini): add two numbers by paste, search one, remove
//! it with a reason, see it gone and the removal in the audit history, checking the
//! page against the JSON API. Shared machinery in `support/browser.rs`.
//!
//! Needs `/usr/bin/chromium` and `chromedriver` (Debian: `chromium chromium-driver`).
//! Without them the test prints `SKIPPED: ...` and passes, except with `CI=true`,
//! where it fails: CI must run it.

mod support;

use fantoccini::{Client, Locator};
use serde_json::Value;
use support::browser::{WAIT, find, in_browser, load_after_click, screenshot, table_rows, text, wait_text};

const KEPT: &str = "+14157001234";
const REMOVED: &str = "+14157001235";

#[tokio::test(flavor = "multi_thread")]
async fn dnc_page_add_search_remove() {
    in_browser("dnc page journey", dnc_journey).await;
}

async fn dnc_journey(c: Client) {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.ready().await;

    // 1. From the nav: an empty list.
    support::browser::open(&c, &app, "/").await;
    load_after_click(&c, "header.top nav a[href='/dnc']").await;
    c.wait().at_most(WAIT).for_element(Locator::Id("dnc")).await.expect("the DNC table");
    assert_eq!(text(&c, "#dnc-listed").await, "0");
    assert!(dnc_rows(&c).await.is_empty());

    // 2. Paste two numbers (as people write them) with a reason.
    find(&c, "#dnc-add-list").await.send_keys("(415) 700-1234\n415.700.1235").await.unwrap();
    find(&c, "#dnc-add-reason").await.send_keys("asked on the phone").await.unwrap();
    load_after_click(&c, "#dnc-add-submit").await;
    wait_text(
        &c,
        "#dnc-message",
        "Added 2 number(s); 0 already listed; 0 line(s) rejected; 0 lead(s) marked do_not_call.",
    )
    .await;
    assert_eq!(text(&c, "#dnc-listed").await, "2");
    let rows = dnc_rows(&c).await;
    let shown: Vec<[&str; 3]> = rows.iter().map(|r| [r[0].as_str(), r[1].as_str(), r[2].as_str()]).collect();
    assert_eq!(
        shown,
        [[REMOVED, "dashboard", "asked on the phone"], [KEPT, "dashboard", "asked on the phone"]],
        "newest first"
    );
    assert_eq!(api_phones(&app, "/api/dnc").await, [REMOVED, KEPT], "the page vs GET /api/dnc");

    // 3. Search one by its digits, formatted differently.
    let q = find(&c, "#dnc-q").await;
    q.clear().await.unwrap();
    q.send_keys("700-1235").await.unwrap();
    load_after_click(&c, "#dnc-search-submit").await;
    assert_eq!(text(&c, "#dnc-total").await, "1 match(es)");
    let rows = dnc_rows(&c).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], REMOVED);
    assert_eq!(api_phones(&app, "/api/dnc?q=700-1235").await, [REMOVED]);

    // 4. Remove it with a reason.
    let reason = "consent given in writing";
    let row = format!("#dnc tr[data-phone='{REMOVED}']");
    find(&c, &format!("{row} input.remove-reason")).await.send_keys(reason).await.unwrap();
    load_after_click(&c, &format!("{row} button.remove-submit")).await;
    wait_text(&c, "#dnc-message", &format!("Removed {REMOVED} from the do-not-call list.")).await;

    // 5. Gone from the list (page and API), the other one kept; the audit entry shown.
    let rows = dnc_rows(&c).await;
    let phones: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(phones, [KEPT], "{rows:?}");
    assert_eq!(text(&c, "#dnc-listed").await, "1");
    assert_eq!(api_phones(&app, "/api/dnc").await, [KEPT]);
    let recent = table_rows(&c, "#dnc-recent tbody tr").await;
    let latest: Vec<&str> = recent[0][1..].iter().map(String::as_str).collect();
    assert_eq!(latest, [REMOVED, "removed", reason, "user"], "the newest change: {recent:?}");

    // 6. The number's own history: added, then removed with the reason.
    load_after_click(&c, &format!("#dnc-recent a[href='/dnc/{REMOVED}']")).await;
    assert_eq!(text(&c, "#dnc-number-status").await, "not listed");
    let history = table_rows(&c, "#dnc-history tbody tr").await;
    let events: Vec<[&str; 4]> =
        history.iter().map(|r| [r[1].as_str(), r[2].as_str(), r[3].as_str(), r[4].as_str()]).collect();
    assert_eq!(
        events,
        [["removed", "dashboard", reason, "user"], ["added", "dashboard", "asked on the phone", "user"]],
        "history, newest first"
    );
    let api = app.get_json(&format!("/api/dnc/{REMOVED}")).await;
    assert_eq!(api["listed"], Value::Bool(false));
    assert_eq!(api["history"][0]["reason"], reason);

    // 7. A screenshot of the page for the docs.
    support::browser::open(&c, &app, "/dnc").await;
    c.wait().at_most(WAIT).for_element(Locator::Id("dnc")).await.unwrap();
    screenshot(&c, "dnc.png").await;

    app.stop();
}

/// The DNC table's rows as cell texts: number, source, reason, added, (remove form).
async fn dnc_rows(c: &Client) -> Vec<Vec<String>> {
    table_rows(c, "#dnc tbody tr").await
}

async fn api_phones(app: &support::TestApp, path: &str) -> Vec<String> {
    let list = app.get_json(path).await;
    list["entries"].as_array().unwrap().iter().map(|e| e["phone"].as_str().unwrap().to_string()).collect()
}
