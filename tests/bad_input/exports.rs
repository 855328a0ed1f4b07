//! Every CSV export defangs formula cells (OWASP CSV injection): the rejected rows
//! of an import and the do-not-call list, read back with the `csv` crate the way a
//! spreadsheet would see the cells.

use serde_json::json;

use crate::support::{self, TestApp};

/// The export's rows (header first), each cell as a spreadsheet reads it.
async fn export(app: &TestApp, path: &str) -> Vec<Vec<String>> {
    let resp = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{path}");
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/csv"), "{path}: {content_type}");
    let bytes = resp.bytes().await.unwrap();
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&bytes[..]);
    reader.records().map(|r| r.unwrap().iter().map(String::from).collect()).collect()
}

/// No cell may start with a character that makes a spreadsheet read a formula.
fn assert_defanged(path: &str, rows: &[Vec<String>]) {
    for cell in rows.iter().flatten() {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']) || is_e164(cell),
            "{path}: the cell {cell:?} would run as a formula"
        );
    }
}

/// `+` and 2 to 15 digits: the one exemption (a spreadsheet reads it as that number).
fn is_e164(cell: &str) -> bool {
    cell.strip_prefix('+').is_some_and(|d| (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formula_cells_are_defanged_in_every_csv_export() {
    let dir = tempfile::tempdir().unwrap();
    let app = support::spawn(support::config(dir.path()));
    app.ready().await;

    // Rejected rows: values and raw rows starting with =, +, -, @ and a tab.
    let bytes = std::fs::read(crate::corpus_dir().join("csv/31_formula_rejections.csv")).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let summary = app.import_csv(&text).await;
    assert_eq!((summary["imported"].as_u64(), summary["rejected"].as_u64()), (Some(1), Some(5)), "{summary}");
    let path = summary["rejected_csv"].as_str().unwrap().to_string();
    let rows = export(&app, &path).await;
    assert_eq!(rows[0], ["line", "field", "value", "reason", "row"]);
    assert_defanged(&path, &rows);
    let values: Vec<&str> = rows[1..].iter().map(|r| r[2].as_str()).collect();
    assert_eq!(values, ["'=1+1", "'+1+1", "'-1-1", "'@SUM(A1)", "notaphone"]);
    assert_eq!(rows[5][4], "'\t=3+3,notaphone", "a raw row starting with a tab");
    assert_eq!(rows[1][4], "Ann,=1+1", "a cell that does not start with one is kept as it is");

    // The do-not-call list: formula reasons and a source starting with '-'.
    let entries = [
        ("+14152379501", "api", "=HYPERLINK(\"http://evil.example\",\"click\")"),
        ("+14152379502", "-crm", "@SUM(1+1)*cmd|' /C calc'!A0"),
        ("+14152379503", "web", "+1+1"),
        ("+14152379504", "web", "-2+3"),
        ("+14152379505", "web", "asked politely"),
    ];
    for (phone, source, reason) in entries {
        let (status, body) =
            app.post_json("/api/opt-out", json!({"phone": phone, "source": source, "reason": reason})).await;
        assert_eq!(status, 200, "{body}");
    }
    let rows = export(&app, "/api/dnc/export.csv").await;
    assert_eq!(rows[0], ["phone", "source", "reason", "created_at"]);
    assert_defanged("/api/dnc/export.csv", &rows);
    let got: Vec<(&str, &str, &str)> =
        rows[1..].iter().map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str())).collect();
    assert_eq!(
        got,
        [
            ("+14152379501", "api", "'=HYPERLINK(\"http://evil.example\",\"click\")"),
            ("+14152379502", "'-crm", "'@SUM(1+1)*cmd|' /C calc'!A0"),
            ("+14152379503", "web", "'+1+1"),
            ("+14152379504", "web", "'-2+3"),
            ("+14152379505", "web", "asked politely"),
        ],
        "E.164 phones keep their '+' (re-importable); every other formula start gets a '"
    );
    app.stop();
}
