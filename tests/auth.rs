//! Authentication end to end over real HTTP: which routes strangers get, sessions,
//! CSRF, API tokens (read-only, revoked), the login rate limit, first-run setup and
//! the security headers.

#[path = "auth/review.rs"]
mod review;
mod support;

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use support::{PASSWORD, TestApp, USER};

/// A cookie jar by hand (reqwest's jar is a feature we do not build) and no
/// redirect following, so each answer can be checked.
struct Visitor {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Visitor {
    fn new() -> Visitor {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Visitor { http, cookies: HashMap::new() }
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all(SET_COOKIE) {
            let first = v.to_str().unwrap().split(';').next().unwrap();
            let (k, val) = first.split_once('=').unwrap();
            if val.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let resp = self.http.get(url).header(COOKIE, self.cookie_header()).send().await.unwrap();
        self.keep(&resp);
        resp
    }

    async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let resp = self.http.post(url).header(COOKIE, self.cookie_header()).form(form).send().await.unwrap();
        self.keep(&resp);
        resp
    }

    /// Logs in through the form; returns the answer to the POST.
    async fn login(&mut self, app: &TestApp, user: &str, password: &str) -> reqwest::Response {
        let page = self.get(&app.url("/login")).await.text().await.unwrap();
        let csrf = hidden(&page, "_csrf");
        self.post_form(
            &app.url("/login"),
            &[("username", user), ("password", password), ("_csrf", &csrf), ("next", "/numbers")],
        )
        .await
    }

    /// The CSRF token a logged-in page embeds.
    async fn csrf(&mut self, app: &TestApp) -> String {
        let page = self.get(&app.url("/account")).await.text().await.unwrap();
        hidden(&page, "_csrf")
    }
}

fn hidden(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} field"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Every `.route(...)` in src/web/mod.rs with its methods, so a new route cannot
/// slip past this test.
fn routes() -> Vec<(String, Vec<String>)> {
    let src = include_str!("../src/web/mod.rs");
    let mut out = Vec::new();
    for line in src.lines().map(str::trim).filter(|l| l.starts_with(".route(\"")) {
        let path = line[8..].split('"').next().unwrap().to_string();
        let methods = ["get", "post", "patch", "delete"]
            .iter()
            .filter(|m| line.contains(&format!("{m}(")) || line.contains(&format!(".{m}(")))
            .map(|m| m.to_uppercase())
            .collect();
        out.push((path, methods));
    }
    assert!(out.len() > 50, "found the routes ({})", out.len());
    out
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
        .replace("{phone}", "+14152370100")
        .replace("{action}", "pause")
        .replace("{*path}", "app.css")
}

#[tokio::test]
async fn strangers_get_only_the_open_routes() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    let open = |p: &str| {
        matches!(p, "/healthz" | "/login" | "/logout" | "/setup" | "/favicon.ico") || p.starts_with("/static/")
    };
    let mut checked = 0;
    for (path, methods) in routes() {
        let url = app.url(&concrete(&path));
        for method in methods {
            let req = app.anon.request(method.parse().unwrap(), &url);
            let req = if method == "GET" { req } else { req.header("content-type", "application/json").body("{}") };
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let what = format!("{method} {path}");
            if path.starts_with("/webhooks/") {
                assert!(
                    status == StatusCode::FORBIDDEN || status == StatusCode::BAD_REQUEST,
                    "{what}: unsigned webhook → {status}"
                );
            } else if open(&path) {
                assert!(status != StatusCode::UNAUTHORIZED, "{what} is open: {status}");
            } else if path.starts_with("/api/") || path == "/metrics" {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(resp.headers()["www-authenticate"], "Bearer", "{what}");
            } else {
                assert_eq!(status, StatusCode::SEE_OTHER, "{what}");
                assert!(resp.headers()[LOCATION].to_str().unwrap().starts_with("/login"), "{what}");
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "checked {checked} route/method pairs");
    // A bad or revoked token is no better than none.
    let bad = app.anon.get(app.url("/api/leads")).bearer_auth("dlr_not-a-token").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sessions_need_the_csrf_token_and_end_on_logout() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    let mut v = Visitor::new();

    let wrong = v.login(&app, USER, "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(!v.cookies.contains_key("dialer_session"), "no session for a failed login");

    let ok = v.login(&app, USER, PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()[LOCATION], "/numbers", "back to the page asked for");
    let set = ok.headers().get_all(SET_COOKIE).iter().map(|h| h.to_str().unwrap().to_string()).collect::<Vec<_>>();
    let session_cookie = set.iter().find(|c| c.starts_with("dialer_session=")).expect("a session cookie");
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"), "{session_cookie}");
    assert!(!session_cookie.contains("Secure"), "plain http here: {session_cookie}");
    assert_eq!(v.get(&app.url("/numbers")).await.status(), StatusCode::OK);

    // A state-changing request without the token, or with another, changes nothing.
    let before = campaigns(&app).await;
    let form = [("name", "From another site")];
    assert_eq!(v.post_form(&app.url("/campaigns"), &form).await.status(), StatusCode::FORBIDDEN);
    let forged = [("name", "From another site"), ("_csrf", "guessed")];
    assert_eq!(v.post_form(&app.url("/campaigns"), &forged).await.status(), StatusCode::FORBIDDEN);
    let json = v
        .http
        .post(app.url("/api/campaigns"))
        .header(COOKIE, v.cookie_header())
        .json(&serde_json::json!({"name": "x"}));
    assert_eq!(json.send().await.unwrap().status(), StatusCode::FORBIDDEN, "a session's JSON POST needs X-CSRF-Token");
    assert_eq!(campaigns(&app).await, before, "nothing was created");

    // With the page's token it goes through, and the audit log names the user.
    let csrf = v.csrf(&app).await;
    let form = [("name", "Spring outreach"), ("_csrf", csrf.as_str())];
    assert_eq!(v.post_form(&app.url("/campaigns"), &form).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(campaigns(&app).await, before + 1);
    let header = v.http.post(app.url("/api/campaigns")).header(COOKIE, v.cookie_header()).header("x-csrf-token", &csrf);
    let resp = header.json(&serde_json::json!({"name": "Via fetch"})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let audit = app.get_json("/api/audit").await;
    let mine: Vec<_> = audit.as_array().unwrap().iter().filter(|e| e["actor"] == USER).collect();
    assert!(mine.iter().any(|e| e["action"] == "POST /campaigns" && e["status"] == 303), "{audit}");
    assert!(mine.iter().any(|e| e["action"] == "login"), "{audit}");
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "login.failed" && e["actor"] == USER));

    // Log out: the old cookie no longer works.
    let stale = v.cookie_header();
    let csrf = v.csrf(&app).await;
    assert_eq!(v.post_form(&app.url("/logout"), &[("_csrf", &csrf)]).await.status(), StatusCode::SEE_OTHER);
    let again = v.http.get(app.url("/numbers")).header(COOKIE, stale).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::SEE_OTHER, "the session ended");
}

async fn campaigns(app: &TestApp) -> usize {
    app.get_json("/api/campaigns").await["campaigns"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn log_out_everywhere_and_a_password_reset_end_other_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    let (mut laptop, mut phone) = (Visitor::new(), Visitor::new());
    assert_eq!(laptop.login(&app, USER, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(phone.login(&app, USER, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    assert_ne!(laptop.cookies["dialer_session"], phone.cookies["dialer_session"]);
    let csrf = laptop.csrf(&app).await;
    let out = laptop.post_form(&app.url("/account/logout-all"), &[("_csrf", &csrf)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(phone.get(&app.url("/")).await.status(), StatusCode::SEE_OTHER, "the phone's session ended too");

    assert_eq!(phone.login(&app, USER, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(phone.get(&app.url("/")).await.status(), StatusCode::OK);
    // `dialer admin reset-password` (the same operation) ends it.
    let db = dialer::db::Db::open(&app.db_path).unwrap();
    dialer::auth::ops::reset_password(&db, USER, "a brand new passphrase", "cli").await.unwrap();
    assert_eq!(phone.get(&app.url("/")).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(phone.login(&app, USER, PASSWORD).await.status(), StatusCode::UNAUTHORIZED, "old password");
    assert_eq!(phone.login(&app, USER, "a brand new passphrase").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sessions_expire_after_the_configured_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.server.session_max_hours = 0;
    let app = support::spawn(config);
    app.healthy().await;
    let mut v = Visitor::new();
    assert_eq!(v.login(&app, USER, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    // Any time after login is past a zero-hour lifetime (the check is strict).
    let mut waited = 0;
    while v.get(&app.url("/")).await.status() == StatusCode::OK {
        waited += 1;
        assert!(waited < 100, "the session never expired");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(v.get(&app.url("/")).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn api_tokens_read_only_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    let db = dialer::db::Db::open(&app.db_path).unwrap();
    let (_, reader) = dialer::auth::ops::create_token(&db, "prometheus", true, "cli").await.unwrap();
    let get = app.anon.get(app.url("/api/leads")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    let metrics = app.anon.get(app.url("/metrics")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let post = app.anon.post(app.url("/api/campaigns")).bearer_auth(&reader).json(&serde_json::json!({"name": "x"}));
    assert_eq!(post.send().await.unwrap().status(), StatusCode::FORBIDDEN, "read-only");
    // Tokens need no CSRF token: a browser cannot attach them cross-site.
    let writer = app.http.post(app.url("/api/campaigns")).json(&serde_json::json!({"name": "By script"}));
    assert_eq!(writer.send().await.unwrap().status(), StatusCode::CREATED);
    let audit = app.get_json("/api/audit?actor=token:tests").await;
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "POST /api/campaigns"), "{audit}");
    dialer::auth::ops::revoke_token(&db, "prometheus", "cli").await.unwrap();
    let after = app.anon.get(app.url("/api/leads")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "revoked");
    let stored = support::count(&app.db(), &format!("SELECT COUNT(*) FROM api_tokens WHERE token_hash = '{}'", reader));
    assert_eq!(stored, 0, "the token itself is never stored");
}

#[tokio::test]
async fn logins_are_throttled_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    let mut v = Visitor::new();
    for i in 0..dialer::auth::limit::FREE {
        assert_eq!(v.login(&app, USER, "guess").await.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_eq!(v.login(&app, USER, "guess").await.status(), StatusCode::UNAUTHORIZED, "the 6th fails and locks");
    let locked = v.login(&app, USER, PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert!(locked.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn first_run_setup_on_loopback_and_through_a_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn_with(support::config(dir.path()), false);
    app.healthy().await;
    let mut v = Visitor::new();
    let login = v.get(&app.url("/login")).await;
    assert_eq!(login.headers()[LOCATION], "/setup", "no user yet");
    assert_eq!(v.get(&app.url("/")).await.status(), StatusCode::SEE_OTHER);

    // Through a reverse proxy (X-Forwarded-For) the page asks for the setup token.
    let proxied = v.http.get(app.url("/setup")).header("x-forwarded-for", "203.0.113.9").send().await.unwrap();
    v.keep(&proxied);
    let page = proxied.text().await.unwrap();
    assert!(page.contains("name=\"setup_token\""));
    let csrf = hidden(&page, "_csrf");
    let form = [
        ("username", "owner"),
        ("password", "a long passphrase"),
        ("confirm", "a long passphrase"),
        ("setup_token", "wrong"),
        ("_csrf", csrf.as_str()),
    ];
    let resp = v
        .http
        .post(app.url("/setup"))
        .header("x-forwarded-for", "203.0.113.9")
        .header(COOKIE, v.cookie_header())
        .form(&form);
    assert_eq!(resp.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(support::count(&app.db(), "SELECT COUNT(*) FROM users"), 0);

    // Directly on loopback it is open.
    let page = v.get(&app.url("/setup")).await.text().await.unwrap();
    assert!(!page.contains("name=\"setup_token\""));
    let csrf = hidden(&page, "_csrf");
    let short = [("username", "owner"), ("password", "short"), ("confirm", "short"), ("_csrf", csrf.as_str())];
    let refused = v.post_form(&app.url("/setup"), &short).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains("at least 10"));
    let page = v.get(&app.url("/setup")).await.text().await.unwrap();
    let csrf = hidden(&page, "_csrf");
    let form = [
        ("username", "owner"),
        ("password", "a long passphrase"),
        ("confirm", "a long passphrase"),
        ("_csrf", csrf.as_str()),
    ];
    let done = v.post_form(&app.url("/setup"), &form).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(v.get(&app.url("/")).await.status(), StatusCode::OK, "logged in as the new user");
    assert_eq!(Visitor::new().get(&app.url("/setup")).await.headers()[LOCATION], "/login", "setup is gone");
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    for path in ["/", "/login", "/api/leads", "/healthz"] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
}

#[tokio::test]
async fn behind_https_cookies_are_secure_and_hsts_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.server.public_url = Some("https://dialer.example.com".into());
    let app = support::spawn(config);
    app.healthy().await;
    let mut v = Visitor::new();
    let ok = v.login(&app, USER, PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let session = ok
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|h| h.to_str().unwrap().to_string())
        .find(|c| c.starts_with("dialer_session="))
        .expect("a session cookie");
    assert!(session.contains("Secure") && session.contains("HttpOnly"), "{session}");
    let page = v.get(&app.url("/")).await;
    assert_eq!(page.headers()["strict-transport-security"], "max-age=31536000");
}
