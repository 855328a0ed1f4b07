//! Issue 5's first acceptance test: the Twilio call flow against the simulated
//! carrier running as its own server in Twilio mode. One lead per scripted callee,
//! a campaign with a message, an agent number and a voicemail message; each callee
//! must produce exactly the TwiML sequence of the contract (the simulator's ledger
//! records every verb it ran) and the right outcome on the attempt; the callee who
//! pressed 2 is on the DNC list and is never dialled again, however it is scheduled.

mod support;

use std::time::Duration;

use dialer::config::{Callee, Faults, ProviderKind, Simulator};
use serde_json::{Value, json};
use support::TestApp;
use support::sim::SimHandle;

const MESSAGE: &str = "Hello from Acme. Press 1 to talk to us, or 2 to be removed.";
const VOICEMAIL: &str = "Hello, this is Acme. Please call us back.";
const AGENT: &str = "+14152370100";

/// The callees, one lead each (415-237: a valid exchange, never 555).
const CALLEES: [(&str, Callee); 10] = [
    ("+14152370001", Callee::Press1),
    ("+14152370002", Callee::Press1AgentBusy),
    ("+14152370003", Callee::Press1AgentNoAnswer),
    ("+14152370004", Callee::Press2),
    ("+14152370005", Callee::Silence),
    ("+14152370006", Callee::Voicemail),
    ("+14152370007", Callee::Fax),
    ("+14152370008", Callee::Busy),
    ("+14152370009", Callee::NoAnswer),
    ("+14152370010", Callee::Failed),
];
const PRESS_2: &str = "+14152370004";

/// A simulator for `callees`. Status callbacks are duplicated, reordered and sent
/// first with a forged signature now and then: the outcomes must not change.
fn simulator(callees: &[(&str, Callee)]) -> SimHandle {
    let faults = Faults {
        duplicate_callbacks: 0.3,
        reorder_callbacks: 0.3,
        invalid_signatures: 0.3,
        ..Simulator::default().faults
    };
    let settings = Simulator {
        callees: callees.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        ring_seconds: [0.05, 0.1],
        talk_seconds: [0.05, 0.1],
        faults,
        ..Simulator::default()
    };
    support::sim::spawn_simulator(settings)
}

async fn app_for(sim: &SimHandle, dir: &std::path::Path) -> TestApp {
    let mut config = support::config(dir);
    sim.configure(&mut config, ProviderKind::Twilio);
    let app = support::spawn(config);
    app.ready().await;
    app
}

/// Creates a campaign with the call flow's settings; returns its id.
async fn campaign(app: &TestApp, name: &str, amd: &str) -> i64 {
    let settings = json!({
        "max_attempts": 1,
        "message": MESSAGE,
        "agent_number": AGENT,
        "voicemail_message": VOICEMAIL,
        "amd": amd,
    });
    let (status, body) = app.post_json("/api/campaigns", json!({"name": name, "settings": settings})).await;
    assert_eq!(status, 201, "{body}");
    body["campaign"]["id"].as_i64().expect("campaign id")
}

fn steps(call: &Value) -> Vec<String> {
    call["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// The contract's TwiML sequence for `callee` with synchronous AMD (`detect_message_end`).
fn expected_steps(callee: Callee) -> Vec<String> {
    let say = |t: &str| format!("Say: {t}");
    let message = ["Gather".to_string(), say(MESSAGE)];
    let transfer = |pressed: bool| -> Vec<String> {
        let mut s = vec!["AMD: human".to_string()];
        s.extend(message.clone());
        s.extend([String::from("Digits: 1"), say("Connecting you now."), format!("Dial: {AGENT}")]);
        if !pressed {
            s.push(say("Sorry, no one is available to take your call. Goodbye."));
        }
        s.push("Hangup".into());
        s
    };
    match callee {
        Callee::Press1 => transfer(true),
        Callee::Press1AgentBusy | Callee::Press1AgentNoAnswer => transfer(false),
        Callee::Press2 => {
            let mut s = vec!["AMD: human".to_string()];
            s.extend(message.clone());
            s.extend(["Digits: 2".into(), say("You have been removed from our list. Goodbye."), "Hangup".into()]);
            s
        }
        Callee::Silence => {
            let mut s = vec!["AMD: human".to_string()];
            for _ in 0..2 {
                s.extend(message.clone());
                s.push("Redirect".into());
            }
            s.extend([say("Goodbye."), "Hangup".into()]);
            s
        }
        Callee::Voicemail => vec!["AMD: machine_end_beep".into(), say(VOICEMAIL), "Hangup".into()],
        Callee::Fax => vec!["AMD: fax".into(), "Hangup".into()],
        Callee::Busy | Callee::NoAnswer | Callee::Failed => vec![],
    }
}

/// (attempt status, answered_by, digits, transfer_result) the dialer must store.
fn expected_outcome(
    callee: Callee,
) -> (&'static str, Option<&'static str>, Option<&'static str>, Option<&'static str>) {
    match callee {
        Callee::Press1 => ("completed", Some("human"), Some("1"), Some("connected")),
        Callee::Press1AgentBusy | Callee::Press1AgentNoAnswer => {
            ("transfer_failed", Some("human"), Some("1"), Some("failed"))
        }
        Callee::Press2 => ("completed", Some("human"), Some("2"), None),
        Callee::Silence => ("completed", Some("human"), None, None),
        Callee::Voicemail => ("voicemail", Some("machine_end_beep"), None, None),
        Callee::Fax => ("voicemail", Some("fax"), None, None),
        Callee::Busy => ("busy", None, None, None),
        Callee::NoAnswer => ("no_answer", None, None, None),
        Callee::Failed => ("failed", None, None, None),
    }
}

type Outcome = (String, Option<String>, Option<String>, Option<String>);

/// The attempts to `number`, oldest first: (status, answered_by, digits, transfer_result).
fn attempts(app: &TestApp, number: &str) -> Vec<Outcome> {
    let db = app.db();
    let mut stmt = db
        .prepare(
            "SELECT status, answered_by, digits, transfer_result FROM attempts
             WHERE to_number = ?1 ORDER BY id",
        )
        .unwrap();
    stmt.query_map([number], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn owned((status, answered_by, digits, transfer): (&str, Option<&str>, Option<&str>, Option<&str>)) -> Outcome {
    let o = |v: Option<&str>| v.map(str::to_string);
    (status.to_string(), o(answered_by), o(digits), o(transfer))
}

fn import(callees: &[(&str, Callee)]) -> String {
    let mut csv = String::from("number,name\n");
    for (number, callee) in callees {
        csv.push_str(&format!("{number},{}\n", callee.as_str()));
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scripted_callee_gets_its_twiml_and_outcome_and_press_2_is_never_called_again() {
    let sim = simulator(&CALLEES);
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(&sim, dir.path()).await;
    let first = campaign(&app, "Call flow", "detect_message_end").await;
    let imported = app.import_csv(&import(&CALLEES)).await;
    assert_eq!(imported["imported"], 10, "{imported}");
    support::sim::schedule_pending(&app, first).await;

    let ledger = sim.settle(&app, CALLEES.len()).await;
    for (number, callee) in CALLEES {
        let calls = &ledger[number];
        assert_eq!(calls.len(), 1, "{number} ({}) dialled once: {calls:#?}", callee.as_str());
        let call = &calls[0];
        assert_eq!(steps(call), expected_steps(callee), "TwiML run for {}", callee.as_str());
        let ended = match callee {
            Callee::Busy => "busy",
            Callee::NoAnswer => "no-answer",
            Callee::Failed => "failed",
            _ => "completed",
        };
        assert_eq!(call["ended"], ended, "{}", callee.as_str());
        assert_eq!(attempts(&app, number), vec![owned(expected_outcome(callee))], "attempt for {}", callee.as_str());
    }
    assert_eq!(sim.ledger().await["forged_accepted"], 0, "a forged status callback was accepted");
    // An answered call is priced from the final callback.
    let priced =
        support::count(&app.db(), "SELECT COUNT(*) FROM attempts WHERE price = '-0.01300' AND price_unit = 'USD'");
    assert_eq!(priced, 7, "the seven answered calls carry Twilio's price");

    // The opt-out: on the DNC list from the keypad, the lead marked.
    let dnc = app.get_json(&format!("/api/dnc/{PRESS_2}")).await;
    assert_eq!(dnc["listed"], true, "{dnc}");
    let lead_status: String =
        app.db().query_row("SELECT status FROM leads WHERE phone = ?1", [PRESS_2], |r| r.get(0)).unwrap();
    assert_eq!(lead_status, "do_not_call");

    // Every lead again, the opted-out one included (as if an operator reset them):
    // the claim's DNC check must keep that one from ever being dialled.
    {
        let db = rusqlite::Connection::open(dir.path().join("dialer.db")).unwrap();
        db.busy_timeout(Duration::from_secs(5)).unwrap();
        db.execute("UPDATE leads SET status = 'pending', next_call_at = NULL", []).unwrap();
    }
    let second = campaign(&app, "Call flow again", "detect_message_end").await;
    support::sim::schedule_pending(&app, second).await;
    let ledger = sim.settle(&app, 2 * CALLEES.len() - 1).await;
    for (number, callee) in CALLEES {
        let dialled = if number == PRESS_2 { 1 } else { 2 };
        assert_eq!(ledger[number].len(), dialled, "{number} ({})", callee.as_str());
    }
    assert_eq!(attempts(&app, PRESS_2).len(), 1, "no second attempt for the opted-out number");
    let ledger = sim.calls().await;
    assert_eq!(ledger.len(), 2 * CALLEES.len() - 1, "no call beyond the expected ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_amd_drops_the_voicemail_through_modify_call() {
    let callees =
        [("+14152370006", Callee::Voicemail), ("+14152370007", Callee::Fax), ("+14152370001", Callee::Press1)];
    let sim = simulator(&callees);
    let dir = tempfile::tempdir().unwrap();
    let app = app_for(&sim, dir.path()).await;
    let id = campaign(&app, "Async AMD", "async").await;
    app.import_csv(&import(&callees)).await;
    support::sim::schedule_pending(&app, id).await;
    let ledger = sim.settle(&app, callees.len()).await;

    let message = ["Gather".to_string(), format!("Say: {MESSAGE}")];
    let with =
        |rest: &[&str]| -> Vec<String> { message.iter().cloned().chain(rest.iter().map(|s| s.to_string())).collect() };
    let vm = format!("Say: {VOICEMAIL}");
    let dial = format!("Dial: {AGENT}");
    let expected = [
        // The verdict arrives while the message plays; the dialer redirects the call
        // (Modify Call with Url) to the voicemail drop.
        (
            callees[0].0,
            with(&["AMD: machine_end_beep", &vm, "Hangup"]),
            owned(("voicemail", Some("machine_end_beep"), None, None)),
        ),
        // A fax: the dialer hangs up by Modify Call (Status=completed).
        (callees[1].0, with(&["AMD: fax"]), owned(("voicemail", Some("fax"), None, None))),
        (
            callees[2].0,
            with(&["AMD: human", "Digits: 1", "Say: Connecting you now.", &dial, "Hangup"]),
            owned(("completed", Some("human"), Some("1"), Some("connected"))),
        ),
    ];
    for (number, steps_expected, outcome) in expected {
        let calls = &ledger[number];
        assert_eq!(calls.len(), 1, "{number}: {calls:#?}");
        assert_eq!(steps(&calls[0]), steps_expected, "{number}");
        assert_eq!(calls[0]["ended"], "completed", "{number}");
        assert_eq!(attempts(&app, number), vec![outcome], "{number}");
    }
}
