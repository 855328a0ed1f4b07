//! Shared machinery for the browser tests (`tests/browser.rs`, `tests/browser_numbers.rs`):
//! a fresh headless Chromium per journey, driven over WebDriver (chromedriver +
//! fantoccini), and page helpers to find elements, read them and wait on them.
//!
//! Needs `/usr/bin/chromium` and `chromedriver` (Debian: `chromium chromium-driver`).
//! Without them `in_browser` prints `SKIPPED: ...` and the test passes, except with
//! `CI=true`, where it fails: CI must run it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Upper bound for any single wait on the browser or the app.
pub const WAIT: Duration = Duration::from_secs(20);

/// Runs `journey` in a fresh headless Chromium, or skips (see `browser_tools`).
pub async fn in_browser<J, F>(name: &str, journey: J)
where
    J: FnOnce(Client) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let Some(chromedriver) = browser_tools() else {
        return;
    };
    let started = Instant::now();

    let driver = ChromeDriver::start(&chromedriver).await;
    let client = driver.connect().await;
    // The journey runs in its own task so that a failed assertion still lets us close
    // the browser session before the panic is passed on (the guard then stops
    // chromedriver and anything it started).
    let outcome = tokio::spawn(journey(client.clone())).await;
    let closed = client.close().await;
    if let Err(e) = outcome {
        // `driver` is dropped while unwinding: it stops chromedriver and prints its log.
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("browser {name} did not finish: {e}"),
        }
    }
    closed.expect("close the browser session");
    drop(driver);
    eprintln!("browser test: {name} passed in {:.1?}", started.elapsed());
}

// ---- page helpers ----

pub async fn find(c: &Client, css: &str) -> Element {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no element {css}: {e}"))
}

pub async fn text(c: &Client, css: &str) -> String {
    find(c, css).await.text().await.unwrap().trim().to_string()
}

pub async fn number(c: &Client, css: &str) -> u64 {
    let t = text(c, css).await;
    t.parse().unwrap_or_else(|_| panic!("{css} should show a number, shows {t:?}"))
}

pub async fn wait_text(c: &Client, css: &str, want: &str) {
    wait_for_text(c, css, &format!("{css} to read {want:?}"), |t| t == want).await;
}

pub async fn wait_for_text(c: &Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let t = text(c, css).await;
        if ok(&t) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; {css} reads {t:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `element` is shown (or hidden) or `WAIT` passes.
pub async fn wait_displayed(element: &Element, shown: bool, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if element.is_displayed().await.unwrap() == shown {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each row's cell texts.
pub async fn table_rows(c: &Client, css: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for tr in c.find_all(Locator::Css(css)).await.unwrap() {
        let mut cells = Vec::new();
        for td in tr.find_all(Locator::Css("td")).await.unwrap() {
            cells.push(td.text().await.unwrap().trim().to_string());
        }
        rows.push(cells);
    }
    rows
}

/// Clicks `css` (a link or submit button) and waits until the current document has
/// been replaced by a new one that has finished loading.
pub async fn load_after_click(c: &Client, css: &str) {
    const MARK: &str = "__dialerTestOldPage";
    c.execute(&format!("window.{MARK} = true;"), vec![]).await.unwrap();
    find(c, css).await.click().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        // While the old document is torn down the script may fail: just ask again.
        let loaded = c
            .execute(&format!("return window.{MARK} === undefined && document.readyState === 'complete';"), vec![])
            .await;
        if matches!(loaded, Ok(Value::Bool(true))) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for a new page after clicking {css}: {loaded:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens `path` of `app`; when the app sends the browser to its login page (no
/// session yet, or it ended), logs in as the test user through the form and lands
/// on `path`.
pub async fn open(c: &Client, app: &super::TestApp, path: &str) {
    c.goto(&app.url(path)).await.unwrap();
    let at = c.current_url().await.unwrap();
    if at.path() != "/login" {
        return;
    }
    find(c, "#login-form input[name=username]").await.send_keys(super::USER).await.unwrap();
    find(c, "#login-form input[name=password]").await.send_keys(super::PASSWORD).await.unwrap();
    load_after_click(c, "#login-form button[type=submit]").await;
    let landed = c.current_url().await.unwrap();
    if landed.path() == "/login" {
        let page = c.source().await.unwrap_or_default();
        panic!("login as the test user failed: {page}");
    }
}

/// Saves a screenshot of the window as `target/{name}`.
pub async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join(name), &png).unwrap();
}

// ---- chromedriver ----

/// The chromedriver binary, or None (after saying so) when the browser tools are
/// missing outside CI. In CI a missing browser is a failure, never a skip.
fn browser_tools() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let driver = find_chromedriver();
    let missing = match &driver {
        None => Some("chromedriver not found (looked at /usr/bin/chromedriver and on PATH)".to_string()),
        Some(_) if !Path::new(CHROMIUM).exists() => Some(format!("chromium not found at {CHROMIUM}")),
        Some(_) => None,
    };
    if let Some(why) = missing {
        assert!(
            !ci,
            "CI requires Chromium and chromedriver for the browser test: {why}. \
             Install them with `apt-get install -y chromium chromium-driver`."
        );
        println!("SKIPPED: {why}; install `chromium chromium-driver` to run the browser test");
        return None;
    }
    driver
}

fn find_chromedriver() -> Option<PathBuf> {
    let default = PathBuf::from("/usr/bin/chromedriver");
    if default.is_file() {
        return Some(default);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("chromedriver")).find(|p| p.is_file())
}

/// A chromedriver child process in its own process group, so that dropping the
/// guard (also while unwinding from a failed assertion) ends it and every browser
/// process it started.
struct ChromeDriver {
    child: Child,
    port: u16,
    /// Holds the browser profile (`profile/`) and `chromedriver.log`.
    work: tempfile::TempDir,
}

impl ChromeDriver {
    async fn start(binary: &Path) -> ChromeDriver {
        let work = tempfile::tempdir().expect("temp dir for the browser profile");
        let log = work.path().join("chromedriver.log");
        let port = free_port();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(binary)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()))
        };
        let mut driver = ChromeDriver { child, port, work };
        driver.wait_ready().await;
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("chromedriver exited early with {status}");
            }
            if let Ok(resp) = http.get(format!("{}/status", self.url())).send().await
                && let Ok(body) = resp.json::<Value>().await
                && body["value"]["ready"] == json!(true)
            {
                return;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer on {} within {WAIT:?}", self.url());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn connect(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", self.work.path().join("profile").display()),
                ],
            }),
        );
        // chromedriver listens on loopback over plain HTTP: no TLS connector.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("open a Chromium session through chromedriver: {e}"))
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // SIGKILL to the whole group we created: chromedriver and its browsers.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(self.work.path().join("chromedriver.log"))
        {
            let tail: Vec<&str> = log.lines().filter(|l| l.starts_with('[')).rev().take(40).collect();
            eprintln!("--- chromedriver log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().unwrap().port()
}
