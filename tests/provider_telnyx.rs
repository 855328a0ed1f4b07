//! Issue 5's Telnyx acceptance: the main job with `provider.kind = "telnyx"` against
//! the simulated carrier running as its own server (Telnyx Call Control API, Ed25519
//! webhooks), every scripted callee's command sequence and outcome, and forged
//! webhooks refused.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use dialer::config::{Callee, Faults, ProviderKind, Simulator};
use dialer::provider::telnyx::signature;
use serde_json::{Value, json};
use support::sim::SimHandle;
use support::{TestApp, count};

const MESSAGE: &str = "Hello from Acme. Press 1 to talk to us, or 2 to be removed.";
const VOICEMAIL: &str = "Hello, this is Acme. Please call us back.";
const AGENT: &str = "+14152370100";

async fn app_for(sim: &SimHandle, dir: &std::path::Path) -> TestApp {
    let mut config = support::config(dir);
    sim.configure(&mut config, ProviderKind::Telnyx);
    let app = support::spawn(config);
    app.ready().await;
    app
}

/// The attempt status a callee must end in with the default campaign (AMD
/// `detect_message_end`, no voicemail message: a machine is hung up on).
fn expected_status(callee: &str) -> &'static str {
    match callee {
        "silence" | "press_1" | "press_2" => "completed",
        "voicemail" | "fax" => "voicemail",
        "busy" => "busy",
        "no_answer" => "no_answer",
        "failed" => "failed",
        other => panic!("unexpected callee {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_job_runs_on_telnyx_with_one_call_per_lead_and_outcomes_matching_the_callees() {
    let settings = Simulator {
        ring_seconds: [0.05, 0.2],
        talk_seconds: [0.05, 0.2],
        // Refused dials are re-sent (nothing was created); webhooks come twice, late,
        // out of order, or forged first.
        faults: Faults {
            rate_limited: 0.05,
            duplicate_callbacks: 0.1,
            reorder_callbacks: 0.05,
            invalid_signatures: 0.05,
            hang_seconds: 30.0,
            ..Faults::default()
        },
        ..Simulator::default()
    };
    let sim = support::sim::spawn_simulator(settings);
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(&sim, dir.path()).await;
    let summary = app.import_csv(&support::leads_csv(20)).await;
    assert_eq!(summary["imported"], 20);
    support::sim::schedule_pending(&app, 1).await;
    let ledger = sim.settle(&app, 20).await;
    assert!(ledger.values().flatten().all(|c| c["api"] == "telnyx"), "every call through the Telnyx API");

    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts"), 20);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL"), 0);
    assert_eq!(ledger.len(), 20, "every lead was dialled");
    let mut stmt = db.prepare("SELECT to_number, provider_call_id, status, provider FROM attempts").unwrap();
    let rows: Vec<(String, String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (to, call_id, status, provider) in rows {
        let calls = &ledger[&to];
        assert_eq!(calls.len(), 1, "{to} was dialled {} times", calls.len());
        assert_eq!(calls[0]["call_id"], call_id.as_str(), "the attempt holds the call's call_control_id");
        assert_eq!(provider, "telnyx");
        let callee = calls[0]["callee"].as_str().unwrap();
        assert_eq!(status, expected_status(callee), "{to} ({callee}): {:?}", calls[0]["steps"]);
    }
    assert_eq!(sim.ledger().await["forged_accepted"], 0, "a forged webhook was accepted");
    app.stop();
}

const CALLEES: [(&str, Callee); 8] = [
    ("+14152370001", Callee::Press1),
    ("+14152370002", Callee::Press1AgentBusy),
    ("+14152370003", Callee::Press2),
    ("+14152370004", Callee::Silence),
    ("+14152370005", Callee::Voicemail),
    ("+14152370006", Callee::Fax),
    ("+14152370007", Callee::Busy),
    ("+14152370008", Callee::NoAnswer),
];

/// The commands the simulator must have run for `callee` (AMD `detect_message_end`).
fn expected_steps(callee: Callee) -> Vec<String> {
    let speak = |t: &str| format!("Speak: {t}");
    let heard = |s: &mut Vec<String>| s.extend(["Gather".to_string(), speak(MESSAGE)]);
    let mut s = vec![];
    match callee {
        Callee::Press1 | Callee::Press1AgentBusy => {
            s.push("AMD: human".into());
            heard(&mut s);
            s.extend(["Digits: 1".into(), format!("Transfer: {AGENT}")]);
            if callee == Callee::Press1 {
                s.push("Bridged".into());
            } else {
                s.extend([
                    "Agent: user_busy".into(),
                    speak("Sorry, no one is available to take your call. Goodbye."),
                    "Hangup".into(),
                ]);
            }
        }
        Callee::Press2 => {
            s.push("AMD: human".into());
            heard(&mut s);
            s.extend(["Digits: 2".into(), speak("You have been removed from our list. Goodbye."), "Hangup".into()]);
        }
        Callee::Silence => {
            s.push("AMD: human".into());
            heard(&mut s);
            heard(&mut s);
            s.extend([speak("Goodbye."), "Hangup".into()]);
        }
        Callee::Voicemail => {
            s.extend(["AMD: machine".into(), "AMD: beep_detected".into(), speak(VOICEMAIL), "Hangup".into()])
        }
        Callee::Fax => s.extend(["AMD: fax_detected".into(), "Hangup".into()]),
        _ => {}
    }
    s
}

/// (attempt status, answered_by, digits, transfer_result).
fn expected_outcome(
    callee: Callee,
) -> (&'static str, Option<&'static str>, Option<&'static str>, Option<&'static str>) {
    match callee {
        Callee::Press1 => ("completed", Some("human"), Some("1"), Some("connected")),
        Callee::Press1AgentBusy => ("transfer_failed", Some("human"), Some("1"), Some("failed")),
        Callee::Press2 => ("completed", Some("human"), Some("2"), None),
        Callee::Silence => ("completed", Some("human"), None, None),
        Callee::Voicemail => ("voicemail", Some("machine"), None, None),
        Callee::Fax => ("voicemail", Some("fax"), None, None),
        Callee::Busy => ("busy", None, None, None),
        _ => ("no_answer", None, None, None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_callees_get_their_commands_and_outcomes_and_press_2_lands_on_the_dnc_list() {
    let settings = Simulator {
        callees: CALLEES.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        ring_seconds: [0.05, 0.1],
        talk_seconds: [0.05, 0.1],
        ..Simulator::default()
    };
    let sim = support::sim::spawn_simulator(settings);
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(&sim, dir.path()).await;
    scripted_campaign(&app).await;
    support::sim::schedule_pending(&app, 1).await;
    let ledger = sim.settle(&app, CALLEES.len()).await;
    assert_scripted_outcomes(&app, &ledger);
    app.stop();
}

/// The scripted callees' campaign: the message, the agent, the voicemail, AMD.
async fn scripted_campaign(app: &TestApp) {
    let flow = json!({"settings": {"max_attempts": 1, "message": MESSAGE, "agent_number": AGENT,
        "voicemail_message": VOICEMAIL, "amd": "detect_message_end"}});
    let resp = app.http.patch(app.url("/api/campaigns/1")).json(&flow).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut csv = String::from("number,name\n");
    for (number, callee) in CALLEES {
        csv.push_str(&format!("{number},{}\n", callee.as_str()));
    }
    assert_eq!(app.import_csv(&csv).await["imported"], 8);
}

/// Each scripted callee heard its commands and has its outcome; pressing 2 listed
/// the number (source keypad) and the lead is do_not_call.
fn assert_scripted_outcomes(app: &TestApp, ledger: &BTreeMap<String, Vec<Value>>) {
    let db = app.db();
    for (number, callee) in CALLEES {
        let calls = &ledger[number];
        assert_eq!(calls.len(), 1, "{number} dialled once");
        let steps: Vec<String> = serde_json::from_value(calls[0]["steps"].clone()).unwrap();
        assert_eq!(steps, expected_steps(callee), "{callee:?}");
        let got: (String, Option<String>, Option<String>, Option<String>) = db
            .query_row(
                "SELECT status, answered_by, digits, transfer_result FROM attempts WHERE to_number = ?1",
                [number],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        let (status, answered_by, digits, transfer) = expected_outcome(callee);
        let o = |v: Option<&str>| v.map(str::to_string);
        assert_eq!(got, (status.to_string(), o(answered_by), o(digits), o(transfer)), "{callee:?}");
    }
    // Pressing 2 listed the number (source keypad) and the lead is do_not_call.
    let press_2 = CALLEES[2].0;
    let source: String = db.query_row("SELECT source FROM dnc WHERE phone = ?1", [press_2], |r| r.get(0)).unwrap();
    assert_eq!(source, "keypad");
    let lead: String = db.query_row("SELECT status FROM leads WHERE phone = ?1", [press_2], |r| r.get(0)).unwrap();
    assert_eq!(lead, "do_not_call");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM dnc"), 1, "only the callee who pressed 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_whose_dial_got_no_reply_are_adopted_and_get_the_whole_call_flow() {
    // Every dial creates its call but the reply is lost (the attempt is `unknown`
    // before the call's first webhook arrives): the webhooks adopt the call and the
    // flow runs as for any call (an `unknown` attempt is not a call that is over).
    let settings = Simulator {
        callees: CALLEES.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        ring_seconds: [0.05, 0.1],
        talk_seconds: [0.05, 0.1],
        faults: Faults {
            timeout_after_create: 1.0,
            hang_seconds: 1.0,
            callback_delay_seconds: [0.4, 0.5],
            ..Faults::default()
        },
        ..Simulator::default()
    };
    let sim = support::sim::spawn_simulator(settings);
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    sim.configure(&mut config, ProviderKind::Telnyx);
    config.provider.request_timeout_seconds = 0.2;
    let app = support::spawn(config);
    app.ready().await;
    scripted_campaign(&app).await;
    support::sim::schedule_pending(&app, 1).await;
    app.wait_for(Duration::from_secs(90), "every attempt ends", |c| {
        support::all_leads_final(c) && count(c, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL") == 0
    })
    .await;
    let ledger = sim.settle(&app, CALLEES.len()).await;
    let errors = count(&app.db(), "SELECT COUNT(*) FROM attempts WHERE error LIKE '%no reply to create-call%'");
    assert_eq!(errors, CALLEES.len() as i64, "every dial's reply was lost");
    assert_scripted_outcomes(&app, &ledger);
    app.stop();
}

/// A Telnyx-style event for a made-up call of attempt 1.
fn event_body() -> Vec<u8> {
    let state = base64::engine::general_purpose::STANDARD.encode(r#"{"attempt_id":1,"step":"dial"}"#);
    serde_json::to_vec(&json!({"data": {"record_type": "event", "event_type": "call.hangup", "id": "evt-forged",
        "occurred_at": "2026-01-01T00:00:00Z", "payload": {"call_control_id": "v3:forged", "client_state": state,
        "hangup_cause": "normal_clearing"}}}))
    .unwrap()
}

async fn post(app: &TestApp, body: &[u8], headers: &[(&str, String)]) -> u16 {
    let mut req =
        app.http.post(app.url("/webhooks/telnyx")).header("content-type", "application/json").body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_unsigned_webhooks_are_refused_and_change_nothing() {
    let sim = support::sim::spawn_simulator(Simulator { ring_seconds: [30.0, 30.0], ..Simulator::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(&sim, dir.path()).await;
    let body = event_body();
    let now = chrono::Utc::now().timestamp().to_string();
    let forger = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let real = ed25519_dalek::SigningKey::from_bytes(&dialer::provider::simulator::TELNYX_SIGNING_SEED);
    let sig = |key, ts: &str, body: &[u8]| signature::sign(key, ts, body);
    let stale = (chrono::Utc::now().timestamp() - 301).to_string();
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    type Headers<'a> = Vec<(&'a str, String)>;
    let cases: Vec<(&str, Vec<u8>, Headers)> = vec![
        ("unsigned", body.clone(), vec![]),
        (
            "another key",
            body.clone(),
            vec![("telnyx-signature-ed25519", sig(&forger, &now, &body)), ("telnyx-timestamp", now.clone())],
        ),
        (
            "stale",
            body.clone(),
            vec![("telnyx-signature-ed25519", sig(&real, &stale, &body)), ("telnyx-timestamp", stale.clone())],
        ),
        (
            "tampered body",
            tampered,
            vec![("telnyx-signature-ed25519", sig(&real, &now, &body)), ("telnyx-timestamp", now.clone())],
        ),
        (
            "not base64",
            body.clone(),
            vec![("telnyx-signature-ed25519", "%%%".into()), ("telnyx-timestamp", now.clone())],
        ),
    ];
    for (what, body, headers) in &cases {
        assert_eq!(post(&app, body, headers).await, 403, "{what}");
    }
    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM call_events"), 0, "nothing stored");
    // The same event signed with the right key is accepted (and, naming no real call, ignored).
    let signed = vec![("telnyx-signature-ed25519", sig(&real, &now, &body)), ("telnyx-timestamp", now.clone())];
    assert_eq!(post(&app, &body, &signed).await, 200);
    // A signed body that is not an event is a 400.
    let junk = b"{\"hello\":1}";
    let junk_signed = vec![("telnyx-signature-ed25519", sig(&real, &now, junk)), ("telnyx-timestamp", now.clone())];
    assert_eq!(post(&app, junk, &junk_signed).await, 400);
    // The Twilio route refuses everything while Telnyx is configured.
    let resp = app
        .http
        .post(app.url("/webhooks/twilio/status?attempt_id=1"))
        .form(&[("CallSid", "CA1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    app.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dials_without_a_reply_are_adopted_from_their_webhooks_or_closed_unknown_never_redialled() {
    // Every dial hangs past the client's patience: half were created (their webhooks,
    // which name the attempt, adopt the call), half were not. Telnyx lists only live
    // calls, so the reconciler cannot tell "never created" from "created and ended
    // with every webhook lost": those attempts end `unknown` and are never redialled.
    let settings = Simulator {
        ring_seconds: [0.05, 0.1],
        talk_seconds: [0.05, 0.1],
        faults: Faults {
            timeout_before_create: 0.5,
            timeout_after_create: 0.5,
            hang_seconds: 2.0,
            ..Faults::default()
        },
        ..Simulator::default()
    };
    let sim = support::sim::spawn_simulator(settings);
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    sim.configure(&mut config, ProviderKind::Telnyx);
    config.provider.request_timeout_seconds = 0.5;
    let app = support::spawn(config);
    app.ready().await;
    // 16 leads: at least 16 dials, so both faults occur (all but certainly).
    app.import_csv(&support::leads_csv(16)).await;
    support::sim::schedule_pending(&app, 1).await;
    app.wait_for(Duration::from_secs(60), "every attempt ends", |c| {
        support::all_leads_final(c) && count(c, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL") == 0
    })
    .await;
    let ledger = sim.settle(&app, 0).await;
    let faults = sim.ledger().await["faults"].clone();
    assert!(faults["timeout_before_create"].as_u64().unwrap() >= 1, "a dial was lost before creation: {faults}");
    assert!(faults["timeout_after_create"].as_u64().unwrap() >= 1, "a dial was lost after creation: {faults}");
    let lost = faults["timeout_before_create"].as_u64().unwrap() as usize;
    assert_eq!(ledger.len() + lost, 16, "each lead dialled once: created, or lost before creation ({faults})");
    let db = app.db();
    let mut stmt = db.prepare("SELECT to_number, provider_call_id, status FROM attempts").unwrap();
    let rows: Vec<(String, Option<String>, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 16, "one attempt per lead");
    for (to, call_id, status) in rows {
        match ledger.get(&to) {
            Some(calls) => {
                assert_eq!(calls.len(), 1, "{to} dialled twice");
                assert_eq!(call_id.as_deref(), calls[0]["call_id"].as_str(), "{to}: the call was adopted");
                assert_eq!(status, expected_status(calls[0]["callee"].as_str().unwrap()), "{to}");
            }
            None => assert_eq!((call_id, status.as_str()), (None, "unknown"), "{to}: no call was created"),
        }
    }
    app.stop();
}
