//! The simulator's Twilio REST API over real HTTP: create-call faults, errors in
//! Twilio's shapes, Fetch/Read from the ledger, Modify Call, IncomingPhoneNumbers.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::{Callee, Faults, Simulator};
use crate::provider::simulator::{ACCOUNT_SID, AUTH_TOKEN};

struct TestSim {
    base: String,
    http: reqwest::Client,
    stop: CancellationToken,
}

impl Drop for TestSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(settings: Simulator) -> TestSim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = CancellationToken::new();
    let base = crate::provider::simulator::spawn(listener, settings, stop.clone()).unwrap();
    TestSim { base, http: reqwest::Client::new(), stop }
}

impl TestSim {
    fn calls_url(&self) -> String {
        format!("{}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls", self.base)
    }

    /// Create Call to `to`; the dialer's URLs point at a closed port (the call's
    /// TwiML fetch fails and it ends, which is all these tests need).
    async fn create(&self, to: &str) -> (u16, Value) {
        let form = [("To", to), ("From", "+12025550101"), ("Url", "http://127.0.0.1:9/voice?attempt_id=3")];
        let resp = self
            .http
            .post(format!("{}.json", self.calls_url()))
            .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
            .form(&form)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, url: &str) -> (u16, Value) {
        let resp = self.http.get(url).basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN)).send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    async fn modify(&self, sid: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{}/{sid}.json", self.calls_url());
        let resp = self.http.post(url).basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN)).form(form).send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    async fn ledger(&self) -> Vec<Value> {
        let ledger: Value =
            self.http.get(format!("{}/sim/ledger", self.base)).send().await.unwrap().json().await.unwrap();
        ledger["calls"].as_array().unwrap().clone()
    }

    /// Polls the ledger until `sid`'s call has ended; its entry.
    async fn ended(&self, sid: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.ledger().await.into_iter().find(|c| c["call_id"] == sid && !c["ended"].is_null());
            if let Some(call) = found {
                return call;
            }
            assert!(Instant::now() < deadline, "call {sid} never ended");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn fast(faults: Faults) -> Simulator {
    Simulator { ring_seconds: [0.01, 0.01], talk_seconds: [0.01, 0.01], faults, ..Simulator::default() }
}

#[tokio::test]
async fn create_faults_answer_as_twilio_does() {
    let hang = 0.3;
    // (fault, HTTP status, Twilio code, whether a call exists afterwards)
    type Case = (fn(&mut Faults), u16, Option<i64>, bool);
    let cases: [Case; 5] = [
        (|f| f.rate_limited = 1.0, 429, Some(20429), false),
        (|f| f.server_error = 1.0, 500, Some(20500), false),
        (|f| f.server_error_after_create = 1.0, 500, Some(20500), true),
        (|f| f.timeout_before_create = 1.0, 500, Some(20500), false),
        (|f| f.timeout_after_create = 1.0, 201, None, true),
    ];
    for (i, (set, status, code, creates)) in cases.into_iter().enumerate() {
        let mut faults = Faults { hang_seconds: hang, ..Faults::default() };
        set(&mut faults);
        let sim = start(fast(faults)).await;
        let started = Instant::now();
        let (got, body) = sim.create("+14152370001").await;
        assert_eq!(got, status, "case {i}: {body}");
        assert_eq!(body["code"].as_i64(), code, "case {i}: {body}");
        let held = started.elapsed() >= Duration::from_secs_f64(hang);
        assert_eq!(held, i >= 3, "case {i}: only the timeouts hold the request");
        let ledger = sim.ledger().await;
        assert_eq!(ledger.len(), usize::from(creates), "case {i}: {ledger:?}");
        if creates {
            assert_eq!(ledger[0]["client_ref"], "3", "the attempt id from the voice URL");
        }
    }
}

#[tokio::test]
async fn calls_are_read_fetched_and_modified_from_the_ledger() {
    let mut settings = fast(Faults::default());
    settings.ring_seconds = [3.0, 3.0];
    settings.callees.insert("+14152370010".into(), Callee::Failed);
    settings.callees.insert("+14152370005".into(), Callee::Silence);
    let sim = start(settings).await;

    // Twilio's errors: bad credentials, a missing To, an unknown call.
    let resp =
        sim.http.get(format!("{}.json", sim.calls_url())).basic_auth(ACCOUNT_SID, Some("nope")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], 20003);
    let resp = sim
        .http
        .post(format!("{}.json", sim.calls_url()))
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .form(&[("From", "+1")]);
    let body: Value = resp.send().await.unwrap().json().await.unwrap();
    assert_eq!(body["code"], 21201);
    let (status, body) = sim.get(&format!("{}/CA0.json", sim.calls_url())).await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(20404)));
    assert_eq!(sim.modify("CA0", &[("Status", "completed")]).await.0, 404);

    // A failed call ends at once: Fetch shows it, and it can no longer be modified.
    let (status, failed) = sim.create("+14152370010").await;
    assert_eq!((status, &failed["status"]), (201, &Value::from("queued")));
    let sid = failed["sid"].as_str().unwrap();
    assert_eq!(sim.ended(sid).await["ended"], "failed");
    let (_, fetched) = sim.get(&format!("{}/{sid}.json", sim.calls_url())).await;
    assert_eq!((&fetched["status"], &fetched["to"]), (&Value::from("failed"), &Value::from("+14152370010")));
    let (status, body) = sim.modify(sid, &[("Url", "http://127.0.0.1:9/voicemail")]).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(21220)));

    // A ringing call hung up by Modify Call is canceled, with no TwiML run.
    let (_, ringing) = sim.create("+14152370005").await;
    let sid = ringing["sid"].as_str().unwrap();
    assert_eq!(sim.modify(sid, &[("Status", "completed")]).await.0, 200);
    let call = sim.ended(sid).await;
    assert_eq!((&call["ended"], call["steps"].as_array().unwrap().len()), (&Value::from("canceled"), 0));

    // Read Calls filters by To.
    let (_, list) = sim.get(&format!("{}.json?To=%2B14152370005", sim.calls_url())).await;
    let calls = list["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["sid"], sid);
    assert!(list["next_page_uri"].is_null());
}

#[tokio::test]
async fn the_account_owns_the_demo_numbers_and_a_few_more() {
    let sim = start(fast(Faults::default())).await;
    let url = format!("{}/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers.json", sim.base);
    let (status, body) = sim.get(&url).await;
    assert_eq!(status, 200);
    let numbers: Vec<&str> = body["incoming_phone_numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["phone_number"].as_str().unwrap())
        .collect();
    assert!(crate::config::DEMO_NUMBERS.iter().all(|d| numbers.contains(d)), "{numbers:?}");
    assert_eq!(numbers.len(), crate::config::DEMO_NUMBERS.len() + super::EXTRA_NUMBERS.len());
    let first = &body["incoming_phone_numbers"][0];
    assert!(first["sid"].as_str().unwrap().starts_with("PN") && first["sid"].as_str().unwrap().len() == 34);
    assert!(first["friendly_name"].is_string() && body["next_page_uri"].is_null());
}
