//! Malformed webhook and API bodies (`tests/bad_input/bodies/`, cases in the
//! manifest's `[[body]]`), each sent to an app with one real call ringing (its
//! webhooks held back 10 minutes by the simulated carrier, so nothing else writes
//! meanwhile). Webhooks are signed correctly unless the case forges them, so the
//! malformed ones reach the parsing. Each must get its 4xx (or its documented 200)
//! and leave every table as it was; afterwards the app is healthy and a valid
//! signed event is still applied.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use dialer::config::ProviderKind;
use dialer::provider::simulator::{AUTH_TOKEN, TELNYX_SIGNING_SEED, VAPI_WEBHOOK_SECRET};
use dialer::provider::{telnyx, twilio};
use serde::Deserialize;

use crate::support::{self, TestApp, count};

#[derive(Deserialize)]
pub struct BodyCase {
    /// Which app: `twilio`, `telnyx` or `vapi` (its provider).
    pub app: String,
    pub file: Option<String>,
    /// A body made by the test: `oversized_form` or `oversized_json` (1.1 MiB).
    pub generate: Option<String>,
    pub intent: String,
    #[serde(default = "post")]
    pub method: String,
    pub path: String,
    pub content_type: String,
    #[serde(default = "no_auth")]
    pub auth: String,
    pub status: u16,
    /// For a redirect: a fragment its `Location` must hold.
    pub location: Option<String>,
}

fn post() -> String {
    "POST".into()
}

fn no_auth() -> String {
    "none".into()
}

/// Tables a refused request must leave as they were.
const TABLES: [&str; 9] =
    ["attempts", "leads", "dnc", "dnc_events", "call_events", "campaigns", "schedules", "batches", "caller_numbers"];

/// Every row of every table in `TABLES`, as text.
fn snapshot(app: &TestApp) -> BTreeMap<&'static str, Vec<String>> {
    let db = app.db();
    TABLES
        .iter()
        .map(|table| {
            let mut stmt = db.prepare(&format!("SELECT * FROM {table} ORDER BY rowid")).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    (0..n)
                        .map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}")))
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap()
                .map(|r| r.unwrap().join("|"))
                .collect();
            (*table, rows)
        })
        .collect()
}

/// The ringing call every webhook case is about.
struct Call {
    attempt: i64,
    call_id: String,
}

/// An app on `api`'s provider (the built-in simulated carrier speaking it) with one
/// call placed and ringing for 10 minutes, every webhook held back 10 minutes.
async fn app_with_a_ringing_call(api: ProviderKind, dir: &std::path::Path) -> (TestApp, Call) {
    let mut config = support::config(dir);
    config.simulator.api = api;
    config.simulator.ring_seconds = [600.0, 600.0];
    config.simulator.faults.callback_delay_seconds = [600.0, 600.0];
    support::outcomes(&mut config, [1.0, 0.0, 0.0, 0.0, 0.0]);
    let app = support::spawn(config);
    app.ready().await;
    let summary = app.import_csv("number,name\n+14152379601,Ringing\n").await;
    assert_eq!(summary["imported"], 1, "{summary}");
    let leads = app.get_json("/api/leads").await;
    app.schedule_leads(&[leads["leads"][0]["id"].as_i64().unwrap()], 1).await;
    app.wait_for(Duration::from_secs(20), "the call is placed", |c| {
        count(c, "SELECT COUNT(*) FROM attempts WHERE provider_call_id IS NOT NULL") == 1
    })
    .await;
    let (attempt, call_id) =
        app.db().query_row("SELECT id, provider_call_id FROM attempts", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    (app, Call { attempt, call_id })
}

fn body_of(case: &BodyCase, call: &Call) -> Vec<u8> {
    let raw = match (&case.file, case.generate.as_deref()) {
        (Some(file), _) => std::fs::read(crate::corpus_dir().join("bodies").join(file)).unwrap(),
        (None, Some("oversized_form")) => {
            format!("CallSid={}&Pad={}", call.call_id, "x".repeat(1_100_000)).into_bytes()
        }
        (None, Some("oversized_json")) => format!("{{\"pad\": \"{}\"}}", "x".repeat(1_100_000)).into_bytes(),
        (None, other) => panic!("{}: no file and an unknown generator {other:?}", case.intent),
    };
    let client_state =
        base64::engine::general_purpose::STANDARD.encode(format!(r#"{{"attempt_id":{},"step":"dial"}}"#, call.attempt));
    replace(
        &replace(&replace(&raw, "{attempt}", &call.attempt.to_string()), "{call_id}", &call.call_id),
        "{client_state}",
        &client_state,
    )
}

/// Byte-wise replace (bodies may hold bytes that are not UTF-8).
fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let (from, mut out, mut i) = (from.as_bytes(), Vec::with_capacity(bytes.len()), 0);
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to.as_bytes());
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Sends `case` with its signature; returns (status, `Location`, body text).
async fn send(app: &TestApp, case: &BodyCase, call: &Call) -> (u16, String, String) {
    let path = case.path.replace("{attempt}", &call.attempt.to_string());
    let url = app.url(&path);
    let body = body_of(case, call);
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    // A provider sends no API token: webhooks go out as an outside caller would. The
    // rest carries the token and does not follow redirects (the dashboard's upload
    // answers one).
    let api = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(
            [(reqwest::header::AUTHORIZATION, format!("Bearer {}", app.token).parse().unwrap())].into_iter().collect(),
        )
        .build()
        .unwrap();
    let client = if path.starts_with("/webhooks/") { &app.anon } else { &api };
    let mut request = client.request(method, &url).header("content-type", &case.content_type);
    let twilio_sign = |token: &str, url: &str| {
        let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
        twilio::signature::sign(token, url, &params)
    };
    let telnyx_sign = |seed: [u8; 32], age: i64| {
        let at = (chrono::Utc::now().timestamp() - age).to_string();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        (telnyx::signature::sign(&key, &at, &body), at)
    };
    request = match case.auth.as_str() {
        "none" => request,
        "twilio" => request.header("X-Twilio-Signature", twilio_sign(AUTH_TOKEN, &url)),
        "twilio_forged" => request.header("X-Twilio-Signature", twilio_sign("not-the-token", &url)),
        "twilio_other_url" => {
            let other = app.url(&case.path.replace("{attempt}", "999999"));
            request.header("X-Twilio-Signature", twilio_sign(AUTH_TOKEN, &other))
        }
        "telnyx" | "telnyx_forged" | "telnyx_stale" => {
            let (seed, age) = match case.auth.as_str() {
                "telnyx" => (TELNYX_SIGNING_SEED, 0),
                "telnyx_forged" => ([9u8; 32], 0),
                _ => (TELNYX_SIGNING_SEED, 301),
            };
            let (signature, at) = telnyx_sign(seed, age);
            request.header("telnyx-signature-ed25519", signature).header("telnyx-timestamp", at)
        }
        "vapi" => request.header("X-Vapi-Secret", VAPI_WEBHOOK_SECRET),
        "vapi_wrong" => request.header("X-Vapi-Secret", "not-the-secret"),
        other => panic!("unknown auth {other:?}"),
    };
    let resp = request.body(body).send().await.unwrap();
    let location = resp.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_string();
    (resp.status().as_u16(), location, resp.text().await.unwrap_or_default())
}

/// Runs every case of `app_name` against a fresh app; then the app must be healthy
/// and `valid` (a correctly signed, well-formed event) must still be applied.
async fn run(app_name: &str, api: ProviderKind, valid: BodyCase) {
    let manifest = crate::manifest();
    let cases: Vec<&BodyCase> = manifest.body.iter().filter(|c| c.app == app_name).collect();
    let dir = tempfile::tempdir().unwrap();
    let (app, call) = app_with_a_ringing_call(api, dir.path()).await;
    let mut failures = Vec::new();
    for case in &cases {
        let before = snapshot(&app);
        let (status, location, text) = send(&app, case, &call).await;
        let what = format!("{} {} ({})", case.method, case.path, case.intent);
        assert!(status < 500, "{what}: a {status}: {text}");
        if status != case.status {
            failures.push(format!("{what}: {status} (expected {}): {text}", case.status));
        }
        if let Some(want) = &case.location
            && !location.contains(want.as_str())
        {
            failures.push(format!("{what}: redirected to {location:?}, not to {want:?}"));
        }
        let after = snapshot(&app);
        for table in TABLES {
            if before[table] != after[table] {
                failures.push(format!("{what}: changed {table}: {:?} → {:?}", before[table], after[table]));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status().as_u16(), 200);
    let (status, _, text) = send(&app, &valid, &call).await;
    assert_eq!(status, 200, "the valid event after the bad ones: {text}");
    app.wait_for(Duration::from_secs(10), "the valid event is applied", |c| {
        count(c, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NOT NULL") == 1
    })
    .await;
    app.stop();
}

fn valid(file: &str, path: &str, content_type: &str, auth: &str) -> BodyCase {
    BodyCase {
        app: String::new(),
        file: Some(file.into()),
        generate: None,
        intent: "a valid event".into(),
        method: post(),
        path: path.into(),
        content_type: content_type.into(),
        auth: auth.into(),
        status: 200,
        location: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_twilio_webhooks_and_api_bodies_get_a_4xx_and_change_nothing() {
    let count = crate::manifest().body.len();
    assert!(count >= 20, "the corpus has at least 20 bodies, has {count}");
    let form = "application/x-www-form-urlencoded";
    let valid = valid("twilio_status_valid.form", "/webhooks/twilio/status?attempt_id={attempt}", form, "twilio");
    run("twilio", ProviderKind::Twilio, valid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_telnyx_webhooks_get_a_4xx_and_change_nothing() {
    let valid = valid("telnyx_valid_hangup.json", "/webhooks/telnyx", "application/json", "telnyx");
    run("telnyx", ProviderKind::Telnyx, valid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_vapi_webhooks_get_a_4xx_and_change_nothing() {
    let valid = valid("vapi_valid_end.json", "/webhooks/vapi?attempt_id={attempt}", "application/json", "vapi");
    run("vapi", ProviderKind::Vapi, valid).await;
}
