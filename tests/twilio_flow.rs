//! The Twilio call flow's webhooks through real HTTP: signed forms posted to a running
//! app about real attempts (placed through the simulated carrier, which keeps them
//! ringing so the test drives the call), the TwiML answered, what is stored. And the
//! REST side of the flow (Modify Call, IncomingPhoneNumbers paging) against a stand-in
//! Twilio server.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use dialer::provider::Provider;
use dialer::provider::simulator::AUTH_TOKEN;
use dialer::provider::twilio::signature;
use serde_json::json;
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
    let settings = json!({"settings": {"max_attempts": 1, "message": "Hello & welcome", "agent_number": AGENT,
        "voicemail_message": "Please call us back."}});
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
    let calls = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (dir, app, calls)
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

/// What the stand-in Twilio received on Modify Call: (call sid, form pairs).
type Modified = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// A stand-in Twilio REST API on a loopback port: two pages of IncomingPhoneNumbers
/// (linked by `next_page_uri`) and Modify Call (recorded; `CAgone` is a call that
/// already ended: 400 with code 21220).
async fn fake_twilio() -> (String, Modified) {
    use axum::extract::{Path, RawQuery, State};
    use axum::routing::{get, post};
    let modified: Modified = Arc::default();
    let numbers = |RawQuery(q): RawQuery| async move {
        let page = if q.unwrap_or_default().contains("Page=1") {
            json!({"incoming_phone_numbers": [{"phone_number": "+12025550103", "sid": "PN3", "friendly_name": ""}],
                   "next_page_uri": null})
        } else {
            json!({"incoming_phone_numbers": [
                      {"phone_number": "+12025550101", "sid": "PN1", "friendly_name": "Main line"},
                      {"phone_number": "+12025550102", "sid": "PN2", "friendly_name": null}],
                   "next_page_uri": "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?PageSize=2&Page=1&PageToken=PA2"})
        };
        axum::Json(page)
    };
    let modify = |State(m): State<Modified>, Path(file): Path<String>, body: String| async move {
        let sid = file.trim_end_matches(".json").to_string();
        let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
        m.lock().unwrap().push((sid.clone(), form));
        if sid == "CAgone" {
            let err = json!({"code": 21220, "message": "Call is not in-progress. Cannot redirect."});
            return (axum::http::StatusCode::BAD_REQUEST, axum::Json(err));
        }
        (axum::http::StatusCode::OK, axum::Json(json!({"sid": sid, "status": "in-progress"})))
    };
    let app = axum::Router::new()
        .route("/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json", get(numbers))
        .route("/2010-04-01/Accounts/AC1/Calls/{file}", post(modify))
        .with_state(modified.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, modified)
}

#[tokio::test(flavor = "multi_thread")]
async fn twilio_client_modifies_live_calls_and_lists_every_page_of_numbers() {
    use dialer::provider::twilio::client::{Settings, TwilioClient};
    let (base, modified) = fake_twilio().await;
    let client = TwilioClient::new(Settings {
        api_base: base,
        account_sid: "AC1".into(),
        auth_token: dialer::config::Secret::new("token"),
        public_url: "https://d.example.com".into(),
        ring_timeout_seconds: 25,
        max_call_seconds: 600,
        request_timeout: Duration::from_secs(5),
    })
    .unwrap();
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
