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

/// Password checks run at once at most (login): each Argon2id verification takes
/// 19 MiB and tens of ms, and the throttle's check and its record of a failure must
/// not be outrun by guesses sent all at once.
pub const VERIFY_SLOTS: usize = 2;

/// In-memory auth state shared by the handlers.
pub struct AuthState {
    pub logins: limit::Limiter,
    /// [`VERIFY_SLOTS`] permits: a login holds one from the throttle's check until
    /// its failure is recorded.
    pub verifying: tokio::sync::Semaphore,
    /// First-run setup token (printed to the log when no user exists and the server
    /// is not bound to loopback); `None` once a user exists.
    pub setup_token: Mutex<Option<String>>,
}

impl Default for AuthState {
    fn default() -> Self {
        AuthState {
            logins: limit::Limiter::default(),
            verifying: tokio::sync::Semaphore::new(VERIFY_SLOTS),
            setup_token: Mutex::new(None),
        }
    }
}
