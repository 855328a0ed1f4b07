//! The real `dialer` binary as child processes: the simulated carrier alone
//! (`dialer simulator`), whose ledger outlives the dialer, and `dialer serve`, which
//! a test can SIGKILL (`Child::kill`): no destructor, no flush, no graceful anything,
//! as with `kill -9`. The in-process harness (`support::spawn`) cannot do that: its
//! "crash" drops a tokio runtime inside the test's own process.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary cargo built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_dialer");

/// `dialer --config CONFIG` with stderr (the logs) appended to `log`.
fn command(config: &Path, log: &Path) -> Command {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("open the log file");
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(config).stdin(Stdio::null()).stderr(log).env("NO_COLOR", "1");
    cmd
}

/// The last `bytes` of a log file, for failure messages.
pub fn log_tail(log: &Path, bytes: u64) -> String {
    let Ok(mut file) = std::fs::File::open(log) else { return String::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(len.saturating_sub(bytes)));
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    text
}

/// A free loopback address for a server that must come back on the same port after
/// each restart. The port is outside the kernel's ephemeral range
/// (`ip_local_port_range`), so no outgoing connection (a webhook retried while the
/// server is down) can take it in between and make the restart's bind fail.
pub fn free_addr() -> SocketAddr {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low: u16 = range.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(32768);
    if low > 10_100 {
        // Start at a pseudo-random point so parallel runs rarely probe the same ports.
        let span = low - 10_000;
        let first = 10_000 + (std::process::id() as u16).wrapping_mul(7919) % span;
        for port in (first..low).chain(10_000..first) {
            if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                return listener.local_addr().unwrap();
            }
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().unwrap()
}

/// `dialer simulator` in its own process.
pub struct SimProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the simulator printed it.
    pub base: String,
    pub log: PathBuf,
    http: reqwest::Client,
    // Kept open: the simulator's stdout must not become a broken pipe.
    _stdout: BufReader<ChildStdout>,
}

impl SimProcess {
    /// Writes `config_toml` (its `[simulator]` section is what matters) to
    /// `dir/simulator.toml`, starts `dialer simulator --bind 127.0.0.1:0` and reads
    /// the base URL from the first line it prints.
    pub fn spawn(dir: &Path, config_toml: &str) -> SimProcess {
        let config = dir.join("simulator.toml");
        std::fs::write(&config, config_toml).unwrap();
        let log = dir.join("simulator.log");
        let mut child = command(&config, &log)
            .args(["simulator", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start dialer simulator");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        // The simulator prints this line as soon as it listens, or exits (EOF).
        stdout.read_line(&mut line).unwrap();
        let base = line
            .split_once("listening on ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("the simulator printed {line:?}; log:\n{}", log_tail(&log, 4000)))
            .to_string();
        SimProcess { child, base, log, http: reqwest::Client::new(), _stdout: stdout }
    }

    /// `GET /sim/ledger`: `{"calls": [...], "forged_accepted": N, "faults": {...}}`.
    pub async fn ledger(&self) -> serde_json::Value {
        let url = format!("{}/sim/ledger", self.base);
        let resp = self.http.get(url).send().await.expect("the simulator answers");
        resp.json().await.expect("the ledger is JSON")
    }

    /// Every call the simulator created, in creation order.
    pub async fn calls(&self) -> Vec<serde_json::Value> {
        self.ledger().await["calls"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dialer serve` on a fixed loopback port (so callbacks to calls placed before a
/// restart still reach it), started, SIGKILLed and restarted on one database.
pub struct DialerProcess {
    pub config: PathBuf,
    pub log: PathBuf,
    pub addr: SocketAddr,
    pub base: String,
    /// Sends `Authorization: Bearer TOKEN` once [`DialerProcess::create_token`] made one.
    pub http: reqwest::Client,
    pub token: Option<String>,
    /// How many times `serve` was started.
    pub starts: u32,
    child: Option<Child>,
    started_at: Option<Instant>,
}

impl DialerProcess {
    /// Writes `config_toml` to `dir/dialer.toml`; it must bind `addr` (`[server] bind`).
    pub fn new(dir: &Path, config_toml: &str, addr: SocketAddr) -> DialerProcess {
        let config = dir.join("dialer.toml");
        std::fs::write(&config, config_toml).unwrap();
        DialerProcess {
            config,
            log: dir.join("dialer.log"),
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            token: None,
            starts: 0,
            child: None,
            started_at: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Runs `dialer --config … ARGS` to completion; returns (success, stdout).
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let out = command(&self.config, &self.log).args(args).output().expect("run dialer");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `dialer token create NAME` (it prints the token alone on stdout). On success
    /// every later request through `http` carries it. None when the command failed
    /// (logged in `log`).
    pub fn create_token(&mut self, name: &str) -> Option<String> {
        let (ok, stdout) = self.run(&["token", "create", name]);
        let token = stdout.trim().to_string();
        if !ok || token.is_empty() || token.contains(char::is_whitespace) {
            return None;
        }
        let mut headers = reqwest::header::HeaderMap::new();
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
        self.http = reqwest::Client::builder().default_headers(headers).build().unwrap();
        self.token = Some(token.clone());
        Some(token)
    }

    /// Starts `dialer serve` (logs appended to `log`).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = command(&self.config, &self.log).arg("serve").stdout(Stdio::null()).spawn().expect("serve");
        self.child = Some(child);
        self.started_at = Some(Instant::now());
        self.starts += 1;
    }

    /// How long ago `serve` was last started.
    pub fn uptime(&self) -> Duration {
        self.started_at.map(|t| t.elapsed()).unwrap_or_default()
    }

    /// SIGKILL, then reap: when this returns the process is gone and every write it
    /// did not commit is lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }

    /// False when `serve` exited by itself (it should not), with its exit status.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => Err(format!("dialer serve exited: {status}")),
            Some(Err(e)) => Err(format!("dialer serve: {e}")),
            None => Err("dialer serve is not started".into()),
        }
    }

    /// Waits until `/healthz` answers 200; panics with the log's tail after `timeout`
    /// or if the process exited.
    pub async fn healthy(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Err(e) = self.check_running() {
                panic!("{e}; log:\n{}", log_tail(&self.log, 4000));
            }
            assert!(Instant::now() < deadline, "dialer never became healthy; log:\n{}", log_tail(&self.log, 4000));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for DialerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends the request built by `request` until the dialer answers it in full (status
/// and body), through kills and restarts; panics after `patience`. Only for requests
/// that may safely be sent twice.
pub async fn answered(what: &str, patience: Duration, request: impl Fn() -> reqwest::RequestBuilder) -> (u16, String) {
    let deadline = Instant::now() + patience;
    loop {
        match send(request()).await {
            Ok(answer) => return answer,
            Err(e) => assert!(Instant::now() < deadline, "{what}: no answer for {patience:?}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends once; the status and body, or the error of a request cut off (connection
/// refused or reset, body incomplete).
pub async fn send(request: reqwest::RequestBuilder) -> reqwest::Result<(u16, String)> {
    let resp = request.timeout(Duration::from_secs(20)).send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

/// What differs between the tests that run `dialer serve` against `dialer simulator`:
/// lines added to the `[dialing]`, `[rotation]` and `[provider]` tables, and the
/// caller numbers (each with room for 1,000 calls a day).
pub struct DialerToml<'a> {
    pub dialing: &'a str,
    pub rotation: &'a str,
    pub provider: &'a str,
    pub numbers: &'a [&'a str],
}

/// A `dialer.toml` for `dialer serve` on `addr` with its database at `db`, speaking
/// Twilio to the simulated carrier at `sim`: calling hours all day, no compliance
/// profile (tests run at any hour), no warming, reconciliation after 1 s.
pub fn dialer_toml(addr: SocketAddr, db: &Path, sim: &str, t: &DialerToml<'_>) -> String {
    let provider = dialer::provider::simulator::credentials(sim);
    let mut toml = format!(
        r#"[server]
bind = "{addr}"
public_url = "http://{addr}"

[database]
path = "{db}"

[dialing]
calling_hours_start = "00:00"
calling_hours_end = "24:00"
{dialing}

[compliance]
profile = "none"

[rotation]
warmup = false
{rotation}

[provider]
kind = "twilio"
reconcile_after_seconds = 1.0
{provider_extra}

[provider.twilio]
api_base = "{sim}"
account_sid = "{sid}"
auth_token = "{token}"
"#,
        db = db.display(),
        dialing = t.dialing,
        rotation = t.rotation,
        provider_extra = t.provider,
        sid = provider.twilio.account_sid,
        token = provider.twilio.auth_token.expose(),
    );
    for number in t.numbers {
        toml.push_str(&format!("\n[[numbers]]\nnumber = \"{number}\"\nmax_daily_calls = 1000\n"));
    }
    toml
}
