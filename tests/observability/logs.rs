//! The `dialer serve` binary's own stderr, at `RUST_LOG=debug` for every crate,
//! through a whole job (import, schedule, calls with forged callbacks, a forged
//! webhook, a wrong token, a failed and a real login, a page with the session): no
//! secret appears in it, in either format.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{scrape, sum};

const PASSWORD: &str = "canary-password-7c1e-horse-battery";
const WRONG_PASSWORD: &str = "canary-wrong-password-2d8e";
const FORGED_SIGNATURE: &str = "canary-signature-51f0a9";
const WRONG_TOKEN: &str = "canary-wrong-token-94be";
/// Environment secrets the configuration reads (unused by the simulator, so they
/// show whether configuration is ever printed).
const ENV_SECRETS: [(&str, &str); 4] = [
    ("DIALER_TWILIO_AUTH_TOKEN", "canary-twilio-token-0b7d"),
    ("DIALER_TELNYX_API_KEY", "canary-telnyx-key-3aa2"),
    ("DIALER_VAPI_API_KEY", "canary-vapi-key-c4d9"),
    ("DIALER_VAPI_WEBHOOK_SECRET", "canary-vapi-secret-e6f1"),
];

/// A `dialer serve` child; killed if the test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dialer(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dialer"));
    command.arg("--config").arg(config);
    for var in ["DIALER_LOG_FORMAT", "JOURNAL_STREAM", "NO_COLOR", "RUST_LOG"] {
        command.env_remove(var);
    }
    command.envs(ENV_SECRETS);
    command
}

fn write_config(dir: &Path, port: u16, format: &str) -> PathBuf {
    let path = dir.join("dialer.toml");
    let text = format!(
        r#"
[server]
bind = "127.0.0.1:{port}"
[database]
path = "{db}"
[log]
format = "{format}"
[dialing]
calling_hours_start = "00:00"
calling_hours_end = "24:00"
calls_per_second = 20.0
max_concurrent_calls = 5
[compliance]
profile = "none"
[rotation]
warmup = false
[provider]
reconcile_after_seconds = 1.0
[simulator]
ring_seconds = [0.05, 0.3]
talk_seconds = [0.05, 0.3]
[simulator.faults]
invalid_signatures = 0.2
"#,
        db = dir.join("dialer.db").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `dialer token create NAME [--read-only]`: the token, alone on stdout.
fn create_token(config: &Path, name: &str, read_only: bool) -> String {
    let mut command = dialer(config);
    command.args(["token", "create", name]);
    if read_only {
        command.arg("--read-only");
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.len() >= 20, "a token: {token:?}");
    token
}

fn create_admin(config: &Path) {
    let mut child =
        dialer(config).args(["admin", "create", "alice"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `dialer serve` with stderr into `log`; under "journald" `JOURNAL_STREAM`
/// names that file, as systemd names the stream it connects.
fn serve(config: &Path, log: &Path, env: &[(&str, &str)], journald: bool) -> Server {
    let file = std::fs::File::create(log).unwrap();
    let mut command = dialer(config);
    command.arg("serve").env("RUST_LOG", "debug").envs(env.iter().copied());
    if journald {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata().unwrap();
        command.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    }
    Server(command.stdout(Stdio::null()).stderr(Stdio::from(file)).spawn().unwrap())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The main job through the API with `token`, a forged webhook, a wrong token and a
/// login; waits (scraping with `read_only`) until every call ended. Returns the
/// login form's CSRF token and the session id: secrets too.
async fn run_job(base: &str, token: &str, read_only: &str) -> Vec<String> {
    let auth = |t: &str| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {t}").parse().unwrap());
        reqwest::Client::builder().default_headers(headers).build().unwrap()
    };
    let (http, metrics_client) = (auth(token), auth(read_only));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "dialer serve never became healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let patch = http.patch(format!("{base}/api/campaigns/1")).json(&json!({"settings": {"max_attempts": 1}}));
    assert_eq!(patch.send().await.unwrap().status().as_u16(), 200);
    let import = http.post(format!("{base}/api/leads/import")).header("content-type", "text/csv");
    assert_eq!(import.body(crate::support::leads_csv(20)).send().await.unwrap().status().as_u16(), 200);
    let body = json!({"select": {"status": "pending"}, "campaign_id": 1, "parallel_calls": 20, "interval_seconds": 1,
                      "start_at": chrono::Utc::now().to_rfc3339()});
    let scheduled = http.post(format!("{base}/api/schedule-bulk-calls")).json(&body).send().await.unwrap();
    assert_eq!(scheduled.status().as_u16(), 201);

    let anonymous = reqwest::Client::new();
    let forged = anonymous
        .post(format!("{base}/webhooks/twilio/status?attempt_id=1"))
        .header("x-twilio-signature", FORGED_SIGNATURE)
        .header("authorization", format!("Bearer {WRONG_TOKEN}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("CallSid=CA00000000000000000000000000000001&CallStatus=completed");
    assert_eq!(forged.send().await.unwrap().status().as_u16(), 403);
    let _ = auth(WRONG_TOKEN).get(format!("{base}/api/status")).send().await.unwrap();
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookies = log_in(&no_redirects, base).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, metrics) = scrape(&metrics_client, base).await;
        if sum(&metrics, "dialer_calls_total", &[]) == 20.0 && sum(&metrics, "dialer_calls_in_flight", &[]) == 0.0 {
            return cookies;
        }
        assert!(Instant::now() < deadline, "the 20 calls never all ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the `name` cookie a response sets.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get_all("set-cookie").iter().find_map(|v| {
        let (key, value) = v.to_str().ok()?.split(';').next()?.split_once('=')?;
        (key.trim() == name).then(|| value.to_string())
    })
}

/// A failed login (wrong password), then a real one (double-submit CSRF cookie and
/// field), then a page with the session. Returns the form token and the session id.
async fn log_in(client: &reqwest::Client, base: &str) -> Vec<String> {
    let page = client.get(format!("{base}/login")).send().await.unwrap();
    let form = set_cookie(&page, "dialer_form").expect("the login page sets its form cookie");
    let post = |password: &'static str| {
        client.post(format!("{base}/login")).header("cookie", format!("dialer_form={form}")).form(&[
            ("username", "alice"),
            ("password", password),
            ("_csrf", &form),
        ])
    };
    assert_eq!(post(WRONG_PASSWORD).send().await.unwrap().status().as_u16(), 401);
    let done = post(PASSWORD).send().await.unwrap();
    assert_eq!(done.status().as_u16(), 303, "logged in");
    let session = set_cookie(&done, "dialer_session").expect("a session cookie");
    let home = client.get(format!("{base}/")).header("cookie", format!("dialer_session={session}"));
    assert_eq!(home.send().await.unwrap().status().as_u16(), 200, "the session opens the dashboard");
    vec![form, session]
}

/// SIGTERM (what systemd sends), then the log as written.
async fn stop(mut server: Server, log: &Path) -> String {
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "dialer serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::read_to_string(log).unwrap()
}

/// Runs the job on a fresh store and returns (log, every secret it involved).
async fn logged_job(format_in_file: &str, env: &[(&str, &str)], journald: bool) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, format_in_file);
    let token = create_token(&config, "flow", false);
    let read_only = create_token(&config, "prometheus", true);
    create_admin(&config);
    let log = dir.path().join("stderr.log");
    let server = serve(&config, &log, env, journald);
    let cookies = run_job(&format!("http://127.0.0.1:{port}"), &token, &read_only).await;
    let text = stop(server, &log).await;
    let mut secrets = vec![token, read_only, PASSWORD.into(), WRONG_PASSWORD.into()];
    secrets.extend([FORGED_SIGNATURE.into(), WRONG_TOKEN.into()]);
    secrets.push(dialer::provider::simulator::AUTH_TOKEN.into());
    secrets.extend(ENV_SECRETS.iter().map(|(_, v)| v.to_string()));
    secrets.extend(cookies);
    (text, secrets)
}

fn assert_no_secret(log: &str, secrets: &[String]) {
    assert!(log.contains("dialer serving") && log.contains("call ended"), "the job was logged:\n{log}");
    assert!(log.lines().count() > 50, "debug logs from every crate were captured");
    for secret in secrets {
        let line = log.lines().find(|l| l.contains(secret.as_str()));
        assert!(line.is_none(), "a secret ({}…) is in the log: {line:?}", &secret[..6]);
    }
    assert!(!log.contains('\u{1b}'), "no ANSI escapes in a file");
}

/// Under journald (stderr is the stream `JOURNAL_STREAM` names) plain lines start
/// with a `<N>` priority and no timestamp; `DIALER_LOG_FORMAT` wins over the file.
#[tokio::test(flavor = "multi_thread")]
async fn plain_logs_under_journald_have_priorities_and_no_timestamps_or_secrets() {
    let (log, secrets) = logged_job("json", &[("DIALER_LOG_FORMAT", "plain")], true).await;
    assert_no_secret(&log, &secrets);
    for line in log.lines() {
        let rest = ["<3>", "<4>", "<6>", "<7>"].iter().find_map(|p| line.strip_prefix(p));
        let rest = rest.unwrap_or_else(|| panic!("no priority prefix: {line:?}"));
        let level = rest.split_whitespace().next().unwrap_or("");
        assert!(["ERROR", "WARN", "INFO", "DEBUG"].contains(&level), "a level, not a timestamp, first: {line:?}");
    }
    assert!(log.lines().any(|l| l.starts_with("<4> WARN") && l.contains("invalid signature")), "{log}");
}

/// `[log] format = "json"` alone gives one JSON object per line, with its timestamp.
#[tokio::test(flavor = "multi_thread")]
async fn json_logs_from_the_config_file_carry_no_secrets() {
    let (log, secrets) = logged_job("json", &[], false).await;
    assert_no_secret(&log, &secrets);
    for line in log.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(event["timestamp"].is_string() && event["level"].is_string(), "{line}");
    }
}
