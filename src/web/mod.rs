//! HTTP: the dashboard (askama pages), the JSON API and the provider webhooks.
//! Handlers are thin: extract → parse → one operation → render.

mod account;
mod api;
mod assets;
pub mod auth;
mod campaign_form;
mod campaigns;
mod campaigns_page;
mod csrf_body;
mod dashboard;
mod dnc;
mod dnc_page;
mod error;
mod forms;
mod headers;
mod login;
mod metrics;
mod numbers;
mod numbers_page;
mod provider_numbers;
pub mod session_store;
mod status;
mod telnyx_hooks;
mod test_call;
mod twilio_hooks;
mod upload;
mod vapi_hooks;
mod webhooks;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};

use crate::state::AppState;

pub use error::AppError;

/// Request bodies other than CSV uploads: JSON and webhook forms are small.
const SMALL_BODY: usize = 1 << 20;
/// Do-not-call lists (pasted, uploaded or posted): read whole, so bounded apart from
/// the lead upload limit. 16 MiB is about a million numbers.
const DNC_BODY: usize = 16 << 20;

/// Every route, behind (outermost first) the security headers, the session layer
/// and the authentication gate (`web::auth`); each group has its body limit and
/// request timeout.
pub fn router(state: AppState) -> Router {
    let server = &state.config.server;
    let upload_limit = usize::try_from(server.max_upload_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    let timeout = TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(server.request_timeout_seconds),
    );
    let upload_timeout = TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(server.upload_timeout_seconds),
    );
    let uploads = Router::new()
        .route("/api/leads/import", post(api::import))
        .route("/import", post(dashboard::import))
        .layer(DefaultBodyLimit::max(upload_limit))
        .layer(upload_timeout);
    let dnc_lists = Router::new()
        .route("/api/dnc", get(dnc::list).post(dnc::add))
        .route("/dnc/add", post(dnc_page::page_add))
        .layer(DefaultBodyLimit::max(DNC_BODY))
        .layer(timeout);
    let sessions = SessionManagerLayer::new(session_store::DbStore { db: state.db.clone() })
        .with_name("dialer_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.public_url.starts_with("https://"))
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
            i64::try_from(server.session_idle_minutes).unwrap_or(i64::MAX / 60),
        )));
    Router::new()
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/setup", get(login::setup_page).post(login::setup_submit))
        .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }))
        .route("/account", get(account::page))
        .route("/account/logout-all", post(account::logout_all))
        .route("/account/password", post(account::password))
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route("/account/users", post(account::add_user))
        .route("/audit", get(account::audit))
        .route("/api/audit", get(account::api_audit))
        .route("/", get(dashboard::index))
        .route("/leads/{id}", get(dashboard::lead))
        .route("/schedules", get(dashboard::schedules))
        .route("/schedules/{id}/cancel", post(dashboard::cancel))
        .route("/numbers", get(numbers_page::page))
        .route("/numbers/add", post(numbers_page::add))
        .route("/numbers/bulk", post(numbers_page::bulk))
        .route("/numbers/scores", post(numbers_page::scores))
        .route("/numbers/provider", get(provider_numbers::page))
        .route("/numbers/provider/import", post(provider_numbers::page_import))
        .route("/numbers/{id}", get(numbers_page::detail))
        .route("/dnc", get(dnc_page::page))
        .route("/dnc/remove", post(dnc_page::page_remove))
        .route("/dnc/{phone}", get(dnc_page::detail))
        .route("/campaigns", get(campaigns_page::page).post(campaigns_page::create))
        .route("/campaigns/{id}", get(campaigns_page::detail))
        .route("/campaigns/{id}/settings", post(campaigns_page::save_settings))
        .route("/campaigns/{id}/{action}", post(campaigns_page::action))
        .route("/api/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/api/campaigns/{id}", get(campaigns::get).patch(campaigns::patch))
        .route("/api/campaigns/{id}/{action}", post(campaigns::action))
        .route("/api/numbers", get(numbers::list).post(numbers::add))
        .route("/api/numbers/bulk", post(numbers::bulk))
        .route("/api/numbers/scores", post(numbers::scores))
        .route("/api/numbers/plan", get(numbers::plan))
        .route("/api/numbers/{id}", get(numbers::get).patch(numbers::patch))
        .route("/api/provider/numbers", get(provider_numbers::api_list))
        .route("/api/provider/numbers/import", post(provider_numbers::api_import))
        .route("/api/dnc/export.csv", get(dnc::export))
        .route("/api/dnc/{phone}", get(dnc::get).delete(dnc::remove))
        .route("/api/opt-out", post(dnc::opt_out))
        .route("/test-call", get(test_call::page).post(test_call::submit))
        .route("/test-call/{id}", get(test_call::detail))
        .route("/api/test-calls", post(test_call::api_start))
        .route("/api/test-calls/{id}", get(test_call::api_get))
        .route("/healthz", get(status::healthz))
        .route("/metrics", get(metrics::scrape))
        .route("/api/status", get(status::api_status))
        .route("/api/leads", get(api::leads))
        .route("/api/leads/{id}", get(api::lead))
        .route("/api/calls", get(api::calls))
        .route("/api/imports/{id}/rejected.csv", get(api::rejected_csv))
        .route("/api/schedule-bulk-calls", post(api::schedule_bulk))
        .route("/api/scheduled-bulk-calls", get(api::scheduled))
        .route("/api/cancel-bulk-schedule", post(api::cancel))
        .route("/webhooks/twilio/status", post(webhooks::twilio_status))
        .route("/webhooks/twilio/voice", post(twilio_hooks::voice))
        .route("/webhooks/twilio/gather", post(twilio_hooks::gather))
        .route("/webhooks/twilio/dial", post(twilio_hooks::dial))
        .route("/webhooks/twilio/amd", post(twilio_hooks::amd))
        .route("/webhooks/twilio/voicemail", post(twilio_hooks::voicemail))
        .route("/webhooks/telnyx", post(telnyx_hooks::event))
        .route("/webhooks/vapi", post(vapi_hooks::event))
        .route("/static/{*path}", get(assets::serve))
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .layer(timeout)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::time_webhooks))
        .merge(uploads)
        .merge(dnc_lists)
        .layer(from_fn_with_state(state.clone(), auth::gate))
        .layer(sessions)
        .layer(from_fn_with_state(state.clone(), headers::secure))
        .with_state(state)
}

/// Formats a UTC instant in `tz` for display, e.g. "2026-11-22 10:00 EST".
pub fn local(ms: i64, tz: chrono_tz::Tz) -> String {
    crate::db::from_ms(ms).with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z").to_string()
}
