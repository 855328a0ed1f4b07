//! Campaigns through real HTTP with the simulated carrier: the lifecycle with a
//! reason on every step, pause stopping new dials at once and resume going on where
//! it stopped, cancel returning waiting leads.

mod support;

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use support::{TestApp, count, leads_csv, spawn};

async fn schedule(app: &TestApp, campaign_id: i64, in_secs: i64) -> (u16, Value) {
    let start = Utc::now() + chrono::Duration::seconds(in_secs);
    app.post_json(
        "/api/schedule-bulk-calls",
        json!({"select": {"status": "pending"}, "start_at": start.to_rfc3339(), "parallel_calls": 50,
               "interval_seconds": 1, "campaign_id": campaign_id}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(support::config(dir.path()));
    app.ready().await;

    let list = app.get_json("/api/campaigns").await;
    assert_eq!(list["campaigns"][0]["name"], "Default");
    assert_eq!(list["campaigns"][0]["status"], "running");
    let (status, created) = app.post_json("/api/campaigns", json!({"name": "Spring intake"})).await;
    assert_eq!(status, 201, "{created}");
    let id = created["campaign"]["id"].as_i64().unwrap();
    assert_eq!(created["campaign"]["status"], "draft");
    let (status, dup) = app.post_json("/api/campaigns", json!({"name": "Spring intake"})).await;
    assert_eq!((status, dup["error"].as_str().unwrap().starts_with("name:")), (422, true));
    let (status, _) = app.post_json(&format!("/api/campaigns/{id}/resume"), json!({})).await;
    assert_eq!(status, 422, "a draft cannot be resumed");

    app.import_csv(&leads_csv(4)).await;
    let (status, body) = schedule(&app, id, 3600).await;
    assert_eq!((status, body["campaign_id"].as_i64()), (201, Some(id)), "{body}");
    let c = app.get_json(&format!("/api/campaigns/{id}")).await;
    assert_eq!(c["campaign"]["status"], "scheduled");
    assert_eq!(c["campaign"]["queued_leads"], 4);

    let (status, body) = app.post_json(&format!("/api/campaigns/{id}/cancel"), json!({"reason": "wrong list"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["campaign"]["status"], "cancelled");
    assert_eq!(count(&app.db(), "SELECT COUNT(*) FROM leads WHERE status = 'pending'"), 4, "leads are free again");
    let c = app.get_json(&format!("/api/campaigns/{id}")).await;
    let steps: Vec<(String, String)> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["to_status"].as_str().unwrap().into(), e["reason"].as_str().unwrap().into()))
        .collect();
    assert_eq!(steps[0], ("cancelled".into(), "wrong list".into()));
    assert_eq!(steps[1].0, "scheduled");
    assert!(steps[1].1.starts_with("schedule 1 created"), "{steps:?}");
    assert_eq!(steps[2], ("draft".into(), "created".into()));
    let (status, body) = schedule(&app, id, 3600).await;
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().contains("takes no more schedules"), "{body}");
    let (status, _) = app.post_json("/api/campaigns/1/cancel", json!({})).await;
    assert_eq!(status, 422, "the default campaign is paused, never cancelled");
    let (status, _) = app.post_json("/api/campaigns/99/pause", json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_stops_new_dials_within_a_second_and_resume_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.dialing.max_concurrent_calls = 1;
    config.dialing.calls_per_second = 5.0;
    config.simulator.ring_seconds = [0.2, 0.3];
    config.simulator.talk_seconds = [0.2, 0.3];
    let app = spawn(config);
    app.ready().await;
    let (_, created) = app.post_json("/api/campaigns", json!({"name": "Paced", "settings": {"max_attempts": 1}})).await;
    let id = created["campaign"]["id"].as_i64().unwrap();
    app.import_csv(&leads_csv(12)).await;
    let (status, _) = schedule(&app, id, 1).await;
    assert_eq!(status, 201);
    app.wait_for(Duration::from_secs(30), "two calls placed", |db| count(db, "SELECT COUNT(*) FROM attempts") >= 2)
        .await;
    assert_eq!(app.get_json(&format!("/api/campaigns/{id}")).await["campaign"]["status"], "running");

    let (status, _) = app.post_json(&format!("/api/campaigns/{id}/pause"), json!({"reason": "lunch"})).await;
    assert_eq!(status, 200);
    let paused_at = Utc::now().timestamp_millis();
    // Watch for three seconds after the call in progress ends: no new dial starts.
    let quiet_until = Instant::now() + Duration::from_secs(3);
    app.wait_for(Duration::from_secs(30), "the call in progress ends and 3 s pass", |db| {
        count(db, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL") == 0 && Instant::now() > quiet_until
    })
    .await;
    let late = count(&app.db(), &format!("SELECT COUNT(*) FROM attempts WHERE created_at > {}", paused_at + 1000));
    assert_eq!(late, 0, "a call started more than a second after the pause");
    let placed = count(&app.db(), "SELECT COUNT(*) FROM attempts");
    assert!(placed < 12, "the pause left leads to call");

    let (status, _) = app.post_json(&format!("/api/campaigns/{id}/resume"), json!({})).await;
    assert_eq!(status, 200);
    app.wait_for(Duration::from_secs(60), "every lead reaches an outcome", support::all_leads_final).await;
    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts"), 12);
    assert_eq!(count(&db, "SELECT COUNT(DISTINCT lead_id) FROM attempts"), 12, "resume goes on where it stopped");
}
