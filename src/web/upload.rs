//! Receiving a CSV upload: the bytes are streamed to a temporary file (never held in
//! memory whole), then imported on the blocking pool by the same code as `dialer import`.

use axum::body::Body;
use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;
use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;

use crate::leads::import::{self, ImportError, Summary};
use crate::state::AppState;
use crate::web::AppError;

pub async fn from_multipart(state: &AppState, mut multipart: Multipart) -> Result<Summary, AppError> {
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().unwrap_or("upload.csv").to_string();
        let stream = field.map_err(|e| match multipart_error(e) {
            AppError::PayloadTooLarge(m) => std::io::Error::new(std::io::ErrorKind::FileTooLarge, m),
            other => std::io::Error::other(other.to_string()),
        });
        return import_stream(state, &filename, stream).await;
    }
    Err(AppError::Unprocessable("no multipart field named \"file\"".into()))
}

pub async fn from_body(state: &AppState, body: Body) -> Result<Summary, AppError> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    import_stream(state, "upload.csv", stream).await
}

/// The body limit (`DefaultBodyLimit`) reaches a multipart upload as a stream error.
fn multipart_error(e: MultipartError) -> AppError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(too_large_message(e.body_text())),
        _ => AppError::BadRequest(format!("bad multipart body: {}", e.body_text())),
    }
}

fn too_large_message(detail: impl std::fmt::Display) -> String {
    format!("the upload is larger than server.max_upload_mb allows ({detail}); split the file")
}

async fn import_stream<S>(state: &AppState, filename: &str, mut stream: S) -> Result<Summary, AppError>
where
    S: futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> + Unpin,
{
    // A raw body is not bounded by `DefaultBodyLimit` (only extractors are), so the
    // limit is counted here, for both routes, before the disk fills up.
    let limit = state.config.server.max_upload_mb.saturating_mul(1 << 20);
    let spool = tempfile::NamedTempFile::new().map_err(anyhow::Error::from)?;
    let mut file = tokio::fs::File::create(spool.path()).await.map_err(anyhow::Error::from)?;
    let mut written: u64 = 0;
    while let Some(chunk) = stream.try_next().await.map_err(|e| match e.kind() {
        std::io::ErrorKind::FileTooLarge => AppError::PayloadTooLarge(e.to_string()),
        _ => AppError::BadRequest(format!("upload interrupted: {e}")),
    })? {
        written += chunk.len() as u64;
        if written > limit {
            return Err(AppError::PayloadTooLarge(too_large_message(format!("{} MiB", limit >> 20))));
        }
        file.write_all(&chunk).await.map_err(anyhow::Error::from)?;
    }
    file.flush().await.map_err(anyhow::Error::from)?;
    drop(file);
    let state = state.clone();
    let filename = filename.to_string();
    let result = tokio::task::spawn_blocking(move || {
        let input = std::fs::File::open(spool.path())?;
        let ctx = import::Context { db: &state.db, region: state.resolved.region, places: &state.places };
        Ok::<_, anyhow::Error>(import::run(&ctx, &filename, input, &mut |_| {}))
    })
    .await
    .map_err(anyhow::Error::from)??;
    match result {
        Ok(summary) => Ok(summary),
        Err(ImportError::Store(e)) => Err(AppError::Internal(e)),
        Err(user) => Err(AppError::Unprocessable(user.to_string())),
    }
}
