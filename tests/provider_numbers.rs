//! Provider numbers (issue 5, scope 5): the numbers owned on the configured account
//! are listed and the chosen ones added to the rotation pool with their provider
//! ids, through the JSON API and the dashboard, against the simulated carrier in
//! Twilio and in Vapi mode; a provider that refuses to list is a clear 502.

mod support;

use dialer::config::{ProviderKind, Secret};
use serde_json::json;
use support::sim::spawn_simulator;
use support::{count, spawn};

fn provider_id(db: &rusqlite::Connection, number: &str) -> Option<String> {
    db.query_row("SELECT provider_id FROM caller_numbers WHERE number = ?1", [number], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn twilio_numbers_are_listed_and_chosen_ones_imported() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    let sim = spawn_simulator(config.simulator.clone());
    sim.configure(&mut config, ProviderKind::Twilio);
    let app = spawn(config);
    app.ready().await;

    let listed = app.get_json("/api/provider/numbers").await;
    assert_eq!(listed["provider"], "twilio");
    let numbers = listed["numbers"].as_array().unwrap();
    assert_eq!(numbers.len(), 6, "{listed}");
    assert!(numbers.iter().all(|n| n["provider_id"].as_str().unwrap().starts_with("PN")), "{listed}");
    let in_pool: Vec<&str> =
        numbers.iter().filter(|n| n["in_pool"] == true).map(|n| n["number"].as_str().unwrap()).collect();
    assert_eq!(in_pool, ["+12025550101", "+12025550102", "+12025550103"]);
    assert!(numbers.iter().all(|n| n["linked"] == false));

    // A number already in the pool keeps its settings; a new one gets the defaults.
    let db = app.db();
    let id_101: i64 =
        db.query_row("SELECT id FROM caller_numbers WHERE number = '+12025550101'", [], |r| r.get(0)).unwrap();
    let patched = app
        .http
        .patch(app.url(&format!("/api/numbers/{id_101}")))
        .json(&json!({"max_daily_calls": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status().as_u16(), 200);
    let (status, outcome) = app
        .post_json("/api/provider/numbers/import", json!({"numbers": ["+12025550104", "+12025550101", "+19995550100"]}))
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["added"], json!(["+12025550104"]));
    assert_eq!(outcome["linked"], json!(["+12025550101"]));
    assert_eq!(outcome["not_on_account"], json!(["+19995550100"]));
    let sid_101 = numbers.iter().find(|n| n["number"] == "+12025550101").unwrap()["provider_id"].clone();
    assert_eq!(provider_id(&db, "+12025550101").as_deref(), sid_101.as_str());
    assert!(provider_id(&db, "+12025550104").is_some_and(|id| id.starts_with("PN")));
    assert_eq!(provider_id(&db, "+12025550102"), None, "not chosen, not touched");
    let (cap, priority): (i64, i64) = db
        .query_row(
            "SELECT max_daily_calls, rotation_priority FROM caller_numbers WHERE number = '+12025550104'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((cap, priority), (100, 5));
    assert_eq!(count(&db, "SELECT max_daily_calls FROM caller_numbers WHERE number = '+12025550101'"), 7);
    let history = app.get_json(&format!("/api/numbers/{id_101}")).await;
    assert!(history["history"].to_string().contains("provider id PN"), "{history}");
    assert_eq!(history["number"]["provider_id"], sid_101);

    // Importing again changes nothing; the listing now shows them linked.
    let (_, again) = app.post_json("/api/provider/numbers/import", json!({"numbers": ["+12025550101"]})).await;
    assert_eq!(again["unchanged"], json!(["+12025550101"]));
    let listed = app.get_json("/api/provider/numbers").await;
    let linked: Vec<&str> = listed["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["linked"] == true)
        .map(|n| n["number"].as_str().unwrap())
        .collect();
    assert_eq!(linked, ["+12025550101", "+12025550104"]);

    // With Twilio configured, nobody may drive calls through the Vapi webhook.
    let vapi_hook = app
        .http
        .post(app.url("/webhooks/vapi?attempt_id=1"))
        .header("X-Vapi-Secret", dialer::provider::simulator::VAPI_WEBHOOK_SECRET)
        .json(&json!({"message": {"type": "status-update", "status": "ringing", "call": {"id": "x"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(vapi_hook.status().as_u16(), 403);

    // Requests that ask for nothing are refused.
    let (status, _) = app.post_json("/api/provider/numbers/import", json!({})).await;
    assert_eq!(status, 422);
    let (status, _) = app.post_json("/api/provider/numbers/import", json!({"numbers": ["+19995550100"]})).await;
    assert_eq!(status, 422);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM caller_numbers"), 4);

    // The dashboard: the list with checkboxes (linked ones unticked), then one click.
    let page = app.http.get(app.url("/numbers/provider")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"value="+12025550105" class="pick-provider-number" checked"#), "{page}");
    assert!(page.contains(r#"value="+12025550101" class="pick-provider-number">"#), "{page}");
    let numbers_page = app.http.get(app.url("/numbers")).send().await.unwrap().text().await.unwrap();
    assert!(numbers_page.contains("provider-import-all"));
    let done = app
        .http
        .post(app.url("/numbers/provider/import"))
        .form(&[("numbers", "+12025550105"), ("numbers", "+12025550106")])
        .send()
        .await
        .unwrap();
    assert!(done.url().path().ends_with("/numbers"), "{}", done.url());
    let text = done.text().await.unwrap();
    assert!(text.contains("Imported from twilio: 2 added"), "{text}");
    assert!(provider_id(&db, "+12025550106").is_some());
    let all = app.http.post(app.url("/numbers/provider/import")).form(&[("all", "1")]).send().await.unwrap();
    assert!(all.text().await.unwrap().contains("0 added, 2 linked"));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM caller_numbers WHERE provider_id IS NOT NULL"), 6);
    app.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn vapi_numbers_import_and_a_refusing_provider_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    let sim = spawn_simulator(config.simulator.clone());
    sim.configure(&mut config, ProviderKind::Vapi);
    let mut wrong = config.clone();
    let app = spawn(config);
    app.ready().await;
    let db = app.db();
    // With Vapi, the configured numbers get their phoneNumberIds at start.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM caller_numbers WHERE provider_id IS NOT NULL"), 3);
    let (status, outcome) = app.post_json("/api/provider/numbers/import", json!({"all": true})).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!((outcome["added"].as_array().unwrap().len(), outcome["linked"].as_array().unwrap().len()), (3, 0));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM caller_numbers WHERE provider_id IS NULL"), 0);
    app.stop();

    // The same account with a wrong API key: 502 naming the refusal, nothing stored.
    let dir = tempfile::tempdir().unwrap();
    wrong.database.path = dir.path().join("dialer.db");
    wrong.provider.vapi.api_key = Secret::new("not-the-key");
    let app = spawn(wrong);
    app.ready().await;
    let resp = app.http.get(app.url("/api/provider/numbers")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 502);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("API key"), "{body}");
    let (status, _) = app.post_json("/api/provider/numbers/import", json!({"all": true})).await;
    assert_eq!(status, 502);
    let page = app.http.get(app.url("/numbers/provider")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("provider-error"), "{page}");
    assert_eq!(count(&app.db(), "SELECT COUNT(*) FROM caller_numbers WHERE provider_id IS NOT NULL"), 0);
    app.stop();
}
