//! Test calls through the API, against the simulated carrier as its own server: a
//! call placed now through a campaign's flow reaches its outcome; refusals (DNC,
//! bad number, unknown campaign, a lead in a schedule) place nothing.

mod support;

use std::time::Duration;

use dialer::config::{Callee, ProviderKind};
use serde_json::json;
use support::sim::spawn_simulator;

const BUSY: &str = "+14152370101";
const LISTED: &str = "+14152370102";

#[tokio::test(flavor = "multi_thread")]
async fn a_test_call_reaches_its_outcome_and_refusals_place_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = support::config(dir.path()).simulator;
    settings.callees.insert(BUSY.into(), Callee::Busy);
    let sim = spawn_simulator(settings);
    let mut config = support::config(dir.path());
    sim.configure(&mut config, ProviderKind::Twilio);
    let app = support::spawn(config);
    app.ready().await;

    // Refusals: nothing is dialled, nothing is written.
    let (code, _) = app.post_json("/api/dnc", json!({"numbers": [LISTED], "reason": "test"})).await;
    assert!(code == 200 || code == 201, "DNC add: {code}");
    for (body, why) in [
        (json!({"campaign_id": 1, "number": LISTED}), "do-not-call"),
        (json!({"campaign_id": 1, "number": "12"}), "number"),
        (json!({"campaign_id": 999, "number": BUSY}), "campaign 999 does not exist"),
    ] {
        let (code, reply) = app.post_json("/api/test-calls", body.clone()).await;
        assert_eq!(code, 422, "{body}: {reply}");
        assert!(reply["error"].as_str().unwrap_or("").contains(why), "{body}: {reply}");
    }
    assert_eq!(support::count(&app.db(), "SELECT COUNT(*) FROM attempts"), 0);
    assert!(sim.calls().await.is_empty(), "a refused test call reached the carrier");

    // A busy callee: the call goes out through the rotation and ends `busy`.
    let (code, reply) = app.post_json("/api/test-calls", json!({"campaign_id": 1, "number": "(415) 237-0101"})).await;
    assert_eq!(code, 202, "{reply}");
    let id = reply["attempt_id"].as_i64().unwrap();
    app.wait_for(Duration::from_secs(20), "the test call to end", |c| {
        support::count(c, &format!("SELECT COUNT(*) FROM attempts WHERE id = {id} AND ended_at IS NOT NULL")) == 1
    })
    .await;
    let view = app.get_json(&format!("/api/test-calls/{id}")).await;
    assert_eq!(view["status"], "busy", "{view}");
    assert_eq!(view["to_number"], BUSY);
    assert!(view["caller_number"].as_str().unwrap().starts_with("+1202555010"), "{view}");
    assert!(!view["events"].as_array().unwrap().is_empty(), "provider events shown: {view}");
    let calls = sim.calls().await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["to"], BUSY);
    // Never retried: not part of a schedule.
    let next: String = app.db().query_row("SELECT next_step FROM attempts WHERE id = ?1", [id], |r| r.get(0)).unwrap();
    assert!(next.contains("not part of a schedule"), "{next}");

    // The test call left the new lead's own status alone, and "select all" leaves a
    // lead made by a test call out; a lead in a schedule is not test-called.
    let status: String = app.db().query_row("SELECT status FROM leads WHERE phone = ?1", [BUSY], |r| r.get(0)).unwrap();
    assert_eq!(status, "pending");
    app.import_csv("phone,name\n+14152370103,Ann\n").await;
    let start = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let body = json!({"select": {"status": "pending"}, "start_at": start, "parallel_calls": 5, "interval_seconds": 60});
    let (code, created) = app.post_json("/api/schedule-bulk-calls", body).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["total_leads"], 1, "only the imported lead: {created}");
    let (code, reply) = app.post_json("/api/test-calls", json!({"campaign_id": 1, "number": "+14152370103"})).await;
    assert_eq!(code, 422, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("in a schedule"), "{reply}");
    assert_eq!(sim.calls().await.len(), 1);
}
