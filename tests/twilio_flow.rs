//! The Twilio call flow's webhooks through real HTTP: signed forms posted to a running
//! app about real attempts (placed through the simulated carrier, which keeps them
//! ringing so the test drives the call), the TwiML answered, what is stored. And the
//! REST side of the flow (Modify Call, IncomingPhoneNumbers paging, the reconciler's
//! call list) against the stand-in Twilio server of `support/fake_twilio.rs`.

mod support;

use std::time::Duration;

use chrono::Utc;
use dialer::provider::Provider;
use dialer::provider::simulator::AUTH_TOKEN;
use dialer::provider::twilio::signature;
use serde_json::json;
use support::fake_twilio::*;
use support::{TestApp, count, leads_csv, spawn};

const H: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
const AGENT: &str = "+14152370100";

/// An app whose calls ring for 30 s (the test plays the carrier's part meanwhile),
/// with a campaign that has a message, an agent and a voicemail message, and `n`
/// attempts placed. Returns (attempt id, call sid, lead phone, caller ID) per attempt.
async fn ringing_calls(n: usize) -> (tempfile::TempDir, TestApp, Vec<(i64, String, String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.simulator.ring_seconds = [30.0, 30.0];
    support::outcomes(&mut config, [1.0, 0.0, 0.0, 0.0, 0.0]);
    let app = spawn(config);
    app.ready().await;
    let calls = place_calls(&app, n, None).await;
    (dir, app, calls)
}

/// Gives the Default campaign a message, an agent, a voicemail message (and `amd`
/// when given), schedules `n` leads and waits until every call is created. Returns
/// (attempt id, call sid, lead phone, caller ID) per attempt.
async fn place_calls(app: &TestApp, n: usize, amd: Option<&str>) -> Vec<(i64, String, String, String)> {
    let mut settings = json!({"max_attempts": 1, "message": "Hello & welcome", "agent_number": AGENT,
        "voicemail_message": "Please call us back."});
    if let Some(amd) = amd {
        settings["amd"] = json!(amd);
    }
    let settings = json!({ "settings": settings });
    let resp = app.http.patch(app.url("/api/campaigns/1")).json(&settings).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    app.import_csv(&leads_csv(n)).await;
    let leads = app.get_json("/api/leads?limit=500").await;
    let ids: Vec<i64> = leads["leads"].as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect();
    let body =
        json!({"lead_ids": ids, "start_at": Utc::now().to_rfc3339(), "parallel_calls": n, "interval_seconds": 1});
    assert_eq!(app.post_json("/api/schedule-bulk-calls", body).await.0, 201);
    app.wait_for(Duration::from_secs(20), "every call created", |c| {
        count(c, "SELECT COUNT(*) FROM attempts WHERE provider_call_id IS NOT NULL") == n as i64
    })
    .await;
    let db = app.db();
    let mut stmt =
        db.prepare("SELECT id, provider_call_id, to_number, caller_number FROM attempts ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// Form pairs as posted.
type Form<'a> = Vec<(&'a str, &'a str)>;

/// Posts a Twilio-style webhook signed with `token` to `/webhooks/twilio/{path_and_query}`.
async fn post(app: &TestApp, path_and_query: &str, params: &[(&str, &str)], token: &str) -> (u16, String) {
    let url = app.url(&format!("/webhooks/twilio/{path_and_query}"));
    let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let sig = signature::sign(token, &url, &pairs);
    let resp = app.http.post(&url).header("X-Twilio-Signature", sig).form(&pairs).send().await.unwrap();
    let status = resp.status().as_u16();
    if status == 200 {
        assert_eq!(resp.headers()["content-type"], "text/xml");
    }
    (status, resp.text().await.unwrap())
}

fn column(app: &TestApp, sql: &str, id: i64) -> Option<String> {
    app.db().query_row(sql, [id], |r| r.get(0)).unwrap()
}

fn gather_twiml(base: &str, attempt: i64, round: u8, message: &str) -> String {
    let action = format!("{base}/webhooks/twilio/gather?attempt_id={attempt}&amp;round={round}");
    format!(
        "{H}<Response><Gather input=\"dtmf\" numDigits=\"1\" timeout=\"5\" action=\"{action}\" method=\"POST\">\
         <Say>{message}</Say></Gather><Redirect method=\"POST\">{action}</Redirect></Response>"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn message_gather_transfer_opt_out_and_voicemail_answer_the_contracts_twiml_and_store_the_outcome() {
    let (_dir, app, calls) = ringing_calls(3).await;
    let base = app.base.clone();

    // 1. A person: the message in a Gather; no key → once more; then 1 → the agent,
    // who is busy → apology; the final `completed` is stored as transfer_failed.
    let (a, sid, _, caller) = &calls[0];
    let sid = sid.as_str();
    let (s, twiml) =
        post(&app, &format!("voice?attempt_id={a}"), &[("CallSid", sid), ("AnsweredBy", "human")], AUTH_TOKEN).await;
    assert_eq!((s, twiml), (200, gather_twiml(&base, *a, 1, "Hello &amp; welcome")));
    assert!(column(&app, "SELECT CAST(connected_at AS TEXT) FROM attempts WHERE id = ?1", *a).is_some());
    let (s, twiml) = post(&app, &format!("gather?attempt_id={a}&round=1"), &[("CallSid", sid)], AUTH_TOKEN).await;
    assert_eq!((s, twiml), (200, gather_twiml(&base, *a, 2, "Hello &amp; welcome")));
    let (s, twiml) =
        post(&app, &format!("gather?attempt_id={a}&round=2"), &[("CallSid", sid), ("Digits", "1")], AUTH_TOKEN).await;
    let dial = format!(
        "{H}<Response><Say>Connecting you now.</Say><Dial callerId=\"{caller}\" timeout=\"20\" \
         action=\"{base}/webhooks/twilio/dial?attempt_id={a}\" method=\"POST\">{AGENT}</Dial></Response>"
    );
    assert_eq!((s, twiml), (200, dial), "the agent sees the rotated caller ID by default");
    let busy = [("CallSid", sid), ("DialCallStatus", "busy"), ("DialCallSid", "CAagent"), ("DialCallDuration", "0")];
    let (s, twiml) = post(&app, &format!("dial?attempt_id={a}"), &busy, AUTH_TOKEN).await;
    let sorry =
        format!("{H}<Response><Say>Sorry, no one is available to take your call. Goodbye.</Say><Hangup/></Response>");
    assert_eq!((s, twiml), (200, sorry));
    let done = [
        ("CallSid", sid),
        ("CallStatus", "completed"),
        ("SequenceNumber", "9"),
        ("CallDuration", "14"),
        ("Price", "-0.01300"),
        ("PriceUnit", "USD"),
    ];
    assert_eq!(
        post(&app, &format!("status?attempt_id={a}"), &done, AUTH_TOKEN).await,
        (200, format!("{H}<Response/>"))
    );
    let row: (String, String, String, String, String, i64) = app
        .db()
        .query_row(
            "SELECT a.status, a.digits, a.transfer_result, a.price, l.status, a.duration_seconds
             FROM attempts a JOIN leads l ON l.id = a.lead_id WHERE a.id = ?1",
            [a],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        ("transfer_failed".into(), "1".into(), "failed".into(), "-0.01300".into(), "transfer_failed".into(), 14)
    );
    let lead = app
        .get_json(&format!(
            "/api/leads/{}",
            app.db().query_row("SELECT lead_id FROM attempts WHERE id = ?1", [a], |r| r.get::<_, i64>(0)).unwrap()
        ))
        .await;
    let attempt = &lead["attempts"][0];
    assert_eq!(
        (&attempt["digits"], &attempt["transfer_result"], &attempt["price_unit"]),
        (&json!("1"), &json!("failed"), &json!("USD"))
    );
    assert!(attempt["next_step"].as_str().unwrap().contains("transfer_failed is not among"), "{attempt}");

    // 2. Press 2: DNC at once (before the reply), lead do_not_call, kept after the end.
    let (b, sid, phone, _) = &calls[1];
    let sid = sid.as_str();
    post(&app, &format!("voice?attempt_id={b}"), &[("CallSid", sid)], AUTH_TOKEN).await;
    let (s, twiml) =
        post(&app, &format!("gather?attempt_id={b}&round=1"), &[("CallSid", sid), ("Digits", "2")], AUTH_TOKEN).await;
    assert_eq!(
        (s, twiml),
        (200, format!("{H}<Response><Say>You have been removed from our list. Goodbye.</Say><Hangup/></Response>"))
    );
    let source: String =
        app.db().query_row("SELECT source FROM dnc WHERE phone = ?1", [phone], |r| r.get(0)).expect("listed at once");
    assert_eq!(source, "keypad");
    assert_eq!(count(&app.db(), "SELECT COUNT(*) FROM dnc_events WHERE action = 'added' AND source = 'keypad'"), 1);
    let lead_status = "SELECT l.status FROM leads l JOIN attempts a ON a.lead_id = l.id WHERE a.id = ?1";
    assert_eq!(column(&app, lead_status, *b).as_deref(), Some("do_not_call"));
    let done = [("CallSid", sid), ("CallStatus", "completed"), ("SequenceNumber", "9"), ("CallDuration", "6")];
    assert_eq!(post(&app, &format!("status?attempt_id={b}"), &done, AUTH_TOKEN).await.0, 200);
    assert_eq!(column(&app, "SELECT status FROM attempts WHERE id = ?1", *b).as_deref(), Some("completed"));
    assert_eq!(column(&app, "SELECT digits FROM attempts WHERE id = ?1", *b).as_deref(), Some("2"));
    assert_eq!(column(&app, lead_status, *b).as_deref(), Some("do_not_call"), "the final status keeps the opt-out");

    // 3. Machines: after the beep → the voicemail drop, not a live answer; machine_start
    // (no beep known) and fax → hang up.
    let (c, sid, _, _) = &calls[2];
    let sid = sid.as_str();
    let (s, twiml) = post(
        &app,
        &format!("voice?attempt_id={c}"),
        &[("CallSid", sid), ("AnsweredBy", "machine_end_beep")],
        AUTH_TOKEN,
    )
    .await;
    assert_eq!((s, twiml), (200, format!("{H}<Response><Say>Please call us back.</Say><Hangup/></Response>")));
    assert_eq!(column(&app, "SELECT answered_by FROM attempts WHERE id = ?1", *c).as_deref(), Some("machine_end_beep"));
    assert_eq!(column(&app, "SELECT CAST(connected_at AS TEXT) FROM attempts WHERE id = ?1", *c), None);
    for by in ["machine_start", "fax"] {
        let (s, twiml) =
            post(&app, &format!("voice?attempt_id={c}"), &[("CallSid", sid), ("AnsweredBy", by)], AUTH_TOKEN).await;
        assert_eq!((s, twiml), (200, format!("{H}<Response><Hangup/></Response>")), "{by}");
    }
    // The redirect target of an async machine verdict is the same drop.
    let (s, twiml) = post(&app, &format!("voicemail?attempt_id={c}"), &[("CallSid", sid)], AUTH_TOKEN).await;
    assert_eq!((s, twiml), (200, format!("{H}<Response><Say>Please call us back.</Say><Hangup/></Response>")));
    // An async verdict is stored and answered with an empty document.
    let (s, twiml) = post(
        &app,
        &format!("amd?attempt_id={c}"),
        &[("CallSid", sid), ("AnsweredBy", "fax"), ("MachineDetectionDuration", "2100")],
        AUTH_TOKEN,
    )
    .await;
    assert_eq!((s, twiml), (200, format!("{H}<Response/>")));
    assert_eq!(column(&app, "SELECT answered_by FROM attempts WHERE id = ?1", *c).as_deref(), Some("fax"));

    // The lead page shows what happened in each call.
    let page = app
        .http
        .get(app.url(&format!(
            "/leads/{}",
            app.db().query_row("SELECT lead_id FROM attempts WHERE id = ?1", [a], |r| r.get::<_, i64>(0)).unwrap()
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<td class=\"digits\">1</td>") && page.contains("failed (0 s)") && page.contains("-0.01300 USD"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn flow_webhooks_refuse_forged_unknown_and_malformed_requests_without_side_effects() {
    let (_dir, app, calls) = ringing_calls(1).await;
    let (a, sid, phone, _) = &calls[0];
    let sid = sid.as_str();
    // Forged on every route: 403, nothing written.
    for path in ["voice", "gather", "dial", "amd", "voicemail", "status"] {
        let forged = [("CallSid", sid), ("Digits", "2"), ("DialCallStatus", "busy"), ("AnsweredBy", "fax")];
        let (s, _) = post(&app, &format!("{path}?attempt_id={a}&round=1"), &forged, "not-the-token").await;
        assert_eq!(s, 403, "{path}");
        let url = app.url(&format!("/webhooks/twilio/{path}?attempt_id={a}"));
        assert_eq!(app.http.post(&url).form(&forged).send().await.unwrap().status().as_u16(), 403, "{path} unsigned");
    }
    let db = app.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM dnc"), 0);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM attempts WHERE digits IS NOT NULL OR transfer_result IS NOT NULL OR answered_by IS NOT NULL"
        ),
        0
    );

    // Signed but wrong: 4xx with a reason, never a panic, nothing written.
    let cases: [(&str, Form, u16); 7] = [
        ("gather?attempt_id=999999&round=1", vec![("CallSid", sid), ("Digits", "2")], 404),
        ("gather?round=1", vec![("CallSid", sid), ("Digits", "2")], 400),
        ("gather?attempt_id=notanumber", vec![("CallSid", sid), ("Digits", "2")], 422),
        (&format!("gather?attempt_id={a}&round=3"), vec![("CallSid", sid), ("Digits", "2")], 400),
        (&format!("gather?attempt_id={a}&round=1"), vec![("CallSid", sid), ("Digits", "2; DROP")], 400),
        (&format!("gather?attempt_id={a}&round=1"), vec![("CallSid", "CAsomeoneelse"), ("Digits", "2")], 400),
        (&format!("dial?attempt_id={a}"), vec![("CallSid", sid)], 400),
    ];
    for (path, params, want) in &cases {
        let (s, body) = post(&app, path, params, AUTH_TOKEN).await;
        assert_eq!(s, *want, "{path}: {body}");
    }
    let (s, _) = post(&app, &format!("amd?attempt_id={a}"), &[("CallSid", sid)], AUTH_TOKEN).await;
    assert_eq!(s, 400, "amd without AnsweredBy");
    let url = app.url(&format!("/webhooks/twilio/gather?attempt_id={a}"));
    let resp = app.http.post(&url).header("X-Twilio-Signature", "x").body("%%%\u{0}").send().await.unwrap();
    assert!(resp.status().is_client_error());
    assert_eq!(count(&db, "SELECT COUNT(*) FROM dnc"), 0, "{phone} not listed by a refused request");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts WHERE digits IS NOT NULL OR transfer_result IS NOT NULL"), 0);

    // Campaign settings: the new fields are checked and named.
    for (field, value) in [("amd", "sometimes"), ("transfer_caller_id", "the boss")] {
        let resp = app
            .http
            .patch(app.url("/api/campaigns/1"))
            .json(&json!({"settings": {field: value}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 422, "{field}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().starts_with(&format!("settings.{field}: ")), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn twilio_client_modifies_live_calls_and_lists_every_page_of_numbers() {
    let (base, fake) = fake_twilio().await;
    let modified = fake.modified;
    let client = fake_client(base);
    let numbers = client.list_numbers().await.unwrap();
    let got: Vec<(&str, &str, Option<&str>)> =
        numbers.iter().map(|n| (n.number.as_str(), n.provider_id.as_str(), n.label.as_deref())).collect();
    assert_eq!(
        got,
        [("+12025550101", "PN1", Some("Main line")), ("+12025550102", "PN2", None), ("+12025550103", "PN3", None)]
    );
    let vm = "https://d.example.com/webhooks/twilio/voicemail?attempt_id=7";
    client.redirect_call("CA1", vm).await.unwrap();
    client.hang_up("CA2").await.unwrap();
    let err = client.hang_up("CAgone").await.unwrap_err();
    assert!(matches!(err, dialer::provider::ProviderError::Rejected { code: 21220, .. }), "{err}");
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(
        *modified.lock().unwrap(),
        vec![
            ("CA1".to_string(), pairs(&[("Url", vm), ("Method", "POST")])),
            ("CA2".to_string(), pairs(&[("Status", "completed")])),
            ("CAgone".to_string(), pairs(&[("Status", "completed")])),
        ]
    );
}

/// The reconciler's question "did a request without a reply create a call?": listed
/// by `To` and `From` only (no `StartTime`, which a call still queued behind the
/// account's calls-per-second limit does not have), newest first, page after page
/// until a call from before `since`; a call still queued, and one whose status the
/// client does not know, are found, never dropped (dropping reads as "no call" and
/// dials the lead again).
#[tokio::test(flavor = "multi_thread")]
async fn twilio_find_calls_pages_by_to_and_from_and_keeps_queued_and_unreadable_calls() {
    use dialer::domain::status::Status;
    let (base, fake) = fake_twilio().await;
    let client = fake_client(base);
    let found = client.find_calls(LISTED_TO, LISTED_FROM, listed_since()).await.unwrap();
    let got: Vec<(&str, Status, Option<i64>)> =
        found.iter().map(|c| (c.call_id.as_str(), c.status, c.duration_seconds)).collect();
    assert_eq!(
        got,
        [
            ("CAdone", Status::Completed, Some(12)),
            // A status the client does not know: the call exists, taken as in progress.
            ("CAnewstatus", Status::InProgress, None),
            // Queued, no start time yet: found.
            ("CAqueued", Status::Dialing, None),
        ],
        "oldest first, none before `since`"
    );
    assert_eq!(found[0].answered_by.as_deref(), Some("human"));
    assert_eq!(found[2].created_at, Some(listed_since() + chrono::Duration::seconds(5)));
    let listed = fake.listed.lock().unwrap().clone();
    assert_eq!(listed.len(), 2, "page 2 is not read once page 1 reached before `since`: {listed:?}");
    let first: Vec<(String, String)> = serde_urlencoded::from_str(&listed[0]).unwrap();
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(first, pairs(&[("To", LISTED_TO), ("From", LISTED_FROM), ("PageSize", "50")]), "no StartTime filter");
    assert!(listed[1].contains("Page=1&PageToken=PA1"), "the next page is next_page_uri: {}", listed[1]);

    // Pages that never reach `since`: read up to the bound, then "cannot say" (an
    // error the reconciler waits on), never "no call".
    fake.listed.lock().unwrap().clear();
    let err = client.find_calls(ENDLESS_TO, LISTED_FROM, listed_since()).await.unwrap_err();
    assert!(matches!(err, dialer::provider::ProviderError::Retry(_)), "{err}");
    assert_eq!(fake.listed.lock().unwrap().len(), 20, "a bounded number of pages");
}

/// Async AMD's verdict can come after the person pressed a key. Then it is stored,
/// but the call is left alone (no Modify Call: the live transfer is not torn down,
/// the opt-out confirmation is not followed by the voicemail drop), and the outcome
/// is the person's (completed / transfer_failed), never voicemail. A verdict before
/// any key still drops the voicemail (the control).
#[tokio::test(flavor = "multi_thread")]
async fn a_late_async_amd_machine_verdict_after_a_key_press_leaves_the_call_alone_and_is_not_voicemail() {
    let (fake_base, fake) = fake_twilio().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.provider.kind = dialer::config::ProviderKind::Twilio;
    config.provider.twilio.api_base = fake_base;
    config.provider.twilio.account_sid = FAKE_SID.into();
    config.provider.twilio.auth_token = dialer::config::Secret::new(FAKE_TOKEN);
    let app = spawn(config);
    app.ready().await;
    let calls = place_calls(&app, 4, Some("async")).await;
    let hook = |kind: &str, a: i64| format!("{kind}?attempt_id={a}");
    let empty = (200, format!("{H}<Response/>"));

    // A: pressed 1; the machine verdict comes while the agent talks; the agent took it.
    // B: pressed 1, the agent was busy; then a (late) fax verdict.
    // C: pressed 2 (opt-out); then a machine verdict.
    let (a, sa, _, _) = &calls[0];
    let (b, sb, _, _) = &calls[1];
    let (c, sc, _, _) = &calls[2];
    for (id, sid, key) in [(a, sa, "1"), (b, sb, "1"), (c, sc, "2")] {
        let sid = sid.as_str();
        let (s, twiml) = post(&app, &hook("voice", *id), &[("CallSid", sid)], FAKE_TOKEN).await;
        assert_eq!(s, 200, "{twiml}");
        let pressed = [("CallSid", sid), ("Digits", key)];
        let (s, twiml) = post(&app, &format!("gather?attempt_id={id}&round=1"), &pressed, FAKE_TOKEN).await;
        assert_eq!(s, 200, "{twiml}");
    }
    let send_amd = async |id: i64, sid: &str, by: &str| {
        post(&app, &hook("amd", id), &[("CallSid", sid), ("AnsweredBy", by)], FAKE_TOKEN).await
    };
    assert_eq!(send_amd(*a, sa, "machine_end_beep").await, empty);
    let connected = [("CallSid", sa.as_str()), ("DialCallStatus", "completed"), ("DialCallDuration", "30")];
    assert_eq!(post(&app, &hook("dial", *a), &connected, FAKE_TOKEN).await.0, 200);
    let busy = [("CallSid", sb.as_str()), ("DialCallStatus", "busy"), ("DialCallDuration", "0")];
    assert_eq!(post(&app, &hook("dial", *b), &busy, FAKE_TOKEN).await.0, 200);
    assert_eq!(send_amd(*b, sb, "fax").await, empty);
    assert_eq!(send_amd(*c, sc, "machine_end_beep").await, empty);

    // D, the control: no key yet (the Gather timed out once), a machine after the beep
    // → Modify Call to the voicemail drop.
    let (d, sd, _, _) = &calls[3];
    assert_eq!(post(&app, &hook("voice", *d), &[("CallSid", sd.as_str())], FAKE_TOKEN).await.0, 200);
    let no_key = [("CallSid", sd.as_str())];
    assert_eq!(post(&app, &format!("gather?attempt_id={d}&round=1"), &no_key, FAKE_TOKEN).await.0, 200);
    assert_eq!(send_amd(*d, sd, "machine_end_beep").await, empty);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fake.modified.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the control's Modify Call never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The other verdicts were answered first; give any stray Modify Call time to land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let voicemail = format!("{}/webhooks/twilio/voicemail?attempt_id={d}", app.base);
    assert_eq!(
        *fake.modified.lock().unwrap(),
        vec![(sd.clone(), vec![("Url".to_string(), voicemail), ("Method".to_string(), "POST".to_string())])],
        "only the call nobody pressed a key on is modified"
    );

    // The final callbacks, as Twilio sends them with AMD on (AnsweredBy repeated).
    let finals = [
        (a, sa, Some("machine_end_beep")),
        (b, sb, None),
        (c, sc, Some("machine_end_beep")),
        (d, sd, Some("machine_end_beep")),
    ];
    for (id, sid, by) in finals {
        let mut done = vec![
            ("CallSid", sid.as_str()),
            ("CallStatus", "completed"),
            ("SequenceNumber", "9"),
            ("CallDuration", "40"),
        ];
        if let Some(by) = by {
            done.push(("AnsweredBy", by));
        }
        assert_eq!(post(&app, &hook("status", *id), &done, FAKE_TOKEN).await, empty, "attempt {id}");
    }
    let row = |id: i64| -> (String, Option<String>, Option<String>, Option<String>) {
        app.db()
            .query_row("SELECT status, answered_by, digits, transfer_result FROM attempts WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap()
    };
    let o = |v: &str| Some(v.to_string());
    assert_eq!(
        row(*a),
        ("completed".into(), o("machine_end_beep"), o("1"), o("connected")),
        "pressed 1, agent took it"
    );
    assert_eq!(row(*b), ("transfer_failed".into(), o("fax"), o("1"), o("failed")), "pressed 1, agent busy");
    assert_eq!(row(*c), ("completed".into(), o("machine_end_beep"), o("2"), None), "pressed 2");
    assert_eq!(row(*d), ("voicemail".into(), o("machine_end_beep"), None, None), "no key: the machine verdict stands");
    let lead_status = "SELECT l.status FROM leads l JOIN attempts a ON a.lead_id = l.id WHERE a.id = ?1";
    assert_eq!(column(&app, lead_status, *c).as_deref(), Some("do_not_call"), "the opt-out stands");
    assert_eq!(column(&app, lead_status, *a).as_deref(), Some("completed"));
}
