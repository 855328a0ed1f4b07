//! Finding a session request's CSRF token: the `X-CSRF-Token` header (the
//! dashboard's fetch calls), the `_csrf` field of a url-encoded form, or the first
//! part of a multipart form (our upload forms put the hidden `_csrf` input first,
//! and browsers send parts in document order). Only that first part is read ahead;
//! the rest of an upload still streams to the handler.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::auth::secret;
use crate::web::auth::{CSRF_FIELD, CSRF_HEADER, with_body};

/// Url-encoded forms are read whole to find the field; the DNC paste form is the
/// largest (see `web::DNC_BODY`).
const FORM_LIMIT: usize = 16 << 20;
/// How much of a multipart body is read ahead to find the first part.
const PEEK_LIMIT: usize = 8 << 10;

fn refused() -> Response {
    let msg = "missing or invalid CSRF token: reload the page and submit again";
    (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({"error": msg}))).into_response()
}

/// Passes the request on (body intact) when it carries `expected`; 403 otherwise.
pub async fn check(req: Request, expected: &str) -> Result<Request, Response> {
    if let Some(sent) = req.headers().get(CSRF_HEADER) {
        let ok = sent.to_str().is_ok_and(|s| secret::same(s, expected));
        return if ok { Ok(req) } else { Err(refused()) };
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
        let sent = form_field(&bytes);
        if !sent.is_some_and(|s| secret::same(&s, expected)) {
            return Err(refused());
        }
        return Ok(Request::from_parts(parts, Body::from(bytes)));
    }
    if let Some(boundary) = multipart_boundary(&content_type) {
        let (parts, body) = req.into_parts();
        let mut stream = body.into_data_stream();
        let mut peeked = Vec::new();
        let sent = loop {
            if let Some(found) = first_part(&peeked, &boundary) {
                break found;
            }
            if peeked.len() > PEEK_LIMIT {
                break None;
            }
            match stream.next().await {
                Some(Ok(chunk)) => peeked.extend_from_slice(&chunk),
                Some(Err(_)) => return Err((StatusCode::BAD_REQUEST, "could not read the form").into_response()),
                None => break first_part(&peeked, &boundary).flatten(),
            }
        };
        if !sent.is_some_and(|s| secret::same(&s, expected)) {
            return Err(refused());
        }
        let head = futures_util::stream::once(async move { Ok::<Bytes, axum::Error>(Bytes::from(peeked)) });
        let req = Request::from_parts(parts, Body::empty());
        return Ok(with_body(req, Body::from_stream(head.chain(stream))));
    }
    Err(refused())
}

fn form_field(bytes: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v)
}

fn multipart_boundary(content_type: &str) -> Option<String> {
    if !content_type.starts_with("multipart/form-data") {
        return None;
    }
    content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .find(|b| !b.is_empty() && b.len() <= 200)
}

/// `None` while more bytes are needed; `Some(None)` when the first part is not the
/// CSRF field; `Some(Some(token))` when it is.
fn first_part(buf: &[u8], boundary: &str) -> Option<Option<String>> {
    let opening = format!("--{boundary}\r\n");
    if buf.len() < opening.len() {
        return None;
    }
    if !buf.starts_with(opening.as_bytes()) {
        return Some(None);
    }
    let rest = &buf[opening.len()..];
    let headers_end = find(rest, b"\r\n\r\n")?;
    let headers = String::from_utf8_lossy(&rest[..headers_end]).to_ascii_lowercase();
    if !headers.contains(&format!("name=\"{CSRF_FIELD}\"")) {
        return Some(None);
    }
    let value = &rest[headers_end + 4..];
    let end = find(value, format!("\r\n--{boundary}").as_bytes())?;
    Some(std::str::from_utf8(&value[..end]).ok().map(|s| s.trim().to_string()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_multipart_part_yields_the_token() {
        let b = "XyZ";
        let body = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\ntok123\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nnumber\n"
        );
        assert_eq!(first_part(body.as_bytes(), b), Some(Some("tok123".into())));
        assert_eq!(first_part(&body.as_bytes()[..30], b), None, "needs more bytes");
        let other = format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--{b}--");
        assert_eq!(first_part(other.as_bytes(), b), Some(None), "the token must come first");
        assert_eq!(first_part(b"garbage that is long enough", b), Some(None));
    }

    #[test]
    fn boundaries_and_form_fields_parse() {
        assert_eq!(multipart_boundary("multipart/form-data; boundary=----abc").as_deref(), Some("----abc"));
        assert_eq!(multipart_boundary("multipart/form-data; boundary=\"q\"").as_deref(), Some("q"));
        assert_eq!(multipart_boundary("multipart/form-data"), None);
        assert_eq!(multipart_boundary("text/plain; boundary=x"), None);
        assert_eq!(form_field(b"a=1&_csrf=t%2Bk&b=2").as_deref(), Some("t+k"));
        assert_eq!(form_field(b"a=1"), None);
        assert_eq!(form_field(b"\xff\xfe=%%"), None);
    }
}
