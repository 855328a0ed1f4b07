//! The gate in front of every route: who is asking (API token or session), may they
//! (read-only tokens), is a session's state-changing request really from our pages
//! (CSRF synchronizer token, OWASP CSRF Prevention Cheat Sheet), and the audit log
//! of what users and tokens changed or exported.
//!
//! Open without a session: `/healthz`, `/login`, `/logout`, `/setup`, `/static/*` and
//! the provider webhooks `/webhooks/*` (which check the provider's signature instead).

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::auth::{Principal, ops, secret};
use crate::db::{self, auth::NewAudit};
use crate::state::AppState;
use crate::web::csrf_body;
use crate::web::session_store::USER_ID;

/// Session keys besides the user id.
pub const CSRF: &str = "csrf";
pub const LOGIN_AT: &str = "login_at";
pub const SEEN_AT: &str = "seen_at";
/// Form field and header carrying the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What a handler may attach to its response for the audit log's detail column.
#[derive(Clone)]
pub struct AuditNote(pub String);

/// The requester's name and, for sessions, the CSRF token that pages embed in
/// their forms (base.html reads it as `status.chrome`).
#[derive(Clone, Debug, Default)]
pub struct Chrome {
    pub user: String,
    pub csrf: String,
}

tokio::task_local! {
    /// Request-scoped (set by [`gate`] around the handler, which runs in the same
    /// task): lets every page's layout show the user and the CSRF token without
    /// threading them through each handler.
    static CHROME: Chrome;
}

/// The current request's [`Chrome`]; empty outside a gated request.
pub fn chrome() -> Chrome {
    CHROME.try_with(Chrome::clone).unwrap_or_default()
}

pub fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/login" | "/logout" | "/setup" | "/favicon.ico")
        || path.starts_with("/static/")
        || path.starts_with("/webhooks/")
}

fn wants_json(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The client address: the TCP peer, or the last `X-Forwarded-For` entry when
/// `server.trust_forwarded_for` is set (the entry our own proxy appended, to the
/// last header line: some proxies add a line of their own after the client's).
pub fn client_ip(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    if state.config.server.trust_forwarded_for
        && let Some(last) = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    {
        return last.chars().take(64).collect();
    }
    peer.map(|p| p.ip().to_string()).unwrap_or_default()
}

fn refuse(status: StatusCode, path: &str, message: &str) -> Response {
    if wants_json(path) || status != StatusCode::UNAUTHORIZED {
        let mut r = (status, Json(serde_json::json!({"error": message}))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        return r;
    }
    Redirect::to(&login_redirect(path)).into_response()
}

/// `/login?next=PATH` for a local path; anything else logs in to `/`.
pub fn login_redirect(path: &str) -> String {
    if path == "/" || !path.starts_with('/') || path.starts_with("//") {
        return "/login".into();
    }
    let next: String = serde_urlencoded::to_string([("next", path)]).unwrap_or_default();
    format!("/login?{next}")
}

pub async fn gate(State(state): State<AppState>, session: Session, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if is_public(&path) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ip = client_ip(&state, req.headers(), peer);
    let method = req.method().clone();

    if let Some(token) = bearer(req.headers()) {
        let principal = match ops::token_principal(&state.db, &token).await {
            Ok(Some(p)) => p,
            Ok(None) => return refuse(StatusCode::UNAUTHORIZED, "/api/", "invalid or revoked API token"),
            Err(e) => return internal(e),
        };
        if !is_safe(&method) && !principal.may_write() {
            return refuse(StatusCode::FORBIDDEN, &path, "this API token is read-only");
        }
        let chrome = Chrome { user: principal.actor(), csrf: String::new() };
        return run_audited(&state, principal, chrome, ip, req, next).await;
    }

    let user = match session_user(&state, &session).await {
        Ok(user) => user,
        Err(e) => return internal(e),
    };
    let Some((principal, csrf)) = user else {
        return refuse(StatusCode::UNAUTHORIZED, &path, "log in, or send Authorization: Bearer TOKEN");
    };
    let req = if is_safe(&method) {
        req
    } else {
        match csrf_body::check(req, &csrf).await {
            Ok(req) => req,
            Err(refusal) => return refusal,
        }
    };
    let chrome = Chrome { user: principal.actor(), csrf };
    run_audited(&state, principal, chrome, ip, req, next).await
}

/// The token of an `Authorization: Bearer TOKEN` header (scheme case-insensitive,
/// RFC 9110 §11.1). Other schemes, such as the Basic credentials a reverse proxy's
/// own login forwards, are not ours: the session decides those requests.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        // Not visible ASCII: no token of ours, and not to be mistaken for none.
        return Some(String::new());
    };
    let (scheme, token) = value.trim_start().split_once(' ').unwrap_or((value, ""));
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// The logged-in user and the session's CSRF token; None without a live login.
/// Sessions older than `session_max_hours` since login are ended here (the idle
/// expiry is the cookie's and the store's).
async fn session_user(state: &AppState, session: &Session) -> anyhow::Result<Option<(Principal, String)>> {
    let Some(user_id) = session.get::<i64>(USER_ID).await? else { return Ok(None) };
    let login_at = session.get::<i64>(LOGIN_AT).await?.unwrap_or(0);
    let max_ms = i64::try_from(state.config.server.session_max_hours).unwrap_or(i64::MAX).saturating_mul(3_600_000);
    let now_ms = db::to_ms(chrono::Utc::now());
    let user = state.db.read(move |c| db::auth::user_by_id(c, user_id)).await?;
    let expired = now_ms.saturating_sub(login_at) > max_ms;
    let Some(user) = user.filter(|u| !expired && login_at >= u.password_changed_at) else {
        session.flush().await?;
        return Ok(None);
    };
    // The idle expiry moves only when the record is saved: save at most once a
    // minute rather than on every request.
    let seen_at = session.get::<i64>(SEEN_AT).await?.unwrap_or(0);
    if now_ms.saturating_sub(seen_at) > 60_000 {
        session.insert(SEEN_AT, now_ms).await?;
    }
    let csrf = match session.get::<String>(CSRF).await? {
        Some(t) => t,
        None => {
            let t = secret::random();
            session.insert(CSRF, &t).await?;
            t
        }
    };
    Ok(Some((Principal::User { id: user.id, username: user.username }, csrf)))
}

/// Runs the handler with the principal attached, then records state-changing
/// requests and exports in the audit log.
async fn run_audited(
    state: &AppState,
    principal: Principal,
    chrome: Chrome,
    ip: String,
    mut req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let export = path.ends_with(".csv") || path.contains("/export");
    req.extensions_mut().insert(principal.clone());
    let response = CHROME.scope(chrome, next.run(req)).await;
    if is_safe(&method) && !(export && response.status().is_success()) {
        return response;
    }
    let detail = response.extensions().get::<AuditNote>().map(|n| n.0.clone()).unwrap_or_default();
    let action = format!("{method} {path}");
    let (actor, status) = (principal.actor(), response.status().as_u16());
    let now_ms = db::to_ms(chrono::Utc::now());
    let written = state
        .db
        .write(move |tx| {
            let e = NewAudit { actor: &actor, action: &action, target: "", detail: &detail, status, ip: &ip };
            db::auth::audit(tx, &e, now_ms)
        })
        .await;
    if let Err(e) = written {
        tracing::error!(error = format!("{e:#}"), "audit log write failed");
    }
    response
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!(error = format!("{e:#}"), "authentication lookup failed");
    (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"error": "internal error"}))).into_response()
}

/// Takes the body out of a request and puts `bytes` back (after a CSRF field was read).
pub fn with_body(req: Request, body: Body) -> Request {
    let (parts, _) = req.into_parts();
    Request::from_parts(parts, body)
}
