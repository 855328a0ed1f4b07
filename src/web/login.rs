//! `/login`, `/logout` and `/setup` (the first user). These pages are open without a
//! session; their forms carry a double-submit CSRF token (a `SameSite=Strict` cookie
//! that must equal the form field), and logins are throttled (`auth::limit`).

use std::net::SocketAddr;
use std::time::Instant;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::auth::{ops, secret};
use crate::db::{self, auth::NewAudit};
use crate::state::AppState;
use crate::web::AppError;
use crate::web::api::parse_query;
use crate::web::auth::{CSRF, LOGIN_AT, client_ip};
use crate::web::dashboard::render;
use crate::web::session_store::USER_ID;

const PRE_CSRF_COOKIE: &str = "dialer_form";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    csrf: String,
    needs_token: bool,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

#[derive(Deserialize)]
pub struct SetupForm {
    username: String,
    password: String,
    confirm: String,
    #[serde(default)]
    setup_token: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// Only local paths are followed after login (no open redirect). Control
/// characters are refused: browsers drop tabs and newlines from a URL, which would
/// turn `/<TAB>/evil.example` into `//evil.example`.
fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() < 2048;
    if ok { next.to_string() } else { "/".into() }
}

fn secure(state: &AppState) -> bool {
    state.public_url.starts_with("https://")
}

/// A page with a fresh double-submit token in its cookie.
fn with_form_cookie(state: &AppState, token: &str, mut response: Response) -> Response {
    let secure = if secure(state) { "; Secure" } else { "" };
    let cookie = format!("{PRE_CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

fn form_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(&format!("{PRE_CSRF_COOKIE}=")).map(str::to_string))
        .next()
}

fn double_submit_ok(headers: &HeaderMap, sent: &str) -> bool {
    form_cookie(headers).is_some_and(|c| !sent.is_empty() && secret::same(&c, sent))
}

async fn users_exist(state: &AppState) -> Result<bool, AppError> {
    Ok(state.db.read(db::auth::user_count).await? > 0)
}

/// The browser's double-submit token: the one its cookie already holds, else a new
/// one. Reused so that another page load in between (a second tab, the favicon
/// request being sent to the login page) does not void the form on screen.
fn form_token(headers: &HeaderMap) -> String {
    form_cookie(headers)
        .filter(|t| t.len() == 43 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .unwrap_or_else(secret::random)
}

async fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    next: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let csrf = form_token(headers);
    let page = render(&LoginPage { csrf: csrf.clone(), next, error })?;
    Ok(with_form_cookie(state, &csrf, (status, page).into_response()))
}

/// `GET /login`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    if !users_exist(&state).await? {
        return Ok(Redirect::to("/setup").into_response());
    }
    let q: NextQuery = parse_query(raw)?;
    login_page(&state, &headers, safe_next(q.next.as_deref().unwrap_or("/")), None, StatusCode::OK).await
}

/// `POST /login`.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let next = safe_next(&form.next);
    if !double_submit_ok(&headers, &form.csrf) {
        let msg = "The form expired. Please log in again.".to_string();
        return login_page(&state, &headers, next, Some(msg), StatusCode::FORBIDDEN).await;
    }
    let ip = client_ip(&state, &headers, Some(peer));
    let username = form.username.trim().to_string();
    let keys = [format!("u:{}", username.to_lowercase()), format!("ip:{ip}")];
    let keys: [&str; 2] = [&keys[0], &keys[1]];
    // Held until the outcome is recorded, so guesses sent at once queue here rather
    // than all passing the check before the first failure counts.
    let permit = state.auth.verifying.acquire().await.map_err(|e| AppError::Internal(e.into()))?;
    if let Err(wait) = state.auth.logins.check(&keys, Instant::now()) {
        drop(permit);
        let msg = format!("Too many failed logins. Try again in {} s.", wait.as_secs().max(1));
        let mut r = login_page(&state, &headers, next, Some(msg), StatusCode::TOO_MANY_REQUESTS).await?;
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }
    let Some(user) = ops::verify_login(&state.db, &username, &form.password).await? else {
        state.auth.logins.failed(&keys, Instant::now());
        drop(permit);
        audit(&state, &username.chars().take(64).collect::<String>(), "login.failed", &ip, 401).await?;
        let msg = "Wrong username or password.".to_string();
        return login_page(&state, &headers, next, Some(msg), StatusCode::UNAUTHORIZED).await;
    };
    state.auth.logins.succeeded(keys[0]);
    drop(permit);
    start_session(&session, user.id).await?;
    audit(&state, &user.username, "login", &ip, 303).await?;
    Ok(Redirect::to(&next).into_response())
}

/// A new session id (OWASP: rotate at login), the user, and a fresh CSRF token.
async fn start_session(session: &Session, user_id: i64) -> Result<(), AppError> {
    let failed = |e: tower_sessions::session::Error| AppError::Internal(anyhow::anyhow!("session: {e}"));
    session.cycle_id().await.map_err(failed)?;
    session.clear().await;
    session.insert(USER_ID, user_id).await.map_err(failed)?;
    session.insert(LOGIN_AT, db::to_ms(chrono::Utc::now())).await.map_err(failed)?;
    session.insert(CSRF, secret::random()).await.map_err(failed)?;
    Ok(())
}

/// `POST /logout`: ends this session (the form carries the session's CSRF token).
pub async fn logout(session: Session, Form(form): Form<LogoutForm>) -> Result<Response, AppError> {
    let expected = session.get::<String>(CSRF).await.ok().flatten();
    if expected.is_some_and(|t| secret::same(&t, &form.csrf)) {
        session.flush().await.map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))?;
    }
    Ok(Redirect::to("/login").into_response())
}

/// Setup without the token only for a direct loopback client of a loopback-bound
/// server: a reverse proxy on the same host would make every visitor look local,
/// so a forwarded request always needs the token.
fn setup_open(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> bool {
    state.config.server.bind.ip().is_loopback()
        && peer.ip().is_loopback()
        && !PROXY_HEADERS.iter().any(|h| headers.contains_key(*h))
        && loopback_url(&state.public_url)
}

/// Headers that only a proxy adds. nginx's `proxy_pass` adds none unless told to,
/// and many configurations set only `X-Real-IP` or `X-Forwarded-Proto`.
const PROXY_HEADERS: [&str; 6] =
    ["x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-proto", "x-forwarded-host", "via"];

/// True when `url`'s host is a loopback address or `localhost`. A public URL
/// elsewhere means visitors come through a proxy, which may add no header at all.
fn loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `GET /setup`: create the first user. Gone once a user exists.
pub async fn setup_page(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if users_exist(&state).await? {
        return Ok(Redirect::to("/login").into_response());
    }
    let csrf = form_token(&headers);
    let needs_token = !setup_open(&state, peer, &headers);
    let page = render(&SetupPage { csrf: csrf.clone(), needs_token, error: None })?;
    Ok(with_form_cookie(&state, &csrf, page))
}

/// `POST /setup`.
pub async fn setup_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Result<Response, AppError> {
    if users_exist(&state).await? {
        return Ok(Redirect::to("/login").into_response());
    }
    let needs_token = !setup_open(&state, peer, &headers);
    let refuse = |msg: &str, status: StatusCode| -> Result<Response, AppError> {
        let csrf = form_token(&headers);
        let page = render(&SetupPage { csrf: csrf.clone(), needs_token, error: Some(msg.to_string()) })?;
        Ok(with_form_cookie(&state, &csrf, (status, page).into_response()))
    };
    if !double_submit_ok(&headers, &form.csrf) {
        return refuse("The form expired. Please submit it again.", StatusCode::FORBIDDEN);
    }
    if needs_token {
        let expected = state.auth.setup_token.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !expected.is_some_and(|t| secret::same(&t, form.setup_token.trim())) {
            let ip = client_ip(&state, &headers, Some(peer));
            let keys = [format!("ip:{ip}")];
            if let Err(wait) = state.auth.logins.check(&[&keys[0]], Instant::now()) {
                return refuse(
                    &format!("Too many attempts. Try again in {} s.", wait.as_secs().max(1)),
                    StatusCode::TOO_MANY_REQUESTS,
                );
            }
            state.auth.logins.failed(&[&keys[0]], Instant::now());
            return refuse("Wrong setup token: copy it from the service log.", StatusCode::FORBIDDEN);
        }
    }
    if form.password != form.confirm {
        return refuse("The two passwords differ.", StatusCode::UNPROCESSABLE_ENTITY);
    }
    let username = form.username.trim();
    let id = match ops::create_first_user(&state.db, username, &form.password).await {
        Ok(id) => id,
        Err(ops::AccountError::Invalid(msg)) => return refuse(&msg, StatusCode::UNPROCESSABLE_ENTITY),
        Err(ops::AccountError::Store(e)) => return Err(e.into()),
    };
    *state.auth.setup_token.lock().unwrap_or_else(|e| e.into_inner()) = None;
    start_session(&session, id).await?;
    Ok(Redirect::to("/").into_response())
}

async fn audit(state: &AppState, actor: &str, action: &str, ip: &str, status: u16) -> Result<(), AppError> {
    let (actor, action, ip) = (actor.to_string(), action.to_string(), ip.to_string());
    let now_ms = db::to_ms(chrono::Utc::now());
    state
        .db
        .write(move |tx| {
            let e = NewAudit { actor: &actor, action: &action, target: "", detail: "", status, ip: &ip };
            db::auth::audit(tx, &e, now_ms)
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        for bad in ["//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/x", "https://evil.example", "", "x"] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
        assert_eq!(safe_next("/numbers?page=2"), "/numbers?page=2");
    }

    #[test]
    fn loopback_public_urls() {
        for yes in ["http://127.0.0.1:8080", "http://localhost:8080/", "http://[::1]:80", "http://127.0.0.2"] {
            assert!(loopback_url(yes), "{yes}");
        }
        for no in [
            "https://dialer.example.com",
            "http://203.0.113.9:8080",
            "http://127.0.0.1.evil.example",
            "http://localhost@evil.example",
        ] {
            assert!(!loopback_url(no), "{no}");
        }
    }
}
