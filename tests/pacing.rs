//! Pacing through real HTTP with the simulated carrier: a campaign's
//! `calls_per_minute` spaces its calls evenly (never closer than 60 000 / cpm ms,
//! even though the global calls per second would allow a burst), the message's
//! start is recorded as `connected_at`, and `GET /api/campaigns/{id}`'s pacing
//! numbers agree with the attempt rows.

mod support;

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use support::{count, leads_csv, spawn};

const LEADS: i64 = 10;

#[tokio::test(flavor = "multi_thread")]
async fn calls_per_minute_spaces_calls_and_the_api_agrees_with_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    // The global limits would start 20 calls a second, 5 at once: only the campaign's
    // pace (120 per minute = one every 500 ms) can space them.
    config.dialing.calls_per_second = 20.0;
    config.dialing.max_concurrent_calls = 5;
    let app = spawn(config);
    app.ready().await;
    let (status, created) = app
        .post_json("/api/campaigns", json!({"name": "Paced", "settings": {"calls_per_minute": 120, "max_attempts": 1}}))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["campaign"]["id"].as_i64().unwrap();
    app.import_csv(&leads_csv(LEADS as usize)).await;
    let start = Utc::now() + chrono::Duration::seconds(1);
    let (status, body) = app
        .post_json(
            "/api/schedule-bulk-calls",
            json!({"select": {"status": "pending"}, "start_at": start.to_rfc3339(), "parallel_calls": 50,
                   "interval_seconds": 1, "campaign_id": id}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.wait_for(Duration::from_secs(60), "every lead reaches an outcome", support::all_leads_final).await;

    let db = app.db();
    let starts: Vec<i64> = db
        .prepare("SELECT created_at FROM attempts WHERE campaign_id = ?1 ORDER BY created_at")
        .unwrap()
        .query_map([id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(starts.len() as i64, LEADS);
    let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g >= 500), "calls closer than 500 ms: {gaps:?}");

    // Every call a person answered asked for its message, which recorded `connected_at`
    // once (machines get the voicemail drop, which is not a connection).
    let answered = count(&db, "SELECT COUNT(*) FROM attempts WHERE answered_at IS NOT NULL");
    assert!(answered > 0, "the simulator answers most calls");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM attempts WHERE answered_at IS NOT NULL AND connected_at IS NULL
             AND (answered_by IS NULL OR answered_by IN ('human', 'unknown'))"
        ),
        0
    );

    let pacing = app.get_json(&format!("/api/campaigns/{id}")).await["pacing"].clone();
    let rows = |sql: &str| count(&db, &format!("SELECT COUNT(*) FROM attempts WHERE campaign_id = {id} AND {sql}"));
    let ended = rows("ended_at IS NOT NULL AND status NOT IN ('unknown', 'canceled', 'invalid')");
    let answered = rows(
        "ended_at IS NOT NULL AND status NOT IN ('unknown', 'canceled', 'invalid')
         AND (answered_at IS NOT NULL OR status IN ('completed', 'voicemail'))",
    );
    let live = rows(
        "(answered_at IS NOT NULL OR status IN ('completed', 'voicemail'))
         AND (answered_by IS NULL OR answered_by IN ('human', 'unknown'))",
    );
    let abandoned = rows(
        "(answered_at IS NOT NULL OR status IN ('completed', 'voicemail'))
         AND (answered_by IS NULL OR answered_by IN ('human', 'unknown'))
         AND (connected_at IS NULL OR connected_at > answered_at + 2000 OR transfer_result = 'failed')",
    );
    assert_eq!(pacing["ended_calls"], json!(ended), "{pacing}");
    assert_eq!(pacing["answered_calls"], json!(answered), "{pacing}");
    assert_eq!(pacing["live_answers"], json!(live), "{pacing}");
    assert_eq!(pacing["abandoned_calls"], json!(abandoned), "{pacing}");
    assert_eq!(abandoned, 0, "the simulator says the message as soon as a call is answered");
    assert_eq!(pacing["in_flight"], json!(0));
    assert_eq!(pacing["queue_depth"], json!(0));
    assert_eq!(pacing["calls_last_5_minutes"], json!(LEADS), "{pacing}");
    assert_eq!((&pacing["target_cpm"], &pacing["effective_cpm"]), (&json!(120), &json!(120)));
    assert_eq!(pacing["concurrency_limit"], json!(5));
    if ended > 0 {
        let rate = pacing["answer_rate"].as_f64().unwrap();
        assert!((rate - answered as f64 / ended as f64).abs() < 1e-9, "{pacing}");
    }
    assert!(pacing["recommendations"].is_array(), "{pacing}");
}
