//! Caller numbers through real HTTP and the real store: the Numbers API contract,
//! dialing that pauses when every number is at its cap and resumes by itself when a
//! number is added, strict local presence, and the health policy acting on
//! imported spam scores.

mod support;

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use support::{TestApp, count, leads_csv, spawn};

async fn patch(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let resp = app.http.patch(app.url(path)).json(&body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn post_text(app: &TestApp, path: &str, body: &str) -> (u16, Value) {
    let resp =
        app.http.post(app.url(path)).header("content-type", "text/csv").body(body.to_string()).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

fn by_number<'a>(list: &'a Value, number: &str) -> &'a Value {
    list["numbers"].as_array().unwrap().iter().find(|n| n["number"] == number).unwrap()
}

async fn schedule_all(app: &TestApp, n: usize) {
    let summary = app.import_csv(&leads_csv(n)).await;
    assert_eq!(summary["imported"], n);
    let start = Utc::now() + chrono::Duration::seconds(1);
    let (status, body) = app
        .post_json(
            "/api/schedule-bulk-calls",
            json!({"select": {"status": "pending"}, "start_at": start.to_rfc3339(), "parallel_calls": 50, "interval_seconds": 1}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn numbers_api_contract() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(support::config(dir.path()));
    app.ready().await;

    let list = app.get_json("/api/numbers").await;
    assert_eq!(list["numbers"].as_array().unwrap().len(), 3);
    assert_eq!(list["capacity_today"], 300);
    let first = by_number(&list, "+12025550101");
    assert_eq!((first["rotation_priority"].as_i64(), first["effective_cap"].as_i64()), (Some(5), Some(100)));
    assert_eq!((first["status"].as_str(), first["health"].as_str()), (Some("active"), Some("healthy")));
    assert_eq!((first["area_code"].as_i64(), first["state"].as_str()), (Some(202), Some("DC")));

    // Add: strings or objects; bad items are rejected one by one, naming item and field.
    let (status, added) = app
        .post_json(
            "/api/numbers",
            json!({"numbers": [
                "+14152370199",
                {"number": "+12122370100", "rotation_priority": 10, "pool": "admissions", "label": "NY"},
                "not a number",
                {"number": "+13052370100", "rotation_priority": 11},
                "+12025550101"
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["added"], json!(["+14152370199", "+12122370100"]));
    assert_eq!(added["rejected"][0]["line"], 3);
    assert_eq!(added["rejected"][0]["field"], "number");
    assert_eq!(added["rejected"][1]["line"], 4);
    assert_eq!(added["rejected"][1]["field"], "rotation_priority");
    assert_eq!(added["rejected"][1]["reason"], "must be 1..=10");
    let (status, csv) = post_text(&app, "/api/numbers", "number,label,max_daily_calls\n+17182370100,BK,40\n").await;
    assert_eq!((status, csv["added"].clone()), (200, json!(["+17182370100"])));
    let list = app.get_json("/api/numbers").await;
    assert_eq!(list["numbers"].as_array().unwrap().len(), 6);
    assert_eq!(by_number(&list, "+12122370100")["pool"], "admissions");
    assert_eq!(by_number(&list, "+17182370100")["max_daily_calls"], 40);

    // Edit one: values are checked by field; a status change is kept with its reason.
    let id = first["id"].as_i64().unwrap();
    let (status, err) = patch(&app, &format!("/api/numbers/{id}"), json!({"rotation_priority": 0})).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("rotation_priority: must be 1..=10")));
    let (status, _) = patch(&app, &format!("/api/numbers/{id}"), json!({})).await;
    assert_eq!(status, 422);
    let (status, _) = patch(&app, "/api/numbers/9999", json!({"label": "x"})).await;
    assert_eq!(status, 404);
    let (status, body) = patch(
        &app,
        &format!("/api/numbers/{id}"),
        json!({"status": "resting", "rest_hours": 2, "reason": "complaints"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["number"]["status"], "resting");
    let until = body["number"]["rest_until"].as_i64().unwrap();
    let expected = Utc::now().timestamp_millis() + 2 * 3_600_000;
    assert!((until - expected).abs() < 60_000, "rests 2 h");
    let history = &body["history"][0];
    assert_eq!((history["kind"].as_str(), history["actor"].as_str()), (Some("status"), Some("api")));
    assert!(history["detail"].as_str().unwrap().starts_with("active → resting until"), "{history}");
    assert!(history["detail"].as_str().unwrap().ends_with(": complaints"), "{history}");

    // Bulk: one change to several numbers.
    let ids: Vec<i64> = list["numbers"].as_array().unwrap()[1..3].iter().map(|n| n["id"].as_i64().unwrap()).collect();
    let (status, body) =
        app.post_json("/api/numbers/bulk", json!({"ids": ids, "action": "set_cap", "value": 40})).await;
    assert_eq!((status, body["updated"].as_i64()), (200, Some(2)));
    let (status, body) = app.post_json("/api/numbers/bulk", json!({"ids": ids, "action": "explode"})).await;
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().starts_with("action: unknown action"), "{body}");
    let (status, _) = app.post_json("/api/numbers/bulk", json!({"ids": [], "action": "enable"})).await;
    assert_eq!(status, 422);
    let list = app.get_json("/api/numbers").await;
    for id in &ids {
        let n = list["numbers"].as_array().unwrap().iter().find(|n| n["id"] == *id).unwrap();
        assert_eq!(n["max_daily_calls"], 40);
    }

    // Scores from a reputation service: warning band halves the effective cap.
    let (status, body) =
        post_text(&app, "/api/numbers/scores", "number,spam_score,source\n+12025550103,40,nomorobo\n+19995550100,x\n")
            .await;
    assert_eq!(status, 200);
    assert_eq!((body["updated"].as_i64(), body["rejected"][0]["line"].as_i64()), (Some(1), Some(3)));
    let list = app.get_json("/api/numbers").await;
    let scored = by_number(&list, "+12025550103");
    assert_eq!((scored["health"].as_str(), scored["spam_source"].as_str()), (Some("warning"), Some("import:nomorobo")));
    assert_eq!(scored["effective_cap"], scored["max_daily_calls"].as_i64().unwrap() / 2);

    let plan = app.get_json("/api/numbers/plan?calls_per_day=5000").await;
    assert_eq!(plan["plan"]["numbers_steady"], 50);
    assert_eq!(plan["plan"]["numbers_with_buffer"], 63);
    assert!(plan["summary"].as_str().unwrap().contains("5,000"), "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dialing_pauses_at_the_caps_and_resumes_when_a_number_is_added() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    for n in config.numbers.as_mut().unwrap() {
        n.max_daily_calls = 2;
    }
    let app = spawn(config);
    app.ready().await;
    schedule_all(&app, 10).await;

    let calls_ended = |n: i64| {
        move |db: &rusqlite::Connection| count(db, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NOT NULL") == n
    };
    app.wait_for(Duration::from_secs(30), "6 calls (every cap) end", calls_ended(6)).await;
    let status = app.get_json("/api/status").await;
    let reason = status["paused_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("reached its daily cap"), "{status}");
    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM leads WHERE status = 'scheduled'"), 4);
    assert_eq!(count(&db, "SELECT MAX(calls) FROM number_usage"), 2);

    // Capacity returns: a new local number. No restart, no button: dialing resumes.
    let (status, _) =
        app.post_json("/api/numbers", json!({"numbers": [{"number": "+14152370199", "max_daily_calls": 10}]})).await;
    assert_eq!(status, 200);
    app.wait_for(Duration::from_secs(30), "every lead reaches an outcome", support::all_leads_final).await;
    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts"), 10);
    // The leads are in 415: the new number is local to them and takes all four.
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM attempts WHERE caller_number = '+14152370199' AND caller_tier = 'area_code'"),
        4
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts WHERE caller_candidates IS NULL OR caller_candidates < 1"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_local_presence_waits_for_a_local_number_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.rotation.local_presence = dialer::numbers::pool::LocalPresence::Strict;
    let app = spawn(config);
    app.ready().await;
    schedule_all(&app, 5).await;

    // The configured numbers are in 202 (DC); the leads in 415 (CA): nothing is dialled.
    app.wait_for(Duration::from_secs(30), "leads wait for a local number", |db| {
        count(db, "SELECT COUNT(*) FROM leads WHERE wait_reason = 'no_local_number'") == 5
    })
    .await;
    let status = app.get_json("/api/status").await;
    assert_eq!(status["waiting_for_local_number"], 5, "{status}");
    assert!(status["paused_reason"].as_str().unwrap_or_default().contains("local caller ID"), "{status}");
    assert_eq!(count(&app.db(), "SELECT COUNT(*) FROM attempts"), 0);

    let (status, _) = app.post_json("/api/numbers", json!({"numbers": ["+16502370100"]})).await;
    assert_eq!(status, 200);
    app.wait_for(Duration::from_secs(30), "every lead reaches an outcome", support::all_leads_final).await;
    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts WHERE caller_number = '+16502370100'"), 5);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts WHERE caller_tier = 'state'"), 5, "650 is CA, like 415");
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_scores_quarantine_within_the_resting_share() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    // 3 numbers at 34 %: one may be out of rotation at a time.
    config.rotation.max_resting_share_percent = 34;
    let app = spawn(config);
    app.ready().await;

    let (status, _) =
        post_text(&app, "/api/numbers/scores", "+12025550101,90,nomorobo\n+12025550102,60,nomorobo\n").await;
    assert_eq!(status, 200);
    app.wait_for(Duration::from_secs(20), "the flagged number is quarantined", |db| {
        count(db, "SELECT COUNT(*) FROM caller_numbers WHERE number = '+12025550101' AND status = 'quarantined'") == 1
            && count(db, "SELECT COUNT(*) FROM caller_numbers WHERE attention IS NOT NULL") == 1
    })
    .await;
    let list = app.get_json("/api/numbers").await;
    let at_risk = by_number(&list, "+12025550102");
    assert_eq!(at_risk["status"], "active", "the share limit keeps it dialling");
    assert!(at_risk["attention"].as_str().unwrap().contains("at risk"), "{at_risk}");
    let id = by_number(&list, "+12025550101")["id"].as_i64().unwrap();
    let detail = app.get_json(&format!("/api/numbers/{id}")).await;
    let quarantine = detail["history"].as_array().unwrap().iter().find(|e| e["kind"] == "status").unwrap();
    assert_eq!(quarantine["actor"], "health");
    assert!(quarantine["detail"].as_str().unwrap().contains("flagged"), "{quarantine}");
}
