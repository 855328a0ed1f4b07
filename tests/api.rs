//! API contracts and webhook security, through real HTTP.

mod support;

use chrono::Utc;
use dialer::provider::simulator::AUTH_TOKEN;
use dialer::provider::twilio::signature;
use serde_json::json;
use support::{count, leads_csv, spawn};

async fn app_with_leads(n: usize) -> (tempfile::TempDir, support::TestApp, Vec<i64>) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(support::config(dir.path()));
    app.ready().await;
    app.import_csv(&leads_csv(n)).await;
    let leads = app.get_json("/api/leads?limit=500").await;
    let ids = leads["leads"].as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect();
    (dir, app, ids)
}

fn tomorrow() -> String {
    (Utc::now() + chrono::Duration::days(1)).to_rfc3339()
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduling_refuses_bad_requests_with_a_message_that_names_the_problem() {
    let (_dir, app, ids) = app_with_leads(4).await;
    let cases = [
        (
            json!({"lead_ids": [ids[0]], "start_at": "2020-01-01T10:00:00Z", "parallel_calls": 1, "interval_seconds": 30}),
            "in the past",
        ),
        (
            json!({"lead_ids": [999_999], "start_at": tomorrow(), "parallel_calls": 1, "interval_seconds": 30}),
            "lead 999999 does not exist",
        ),
        (
            json!({"lead_ids": [ids[0]], "start_at": "2030-01-01T10:00:00", "parallel_calls": 1, "interval_seconds": 30}),
            "offset",
        ),
        (
            json!({"lead_ids": [ids[0]], "start_at": tomorrow(), "parallel_calls": 51, "interval_seconds": 30}),
            "parallel_calls",
        ),
        (
            json!({"lead_ids": [ids[0]], "start_at": tomorrow(), "parallel_calls": 1, "interval_seconds": 0}),
            "interval_seconds",
        ),
        (json!({"start_at": tomorrow(), "parallel_calls": 1, "interval_seconds": 30}), "lead_ids or select"),
        (json!({"lead_ids": [], "start_at": tomorrow(), "parallel_calls": 1, "interval_seconds": 30}), "no leads"),
        (
            json!({"lead_ids": [ids[0]], "start_at": {"date": "2030-01-01", "time": "10:00", "timezone": "Mars/Base"}, "parallel_calls": 1, "interval_seconds": 30}),
            "IANA",
        ),
        (
            json!({"lead_ids": [ids[0]], "start_at": {"date": "+262143-12-31", "time": "23:00"}, "parallel_calls": 1, "interval_seconds": 3600}),
            "date",
        ),
        (
            json!({"lead_ids": [ids[0]], "start_at": {"date": "2999-12-31", "time": "23:00"}, "parallel_calls": 1, "interval_seconds": 3600}),
            "more than a year ahead",
        ),
    ];
    for (body, expect) in cases {
        let (status, reply) = app.post_json("/api/schedule-bulk-calls", body.clone()).await;
        assert_eq!(status, 422, "{body} → {reply}");
        let message = reply["error"].as_str().unwrap();
        assert!(message.contains(expect), "{body}: {message:?} should mention {expect:?}");
    }
    // Nothing was stored by any refused request.
    assert_eq!(count(&app.db(), "SELECT COUNT(*) FROM schedules"), 0);

    // A lead already scheduled cannot be scheduled again.
    let date = (Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%d").to_string();
    let ok = json!({"lead_ids": [ids[0], ids[1]], "start_at": {"date": date, "time": "10:00", "timezone": "America/Chicago"}, "parallel_calls": 1, "interval_seconds": 30});
    let (status, created) = app.post_json("/api/schedule-bulk-calls", ok.clone()).await;
    assert_eq!(status, 201, "{created}");
    let chicago: chrono_tz::Tz = "America/Chicago".parse().unwrap();
    let expected = dialer::schedules::local_start(&date, "10:00", chicago).unwrap();
    assert_eq!(created["start_at"], expected.to_rfc3339(), "local 10:00 in Chicago, echoed in UTC");
    assert_eq!(created["estimated_completion"], (expected + chrono::Duration::seconds(30)).to_rfc3339());
    let (status, reply) = app.post_json("/api/schedule-bulk-calls", ok).await;
    assert_eq!(status, 422);
    assert!(reply["error"].as_str().unwrap().contains(&format!("lead {} is scheduled", ids[0])), "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_needs_an_explicit_target_and_returns_leads_to_pending() {
    let (_dir, app, ids) = app_with_leads(6).await;
    for chunk in ids.chunks(3) {
        let body = json!({"lead_ids": chunk, "start_at": tomorrow(), "parallel_calls": 1, "interval_seconds": 60});
        assert_eq!(app.post_json("/api/schedule-bulk-calls", body).await.0, 201);
    }
    // Same start second for both schedules: both keep all their batches.
    let listed = app.get_json("/api/scheduled-bulk-calls").await;
    assert_eq!(listed["total_batches"], 6);
    let job_ids: std::collections::HashSet<_> = listed["scheduled_batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["job_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(job_ids.len(), 6, "job ids are unique across schedules");

    for empty in [json!({}), json!({"all": false})] {
        let (status, reply) = app.post_json("/api/cancel-bulk-schedule", empty).await;
        assert_eq!(status, 422, "{reply}");
    }
    let resp = app
        .http
        .post(app.url("/api/cancel-bulk-schedule"))
        .header("content-type", "application/json")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422, "an empty body cancels nothing");
    // A cross-site form or a text/plain fetch cannot reach the API.
    let resp = app.http.post(app.url("/api/cancel-bulk-schedule")).body(r#"{"all":true}"#).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    assert_eq!(app.get_json("/api/scheduled-bulk-calls").await["total_batches"], 6, "nothing was cancelled");
    assert_eq!(app.post_json("/api/cancel-bulk-schedule", json!({"schedule_id": 424242})).await.0, 404);

    let (status, reply) = app.post_json("/api/cancel-bulk-schedule", json!({"schedule_id": 1})).await;
    assert_eq!((status, reply["cancelled_count"].as_i64()), (200, Some(3)));
    assert_eq!(app.get_json("/api/leads?status=pending").await["total"], 3);
    assert_eq!(app.get_json("/api/leads?status=scheduled").await["total"], 3);
    let (_, reply) = app.post_json("/api/cancel-bulk-schedule", json!({"all": true})).await;
    assert_eq!(reply["cancelled_count"], 3);
    assert_eq!(app.get_json("/api/leads?status=pending").await["total"], 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn leads_listing_paginates_by_keyset_and_filters() {
    let (_dir, app, _) = app_with_leads(25).await;
    let first = app.get_json("/api/leads?limit=10").await;
    assert_eq!(first["total"], 25);
    let cursor = first["next_cursor"].as_i64().unwrap();
    let second = app.get_json(&format!("/api/leads?limit=10&cursor={cursor}")).await;
    let third = app.get_json(&format!("/api/leads?limit=10&cursor={}", second["next_cursor"])).await;
    let mut seen: Vec<i64> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["leads"].as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(seen.len(), 25);
    assert!(third["next_cursor"].is_null());
    seen.dedup();
    assert_eq!(seen.len(), 25, "no lead on two pages");
    let lead = &first["leads"][0];
    for key in ["id", "uuid", "phone", "name", "email", "partner", "status", "attempts", "timezone"] {
        assert!(lead.get(key).is_some(), "lead has {key}");
    }
    assert_eq!(lead["timezone"], "America/Los_Angeles", "zone derived from the 415 number");
    let search = app.get_json("/api/leads?q=Lead%2017").await;
    assert_eq!(search["total"], 1);
    let resp = app.http.get(app.url("/api/leads?status=bogus")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);
}

/// Posts a Twilio-style status callback signed with `token`.
async fn post_status(app: &support::TestApp, attempt_id: i64, params: &[(&str, &str)], token: &str) -> u16 {
    let url = app.url(&format!("/webhooks/twilio/status?attempt_id={attempt_id}"));
    let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let sig = signature::sign(token, &url, &pairs);
    let resp = app.http.post(&url).header("X-Twilio-Signature", sig).form(&pairs).send().await.unwrap();
    resp.status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_need_a_valid_signature_and_apply_once_forward_only() {
    let (_dir, app, ids) = app_with_leads(1).await;
    // Place one real call through the simulator so there is an attempt to update.
    let body =
        json!({"lead_ids": [ids[0]], "start_at": Utc::now().to_rfc3339(), "parallel_calls": 1, "interval_seconds": 1});
    assert_eq!(app.post_json("/api/schedule-bulk-calls", body).await.0, 201);
    app.wait_for(std::time::Duration::from_secs(20), "the call ends", |c| {
        count(c, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NOT NULL") == 1
    })
    .await;
    let db = app.db();
    let (attempt_id, sid, final_status): (i64, String, String) = db
        .query_row("SELECT id, provider_call_id, status FROM attempts", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    let events_before = count(&db, "SELECT COUNT(*) FROM call_events");

    // Forged: wrong token, and no signature at all → 403, nothing stored.
    let forged = [("CallSid", sid.as_str()), ("CallStatus", "busy"), ("SequenceNumber", "99")];
    assert_eq!(post_status(&app, attempt_id, &forged, "not-the-token").await, 403);
    let url = app.url(&format!("/webhooks/twilio/status?attempt_id={attempt_id}"));
    let unsigned = app.http.post(&url).form(&forged).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 403);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM call_events"), events_before);

    // Signed but stale (ringing after the final status): stored once, not applied.
    let late = [("CallSid", sid.as_str()), ("CallStatus", "ringing"), ("SequenceNumber", "98")];
    for _ in 0..3 {
        assert_eq!(post_status(&app, attempt_id, &late, AUTH_TOKEN).await, 200);
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM call_events"), events_before + 1, "replays are deduplicated");
    let status: String = db.query_row("SELECT status FROM leads", [], |r| r.get(0)).unwrap();
    assert_eq!(status, final_status, "status only moves forward");

    // A body that is not a form is refused without side effects.
    let resp = app.http.post(&url).header("X-Twilio-Signature", "x").body("%%%\u{0}").send().await.unwrap();
    assert!(resp.status().is_client_error());
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_report_rejections_and_offer_them_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(support::config(dir.path()));
    app.ready().await;
    let sample = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/leads_sample.csv"))
        .or_else(|_| std::fs::read_to_string("../shared/data/leads_sample.csv"));
    let Ok(sample) = sample else {
        panic!("../shared/data/leads_sample.csv is needed by this test");
    };
    let reply = app.import_csv(&sample).await;
    assert_eq!(reply["imported"], 54);
    assert_eq!(reply["duplicates"], 2);
    assert_eq!(reply["rejected"], 4);
    let errors = reply["errors"].as_array().unwrap();
    assert_eq!(
        errors[0],
        json!({"line": 52, "field": "number", "value": "555-123-4567", "reason": "fictional number (555 area code)"})
    );
    let csv =
        app.http.get(app.url(reply["rejected_csv"].as_str().unwrap())).send().await.unwrap().text().await.unwrap();
    assert_eq!(csv.lines().count(), 5, "header + 4 rejected rows:\n{csv}");
    assert!(csv.contains("Test Fiction"), "the whole row is kept for fixing:\n{csv}");
    // Re-importing the same file doubles nothing.
    let again = app.import_csv(&sample).await;
    assert_eq!((again["imported"].as_i64(), again["duplicates"].as_i64()), (Some(0), Some(56)));
    assert_eq!(app.get_json("/api/leads").await["total"], 54);
    let completed = app.get_json("/api/leads?status=completed").await;
    assert_eq!(completed["total"], 1, "a lead imported as completed stays completed");

    let resp = app
        .http
        .post(app.url("/api/leads/import"))
        .header("content-type", "text/csv")
        .body("name,email\nA,a@x\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("no phone column"), "{body}");
}
