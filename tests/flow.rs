//! The main job end to end through real HTTP, the real store and the simulated
//! carrier: import → schedule → batches fire → calls → outcomes. And a crash in the
//! middle of a schedule.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use support::{count, leads_csv, spawn};

#[tokio::test(flavor = "multi_thread")]
async fn twenty_leads_in_batches_of_five_reach_outcomes_within_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.dialing.max_concurrent_calls = 3;
    config.dialing.calls_per_second = 10.0;
    // 3 numbers × 7 = 21 slots for 20 calls: the caps bind, so skipping full numbers
    // and the atomic reservation are exercised.
    for n in config.numbers.as_mut().unwrap() {
        n.max_daily_calls = 7;
    }
    let app = spawn(config);
    app.ready().await;

    let summary = app.import_csv(&leads_csv(20)).await;
    assert_eq!(summary["imported"], 20);
    let leads = app.get_json("/api/leads?limit=100").await;
    let ids: Vec<i64> = leads["leads"].as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 20);

    let created = app.schedule_leads(&ids, 5).await;
    assert_eq!(created["total_leads"], 20);
    assert_eq!(created["total_batches"], 4);
    let sched = app.get_json("/api/scheduled-bulk-calls").await;
    assert_eq!(sched["total_batches"], 4);
    assert_eq!(sched["scheduled_batches"][3]["lead_count"], 5);

    app.wait_for(Duration::from_secs(60), "every lead reaches an outcome", support::all_leads_final).await;

    let db = app.db();
    // Batches fired in order, each at (not before, and within a second of) its time.
    let mut stmt = db.prepare("SELECT batch_index, due_at, fired_at FROM batches ORDER BY batch_index").unwrap();
    let batches: Vec<(i64, i64, i64)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    assert_eq!(batches.len(), 4);
    for (idx, due, fired) in &batches {
        assert!(fired >= due, "batch {idx} fired {}ms early", due - fired);
        assert!(fired - due < 1_000, "batch {idx} fired {}ms late", fired - due);
    }
    assert!(batches.windows(2).all(|w| w[0].2 <= w[1].2), "batches fired out of order: {batches:?}");
    assert_eq!(batches[3].1 - batches[0].1, 3_000, "batch i is due at start + i × interval");

    // One attempt per lead, each with a caller number; no number over its cap.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts"), 20);
    assert_eq!(count(&db, "SELECT COUNT(DISTINCT lead_id) FROM attempts"), 20);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts WHERE caller_number IS NULL OR caller_number = ''"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL"), 0);
    let mut per_number = db.prepare("SELECT caller_number, COUNT(*) FROM attempts GROUP BY 1").unwrap();
    let usage: HashMap<String, i64> =
        per_number.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    assert!(usage.values().all(|n| *n <= 7), "a caller number went over its cap: {usage:?}");
    assert_eq!(usage.len(), 3);

    // Never more than max_concurrent_calls in flight: sweep the [created, ended) intervals.
    let mut spans = db.prepare("SELECT created_at, ended_at FROM attempts").unwrap();
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for row in spans.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).unwrap() {
        let (start, end) = row.unwrap();
        edges.push((start, 1));
        edges.push((end, -1));
    }
    edges.sort(); // ends (-1) sort before starts (+1) at the same ms: half-open intervals
    let mut in_flight = 0;
    let mut peak = 0;
    for (_, delta) in edges {
        in_flight += delta;
        peak = peak.max(in_flight);
    }
    assert!(peak <= 3, "{peak} calls in flight, limit 3");
    assert!(peak >= 2, "the test should load the limit (peak {peak})");

    // Calls per second: no one-second window holds more than 10 create requests.
    let starts: Vec<i64> = db
        .prepare("SELECT created_at FROM attempts ORDER BY created_at")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (i, t) in starts.iter().enumerate() {
        let in_window = starts[i..].iter().take_while(|u| **u < t + 1_000).count();
        assert!(in_window <= 10, "{in_window} calls started within one second");
    }

    // The outcomes are visible through the API.
    let lead = app.get_json(&format!("/api/leads/{}", ids[0])).await;
    let attempt = &lead["attempts"][0];
    assert!(attempt["caller_number"].as_str().unwrap().starts_with("+1202555"));
    assert!(attempt["provider_call_id"].as_str().unwrap().starts_with("CA"));
    assert_eq!(attempt["status"], lead["status"]);
    assert!(DateTime::parse_from_rfc3339(attempt["started_at"].as_str().unwrap()).is_ok());
    let calls = app.get_json("/api/calls?limit=50").await;
    assert_eq!(calls["calls"].as_array().unwrap().len(), 20);
    let status = app.get_json("/api/status").await;
    assert_eq!(status["calls_today"], 20);
    assert_eq!(status["calls_in_progress"], 0);
    assert_eq!(status["queue_depth"], 0);
    app.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_mid_schedule_then_restart_dials_no_lead_twice_and_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.dialing.max_concurrent_calls = 2;
    config.simulator.talk_seconds = [0.2, 0.5];
    let app = spawn(config.clone());
    app.ready().await;
    app.import_csv(&leads_csv(20)).await;
    let start = Utc::now() + chrono::Duration::seconds(1);
    let (status, created) = app
        .post_json(
            "/api/schedule-bulk-calls",
            json!({"select": {"status": "pending"}, "start_at": start.to_rfc3339(), "parallel_calls": 2, "interval_seconds": 1}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["total_batches"], 10);

    app.wait_for(Duration::from_secs(30), "a few calls placed", |c| count(c, "SELECT COUNT(*) FROM attempts") >= 4)
        .await;
    app.crash();

    let db = support::open_db(&dir.path().join("dialer.db"));
    let before = count(&db, "SELECT COUNT(*) FROM attempts");
    let pending_batches = count(&db, "SELECT COUNT(*) FROM batches WHERE status = 'pending'");
    assert!(pending_batches > 0, "the crash should leave batches to run");
    drop(db);

    let app = spawn(config);
    app.ready().await;
    app.wait_for(Duration::from_secs(60), "every lead reaches an outcome after the restart", support::all_leads_final)
        .await;
    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts"), 20, "one attempt per lead, {before} before the crash");
    assert_eq!(count(&db, "SELECT COUNT(DISTINCT lead_id) FROM attempts"), 20);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM batches WHERE status = 'fired'"), 10, "the remaining batches ran");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL"), 0);
    // Calls cut off by the crash are `unknown`, never redialled.
    let unknown = count(&db, "SELECT COUNT(*) FROM attempts WHERE status = 'unknown'");
    assert!(unknown <= before, "only calls placed before the crash can be unknown");
    app.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_missed_while_down_are_marked_and_their_leads_released() {
    let dir = tempfile::tempdir().unwrap();
    let config = support::config(dir.path());
    let app = spawn(config.clone());
    app.ready().await;
    app.import_csv(&leads_csv(6)).await;
    let start = Utc::now() + chrono::Duration::hours(1);
    let (status, _) = app
        .post_json(
            "/api/schedule-bulk-calls",
            json!({"select": {}, "start_at": start.to_rfc3339(), "parallel_calls": 2, "interval_seconds": 600}),
        )
        .await;
    assert_eq!(status, 201);
    app.stop();

    // Time passes while the service is down: batch 0 is due 20 minutes ago (past the
    // 15-minute grace), batch 1 is due 5 minutes ago (within it), batch 2 is ahead.
    {
        let db = rusqlite::Connection::open(dir.path().join("dialer.db")).unwrap();
        let now = Utc::now().timestamp_millis();
        for (idx, due) in [(0, now - 20 * 60_000), (1, now - 5 * 60_000), (2, now + 3_600_000)] {
            db.execute("UPDATE batches SET due_at = ?1 WHERE batch_index = ?2", [due, idx]).unwrap();
        }
    }
    let app = spawn(config);
    app.ready().await;
    app.wait_for(Duration::from_secs(30), "batch 1 runs at once, batch 0 is missed", |c| {
        count(c, "SELECT COUNT(*) FROM batches WHERE status = 'missed'") == 1
            && count(c, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NOT NULL") == 2
    })
    .await;
    let sched = app.get_json("/api/scheduled-bulk-calls").await;
    let statuses: Vec<&str> =
        sched["scheduled_batches"].as_array().unwrap().iter().map(|b| b["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["missed", "pending"], "missed batches stay visible; fired ones leave the list");
    let pending = app.get_json("/api/leads?status=pending").await;
    assert_eq!(pending["total"], 2, "the missed batch's leads are pending again, ready to reschedule");
    app.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_provider_fails_no_lead_and_holds_dialing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    // A Twilio account behind a port nobody listens on: every request is refused
    // before it is sent, so no call can exist.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    config.provider.kind = dialer::config::ProviderKind::Twilio;
    config.provider.twilio.api_base = format!("http://{closed}");
    config.provider.twilio.account_sid = "AC00000000000000000000000000000001".into();
    config.provider.twilio.auth_token = dialer::config::Secret::new("token");
    config.server.public_url = Some("http://127.0.0.1:9".into());
    let app = spawn(config);
    app.ready().await;
    app.import_csv(&leads_csv(3)).await;
    let body = json!({"select": {}, "start_at": Utc::now().to_rfc3339(), "parallel_calls": 3, "interval_seconds": 1});
    assert_eq!(app.post_json("/api/schedule-bulk-calls", body).await.0, 201);

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let reason = loop {
        let status = app.get_json("/api/status").await;
        if let Some(reason) = status["paused_reason"].as_str() {
            break reason.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "dialing never reported the provider problem");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reason.contains("unreachable"), "{reason}");
    // Every claimed call finishes its retries and is undone; no lead fails.
    app.wait_for(Duration::from_secs(30), "all three leads back in the queue", |c| {
        count(c, "SELECT COUNT(*) FROM leads WHERE status = 'scheduled'") == 3
    })
    .await;
    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM leads WHERE status = 'failed'"), 0, "no lead failed");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts"), 0, "no attempt kept for a call never placed");
    assert_eq!(count(&db, "SELECT COALESCE(SUM(calls), 0) FROM number_usage"), 0, "caller-ID slots returned");
    assert_eq!(count(&db, "SELECT SUM(attempts) FROM leads"), 0);
    app.crash();
}
