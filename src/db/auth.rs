//! Users, sessions (tower-sessions records), API tokens and the audit log.
//! Secrets are never stored: passwords as Argon2id PHC strings, session ids and API
//! tokens as SHA-256 hex (see `auth::secret::digest`).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::db::{Conn, Tx};

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    /// UTC ms.
    pub created_at: i64,
    /// UTC ms; sessions started before it are void.
    pub password_changed_at: i64,
}

fn user(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        created_at: r.get(3)?,
        password_changed_at: r.get(4)?,
    })
}

const USER_COLS: &str = "id, username, password_hash, created_at, password_changed_at";

pub fn user_count(c: &Conn) -> anyhow::Result<i64> {
    Ok(c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

/// Case-insensitive lookup.
pub fn user_by_name(c: &Conn, username: &str) -> anyhow::Result<Option<User>> {
    let sql = format!("SELECT {USER_COLS} FROM users WHERE username = ?1");
    Ok(c.query_row(&sql, [username], user).optional()?)
}

pub fn user_by_id(c: &Conn, id: i64) -> anyhow::Result<Option<User>> {
    let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?1");
    Ok(c.query_row(&sql, [id], user).optional()?)
}

pub fn users(c: &Conn) -> anyhow::Result<Vec<User>> {
    let sql = format!("SELECT {USER_COLS} FROM users ORDER BY username");
    let mut stmt = c.prepare(&sql)?;
    Ok(stmt.query_map([], user)?.collect::<Result<_, _>>()?)
}

/// Inserts a user. Errors: the username is taken (message names it).
pub fn create_user(tx: &Tx, username: &str, password_hash: &str, now_ms: i64) -> anyhow::Result<i64> {
    if user_by_name(tx, username)?.is_some() {
        anyhow::bail!("a user named {username:?} already exists");
    }
    tx.execute(
        "INSERT INTO users (username, password_hash, created_at, password_changed_at) VALUES (?1, ?2, ?3, ?3)",
        params![username, password_hash, now_ms],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Sets a new password and ends every session of the user. Returns false when
/// there is no such user.
pub fn set_password(tx: &Tx, user_id: i64, password_hash: &str, now_ms: i64) -> anyhow::Result<bool> {
    let n = tx.execute(
        "UPDATE users SET password_hash = ?2, password_changed_at = ?3 WHERE id = ?1",
        params![user_id, password_hash, now_ms],
    )?;
    end_sessions_of(tx, user_id)?;
    Ok(n == 1)
}

// ---- sessions (tower-sessions records) ----

/// A stored session: its JSON data and expiry (UTC ms).
pub struct SessionRow {
    pub data: String,
    pub expires_at: i64,
}

/// The live session with this id hash, if any (expired ones are not returned).
pub fn session(c: &Conn, id_hash: &str, now_ms: i64) -> anyhow::Result<Option<SessionRow>> {
    Ok(c.query_row(
        "SELECT data, expires_at FROM sessions WHERE id_hash = ?1 AND expires_at > ?2",
        params![id_hash, now_ms],
        |r| Ok(SessionRow { data: r.get(0)?, expires_at: r.get(1)? }),
    )
    .optional()?)
}

/// Inserts a new session; returns false when the id is taken (tower-sessions then
/// draws another id).
pub fn create_session(
    tx: &Tx,
    id_hash: &str,
    user_id: Option<i64>,
    data: &str,
    expires_at: i64,
) -> anyhow::Result<bool> {
    let n = tx.execute(
        "INSERT OR IGNORE INTO sessions (id_hash, user_id, data, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![id_hash, user_id, data, expires_at],
    )?;
    Ok(n == 1)
}

/// Updates a session that still exists; one ended meanwhile (logout, "log out
/// everywhere", expiry) stays ended, so a request that loaded it earlier cannot
/// bring it back when it saves. Returns false when there was none.
pub fn update_session(
    tx: &Tx,
    id_hash: &str,
    user_id: Option<i64>,
    data: &str,
    expires_at: i64,
) -> anyhow::Result<bool> {
    let n = tx.execute(
        "UPDATE sessions SET user_id = ?2, data = ?3, expires_at = ?4 WHERE id_hash = ?1",
        params![id_hash, user_id, data, expires_at],
    )?;
    Ok(n == 1)
}

pub fn delete_session(tx: &Tx, id_hash: &str) -> anyhow::Result<()> {
    tx.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?;
    Ok(())
}

/// "Log out everywhere": ends every session of `user_id`. Returns how many.
pub fn end_sessions_of(tx: &Tx, user_id: i64) -> anyhow::Result<usize> {
    Ok(tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?)
}

pub fn sessions_of(c: &Conn, user_id: i64, now_ms: i64) -> anyhow::Result<i64> {
    Ok(c.query_row(
        "SELECT COUNT(*) FROM sessions WHERE user_id = ?1 AND expires_at > ?2",
        params![user_id, now_ms],
        |r| r.get(0),
    )?)
}

pub fn delete_expired_sessions(tx: &Tx, now_ms: i64) -> anyhow::Result<usize> {
    Ok(tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now_ms])?)
}

// ---- API tokens ----

#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// `dlr_` and the token's first 6 characters.
    pub prefix: String,
    pub read_only: bool,
    pub created_by: String,
    /// UTC ms.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const TOKEN_COLS: &str = "id, name, prefix, read_only, created_by, created_at, last_used_at, revoked_at";

fn token(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: r.get(0)?,
        name: r.get(1)?,
        prefix: r.get(2)?,
        read_only: r.get(3)?,
        created_by: r.get(4)?,
        created_at: r.get(5)?,
        last_used_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

pub struct NewToken<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub token_hash: &'a str,
    pub read_only: bool,
    pub created_by: &'a str,
}

pub fn create_token(tx: &Tx, t: &NewToken<'_>, now_ms: i64) -> anyhow::Result<i64> {
    tx.execute(
        "INSERT INTO api_tokens (name, prefix, token_hash, read_only, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![t.name, t.prefix, t.token_hash, t.read_only, t.created_by, now_ms],
    )?;
    Ok(tx.last_insert_rowid())
}

/// The live (not revoked) token with this hash.
pub fn token_by_hash(c: &Conn, token_hash: &str) -> anyhow::Result<Option<ApiToken>> {
    let sql = format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL");
    Ok(c.query_row(&sql, [token_hash], token).optional()?)
}

/// Records use, at most once a minute per token (so reads do not become writes).
pub fn touch_token(tx: &Tx, id: i64, now_ms: i64) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2 - 60000)",
        params![id, now_ms],
    )?;
    Ok(())
}

pub fn tokens(c: &Conn) -> anyhow::Result<Vec<ApiToken>> {
    let sql = format!("SELECT {TOKEN_COLS} FROM api_tokens ORDER BY revoked_at IS NOT NULL, id DESC");
    let mut stmt = c.prepare(&sql)?;
    Ok(stmt.query_map([], token)?.collect::<Result<_, _>>()?)
}

/// Revokes the live token with this id, else the newest live one with this name
/// (an id wins over a token *named* like it). Returns the revoked token's name, or
/// None when no live token matches.
pub fn revoke_token(tx: &Tx, key: &str, now_ms: i64) -> anyhow::Result<Option<String>> {
    let found: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, name FROM api_tokens WHERE revoked_at IS NULL AND (CAST(id AS TEXT) = ?1 OR name = ?1)
             ORDER BY CAST(id AS TEXT) = ?1 DESC, id DESC LIMIT 1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((id, name)) = found else { return Ok(None) };
    tx.execute("UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1", params![id, now_ms])?;
    Ok(Some(name))
}

// ---- audit log ----

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// UTC ms.
    pub at: i64,
    /// A username, `token:NAME`, `cli` or `system`.
    pub actor: String,
    /// What was done, e.g. `POST /api/schedule-bulk-calls` or `token.create`.
    pub action: String,
    pub target: String,
    pub detail: String,
    /// The HTTP status answered (0 for CLI actions).
    pub status: i64,
    pub ip: String,
}

pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
    pub status: u16,
    pub ip: &'a str,
}

pub fn audit(tx: &Tx, e: &NewAudit<'_>, now_ms: i64) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO audit_log (at, actor, action, target, detail, status, ip) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![now_ms, e.actor, e.action, e.target, e.detail, e.status, e.ip],
    )?;
    Ok(())
}

/// Newest first, `before` an id for keyset paging, optionally only one actor.
pub fn audit_page(c: &Conn, before: Option<i64>, actor: Option<&str>, limit: i64) -> anyhow::Result<Vec<AuditEntry>> {
    let mut stmt = c.prepare(
        "SELECT id, at, actor, action, target, detail, status, ip FROM audit_log
         WHERE (?1 IS NULL OR id < ?1) AND (?2 IS NULL OR actor = ?2) ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![before, actor, limit], |r| {
        Ok(AuditEntry {
            id: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            detail: r.get(5)?,
            status: r.get(6)?,
            ip: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
