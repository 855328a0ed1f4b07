//! Calls created behind lost create-call replies (issue 5, failure handling): each
//! attempt is `unknown` first, then adopted with the carrier's call, never dialled
//! again.

mod support;

use std::time::Duration;

use chrono::Utc;
use dialer::config::ProviderKind;
use serde_json::json;
use support::{count, spawn};

const N: usize = 30;

/// Every create-call reply is lost after the call was created, and the webhooks come
/// after the client gave up: each attempt is `unknown` first, then adopted with the
/// carrier's call (by a webhook or by the reconciler's list), never dialled again.
#[tokio::test(flavor = "multi_thread")]
async fn calls_behind_lost_replies_are_adopted_not_redialled() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.simulator.faults.timeout_after_create = 1.0;
    config.simulator.faults.hang_seconds = 1.0;
    config.simulator.faults.callback_delay_seconds = [0.7, 0.9];
    support::outcomes(&mut config, [0.5, 0.2, 0.1, 0.1, 0.1]);
    let handle = support::sim::spawn_simulator(config.simulator.clone());
    config.provider.request_timeout_seconds = 0.3;
    handle.configure(&mut config, ProviderKind::Twilio);
    config.dialing.max_concurrent_calls = 10;
    let app = spawn(config);
    app.ready().await;
    assert_eq!(app.import_csv(&leads_csv()).await["imported"], N);
    let start = Utc::now() + chrono::Duration::seconds(1);
    let body = json!({"select": {"status": "pending"}, "start_at": start.to_rfc3339(), "parallel_calls": N,
                      "interval_seconds": 1});
    assert_eq!(app.post_json("/api/schedule-bulk-calls", body).await.0, 201);
    app.wait_for(Duration::from_secs(60), "every lead reaches a final state with no call open", |c| {
        support::all_leads_final(c) && count(c, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL") == 0
    })
    .await;
    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts"), N as i64);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts WHERE status = 'unknown'"), 0);
    let lost = "SELECT COUNT(*) FROM attempts WHERE error LIKE 'outcome unknown%' AND provider_call_id IS NOT NULL";
    assert_eq!(count(&db, lost), N as i64, "every reply was lost, every call adopted");
    let calls = handle.calls().await;
    assert_eq!(calls.len(), N, "the carrier created one call per lead");
    let numbers: std::collections::HashSet<&str> = calls.iter().map(|c| c["to"].as_str().unwrap()).collect();
    assert_eq!(numbers.len(), N, "no number dialled twice");
    app.stop();
}

/// `N` distinct valid San Francisco numbers, 415-720-0000 onwards.
fn leads_csv() -> String {
    let mut csv = String::from("lead_uuid,number,whatsapp_number,name,email,partner,call_status\n");
    for i in 0..N {
        csv.push_str(&format!(",(415) 720-{i:04},,Lead {i},lead{i}@example.com,Acme,pending\n"));
    }
    csv
}
