//! The do-not-call list through real HTTP and the real store, with the simulated
//! carrier: the API contract (422s naming the field or line), adding a number marks
//! its waiting lead `do_not_call`, the scrub at import, the audit entry a removal
//! writes, the export's defanged cells, and the key property: a number that opts out
//! while its lead is scheduled (before its batch fires, or while it waits in the
//! queue) is never dialled.

mod support;

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use support::{TestApp, count, leads_csv, spawn};

/// The phone `leads_csv` gives lead `i` (i < 100), in E.164.
fn lead_phone(i: usize) -> String {
    format!("+1415710{i:04}")
}

async fn post_text(app: &TestApp, path: &str, body: &str) -> (u16, Value) {
    let resp =
        app.http.post(app.url(path)).header("content-type", "text/csv").body(body.to_string()).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn delete(app: &TestApp, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.http.delete(app.url(path));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

fn lead_status(db: &rusqlite::Connection, phone: &str) -> String {
    db.query_row("SELECT status FROM leads WHERE phone = ?1", [phone], |r| r.get(0)).unwrap()
}

fn phones(list: &Value) -> Vec<&str> {
    list["entries"].as_array().unwrap().iter().map(|e| e["phone"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn dnc_api_contract() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(support::config(dir.path()));
    app.ready().await;

    // Add: strings or {"phone", "reason"}; bad items refused one by one, naming the
    // item (1-based) and the field; a number twice is just "existing".
    let (status, body) = app
        .post_json(
            "/api/dnc",
            json!({
                "numbers": ["+14157001234", {"phone": "(415) 700-1235", "reason": "moved away"}, "not a number",
                            "415-700-1234", {"phone": "+14157001236", "reason": "bell\u{7}"}],
                "source": "crm",
                "reason": "asked not to be called"
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["added"], &body["existing"], &body["leads_marked"]), (&json!(2), &json!(1), &json!(0)), "{body}");
    let rejected = body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{body}");
    assert_eq!(
        (&rejected[0]["line"], &rejected[0]["field"], &rejected[0]["value"]),
        (&json!(3), &json!("phone"), &json!("not a number"))
    );
    assert_eq!((&rejected[1]["line"], &rejected[1]["field"]), (&json!(5), &json!("reason")));

    // A CSV body: `phone[,reason]`, lines numbered as in the text.
    let (status, body) =
        post_text(&app, "/api/dnc?source=complaints", "phone,reason\n4157001237,complaint\n415CALLNOW,x\n").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["added"], &body["rejected"][0]["line"], &body["rejected"][0]["field"]),
        (&json!(1), &json!(3), &json!("phone"))
    );

    // 422s name the field; nothing accepted at all is a 422 with the same shape.
    for (payload, field) in [
        (json!({"numbers": ["+14157001238"], "source": "two words"}), "source:"),
        (json!({"numbers": []}), "numbers:"),
        (json!({"numbers": ["+14157001238"], "reason": "x".repeat(201)}), "reason:"),
    ] {
        let (status, body) = app.post_json("/api/dnc", payload.clone()).await;
        assert_eq!(status, 422, "{payload} → {body}");
        assert!(body["error"].as_str().unwrap().starts_with(field), "{payload} → {body}");
    }
    let (status, body) = app.post_json("/api/dnc", json!({"numbers": ["nope", "+1 202 555 0100"]})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!((&body["added"], &body["rejected"][1]["line"]), (&json!(0), &json!(2)), "{body}");
    let (status, body) = app.post_json("/api/opt-out", json!({"phone": "12"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("phone:"), "{body}");
    let resp = app.http.post(app.url("/api/dnc")).body("{\"numbers\": [\"+14157001238\"]}").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 415, "JSON must say so");

    // List: newest first, keyset pages, search by digits (any formatting) or by text.
    let all = app.get_json("/api/dnc").await;
    assert_eq!(all["total"], 3, "{all}");
    assert_eq!(phones(&all), ["+14157001237", "+14157001235", "+14157001234"]);
    let newest = &all["entries"][0];
    assert_eq!(
        (&newest["phone"], &newest["source"], &newest["reason"]),
        (&json!("+14157001237"), &json!("complaints"), &json!("complaint"))
    );
    let created = chrono::DateTime::parse_from_rfc3339(newest["created_at"].as_str().unwrap()).unwrap();
    assert!((Utc::now() - created.to_utc()).num_seconds().abs() < 60, "{newest}");
    let page1 = app.get_json("/api/dnc?limit=2").await;
    assert_eq!(phones(&page1), ["+14157001237", "+14157001235"]);
    let cursor = page1["next_cursor"].as_i64().expect("a next cursor");
    let page2 = app.get_json(&format!("/api/dnc?limit=2&cursor={cursor}")).await;
    assert_eq!(phones(&page2), ["+14157001234"]);
    assert_eq!(page2["next_cursor"], Value::Null);
    let found = app.get_json("/api/dnc?q=(415)%20700-1235").await;
    assert_eq!((phones(&found), &found["total"]), (vec!["+14157001235"], &json!(1)));
    assert_eq!(found["entries"][0]["reason"], "moved away");
    assert_eq!(app.get_json("/api/dnc?q=asked").await["total"], 1);

    // Opt-out: saved at once, idempotent (the first entry stands).
    let (status, body) = app.post_json("/api/opt-out", json!({"phone": "(415) 700-1240", "source": "keypad"})).await;
    assert_eq!((status, &body["phone"], &body["added"]), (200, &json!("+14157001240"), &json!(true)), "{body}");
    let (status, body) = app.post_json("/api/opt-out", json!({"phone": "+14157001240"})).await;
    assert_eq!((status, &body["added"]), (200, &json!(false)), "{body}");
    let entry = app.get_json("/api/dnc/+14157001240").await;
    assert_eq!((&entry["listed"], &entry["entry"]["source"]), (&json!(true), &json!("keypad")), "{entry}");

    // Remove: 200 once with an audit event, then 404; unknown numbers 404.
    let (status, body) = delete(&app, "/api/dnc/+14157001234", Some(json!({"reason": "wrong number"}))).await;
    assert_eq!((status, body), (200, json!({"removed": true})));
    let (status, _) = delete(&app, "/api/dnc/+14157001234", None).await;
    assert_eq!(status, 404);
    let (status, _) = delete(&app, "/api/dnc/%2B14157009999", None).await;
    assert_eq!(status, 404);
    let (status, body) = delete(&app, "/api/dnc/+14157001235", Some(json!({"why": "x"}))).await;
    assert_eq!(status, 422, "unknown fields are refused: {body}");
    let history = app.get_json("/api/dnc/+14157001234").await;
    assert_eq!(history["listed"], false);
    assert_eq!(history["entry"], Value::Null);
    let events: Vec<(&str, &str, &str, &str)> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["source"].as_str().unwrap(),
                e["reason"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(events, [("removed", "crm", "wrong number", "api"), ("added", "crm", "asked not to be called", "api")]);
    assert_eq!(
        count(
            &app.db(),
            "SELECT COUNT(*) FROM dnc_events WHERE phone = '+14157001234' AND action = 'removed' AND reason = 'wrong number'"
        ),
        1
    );
    assert_eq!(app.get_json("/api/dnc").await["total"], 3, "1235, 1237, 1240");
    let resp = app.http.get(app.url("/api/dnc/+14157009999")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn export_defangs_formula_cells() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(support::config(dir.path()));
    app.ready().await;
    let (status, body) = app
        .post_json(
            "/api/dnc",
            json!({"numbers": [{"phone": "+14157001234", "reason": "=cmd|' /C calc'!A0"}, {"phone": "+14157001235", "reason": "@SUM(1)"}, "+14157001236"], "source": "api"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let resp = app.http.get(app.url("/api/dnc/export.csv")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(resp.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let text = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), ["phone", "source", "reason", "created_at"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let cells: Vec<(&str, &str, &str)> = rows.iter().map(|r| (&r[0], &r[1], &r[2])).collect();
    assert_eq!(
        cells,
        [
            ("+14157001234", "api", "'=cmd|' /C calc'!A0"),
            ("+14157001235", "api", "'@SUM(1)"),
            ("+14157001236", "api", ""),
        ]
    );
    for r in &rows {
        chrono::DateTime::parse_from_rfc3339(&r[3]).unwrap_or_else(|e| panic!("created_at {:?}: {e}", &r[3]));
        assert!(!r.iter().skip(1).any(|c| c.starts_with(['=', '+', '-', '@'])), "no live formula: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_marks_waiting_leads_and_import_scrubs() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(support::config(dir.path()));
    app.ready().await;
    let summary = app.import_csv(&leads_csv(3)).await;
    assert_eq!((&summary["imported"], &summary["dnc"]), (&json!(3), &json!(0)), "{summary}");

    // A pending lead's number is listed: the lead is marked at once, counts follow.
    let (status, body) = app.post_json("/api/dnc", json!({"numbers": [lead_phone(0)]})).await;
    assert_eq!((status, &body["added"], &body["leads_marked"]), (200, &json!(1), &json!(1)), "{body}");
    assert_eq!(lead_status(&app.db(), &lead_phone(0)), "do_not_call");
    let listed = app.get_json("/api/leads?status=do_not_call").await;
    assert_eq!((&listed["total"], &listed["leads"][0]["phone"]), (&json!(1), &json!(lead_phone(0))));
    assert_eq!(app.get_json("/api/leads?status=pending").await["total"], 2);

    // The scrub at import: a listed number is stored as do_not_call, never dropped;
    // a re-import of a waiting lead whose number is listed marks it too.
    let (status, _) = app.post_json("/api/dnc", json!({"numbers": ["+14157001234"]})).await;
    assert_eq!(status, 200);
    let db = app.db();
    let raw = "number,name\n(415) 700-1234,Listed\n(415) 700-1299,Fine\n";
    let summary = app.import_csv(raw).await;
    assert_eq!(
        (&summary["imported"], &summary["duplicates"], &summary["dnc"]),
        (&json!(2), &json!(0), &json!(1)),
        "{summary}"
    );
    assert_eq!(lead_status(&db, "+14157001234"), "do_not_call");
    assert_eq!(lead_status(&db, "+14157001299"), "pending");

    // Scheduling takes only pending leads: the listed ones are skipped.
    let start = Utc::now() + chrono::Duration::seconds(1);
    let (status, body) = app
        .post_json(
            "/api/schedule-bulk-calls",
            json!({"select": {"status": "pending"}, "start_at": start.to_rfc3339(), "parallel_calls": 10, "interval_seconds": 1}),
        )
        .await;
    assert_eq!((status, &body["total_leads"]), (201, &json!(3)), "{body}");
    app.wait_for(Duration::from_secs(30), "every lead reaches an outcome", support::all_leads_final).await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts a JOIN dnc d ON d.phone = a.to_number"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts"), 3);

    // Removing a number keeps its lead do_not_call (documented): nobody is re-dialled
    // because a list entry went away.
    let (status, _) =
        delete(&app, &format!("/api/dnc/{}", lead_phone(0)), Some(json!({"reason": "consent given"}))).await;
    assert_eq!(status, 200);
    assert_eq!(lead_status(&db, &lead_phone(0)), "do_not_call");
}

/// The key property. Six leads, one caller at a time, slow calls: lead 0 opts out
/// (`POST /api/opt-out`) before its batch fires; lead 5 opts out after the batch has
/// fired, while it waits in the queue behind the others. Neither is ever dialled.
#[tokio::test(flavor = "multi_thread")]
async fn a_number_that_opts_out_while_scheduled_is_never_dialled() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.dialing.max_concurrent_calls = 1;
    config.simulator.ring_seconds = [0.3, 0.4];
    config.simulator.talk_seconds = [0.3, 0.4];
    let app = spawn(config);
    app.ready().await;
    let summary = app.import_csv(&leads_csv(6)).await;
    assert_eq!(summary["imported"], 6);
    let start = Utc::now() + chrono::Duration::seconds(3);
    let (status, body) = app
        .post_json(
            "/api/schedule-bulk-calls",
            json!({"select": {"status": "pending"}, "start_at": start.to_rfc3339(), "parallel_calls": 6, "interval_seconds": 1}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let db = app.db();
    assert_eq!(lead_status(&db, &lead_phone(0)), "scheduled");

    // Before the batch fires.
    let (status, body) = app.post_json("/api/opt-out", json!({"phone": lead_phone(0), "source": "api"})).await;
    assert!(Utc::now() < start, "the opt-out must land before the batch fires");
    assert_eq!((status, &body["added"], &body["leads_marked"]), (200, &json!(true), &json!(1)), "{body}");
    assert_eq!(lead_status(&db, &lead_phone(0)), "do_not_call", "saved at once");

    // After it fires: the first call is up, lead 5 is due and queued behind three more.
    app.wait_for(Duration::from_secs(20), "the first call starts", |db| {
        count(db, "SELECT COUNT(*) FROM attempts") >= 1
    })
    .await;
    let queued: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM leads WHERE phone = ?1 AND status = 'scheduled' AND next_call_at IS NOT NULL",
            [lead_phone(5)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(queued, 1, "lead 5 waits in the queue");
    let (status, body) = app.post_json("/api/opt-out", json!({"phone": lead_phone(5)})).await;
    assert_eq!((status, &body["leads_marked"]), (200, &json!(1)), "{body}");

    app.wait_for(Duration::from_secs(40), "every lead reaches an outcome", support::all_leads_final).await;
    for i in [0, 5] {
        let phone = lead_phone(i);
        let dialled: i64 =
            db.query_row("SELECT COUNT(*) FROM attempts WHERE to_number = ?1", [&phone], |r| r.get(0)).unwrap();
        assert_eq!(dialled, 0, "{phone} opted out and must never be dialled");
        assert_eq!(lead_status(&db, &phone), "do_not_call");
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM attempts"), 4, "the other four were dialled");
    let sources: Vec<(String, String)> = db
        .prepare("SELECT source, actor FROM dnc_events WHERE action = 'added' ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sources, [("api".to_string(), "api".to_string()), ("api".to_string(), "api".to_string())]);
}
