//! Issue 5 acceptance: the main job with `provider.kind = "vapi"` against the
//! simulated carrier running as its own server. The app imports the account's phone
//! numbers (so every caller number has a `phoneNumberId`), dials each lead once
//! through Vapi's API, and applies the `status-update` / `end-of-call-report`
//! webhooks; every lead ends with the outcome its scripted callee stands for. The
//! `press_2` callee asks the assistant not to be called again (its `opt_out`
//! function, a `tool-calls` message): the number is on the DNC list at once and is
//! never dialled again. A webhook with a wrong or missing secret is refused and
//! changes nothing.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use dialer::config::{Callee, ProviderKind};
use serde_json::json;
use support::sim::spawn_simulator;
use support::{count, leads_csv, spawn};

/// The E.164 form of `leads_csv`'s i-th number.
fn lead_number(i: usize) -> String {
    format!("+14157{:02}{:04}", i / 100 + 10, i % 10_000)
}

fn expected(callee: Callee) -> &'static str {
    match callee {
        Callee::Busy => "busy",
        Callee::NoAnswer => "no_answer",
        Callee::Failed => "failed",
        Callee::Voicemail | Callee::Fax => "voicemail",
        _ => "completed",
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn main_job_with_vapi_against_the_simulator() {
    const LEADS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.dialing.max_concurrent_calls = 4;
    let mut settings = config.simulator.clone();
    let callees: HashMap<String, Callee> =
        (0..LEADS).map(|i| (lead_number(i), Callee::ALL[i % Callee::ALL.len()])).collect();
    settings.callees = callees.clone().into_iter().collect();
    let sim = spawn_simulator(settings);
    sim.configure(&mut config, ProviderKind::Vapi);
    let app = spawn(config);
    app.ready().await;

    // The account's numbers: the three configured caller numbers (linked to their
    // ids when the dialer started, as Vapi dials by phoneNumberId) and three more (added).
    let listed = app.get_json("/api/provider/numbers").await;
    assert_eq!(listed["provider"], "vapi");
    let owned = listed["numbers"].as_array().unwrap();
    assert_eq!(owned.len(), 6, "{listed}");
    assert_eq!(owned.iter().filter(|n| n["in_pool"] == true && n["linked"] == true).count(), 3);
    assert_eq!(owned.iter().filter(|n| n["in_pool"] == false).count(), 3);
    let (status, imported) = app.post_json("/api/provider/numbers/import", json!({"all": true})).await;
    assert_eq!(status, 200, "{imported}");
    assert_eq!(imported["linked"].as_array().unwrap().len(), 0, "{imported}");
    assert_eq!(imported["added"].as_array().unwrap().len(), 3, "{imported}");
    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM caller_numbers WHERE provider_id IS NOT NULL"), 6);

    let summary = app.import_csv(&leads_csv(LEADS)).await;
    assert_eq!(summary["imported"], LEADS);
    let leads = app.get_json("/api/leads?limit=100").await;
    let ids: Vec<i64> = leads["leads"].as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect();
    app.schedule_leads(&ids, 5).await;

    // An opted-out lead is `do_not_call` while its call goes on: wait for the calls too.
    app.wait_for(Duration::from_secs(60), "every lead reaches an outcome and every call ends", |c| {
        support::all_leads_final(c) && count(c, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL") == 0
    })
    .await;
    // The final webhook frees the slot before the report with the price arrives.
    app.wait_for(Duration::from_secs(10), "answered calls have their price", |c| {
        count(c, "SELECT COUNT(*) FROM attempts WHERE status IN ('completed','voicemail') AND price IS NULL") == 0
    })
    .await;

    // The carrier created exactly one call per lead, each through Vapi's API from a
    // number of the account.
    let calls = sim.calls().await;
    assert_eq!(calls.len(), LEADS, "one call per lead");
    assert!(calls.iter().all(|c| c["api"] == "vapi"));
    let dialled: HashSet<&str> = calls.iter().map(|c| c["to"].as_str().unwrap()).collect();
    assert_eq!(dialled.len(), LEADS, "no lead dialled twice");
    let ledger_ids: HashSet<&str> = calls.iter().map(|c| c["call_id"].as_str().unwrap()).collect();
    assert_eq!(sim.ledger().await["forged_accepted"], 0);

    // Every lead has the outcome of its callee; the attempt carries Vapi's call id.
    let mut stmt = db
        .prepare(
            "SELECT l.phone, a.status, a.provider_call_id, a.duration_seconds, a.provider
             FROM attempts a JOIN leads l ON l.id = a.lead_id",
        )
        .unwrap();
    let rows: Vec<(String, String, String, Option<i64>, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), LEADS);
    for (phone, status, call_id, duration, provider) in &rows {
        let callee = callees[phone];
        assert_eq!(status, expected(callee), "{phone} ({callee:?})");
        assert!(ledger_ids.contains(call_id.as_str()), "{call_id} is not a call the carrier created");
        assert_eq!(provider, "vapi");
        if matches!(status.as_str(), "completed" | "voicemail") {
            // Sub-second simulated talk: 0 or 1 s, but known.
            assert!(duration.is_some(), "{phone}: answered call without a duration");
        }
    }
    let press_2: Vec<&String> = callees.iter().filter(|(_, c)| **c == Callee::Press2).map(|(n, _)| n).collect();
    assert!(!press_2.is_empty());
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM leads WHERE status = 'completed'"),
        count_of(&callees, "completed") - press_2.len() as i64,
        "every answered lead is completed, but those who opted out"
    );

    // The opt-out through the assistant: listed at once (source `assistant`), the lead
    // marked, and the assistant told so in the tool call's result.
    for phone in &press_2 {
        let dnc = app.get_json(&format!("/api/dnc/{phone}")).await;
        assert_eq!(dnc["listed"], true, "{phone}: {dnc}");
        let source: String = db.query_row("SELECT source FROM dnc WHERE phone = ?1", [phone], |r| r.get(0)).unwrap();
        assert_eq!(source, "assistant");
        let lead: String = db.query_row("SELECT status FROM leads WHERE phone = ?1", [phone], |r| r.get(0)).unwrap();
        assert_eq!(lead, "do_not_call", "{phone}");
        let call = calls.iter().find(|c| c["to"] == phone.as_str()).unwrap();
        let steps: Vec<String> = serde_json::from_value(call["steps"].clone()).unwrap();
        assert!(
            steps.contains(&"tool-calls: opt_out → The number has been removed from the calling list.".to_string()),
            "{phone}: {steps:?}"
        );
    }

    // A webhook without the secret, or with a wrong one, is refused and stores nothing;
    // the same message with the right secret is accepted (so the refusal is the check).
    let attempt_id: i64 = db.query_row("SELECT id FROM attempts ORDER BY id LIMIT 1", [], |r| r.get(0)).unwrap();
    let call_id: String =
        db.query_row("SELECT provider_call_id FROM attempts WHERE id = ?1", [attempt_id], |r| r.get(0)).unwrap();
    // A reason no simulated callee ends with, so the accepted copy is a new event.
    let body = json!({"message": {"type": "end-of-call-report", "endedReason": "assistant-ended-call",
        "call": {"id": call_id}}});
    let url = app.url(&format!("/webhooks/vapi?attempt_id={attempt_id}"));
    let events = || count(&db, "SELECT COUNT(*) FROM call_events");
    let before = (events(), status_of(&db, attempt_id));
    let post = |secret: Option<&str>| {
        let mut req = app.anon.post(&url).json(&body);
        if let Some(s) = secret {
            req = req.header("X-Vapi-Secret", s);
        }
        req.send()
    };
    assert_eq!(post(None).await.unwrap().status().as_u16(), 401);
    assert_eq!(post(Some("not-the-secret")).await.unwrap().status().as_u16(), 403);
    let bearer = app.anon.post(&url).bearer_auth("not-the-secret").json(&body).send().await.unwrap();
    assert_eq!(bearer.status().as_u16(), 403);
    assert_eq!((events(), status_of(&db, attempt_id)), before, "a refused webhook changed the store");
    let accepted = post(Some(dialer::provider::simulator::VAPI_WEBHOOK_SECRET)).await.unwrap();
    assert_eq!(accepted.status().as_u16(), 200);
    assert_eq!(events(), before.0 + 1, "the authenticated message is recorded");
    assert_eq!(status_of(&db, attempt_id), before.1, "a final status never changes");
    let replay = post(Some(dialer::provider::simulator::VAPI_WEBHOOK_SECRET)).await.unwrap();
    assert_eq!(replay.status().as_u16(), 200);
    assert_eq!(events(), before.0 + 1, "a replayed message is a no-op");

    // Scheduled again (as if an operator reset them), with a lead that may be dialled:
    // the claim's DNC check keeps the opted-out numbers from ever being dialled.
    let again: Vec<&String> =
        press_2.iter().copied().chain(callees.iter().find(|(_, c)| **c == Callee::Busy).map(|(n, _)| n)).collect();
    {
        let rw = rusqlite::Connection::open(dir.path().join("dialer.db")).unwrap();
        rw.busy_timeout(Duration::from_secs(5)).unwrap();
        for phone in &again {
            rw.execute("UPDATE leads SET status = 'pending', next_call_at = NULL WHERE phone = ?1", [phone]).unwrap();
        }
    }
    let ids: Vec<i64> = again
        .iter()
        .map(|p| db.query_row("SELECT id FROM leads WHERE phone = ?1", [p], |r| r.get(0)).unwrap())
        .collect();
    app.schedule_leads(&ids, 5).await;
    app.wait_for(Duration::from_secs(60), "the busy lead is dialled again", |c| {
        count(c, "SELECT COUNT(*) FROM attempts") == LEADS as i64 + 1 && support::all_leads_final(c)
    })
    .await;
    let calls = sim.calls().await;
    assert_eq!(calls.len(), LEADS + 1, "only the busy lead was dialled again");
    for phone in &press_2 {
        assert_eq!(calls.iter().filter(|c| c["to"] == phone.as_str()).count(), 1, "{phone} dialled again");
        let lead: String = db.query_row("SELECT status FROM leads WHERE phone = ?1", [phone], |r| r.get(0)).unwrap();
        assert_eq!(lead, "do_not_call", "{phone}");
    }
    app.stop();
}

fn count_of(callees: &HashMap<String, Callee>, outcome: &str) -> i64 {
    callees.values().filter(|c| expected(**c) == outcome).count() as i64
}

fn status_of(db: &rusqlite::Connection, attempt_id: i64) -> String {
    db.query_row("SELECT status FROM attempts WHERE id = ?1", [attempt_id], |r| r.get(0)).unwrap()
}

/// Vapi under the simulator's faults: 429s, 5xx before and after the call is created,
/// timeouts after it was created, duplicated, reordered and forged webhooks. Every
/// lead is dialled once by the carrier's ledger, none stays `unknown`, and each
/// attempt ends with the outcome of the call the carrier made.
#[tokio::test(flavor = "multi_thread")]
async fn vapi_under_faults_dials_each_lead_once_and_ends_consistently() {
    const LEADS: usize = 80;
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    let f = &mut config.simulator.faults;
    (f.rate_limited, f.server_error, f.server_error_after_create, f.timeout_after_create) = (0.05, 0.03, 0.03, 0.03);
    (f.duplicate_callbacks, f.reorder_callbacks, f.invalid_signatures) = (0.1, 0.1, 0.1);
    // Longer than the client waits (request_timeout_seconds below): the reply is lost.
    f.hang_seconds = 2.0;
    f.callback_delay_seconds = [0.0, 0.05];
    support::outcomes(&mut config, [0.4, 0.2, 0.15, 0.15, 0.1]);
    let sim = spawn_simulator(config.simulator.clone());
    sim.configure(&mut config, ProviderKind::Vapi);
    config.provider.request_timeout_seconds = 0.5;
    config.dialing.max_concurrent_calls = 20;
    config.dialing.max_call_seconds = 30;
    let app = spawn(config);
    app.ready().await;
    let (status, imported) = app.post_json("/api/provider/numbers/import", json!({"all": true})).await;
    assert_eq!(status, 200, "{imported}");
    assert_eq!(app.import_csv(&leads_csv(LEADS)).await["imported"], LEADS);
    let start = Utc::now() + chrono::Duration::seconds(1);
    let body = json!({"select": {"status": "pending"}, "start_at": start.to_rfc3339(), "parallel_calls": 40,
                      "interval_seconds": 1});
    let (status, created) = app.post_json("/api/schedule-bulk-calls", body).await;
    assert_eq!(status, 201, "{created}");
    app.wait_for(Duration::from_secs(180), "every lead final with no call open", |c| {
        support::all_leads_final(c) && count(c, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL") == 0
    })
    .await;

    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts WHERE status = 'unknown'"), 0, "no attempt stays unknown");
    assert_eq!(count(&db, "SELECT COUNT(DISTINCT lead_id) FROM attempts"), LEADS as i64, "no lead lost");
    let ledger = sim.ledger().await;
    assert_eq!(ledger["forged_accepted"], 0, "a webhook with a wrong secret was accepted");
    let calls = ledger["calls"].as_array().unwrap();
    let by_to: HashMap<&str, &serde_json::Value> = calls.iter().map(|c| (c["to"].as_str().unwrap(), c)).collect();
    assert_eq!(calls.len(), LEADS, "the carrier created exactly one call per lead");
    assert_eq!(by_to.len(), LEADS, "no lead dialled twice");
    let mut stmt = db.prepare("SELECT to_number, provider_call_id, status FROM attempts").unwrap();
    let attempts: Vec<(String, Option<String>, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    assert_eq!(attempts.len(), LEADS, "one attempt per lead");
    for (to, call_id, status) in &attempts {
        let call = by_to[to.as_str()];
        assert_eq!(call_id.as_deref(), call["call_id"].as_str(), "{to}: the attempt follows the carrier's call");
        let callee: Callee = serde_json::from_value(call["callee"].clone()).unwrap();
        assert_eq!(status, expected(callee), "{to} ({callee:?}, ended {})", call["ended"]);
    }
    app.stop();
}
