//! Who may use the dashboard and the API: users with Argon2id passwords, server-side
//! sessions (tower-sessions, stored by `db::auth`), API tokens, CSRF synchronizer
//! tokens and the login rate limit. The HTTP side lives in `web::auth`.
//!
//! Rules follow the OWASP cheat sheets: Password Storage (Argon2id), Session
//! Management (server-side, rotated at login, HttpOnly, SameSite, Secure over https),
//! CSRF Prevention (synchronizer token per session), Authentication (throttled
//! login with backoff, generic failure message).

pub mod limit;
pub mod ops;
pub mod password;
pub mod secret;

use std::sync::Mutex;

/// The identity behind a request: a dashboard user (session) or an API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User { id: i64, username: String },
    Token { id: i64, name: String, read_only: bool },
}

impl Principal {
    /// How the audit log names this identity: `alice` or `token:nightly-export`.
    pub fn actor(&self) -> String {
        match self {
            Principal::User { username, .. } => username.clone(),
            Principal::Token { name, .. } => format!("token:{name}"),
        }
    }

    /// Read-only tokens may only use safe methods (GET, HEAD).
    pub fn may_write(&self) -> bool {
        !matches!(self, Principal::Token { read_only: true, .. })
    }
}

/// In-memory auth state shared by the handlers.
#[derive(Default)]
pub struct AuthState {
    pub logins: limit::Limiter,
    /// First-run setup token (printed to the log when no user exists and the server
    /// is not bound to loopback); `None` once a user exists.
    pub setup_token: Mutex<Option<String>>,
}
