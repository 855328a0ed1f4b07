//! Issue 6's bad-input corpus through real HTTP against a running app: the CSV files
//! of `tests/bad_input/csv/` (uploaded as a body, as multipart and through the
//! dashboard), the webhook and API bodies of `tests/bad_input/bodies/` (in
//! `bad_input/bodies.rs`), and the defanged CSV exports (`bad_input/exports.rs`).
//! What each file must get is in `tests/bad_input/manifest.toml`, one line of intent
//! per file. Never a panic, never a 5xx; a refusal names its reason, a rejected row
//! its line and field; every accepted row is stored; the app still serves afterwards.

mod support;

#[path = "bad_input/bodies.rs"]
mod bodies;
#[path = "bad_input/exports.rs"]
mod exports;

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;
use support::{TestApp, count};

#[derive(Deserialize)]
pub struct Manifest {
    pub csv: Vec<CsvCase>,
    pub body: Vec<bodies::BodyCase>,
}

#[derive(Deserialize)]
pub struct CsvCase {
    pub file: String,
    pub intent: String,
    pub status: u16,
    #[serde(default)]
    pub imported: u64,
    #[serde(default)]
    pub duplicates: u64,
    #[serde(default)]
    pub rejected: u64,
    /// `[line, field, reason fragment]`, every rejection in file order.
    #[serde(default)]
    pub rejections: Vec<(u64, String, String)>,
    /// A fragment of a 4xx's message.
    pub error: Option<String>,
    /// `[phone, name]` as they must be stored.
    #[serde(default)]
    pub names: Vec<(String, String)>,
}

pub fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bad_input"))
}

pub fn manifest() -> Manifest {
    let text = std::fs::read_to_string(corpus_dir().join("manifest.toml")).expect("tests/bad_input/manifest.toml");
    toml::from_str(&text).expect("manifest.toml parses")
}

/// How a file is sent to the importer.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// `POST /api/leads/import`, `Content-Type: text/csv`.
    ApiBody,
    /// `POST /api/leads/import`, multipart field `file`.
    ApiMultipart,
    /// The dashboard's `POST /import` (multipart), which redirects to `/?import=N`
    /// or `/?import_error=…`.
    Dashboard,
}

/// The answer as (status, JSON summary or error). The dashboard's redirect target
/// is turned into the same shape: the import's stored counts, or the error.
async fn upload(app: &TestApp, route: Route, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let request = match route {
        Route::ApiBody => app.http.post(app.url("/api/leads/import")).header("content-type", "text/csv").body(bytes),
        Route::ApiMultipart => multipart(app.http.post(app.url("/api/leads/import")), name, &bytes),
        Route::Dashboard => multipart(app.http.post(app.url("/import")), name, &bytes),
    };
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    if !matches!(route, Route::Dashboard) || status != 200 {
        return (status, resp.json().await.unwrap_or(Value::Null));
    }
    // Followed the redirect to the dashboard: read where it pointed.
    let query: Vec<(String, String)> = resp.url().query_pairs().into_owned().collect();
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.clone());
    if let Some(error) = get("import_error") {
        return (422, serde_json::json!({ "error": error }));
    }
    let id: i64 = get("import").unwrap_or_else(|| panic!("{name}: dashboard redirect {}", resp.url())).parse().unwrap();
    let stored = app.db().query_row("SELECT imported, duplicates, rejected FROM imports WHERE id = ?1", [id], |r| {
        Ok(serde_json::json!({"import_id": id, "imported": r.get::<_, i64>(0)?, "duplicates": r.get::<_, i64>(1)?,
                              "rejected": r.get::<_, i64>(2)?}))
    });
    (200, stored.unwrap())
}

/// A `multipart/form-data` body with one file field `file` (written out here: the
/// HTTP client is built without its multipart feature).
fn multipart(request: reqwest::RequestBuilder, name: &str, bytes: &[u8]) -> reqwest::RequestBuilder {
    const BOUNDARY: &str = "bad-input-boundary-7d3f1c520c1e4a5e";
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: text/csv\r\n\r\n"
    );
    let body = [head.as_bytes(), bytes, format!("\r\n--{BOUNDARY}--\r\n").as_bytes()].concat();
    request.header("content-type", format!("multipart/form-data; boundary={BOUNDARY}")).body(body)
}

/// Checks one answer against the manifest. `again`: the file was imported before,
/// so its imported rows now come back as duplicates.
fn check(app: &TestApp, case: &CsvCase, route: Route, again: bool, (status, body): (u16, Value)) {
    let what = format!("{} via {route:?} ({})", case.file, case.intent);
    assert!(status < 500, "{what}: a {status}: {body}");
    assert_eq!(status, case.status, "{what}: {body}");
    if status != 200 {
        let error = body["error"].as_str().unwrap_or_default();
        let want = case.error.as_deref().expect("a 4xx case names its error");
        assert!(error.contains(want), "{what}: {error:?} should contain {want:?}");
        return;
    }
    let (imported, duplicates) =
        if again { (0, case.imported + case.duplicates) } else { (case.imported, case.duplicates) };
    let got = (body["imported"].as_u64(), body["duplicates"].as_u64(), body["rejected"].as_u64());
    assert_eq!(got, (Some(imported), Some(duplicates), Some(case.rejected)), "{what}: {body}");
    let import_id = body["import_id"].as_i64().unwrap();
    // Nothing accepted is lost: every row counted as imported is a stored lead.
    let stored =
        app.db().query_row("SELECT COUNT(*) FROM leads WHERE import_id = ?1", [import_id], |r| r.get::<_, i64>(0));
    assert_eq!(stored.unwrap() as u64, imported, "{what}: leads stored by this import");
    if let Some(errors) = body["errors"].as_array() {
        assert_eq!(errors.len(), case.rejections.len(), "{what}: {body}");
        for (got, (line, field, reason)) in errors.iter().zip(&case.rejections) {
            assert_eq!(
                (got["line"].as_u64(), got["field"].as_str()),
                (Some(*line), Some(field.as_str())),
                "{what}: {got}"
            );
            assert!(got["reason"].as_str().unwrap().contains(reason.as_str()), "{what}: {got} should say {reason:?}");
        }
    }
    for (phone, name) in &case.names {
        let stored: String =
            app.db().query_row("SELECT name FROM leads WHERE phone = ?1", [phone], |r| r.get(0)).unwrap_or_default();
        assert_eq!(&stored, name, "{what}: the name of {phone}");
    }
}

fn config(dir: &std::path::Path) -> dialer::config::Config {
    let mut config = support::config(dir);
    // Small enough to test the limit with a generated file; big enough for the 5 MB field.
    config.server.max_upload_mb = 12;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_csv_is_imported_row_by_row_or_refused_with_its_reason_never_a_5xx() {
    let manifest = manifest();
    assert!(manifest.csv.len() >= 20, "the corpus has at least 20 CSV files");
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(config(dir.path()));
    app.ready().await;
    for case in &manifest.csv {
        let bytes = std::fs::read(corpus_dir().join("csv").join(&case.file)).unwrap();
        let leads_before = count(&app.db(), "SELECT COUNT(*) FROM leads");
        check(&app, case, Route::ApiBody, false, upload(&app, Route::ApiBody, &case.file, bytes.clone()).await);
        if case.status != 200 {
            assert_eq!(count(&app.db(), "SELECT COUNT(*) FROM leads"), leads_before, "{}: refused whole", case.file);
        }
        // The same file again, as multipart and through the dashboard: the same
        // verdicts, its leads now duplicates.
        for route in [Route::ApiMultipart, Route::Dashboard] {
            check(&app, case, route, true, upload(&app, route, &case.file, bytes.clone()).await);
        }
    }
    generated_files(&app).await;
    // Nothing killed a task: the app still answers, and a good file still imports.
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status().as_u16(), 200);
    let good = "number,name\n+14152379801,After\n+14152379802,The Bad Ones\n";
    let summary = app.import_csv(good).await;
    assert_eq!((summary["imported"].as_u64(), summary["rejected"].as_u64()), (Some(2), Some(0)), "{summary}");
    app.stop();
}

/// Files too big to keep in git: a 5 MB field in a lead column (rejected) and in a
/// column we do not import (the row imports), a 1 MB line of 150,000 fields
/// (rejected, its row kept cut short), and an upload over `max_upload_mb` (413).
async fn generated_files(app: &TestApp) {
    let big = "x".repeat(5 << 20);
    let csv = format!("number,name,notes\n+14152379701,{big},\n+14152379702,Small,{big}\n+14152379703,Fine,\n");
    let (status, body) = upload(app, Route::ApiBody, "huge_field.csv", csv.into_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["imported"].as_u64(), body["rejected"].as_u64()), (Some(2), Some(1)), "{body}");
    assert_eq!((body["errors"][0]["line"].as_u64(), body["errors"][0]["field"].as_str()), (Some(2), Some("name")));
    assert!(body["errors"][0]["reason"].as_str().unwrap().contains("longer than 4096 bytes"), "{body}");
    let kept: i64 = app.db().query_row("SELECT MAX(LENGTH(raw)) FROM import_rejections", [], |r| r.get(0)).unwrap();
    assert!(kept < 70_000, "a rejected row is kept cut short, not 5 MB: {kept}");

    let line = format!("+14152379704{}", ",x".repeat(150_000));
    let (status, body) =
        upload(app, Route::ApiBody, "long_line.csv", format!("number,name\n{line}\n").into_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rejected"].as_u64(), Some(1), "{body}");
    assert!(body["errors"][0]["reason"].as_str().unwrap().contains("150001 fields, but the header has 2"), "{body}");

    let leads_before = count(&app.db(), "SELECT COUNT(*) FROM leads");
    let over = format!("number,notes\n+14152379705,{}\n", "x".repeat(13 << 20)).into_bytes();
    for route in [Route::ApiBody, Route::ApiMultipart] {
        let (status, body) = upload(app, route, "over_limit.csv", over.clone()).await;
        assert_eq!(status, 413, "{route:?}: an upload over max_upload_mb: {body}");
    }
    assert_eq!(count(&app.db(), "SELECT COUNT(*) FROM leads"), leads_before, "nothing imported from it");
}
