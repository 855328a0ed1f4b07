//! The security review's attacks on the gate, login and setup (issue 6): each test
//! is one way in that must stay shut. Run with `cargo test --test auth`.

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, LOCATION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Visitor, hidden};
use crate::support::{self, PASSWORD, TestApp, USER};

/// `next` is followed after login; browsers drop tabs and newlines from a URL, so
/// `/<TAB>/evil.example` would become `//evil.example`, another site.
#[tokio::test]
async fn next_with_control_characters_never_leaves_the_site() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    for next in ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/\u{b}/evil.example"] {
        let mut v = Visitor::new();
        let page = v.get(&app.url("/login")).await.text().await.unwrap();
        let csrf = hidden(&page, "_csrf");
        let form = [("username", USER), ("password", PASSWORD), ("_csrf", &csrf), ("next", next)];
        let resp = v.post_form(&app.url("/login"), &form).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(resp.headers()[LOCATION], "/", "{next:?} is not followed");
    }
}

/// Guesses sent all at once must not all pass the throttle's check before the first
/// failure is counted (nor run an unbounded number of 19 MiB Argon2 hashes at once).
#[tokio::test]
async fn concurrent_guesses_cannot_outrun_the_login_throttle() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    let mut v = Visitor::new();
    let page = v.get(&app.url("/login")).await.text().await.unwrap();
    let csrf = hidden(&page, "_csrf");
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..32 {
        let req = v.http.post(app.url("/login")).header(COOKIE, v.cookie_header()).form(&[
            ("username", USER.to_string()),
            ("password", format!("guess number {i}")),
            ("_csrf", csrf.clone()),
        ]);
        guesses.spawn(async move { req.send().await.unwrap().status() });
    }
    let statuses = guesses.join_all().await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked + refused, statuses.len(), "{statuses:?}");
    let most = dialer::auth::limit::FREE as usize + dialer::auth::VERIFY_SLOTS;
    assert!(checked <= most, "{checked} passwords were checked; at most {most} may be");
}

/// A leaked read-write script token must not mint a dashboard login or another
/// token: revoking it would not end either.
#[tokio::test]
async fn api_tokens_cannot_create_users_or_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    let user = [("username", "mallory"), ("password", "a long passphrase")];
    let resp = app.http.post(app.url("/account/users")).form(&user).send().await.unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let token = [("name", "persistence")];
    let resp = app.http.post(app.url("/account/tokens")).form(&token).send().await.unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_eq!(support::count(&app.db(), "SELECT COUNT(*) FROM users"), 1, "only the test user");
    assert_eq!(support::count(&app.db(), "SELECT COUNT(*) FROM api_tokens"), 1, "only the test token");
}

/// The dashboard revokes by id; a token whose *name* is that number must not be
/// revoked instead (leaving the one the operator meant alive).
#[tokio::test]
async fn revoking_by_id_never_hits_a_token_named_like_that_id() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    let db = dialer::db::Db::open(&app.db_path).unwrap();
    let (leaked_id, _) = dialer::auth::ops::create_token(&db, "leaked", false, "cli").await.unwrap();
    dialer::auth::ops::create_token(&db, &leaked_id.to_string(), false, "cli").await.unwrap();
    let mut v = Visitor::new();
    assert_eq!(v.login(&app, USER, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let csrf = v.csrf(&app).await;
    let resp = v.post_form(&app.url(&format!("/account/tokens/{leaked_id}/revoke")), &[("_csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let revoked = |name: &str| {
        support::count(&app.db(), &format!("SELECT revoked_at IS NOT NULL FROM api_tokens WHERE name = '{name}'"))
    };
    assert_eq!(revoked("leaked"), 1, "the token with that id is revoked");
    assert_eq!(revoked(&leaked_id.to_string()), 0, "the token with that name is not");
}

/// A reverse proxy with HTTP Basic auth forwards `Authorization: Basic …`; that is
/// not an API token, so the session (and its CSRF check) still decides. The
/// scheme name is case-insensitive (RFC 9110 §11.1).
#[tokio::test]
async fn other_authorization_schemes_fall_back_to_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    let mut v = Visitor::new();
    assert_eq!(v.login(&app, USER, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let basic = "Basic b3BzOnByb3h5LXBhc3N3b3Jk";
    let page = v.http.get(app.url("/")).header(COOKIE, v.cookie_header()).header(AUTHORIZATION, basic);
    assert_eq!(page.send().await.unwrap().status(), StatusCode::OK, "the session works behind basic auth");
    let forged = v.http.post(app.url("/campaigns")).header(COOKIE, v.cookie_header()).header(AUTHORIZATION, basic);
    let forged = forged.form(&[("name", "no csrf")]).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "and its CSRF check still applies");
    let stranger = app.anon.get(app.url("/")).header(AUTHORIZATION, basic).send().await.unwrap();
    assert_eq!(stranger.status(), StatusCode::SEE_OTHER, "no session: to the login page");
    let lower = app.anon.get(app.url("/api/leads")).header(AUTHORIZATION, format!("bearer {}", app.token));
    assert_eq!(lower.send().await.unwrap().status(), StatusCode::OK);
}

fn asks_for_setup_token(page: &str) -> bool {
    page.contains("name=\"setup_token\"")
}

/// nginx's `proxy_pass` adds no `X-Forwarded-For` unless told to (many configs set
/// only `X-Real-IP`): every visitor would then look like a direct loopback client.
/// A proxy header of any kind, or a public URL that is not loopback, means the
/// server is reached from elsewhere, so the setup token is needed.
#[tokio::test]
async fn setup_behind_a_proxy_without_x_forwarded_for_needs_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn_with(support::config(dir.path()), false);
    app.healthy().await;
    let direct = app.anon.get(app.url("/setup")).send().await.unwrap().text().await.unwrap();
    assert!(!asks_for_setup_token(&direct), "a direct loopback client gets the page");
    for header in ["x-real-ip", "x-forwarded-proto", "x-forwarded-host"] {
        let resp = app.anon.get(app.url("/setup")).header(header, "203.0.113.9").send().await.unwrap();
        assert!(asks_for_setup_token(&resp.text().await.unwrap()), "{header}");
    }
    drop(app);

    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.server.public_url = Some("https://dialer.example.com".into());
    let app = support::spawn_with(config, false);
    app.healthy().await;
    let page = app.anon.get(app.url("/setup")).send().await.unwrap().text().await.unwrap();
    assert!(asks_for_setup_token(&page), "served at a public URL: the token is needed");
}

/// Two setup forms at once: exactly one first user.
#[tokio::test]
async fn two_setups_at_once_make_one_user() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn_with(support::config(dir.path()), false);
    app.healthy().await;
    let mut v = Visitor::new();
    let csrf = hidden(&v.get(&app.url("/setup")).await.text().await.unwrap(), "_csrf");
    let mut setups = tokio::task::JoinSet::new();
    for name in ["first", "second"] {
        let form = [("username", name), ("password", "a long passphrase"), ("confirm", "a long passphrase")];
        let mut form: Vec<(&str, String)> = form.iter().map(|(k, v)| (*k, v.to_string())).collect();
        form.push(("_csrf", csrf.clone()));
        let req = v.http.post(app.url("/setup")).header(COOKIE, v.cookie_header()).form(&form);
        setups.spawn(async move { req.send().await.unwrap().status() });
    }
    let statuses = setups.join_all().await;
    assert!(statuses.iter().all(|s| !s.is_server_error()), "{statuses:?}");
    assert_eq!(support::count(&app.db(), "SELECT COUNT(*) FROM users"), 1, "{statuses:?}");
}

/// Sends `request` as raw bytes (reqwest would normalise the path first) and
/// returns the status code.
async fn raw(app: &TestApp, request: &[u8]) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"))
}

/// Dot segments, doubled slashes, percent-encoding, case and trailing slashes
/// reach no gated data: the gate and the router see the same raw path.
#[tokio::test]
async fn path_tricks_reach_nothing_behind_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    for path in [
        "/webhooks/../api/leads",
        "/webhooks/twilio/../../api/leads",
        "/webhooks/%2e%2e/api/leads",
        "/static/../api/leads",
        "/static/../Cargo.toml",
        "/static/..%2f..%2fCargo.toml",
        "/static/%2e%2e/%2e%2e/Cargo.toml",
        "/healthz/../api/leads",
        "//api/leads",
        "/api/leads/",
        "/API/leads",
        "/%61pi/leads",
        "/webhooks/..;/api/leads",
        "http://example.com/api/leads",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let status = raw(&app, request.as_bytes()).await;
        assert!(status != 200 && status < 500, "{path} → {status}");
    }
    let head = raw(&app, b"HEAD /api/leads HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(head, 401, "HEAD is gated like GET");
}

/// Hostile headers and bodies get a 4xx, never a 5xx or a way past the CSRF check.
#[tokio::test]
async fn hostile_headers_and_bodies_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    let huge = format!("Bearer dlr_{}", "a".repeat(60_000));
    let resp = app.anon.get(app.url("/api/leads")).header(AUTHORIZATION, huge).send().await.unwrap();
    assert!(resp.status().is_client_error(), "huge token: {}", resp.status());
    let bytes = reqwest::header::HeaderValue::from_bytes(b"dialer_session=\xff\xfe; dialer_form=\xc3").unwrap();
    for path in ["/", "/login", "/setup"] {
        let resp = app.anon.get(app.url(path)).header(COOKIE, bytes.clone()).send().await.unwrap();
        assert!(!resp.status().is_server_error(), "non-UTF-8 cookie on {path}: {}", resp.status());
    }
    let resp = app.anon.get(app.url("/")).header(COOKIE, "dialer_session=AAAAAAAAAAAAAAAAAAAAAA").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "an unknown session id is no session");

    let mut v = Visitor::new();
    assert_eq!(v.login(&app, USER, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let csrf = v.csrf(&app).await;
    let b = "(.*)+[a-z]{2,}\\d?$^";
    let later = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nphone\n+14152370100\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n--{b}--\r\n"
    );
    let wrong = "--x\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\nnope\r\n--x--".to_string();
    let bodies = [
        (String::new(), format!("_csrf={csrf}")),
        ("text/plain".into(), format!("_csrf={csrf}")),
        ("Multipart/Form-Data; boundary=x".into(), wrong),
        (format!("multipart/form-data; boundary=\"{b}\""), later),
        ("multipart/form-data; boundary=x".into(), "--x\r\n".repeat(5_000)),
        ("application/x-www-form-urlencoded".into(), "_csrf=%ff%fe&_csrf".into()),
    ];
    let before = support::count(&app.db(), "SELECT COUNT(*) FROM leads");
    for (content_type, body) in bodies {
        let mut req = v.http.post(app.url("/import")).header(COOKIE, v.cookie_header()).body(body);
        if !content_type.is_empty() {
            req = req.header("content-type", &content_type);
        }
        let status = req.send().await.unwrap().status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{content_type:?}");
    }
    assert_eq!(support::count(&app.db(), "SELECT COUNT(*) FROM leads"), before, "nothing imported");
}

/// Behind a trusted proxy the client address is the entry the proxy added: the
/// last one. A proxy that adds its own `X-Forwarded-For` line (HAProxy's
/// `option forwardfor`) leaves the client's forged line first.
#[tokio::test]
async fn a_forged_x_forwarded_for_line_does_not_name_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.server.trust_forwarded_for = true;
    let app = support::spawn(config);
    app.healthy().await;
    let mut v = Visitor::new();
    let csrf = hidden(&v.get(&app.url("/login")).await.text().await.unwrap(), "_csrf");
    let form = [("username", USER), ("password", "a wrong guess"), ("_csrf", &csrf)];
    let req = v.http.post(app.url("/login")).header(COOKIE, v.cookie_header());
    let req = req.header("x-forwarded-for", "198.51.100.1").header("x-forwarded-for", "203.0.113.7");
    assert_eq!(req.form(&form).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let ip: String =
        app.db().query_row("SELECT ip FROM audit_log WHERE action = 'login.failed'", [], |r| r.get(0)).unwrap();
    assert_eq!(ip, "203.0.113.7", "the address the proxy added");
}

/// The password form's "current password" is a password check too: a stolen
/// session must not use it to guess the password without the login's throttle.
#[tokio::test]
async fn the_current_password_check_is_throttled_like_the_login() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.healthy().await;
    let mut v = Visitor::new();
    assert_eq!(v.login(&app, USER, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let csrf = v.csrf(&app).await;
    let change = |current: &'static str| {
        [("current", current), ("password", "a brand new passphrase"), ("confirm", "a brand new passphrase")]
    };
    for _ in 0..=dialer::auth::limit::FREE {
        let mut form = change("a wrong guess").to_vec();
        form.push(("_csrf", &csrf));
        assert_eq!(v.post_form(&app.url("/account/password"), &form).await.status(), StatusCode::SEE_OTHER);
    }
    let mut form = change(PASSWORD).to_vec();
    form.push(("_csrf", &csrf));
    let locked = v.post_form(&app.url("/account/password"), &form).await;
    assert!(locked.headers()[LOCATION].to_str().unwrap().contains("err="), "{:?}", locked.headers());
    let unchanged = "SELECT COUNT(*) FROM users WHERE password_changed_at = created_at";
    assert_eq!(support::count(&app.db(), unchanged), 1, "the password was not changed while locked");
}
