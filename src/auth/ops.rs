//! Account operations shared by the CLI and the dashboard: each validates, hashes
//! outside the write transaction (Argon2id takes tens of ms) and writes the change
//! with its audit entry in one transaction.

use crate::auth::{Principal, password, secret};
use crate::db::auth::{self as store, NewAudit, NewToken};
use crate::db::{self, Db};

/// Usernames: 1–64 characters of letters, digits and `. _ - @`.
pub fn check_username(username: &str) -> Result<(), String> {
    let ok_chars = username.chars().all(|c| c.is_ascii_alphanumeric() || ".-_@".contains(c));
    if username.is_empty() || username.len() > 64 || !ok_chars {
        return Err("the username must be 1-64 letters, digits or . _ - @".into());
    }
    Ok(())
}

/// Why an account operation was refused: `Invalid` carries a message for the user.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

fn now_ms() -> i64 {
    db::to_ms(chrono::Utc::now())
}

/// Creates a user; `actor` is who did it (for the audit log). Errors: a bad
/// username or password (named), a taken username.
pub async fn create_user(db: &Db, username: &str, pass: &str, actor: &str) -> Result<i64, AccountError> {
    check_username(username).map_err(AccountError::Invalid)?;
    password::check_new(username, pass).map_err(AccountError::Invalid)?;
    let hash = hash_off_runtime(pass.to_string()).await?;
    let (username, actor) = (username.to_string(), actor.to_string());
    let created = db
        .write(move |tx| {
            if store::user_by_name(tx, &username)?.is_some() {
                return Ok(Err(format!("a user named {username:?} already exists")));
            }
            let id = store::create_user(tx, &username, &hash, now_ms())?;
            let e = NewAudit { actor: &actor, action: "user.create", target: &username, detail: "", status: 0, ip: "" };
            store::audit(tx, &e, now_ms())?;
            Ok(Ok(id))
        })
        .await?;
    created.map_err(AccountError::Invalid)
}

/// Creates the first user from the setup page; refused once any user exists (two
/// setup forms submitted at once cannot both succeed: the check and the insert
/// share one write transaction).
pub async fn create_first_user(db: &Db, username: &str, pass: &str) -> Result<i64, AccountError> {
    check_username(username).map_err(AccountError::Invalid)?;
    password::check_new(username, pass).map_err(AccountError::Invalid)?;
    let hash = hash_off_runtime(pass.to_string()).await?;
    let username = username.to_string();
    let created = db
        .write(move |tx| {
            if store::user_count(tx)? > 0 {
                return Ok(Err("setup is already done: log in".to_string()));
            }
            let id = store::create_user(tx, &username, &hash, now_ms())?;
            let e = NewAudit {
                actor: "setup",
                action: "user.create",
                target: &username,
                detail: "first user",
                status: 0,
                ip: "",
            };
            store::audit(tx, &e, now_ms())?;
            Ok(Ok(id))
        })
        .await?;
    created.map_err(AccountError::Invalid)
}

/// Sets a new password and ends all of the user's sessions.
pub async fn reset_password(db: &Db, username: &str, pass: &str, actor: &str) -> Result<(), AccountError> {
    password::check_new(username, pass).map_err(AccountError::Invalid)?;
    let hash = hash_off_runtime(pass.to_string()).await?;
    let (username, actor) = (username.to_string(), actor.to_string());
    let done = db
        .write(move |tx| {
            let Some(user) = store::user_by_name(tx, &username)? else {
                return Ok(Err(format!("no user named {username:?}")));
            };
            store::set_password(tx, user.id, &hash, now_ms())?;
            let e = NewAudit {
                actor: &actor,
                action: "user.reset_password",
                target: &user.username,
                detail: "all sessions ended",
                status: 0,
                ip: "",
            };
            store::audit(tx, &e, now_ms())?;
            Ok(Ok(()))
        })
        .await?;
    done.map_err(AccountError::Invalid)
}

/// Checks a login. Always runs one Argon2 verification (a dummy hash for unknown
/// users), so the answer takes as long whether the user exists or not.
pub async fn verify_login(db: &Db, username: &str, pass: &str) -> anyhow::Result<Option<store::User>> {
    let name = username.to_string();
    let user = db.read(move |c| store::user_by_name(c, &name)).await?;
    let stored = user.as_ref().map_or(password::dummy_hash().to_string(), |u| u.password_hash.clone());
    let pass = pass.to_string();
    let ok = tokio::task::spawn_blocking(move || password::verify(&stored, &pass)).await?;
    Ok(user.filter(|_| ok))
}

/// Creates an API token; returns (id, the token). The token is shown once: only
/// its SHA-256 is stored.
pub async fn create_token(db: &Db, name: &str, read_only: bool, actor: &str) -> Result<(i64, String), AccountError> {
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(AccountError::Invalid("the token name must be 1-64 printable characters".into()));
    }
    let token = secret::api_token();
    let (hash, prefix, actor) = (secret::digest(&token), secret::shown_prefix(&token), actor.to_string());
    let id = db
        .write(move |tx| {
            let t = NewToken { name: &name, prefix: &prefix, token_hash: &hash, read_only, created_by: &actor };
            let id = store::create_token(tx, &t, now_ms())?;
            let access = if read_only { "read-only" } else { "read-write" };
            let e =
                NewAudit { actor: &actor, action: "token.create", target: &name, detail: access, status: 0, ip: "" };
            store::audit(tx, &e, now_ms())?;
            Ok(id)
        })
        .await?;
    Ok((id, token))
}

/// Revokes a token by id or name. Errors: no live token matches.
pub async fn revoke_token(db: &Db, key: &str, actor: &str) -> Result<String, AccountError> {
    let (key, actor) = (key.to_string(), actor.to_string());
    let done = db
        .write(move |tx| {
            let Some(name) = store::revoke_token(tx, &key, now_ms())? else {
                return Ok(Err(format!("no live token {key:?}")));
            };
            let e = NewAudit { actor: &actor, action: "token.revoke", target: &name, detail: "", status: 0, ip: "" };
            store::audit(tx, &e, now_ms())?;
            Ok(Ok(name))
        })
        .await?;
    done.map_err(AccountError::Invalid)
}

/// The principal behind a bearer token, or None for an unknown or revoked one.
pub async fn token_principal(db: &Db, token: &str) -> anyhow::Result<Option<Principal>> {
    if !token.starts_with(secret::TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    let hash = secret::digest(token);
    let Some(t) = db.read(move |c| store::token_by_hash(c, &hash)).await? else { return Ok(None) };
    let stale = t.last_used_at.is_none_or(|at| at < now_ms() - 60_000);
    if stale {
        let id = t.id;
        db.write(move |tx| store::touch_token(tx, id, now_ms())).await?;
    }
    Ok(Some(Principal::Token { id: t.id, name: t.name, read_only: t.read_only }))
}

async fn hash_off_runtime(pass: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || password::hash(&pass)).await?
}

/// At start with no user yet: says how to create the first one. A one-time setup
/// token is made and logged for clients that are not direct loopback clients (see
/// `web::login::setup_open`); it is useless once a user exists.
pub async fn announce_setup(state: &crate::state::AppState) -> anyhow::Result<()> {
    if state.db.read(store::user_count).await? > 0 {
        return Ok(());
    }
    let token = secret::random();
    *state.auth.setup_token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
    let url = format!("{}/setup", state.public_url);
    if state.config.server.bind.ip().is_loopback() {
        tracing::warn!(%url, setup_token = %token, "no user yet: open the setup page from this machine (or an SSH tunnel) to create the first one; through a proxy, or when server.public_url is not a loopback address, it asks for this setup token. Or run `dialer admin create NAME`");
    } else {
        tracing::warn!(%url, setup_token = %token, "no user yet: open the setup page and enter this one-time setup token, or run `dialer admin create NAME`");
    }
    Ok(())
}

/// Deletes expired sessions hourly until `stop`.
pub async fn sweep_sessions(db: Db, stop: tokio_util::sync::CancellationToken) {
    loop {
        let now = now_ms();
        match db.write(move |tx| store::delete_expired_sessions(tx, now)).await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "expired sessions deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "deleting expired sessions failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = stop.cancelled() => return,
        }
    }
}
