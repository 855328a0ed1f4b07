//! Test harness: the whole app on a loopback port 0 with the simulated carrier and a
//! temporary SQLite file. Each app runs in its own tokio runtime on its own thread,
//! so a test can stop it gracefully or crash it (drop the runtime mid-flight).
//! `browser`: headless Chromium over WebDriver for the browser tests.
#![allow(dead_code)]

pub mod browser;
pub mod fake_twilio;
pub mod process;
pub mod sim;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dialer::config::{Config, NumberSeed};

/// The dashboard user every test app has (browser tests log in with it).
pub const USER: &str = "admin";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub db_path: PathBuf,
    /// Sends `Authorization: Bearer {token}` (a read-write API token) on every request.
    pub http: reqwest::Client,
    /// The API token `http` sends.
    pub token: String,
    /// A client without credentials, for checking what strangers get.
    pub anon: reqwest::Client,
    stop: Option<std::sync::mpsc::Sender<Stop>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum Stop {
    Graceful,
    Crash,
}

/// Defaults for tests: calling hours all day (tests run at any hour), a fast
/// simulated carrier, three caller numbers without warming.
pub fn config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.database.path = dir.join("dialer.db");
    config.dialing.calling_hours_start = "00:00".into();
    config.dialing.calling_hours_end = "24:00".into();
    // Tests run at any hour: no US outer window (its rules have their own tests).
    config.compliance.profile = dialer::compliance::rules::Profile::None;
    config.dialing.calls_per_second = 20.0;
    config.dialing.max_concurrent_calls = 5;
    config.simulator.ring_seconds = [0.05, 0.3];
    config.simulator.talk_seconds = [0.05, 0.3];
    config.numbers = Some(
        ["+12025550101", "+12025550102", "+12025550103"]
            .iter()
            .map(|n| NumberSeed {
                number: n.to_string(),
                max_daily_calls: 100,
                rotation_priority: 5,
                label: None,
                pool: None,
            })
            .collect(),
    );
    // Caps exactly as configured (warming is covered by its own tests).
    config.rotation.warmup = false;
    // The simulated carrier lists a call the moment it creates it: no need to wait
    // the production minute before asking it about a request with no reply.
    config.provider.reconcile_after_seconds = 1.0;
    config
}

/// Sets the simulated carrier's outcome weights: answered by a person, by a machine,
/// busy, no answer, failed (weights; they need not sum to 1).
pub fn outcomes(config: &mut Config, [answer, machine, busy, no_answer, failed]: [f64; 5]) {
    let sim = &mut config.simulator;
    (sim.answer_rate, sim.machine_rate, sim.busy_rate, sim.no_answer_rate, sim.failed_rate) =
        (answer, machine, busy, no_answer, failed);
}

pub fn spawn(config: Config) -> TestApp {
    spawn_with(config, true)
}

/// `spawn`, optionally without the test user and token (a first run: `/setup`).
pub fn spawn_with(mut config: Config, with_credentials: bool) -> TestApp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    if config.provider.kind != dialer::config::ProviderKind::Simulator && config.server.public_url.is_none() {
        // A provider outside the app (an external simulator) calls back here.
        config.server.public_url = Some(format!("http://{addr}"));
    }
    let db_path = config.database.path.clone();
    let token = if with_credentials { credentials(&db_path) } else { String::new() };
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<Stop>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (graceful_tx, graceful_rx) = tokio::sync::oneshot::channel::<()>();
        let served = runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = ready_tx.send(());
            if let Err(e) = dialer::app::run(config, listener, async move {
                let _ = graceful_rx.await;
            })
            .await
            {
                eprintln!("app stopped with error: {e:#}");
            }
        });
        match stop_rx.recv() {
            Ok(Stop::Graceful) => {
                let _ = graceful_tx.send(());
                let _ = runtime.block_on(served);
            }
            // A crash: every task is dropped where it stands, nothing is flushed.
            Ok(Stop::Crash) | Err(_) => runtime.shutdown_background(),
        }
    });
    ready_rx.recv().expect("app thread started");
    TestApp {
        addr,
        base: format!("http://{addr}"),
        db_path,
        http: authorized_client(&token),
        token,
        anon: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// The dashboard user (created once per database, as `dialer admin create` does) and
/// a fresh read-write API token (as `dialer token create` does), both through the
/// production account operations.
fn credentials(db_path: &Path) -> String {
    let db = dialer::db::Db::open(db_path).expect("open the test database");
    // Its own thread and runtime: `spawn` is called from async tests.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let exists = db.read(|c| dialer::db::auth::user_by_name(c, USER)).await.unwrap().is_some();
            if !exists {
                dialer::auth::ops::create_user(&db, USER, PASSWORD, "test").await.unwrap();
            }
            dialer::auth::ops::create_token(&db, "tests", false, "test").await.unwrap().1
        })
    })
    .join()
    .expect("test credentials")
}

pub fn authorized_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until `/healthz` answers 200, then gives the default campaign one attempt
    /// per lead (`max_attempts` 1): most tests wait for every lead to reach an outcome,
    /// which a retry an hour later would postpone. Retries have their own tests
    /// (`tests/retries.rs`), which use [`TestApp::healthy`].
    pub async fn ready(&self) {
        self.healthy().await;
        let resp = self
            .http
            .patch(self.url("/api/campaigns/1"))
            .json(&serde_json::json!({"settings": {"max_attempts": 1}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "one attempt per lead in the default campaign");
    }

    /// Waits until `/healthz` answers 200.
    pub async fn healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "app never became healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn crash(mut self) {
        self.finish(Stop::Crash);
    }

    pub fn stop(mut self) {
        self.finish(Stop::Graceful);
    }

    fn finish(&mut self, how: Stop) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(how);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let resp = self.http.get(self.url(path)).send().await.unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self.http.post(self.url(path)).json(&body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Schedules `ids` to start in a second, `parallel` calls a batch, batches a second
    /// apart; asserts the 201 and returns the reply.
    pub async fn schedule_leads(&self, ids: &[i64], parallel: u32) -> serde_json::Value {
        let start = chrono::Utc::now() + chrono::Duration::seconds(1);
        let body = serde_json::json!({"lead_ids": ids, "start_at": start.to_rfc3339(), "parallel_calls": parallel,
                                      "interval_seconds": 1});
        let (status, created) = self.post_json("/api/schedule-bulk-calls", body).await;
        assert_eq!(status, 201, "{created}");
        created
    }

    pub async fn import_csv(&self, csv: &str) -> serde_json::Value {
        let resp = self
            .http
            .post(self.url("/api/leads/import"))
            .header("content-type", "text/csv")
            .body(csv.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.json().await.unwrap()
    }

    /// Polls `check` on the store until it holds or `timeout` passes.
    pub async fn wait_for(&self, timeout: Duration, what: &str, check: impl Fn(&rusqlite::Connection) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if check(&self.db()) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A read-only connection to the app's SQLite file.
    pub fn db(&self) -> rusqlite::Connection {
        open_db(&self.db_path)
    }
}

pub fn open_db(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.finish(Stop::Crash);
    }
}

pub fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// True when no lead is waiting or in a call: every one has an outcome.
pub fn all_leads_final(conn: &rusqlite::Connection) -> bool {
    count(conn, "SELECT COUNT(*) FROM leads WHERE status IN ('pending','scheduled','dialing','ringing','in_progress')")
        == 0
}

/// `n` distinct valid US numbers as a CSV in our column set.
pub fn leads_csv(n: usize) -> String {
    let mut csv = String::from("lead_uuid,number,whatsapp_number,name,email,partner,call_status\n");
    for i in 0..n {
        // 415-7xx-xxxx: San Francisco, a valid exchange, never 555.
        csv.push_str(&format!(
            ",(415) 7{:02}-{:04},,Lead {i},lead{i}@example.com,Acme,pending\n",
            i / 100 + 10,
            i % 10_000
        ));
    }
    csv
}
