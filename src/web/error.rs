//! The one error type at the HTTP edge. User errors carry a message that is safe
//! to show; internal errors are logged with their chain and shown generically.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::schedules::ScheduleError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("not found")]
    NotFound,
    #[error("invalid webhook signature")]
    Forbidden,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"error": "internal error"})))
                    .into_response();
            }
        };
        (status, Json(serde_json::json!({"error": self.to_string()}))).into_response()
    }
}

impl From<ScheduleError> for AppError {
    fn from(e: ScheduleError) -> AppError {
        match e {
            ScheduleError::Store(e) => AppError::Internal(e),
            other => AppError::Unprocessable(other.to_string()),
        }
    }
}

/// Parses a JSON body with a readable error (axum's own rejection is plain text).
/// `Content-Type: application/json` is required: a browser cannot send it cross-site
/// without a CORS preflight, which this server never grants, so another site cannot
/// drive the API through a visitor's browser.
pub fn json_body<T: serde::de::DeserializeOwned>(headers: &axum::http::HeaderMap, body: &[u8]) -> Result<T, AppError> {
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(AppError::UnsupportedMediaType("send the body as Content-Type: application/json".into()));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::Unprocessable("empty request body; expected a JSON object".into()));
    }
    serde_json::from_slice(body).map_err(|e| AppError::Unprocessable(format!("invalid JSON body: {e}")))
}
