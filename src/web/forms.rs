//! Reading the dashboard's HTML forms: small multipart forms (paste + file) and
//! urlencoded forms with repeated fields (`ids=1&ids=2`).

use axum::extract::Multipart;

use crate::web::AppError;

/// Reads a multipart form (within the route's body limit) into (name, text) pairs.
/// A field that is not UTF-8 is refused naming it.
pub async fn multipart_fields(mut multipart: Multipart) -> Result<Vec<(String, String)>, AppError> {
    let mut out = Vec::new();
    while let Some(field) =
        multipart.next_field().await.map_err(|e| AppError::BadRequest(format!("bad multipart body: {e}")))?
    {
        let name = field.name().unwrap_or("").to_string();
        let bytes = field.bytes().await.map_err(|e| AppError::BadRequest(format!("bad multipart body: {e}")))?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| AppError::Unprocessable(format!("{name}: the file is not UTF-8 text")))?;
        out.push((name, text));
    }
    Ok(out)
}

/// An urlencoded body as (name, value) pairs, repeated names kept in order.
pub fn pairs(body: &str) -> Result<Vec<(String, String)>, AppError> {
    serde_urlencoded::from_str(body).map_err(|e| AppError::BadRequest(format!("bad form body: {e}")))
}

/// The first value of `name`, or "".
pub fn value(pairs: &[(String, String)], name: &str) -> String {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default()
}
