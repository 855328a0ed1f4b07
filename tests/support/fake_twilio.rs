//! A stand-in Twilio REST API on a loopback port, for tests of the production
//! Twilio client's requests (Create, Fetch, Read and Modify Call, IncomingPhoneNumbers
//! paging): it answers as Twilio documents and records what it was sent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

/// What the stand-in Twilio received on Modify Call: (call sid, form pairs).
pub type Modified = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// The stand-in Twilio's account and auth token.
pub const FAKE_SID: &str = "AC1";
pub const FAKE_TOKEN: &str = "token";

/// What the stand-in Twilio saw.
#[derive(Clone, Default)]
pub struct Fake {
    pub modified: Modified,
    /// The query string of every Read-multiple-Calls request, in order.
    pub listed: Arc<Mutex<Vec<String>>>,
    /// Calls created so far (their sids are `CAplaced{n}`).
    pub created: Arc<AtomicUsize>,
}

/// Lead numbers the stand-in's call list answers for (`find_calls`).
pub const LISTED_TO: &str = "+14155550123";
pub const ENDLESS_TO: &str = "+14155550199";
pub const LISTED_FROM: &str = "+12025550101";

/// The `since` of the `find_calls` test: the calls the stand-in lists are dated around it.
pub fn listed_since() -> chrono::DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()
}

/// Read multiple Call resources as Twilio answers it: newest first, `PageSize` per
/// page, linked by `next_page_uri` (which repeats the filters). For `LISTED_TO`:
/// page 0 has a call still queued (no start time) and one with a status we do not
/// know; page 1 a completed call since `listed_since()` and one from before it; page
/// 2 (never to be read) an older one. For `ENDLESS_TO`: every page one new call and
/// a next page, forever.
pub fn call_list_page(query: &str) -> serde_json::Value {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let page: usize = get("Page").parse().unwrap_or(0);
    let at = |seconds: i64| (listed_since() + chrono::Duration::seconds(seconds)).to_rfc2822();
    let call = |sid: &str, status: &str, created: i64| {
        json!({"sid": sid, "status": status, "date_created": at(created), "start_time": null,
               "answered_by": null, "duration": null, "to": get("To"), "from": get("From")})
    };
    let next = serde_urlencoded::to_string([
        ("To", get("To")),
        ("From", get("From")),
        ("PageSize", get("PageSize")),
        ("Page", (page + 1).to_string()),
        ("PageToken", format!("PA{}", page + 1)),
    ])
    .unwrap();
    let next = format!("/2010-04-01/Accounts/{FAKE_SID}/Calls.json?{next}");
    let (calls, next) = match (get("To").as_str(), page) {
        (LISTED_TO, 0) => (vec![call("CAqueued", "queued", 5), call("CAnewstatus", "awaiting-carrier", 4)], Some(next)),
        (LISTED_TO, 1) => {
            let mut done = call("CAdone", "completed", 1);
            done["answered_by"] = json!("human");
            done["duration"] = json!("12");
            (vec![done, call("CAbefore", "completed", -60)], Some(next))
        }
        (LISTED_TO, _) => (vec![call("CAnever", "completed", -3600)], None),
        (ENDLESS_TO, p) => (vec![call(&format!("CAendless{p}"), "completed", 30)], Some(next)),
        _ => (vec![], None),
    };
    json!({"calls": calls, "next_page_uri": next, "page": page, "page_size": 50})
}

/// A stand-in Twilio REST API on a loopback port: two pages of IncomingPhoneNumbers
/// (linked by `next_page_uri`), Create Call (`CAplaced{n}`, queued), Fetch Call
/// (in progress), Read multiple Calls ([`call_list_page`], queries recorded) and
/// Modify Call (recorded; `CAgone` is a call that already ended: 400 with code 21220).
pub async fn fake_twilio() -> (String, Fake) {
    use axum::extract::{Path, RawQuery, State};
    use axum::routing::get;
    let fake = Fake::default();
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
    let modify = |State(f): State<Fake>, Path(file): Path<String>, body: String| async move {
        let sid = file.trim_end_matches(".json").to_string();
        let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
        f.modified.lock().unwrap().push((sid.clone(), form));
        if sid == "CAgone" {
            let err = json!({"code": 21220, "message": "Call is not in-progress. Cannot redirect."});
            return (axum::http::StatusCode::BAD_REQUEST, axum::Json(err));
        }
        (axum::http::StatusCode::OK, axum::Json(json!({"sid": sid, "status": "in-progress"})))
    };
    let fetch = |Path(file): Path<String>| async move {
        axum::Json(json!({"sid": file.trim_end_matches(".json"), "status": "in-progress"}))
    };
    let create = |State(f): State<Fake>| async move {
        let n = f.created.fetch_add(1, Ordering::SeqCst);
        let call = json!({"sid": format!("CAplaced{n}"), "status": "queued", "date_created": Utc::now().to_rfc2822()});
        (axum::http::StatusCode::CREATED, axum::Json(call))
    };
    let list = |State(f): State<Fake>, RawQuery(q): RawQuery| async move {
        let q = q.unwrap_or_default();
        f.listed.lock().unwrap().push(q.clone());
        axum::Json(call_list_page(&q))
    };
    let app = axum::Router::new()
        .route("/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json", get(numbers))
        .route("/2010-04-01/Accounts/AC1/Calls.json", get(list).post(create))
        .route("/2010-04-01/Accounts/AC1/Calls/{file}", get(fetch).post(modify))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, fake)
}

pub fn fake_client(base: String) -> dialer::provider::twilio::client::TwilioClient {
    use dialer::provider::twilio::client::{Settings, TwilioClient};
    TwilioClient::new(Settings {
        api_base: base,
        account_sid: FAKE_SID.into(),
        auth_token: dialer::config::Secret::new(FAKE_TOKEN),
        public_url: "https://d.example.com".into(),
        ring_timeout_seconds: 25,
        max_call_seconds: 600,
        request_timeout: Duration::from_secs(5),
    })
    .unwrap()
}
