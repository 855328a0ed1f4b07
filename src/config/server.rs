//! `[server]`: where the HTTP server listens, what the provider calls back, request
//! limits and timeouts, and dashboard sessions.

use std::net::SocketAddr;

use anyhow::bail;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Address the HTTP server binds. Loopback by default: put a TLS reverse proxy in front.
    pub bind: SocketAddr,
    /// Base URL the provider calls back (webhooks are signed over it). Default: `http://{bind}`.
    pub public_url: Option<String>,
    /// Largest accepted CSV upload, in megabytes.
    pub max_upload_mb: u64,
    /// Seconds a request may take, body included (slow clients get 408). CSV uploads
    /// get `upload_timeout_seconds` instead.
    pub request_timeout_seconds: u64,
    /// Seconds a CSV upload may take (200 MB over a slow link).
    pub upload_timeout_seconds: u64,
    /// A dashboard session ends after this many minutes without a request.
    pub session_idle_minutes: u64,
    /// A dashboard session ends this many hours after login, used or not.
    pub session_max_hours: u64,
    /// Take the client address from the last `X-Forwarded-For` entry (set it when a
    /// reverse proxy on this host forwards requests); used by the login rate limit
    /// and the audit log. Off: the TCP peer address.
    pub trust_forwarded_for: bool,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            max_upload_mb: 200,
            request_timeout_seconds: 30,
            upload_timeout_seconds: 900,
            session_idle_minutes: 12 * 60,
            session_max_hours: 7 * 24,
            trust_forwarded_for: false,
        }
    }
}

impl Server {
    /// Errors: a zero or absurd timeout or session length, a `public_url` that is
    /// not http(s).
    pub fn check(&self) -> anyhow::Result<()> {
        let srv = self;
        if srv.request_timeout_seconds == 0 || srv.upload_timeout_seconds == 0 {
            bail!("server.request_timeout_seconds and upload_timeout_seconds must be at least 1");
        }
        if srv.session_idle_minutes == 0 || srv.session_idle_minutes > 525_600 {
            bail!("server.session_idle_minutes must be 1..=525600 (a year)");
        }
        if srv.session_max_hours > 8_760 {
            bail!("server.session_max_hours must be at most 8760 (a year)");
        }
        if srv.request_timeout_seconds > 86_400 || srv.upload_timeout_seconds > 86_400 {
            bail!("server.request_timeout_seconds and upload_timeout_seconds must be at most 86400");
        }
        if srv.public_url.as_deref().is_some_and(|u| !u.starts_with("http://") && !u.starts_with("https://")) {
            bail!("server.public_url must start with http:// or https://");
        }
        Ok(())
    }
}
