//! Telnyx Call Control webhooks (`POST /webhooks/telnyx`): Ed25519-verified JSON events
//! that drive the call flow with commands.

use axum::http::StatusCode;

/// Not built yet: refused.
pub async fn event() -> StatusCode {
    StatusCode::NOT_FOUND
}
