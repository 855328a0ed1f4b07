//! Vapi server-URL webhooks (`POST /webhooks/vapi`): `status-update` and
//! `end-of-call-report`, authenticated with the shared secret.

use axum::http::StatusCode;

/// Not built yet: refused.
pub async fn event() -> StatusCode {
    StatusCode::NOT_FOUND
}
