//! `/account`: the user's sessions ("log out everywhere"), password, API tokens and
//! the dashboard's users; `/audit`: the audit log. Every form here is a
//! session request, so the gate has already checked its CSRF token.

use std::time::Instant;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::auth::{Principal, ops};
use crate::db::{self, auth::ApiToken, auth::AuditEntry};
use crate::state::AppState;
use crate::web::api::parse_query;
use crate::web::auth::AuditNote;
use crate::web::dashboard::render;
use crate::web::forms;
use crate::web::status::{Snapshot, snapshot};
use crate::web::{AppError, local};

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    status: Snapshot,
    sessions: i64,
    tokens: Vec<(ApiToken, String, String)>,
    users: Vec<(String, String)>,
    message: Option<String>,
    error: Option<String>,
    /// A token just created: shown this once.
    new_token: Option<String>,
}

#[derive(Deserialize, Default)]
struct AccountQuery {
    msg: Option<String>,
    err: Option<String>,
}

fn user_id(principal: &Principal) -> Result<i64, AppError> {
    match principal {
        Principal::User { id, .. } => Ok(*id),
        Principal::Token { .. } => Err(AppError::BadRequest("this needs a dashboard login, not an API token".into())),
    }
}

/// `GET /account`.
pub async fn page(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let q: AccountQuery = parse_query(raw)?;
    account_page(&state, &principal, q.msg, q.err, None).await
}

async fn account_page(
    state: &AppState,
    principal: &Principal,
    message: Option<String>,
    error: Option<String>,
    new_token: Option<String>,
) -> Result<Response, AppError> {
    let me = match principal {
        Principal::User { id, .. } => Some(*id),
        Principal::Token { .. } => None,
    };
    let now_ms = db::to_ms(chrono::Utc::now());
    let (sessions, tokens, users) = state
        .db
        .read(move |c| {
            let sessions = me.map_or(Ok(0), |id| db::auth::sessions_of(c, id, now_ms))?;
            Ok((sessions, db::auth::tokens(c)?, db::auth::users(c)?))
        })
        .await?;
    let tz = state.resolved.timezone;
    let when = |ms: Option<i64>| ms.map_or("never".to_string(), |ms| local(ms, tz));
    let tokens = tokens.into_iter().map(|t| (t.clone(), local(t.created_at, tz), when(t.last_used_at))).collect();
    let users = users.into_iter().map(|u| (u.username, local(u.created_at, tz))).collect();
    let status = snapshot(state).await?;
    render(&AccountPage { status, sessions, tokens, users, message, error, new_token })
}

fn back(msg: &str) -> Response {
    let q = serde_urlencoded::to_string([("msg", msg)]).unwrap_or_default();
    Redirect::to(&format!("/account?{q}")).into_response()
}

/// An account operation's refusal goes back to the page as its message; a store
/// failure is an internal error.
fn settle<T>(result: Result<T, ops::AccountError>, done: impl FnOnce(T) -> Response) -> Result<Response, AppError> {
    match result {
        Ok(value) => Ok(done(value)),
        Err(ops::AccountError::Invalid(msg)) => Ok(back_err(&msg)),
        Err(ops::AccountError::Store(e)) => Err(e.into()),
    }
}

fn back_err(err: &str) -> Response {
    let q = serde_urlencoded::to_string([("err", err)]).unwrap_or_default();
    Redirect::to(&format!("/account?{q}")).into_response()
}

/// `POST /account/logout-all`: ends every session of this user, this one included.
pub async fn logout_all(
    State(state): State<AppState>,
    session: Session,
    Extension(principal): Extension<Principal>,
) -> Result<Response, AppError> {
    let id = user_id(&principal)?;
    let ended = state.db.write(move |tx| db::auth::end_sessions_of(tx, id)).await?;
    session.flush().await.map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))?;
    let mut r = Redirect::to("/login").into_response();
    r.extensions_mut().insert(AuditNote(format!("{ended} session(s) ended")));
    Ok(r)
}

/// `POST /account/password`: current password, new password twice.
pub async fn password(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Result<Response, AppError> {
    user_id(&principal)?;
    let f = forms::pairs(&body)?;
    let username = principal_name(&principal);
    let (current, new, confirm) =
        (forms::value(&f, "current"), forms::value(&f, "password"), forms::value(&f, "confirm"));
    // A password check like the login's, under its throttle (same username key), so
    // a stolen session cannot guess the password here.
    let key = format!("u:{}", username.to_lowercase());
    let permit = state.auth.verifying.acquire().await.map_err(|e| AppError::Internal(e.into()))?;
    if let Err(wait) = state.auth.logins.check(&[&key], Instant::now()) {
        return Ok(back_err(&format!("Too many wrong passwords. Try again in {} s.", wait.as_secs().max(1))));
    }
    if ops::verify_login(&state.db, &username, &current).await?.is_none() {
        state.auth.logins.failed(&[&key], Instant::now());
        return Ok(back_err("The current password is wrong."));
    }
    state.auth.logins.succeeded(&key);
    drop(permit);
    if new != confirm {
        return Ok(back_err("The two new passwords differ."));
    }
    // Every session ended, this one too: log in again with the new password.
    settle(ops::reset_password(&state.db, &username, &new, &username).await, |()| {
        Redirect::to("/login").into_response()
    })
}

fn principal_name(p: &Principal) -> String {
    match p {
        Principal::User { username, .. } => username.clone(),
        Principal::Token { name, .. } => name.clone(),
    }
}

/// `POST /account/tokens`: name, optional `read_only=on`. Shows the token once.
/// A dashboard login only: a leaked token must not mint others that outlive it.
pub async fn create_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Result<Response, AppError> {
    user_id(&principal)?;
    let f = forms::pairs(&body)?;
    let read_only = !forms::value(&f, "read_only").is_empty();
    match ops::create_token(&state.db, &forms::value(&f, "name"), read_only, &principal.actor()).await {
        Ok((_, token)) => {
            let mut r = account_page(&state, &principal, None, None, Some(token)).await?;
            r.extensions_mut().insert(AuditNote(forms::value(&f, "name")));
            Ok(r)
        }
        Err(ops::AccountError::Invalid(msg)) => Ok(back_err(&msg)),
        Err(ops::AccountError::Store(e)) => Err(e.into()),
    }
}

/// `POST /account/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let revoked = ops::revoke_token(&state.db, &id.to_string(), &principal.actor()).await;
    settle(revoked, |name| back(&format!("Token {name} revoked.")))
}

/// `POST /account/users`: username, password. A dashboard login only: a leaked
/// token must not mint a login that outlives its revocation.
pub async fn add_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Result<Response, AppError> {
    user_id(&principal)?;
    let f = forms::pairs(&body)?;
    let username = forms::value(&f, "username");
    let created = ops::create_user(&state.db, username.trim(), &forms::value(&f, "password"), &principal.actor()).await;
    settle(created, |_| back(&format!("User {} created.", username.trim())))
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    status: Snapshot,
    rows: Vec<(AuditEntry, String)>,
    actor: String,
    next: Option<i64>,
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    before: Option<i64>,
    actor: Option<String>,
}

const AUDIT_PAGE: i64 = 100;

/// `GET /audit`: newest first, 100 a page, optionally one actor's.
pub async fn audit(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Response, AppError> {
    let q: AuditQuery = parse_query(raw)?;
    let actor = q.actor.filter(|a| !a.is_empty());
    let filter = actor.clone();
    let rows = state.db.read(move |c| db::auth::audit_page(c, q.before, filter.as_deref(), AUDIT_PAGE)).await?;
    let next = (rows.len() as i64 == AUDIT_PAGE).then(|| rows.last().map(|r| r.id)).flatten();
    let tz = state.resolved.timezone;
    let rows = rows.into_iter().map(|r| (r.clone(), local(r.at, tz))).collect();
    let status = snapshot(&state).await?;
    render(&AuditPage { status, rows, actor: actor.unwrap_or_default(), next })
}

/// `GET /api/audit`: the same rows as JSON (`before`, `actor`).
pub async fn api_audit(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<Vec<AuditEntry>>, AppError> {
    let q: AuditQuery = parse_query(raw)?;
    let actor = q.actor.filter(|a| !a.is_empty());
    let rows = state.db.read(move |c| db::auth::audit_page(c, q.before, actor.as_deref(), AUDIT_PAGE)).await?;
    Ok(axum::Json(rows))
}
