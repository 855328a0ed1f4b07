//! Data-driven import cases: one `check(csv, expect)` per behaviour, on a real
//! SQLite file.

use super::*;
use crate::db::leads::LeadFilter;

fn places() -> crate::numbers::Places {
    crate::numbers::Places::new(
        crate::numbers::npa::NpaMap::embedded(),
        std::sync::Arc::new(crate::compliance::tz::TzMap::embedded()),
    )
}

fn run_csv(bytes: &[u8]) -> (Summary, Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.db")).unwrap();
    let places = places();
    let ctx = Context { db: &db, region: phonenumber::country::Id::US, places: &places };
    let summary = run(&ctx, "t.csv", bytes, &mut |_| {}).unwrap();
    (summary, db, dir)
}

/// `(imported, duplicates, rejected)` and, for each rejection, `(line, field, reason fragment)`.
fn check(csv: &[u8], counts: (u64, u64, u64), rejections: &[(u64, &str, &str)]) {
    let (s, _db, _dir) = run_csv(csv);
    assert_eq!((s.imported, s.duplicates, s.rejected), counts, "{:?}", s.errors);
    assert_eq!(s.errors.len(), rejections.len(), "{:?}", s.errors);
    for (got, (line, field, reason)) in s.errors.iter().zip(rejections) {
        assert_eq!((got.line, got.field.as_str()), (*line, *field), "{got:?}");
        assert!(got.reason.contains(reason), "{:?} should contain {reason:?}", got.reason);
    }
}

#[test]
fn our_columns() {
    check(b"lead_uuid,number,name\n,4157001234,A\n,415-700-1235,B\n", (2, 0, 0), &[]);
}

#[test]
fn bom_crlf_quotes_and_aliases() {
    check(
        b"\xef\xbb\xbfFirst Name,Last Name,Phone Number,Company\r\nA,B,(415) 700-1234,\"Acme, Inc\"\r\n",
        (1, 0, 0),
        &[],
    );
}

#[test]
fn semicolon_and_tab_delimiters_are_detected() {
    check(b"phone;name\n4157001234;A\n", (1, 0, 0), &[]);
    check(b"phone\tname\n4157001234\tA\n", (1, 0, 0), &[]);
}

#[test]
fn bad_rows_are_rejected_with_line_field_and_reason_and_never_stop_the_rest() {
    check(
        b"number,name,call_status,timezone,lead_uuid\n\
          555-123-4567,A,,,\n\
          4157001234,Zo\xc3\xab,,,\n\
          415CALLNOW,C,,,\n\
          4157001235,D,maybe,,\n\
          4157001236,E,,Mars/Base,\n\
          4157001237,F,,,not-a-uuid\n\
          4157001238,G,,,,extra\n\
          4157001239,H\xff,,,\n\
          4157001240,I,,,\n",
        (2, 0, 7),
        &[
            (2, "number", "555 area code"),
            (4, "number", "letters"),
            (5, "call_status", "unknown call_status"),
            (6, "timezone", "IANA"),
            (7, "lead_uuid", "not a UUID"),
            (8, "", "6 fields"),
            (9, "name", "UTF-8"),
        ],
    );
}

/// Blank rows are skipped; a lead field spanning lines (an unclosed quote) is refused
/// naming the lines it swallowed; a quote left open to the end of the file refuses
/// its row even in a column we do not import, so no line is silently lost.
#[test]
fn blank_rows_line_breaks_and_unclosed_quotes() {
    check(b"number,name\n4157001234,A\n,\n , \n;;\n4157001235,B\n", (2, 0, 1), &[(5, "number", "")]);
    check(
        b"number,name,notes\n4157001234,\"Unclosed,x\n4157001235,B,y\n4157001236,\"C\",z\n4157001237,D,w\n",
        (1, 0, 1),
        &[(2, "name", "spans lines 2\u{2013}4")],
    );
    check(
        b"number,notes,name\n4157001234,\"two\nlines\",A\n4157001235,\"open,B\n4157001236,x,C\n",
        (1, 0, 1),
        &[(4, "", "never closed: lines 4\u{2013}5")],
    );
    check(b"number,name\r4157001234,A\r4157001235,B\r", (2, 0, 0), &[]);
    // Rejections name the line an editor shows, whatever the line endings.
    for text in [&b"number,name\r\n4157001234,A\r\n\r\nbad,B\r\n"[..], b"number,name\r4157001234,A\r\rbad,B\r"] {
        check(text, (1, 0, 1), &[(4, "number", "")]);
    }
}

#[test]
fn other_encodings_and_a_pipe_are_read() {
    let utf16: Vec<u8> =
        "\u{feff}number|name\r\n4157001234|Zo\u{eb}\r\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let (s, db, _dir) = run_csv(&utf16);
    assert_eq!(s.imported, 1, "{:?}", s.errors);
    let rows = db.read_blocking(|c| Ok(db::leads::page(c, &LeadFilter::default(), 10, None)?.0)).unwrap();
    assert_eq!(rows[0].name, "Zo\u{eb}");
    let (s, db, _dir) = run_csv(b"\xef\xbb\xbf\"number\";\"name\"\n4157001234;Jos\xc3\xa9\n");
    assert_eq!(s.imported, 1, "a quoted first header after a BOM: {:?}", s.errors);
    let (s, db2, _dir2) = run_csv(b"number,name\n4157001234,Jos\xe9 M\xfcller\n");
    assert_eq!(s.imported, 1);
    for db in [&db, &db2] {
        let rows = db.read_blocking(|c| Ok(db::leads::page(c, &LeadFilter::default(), 10, None)?.0)).unwrap();
        assert!(rows[0].name.starts_with("Jos\u{e9}"), "{}", rows[0].name);
    }
}

#[test]
fn huge_rows_are_rejected_and_kept_cut_short() {
    let big = "x".repeat(200_000);
    let csv = format!("number,name\n4157001234,{big}\n4157001235,B\n");
    let (s, db, _dir) = run_csv(csv.as_bytes());
    assert_eq!((s.imported, s.rejected), (1, 1));
    assert_eq!((s.errors[0].line, s.errors[0].field.as_str()), (2, "name"));
    let kept = db.read_blocking(|c| db::imports::rejections(c, s.import_id, 10)).unwrap();
    assert!(
        kept[0].raw.len() < 70_000 && kept[0].raw.ends_with("[row cut: 200011 bytes in all]"),
        "{}",
        kept[0].raw.len()
    );
}

#[test]
fn duplicates_merge_within_the_file_and_with_the_store() {
    let csv = b"number,name,email\n4157001234,,a@x\n+1 415 700 1234,Ann,b@x\n(415) 700-1234,Other,\n";
    let (s, db, _dir) = run_csv(csv);
    assert_eq!((s.imported, s.duplicates), (1, 2));
    let rows = db.read_blocking(|c| Ok(db::leads::page(c, &LeadFilter::default(), 10, None)?.0)).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].name.as_str(), rows[0].email.as_str()), ("Ann", "a@x"), "empty fields filled, set ones kept");
}

#[test]
fn a_lead_uuid_cannot_move_to_another_number() {
    let id = "7d3f1c52-0c1e-4a5e-9f0a-3a1f3f6b2b10";
    let csv = format!("lead_uuid,number\n{id},4157001234\n{id},4157001235\n");
    check(csv.as_bytes(), (1, 0, 1), &[(3, "lead_uuid", "already used")]);
}

#[test]
fn zones_come_from_the_column_then_the_number() {
    let csv = b"number,timezone\n4157001234,\n8089479200,America/New_York\n2125550000,\n+44 20 7219 3000,\n2127001234,America/New_York\n";
    let (_, db, _dir) = run_csv(csv);
    let rows = db.read_blocking(|c| Ok(db::leads::page(c, &LeadFilter::default(), 10, None)?.0)).unwrap();
    let zone = |phone: &str| {
        let r = rows.iter().find(|r| r.phone == phone).unwrap();
        (r.timezone.clone().unwrap_or_default(), r.timezone_source.clone())
    };
    assert_eq!(zone("+14157001234"), ("America/Los_Angeles".into(), "number".into()));
    // A Hawaii number marked New York keeps both zones: calls need both in window.
    assert_eq!(zone("+18089479200"), ("America/New_York&Pacific/Honolulu".into(), "column+number".into()));
    assert_eq!(zone("+12127001234"), ("America/New_York".into(), "column".into()));
    assert_eq!(zone("+442072193000"), ("Europe/London".into(), "number".into()));
}

#[test]
fn files_without_a_phone_column_or_header_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.db")).unwrap();
    let places = places();
    let ctx = Context { db: &db, region: phonenumber::country::Id::US, places: &places };
    let err = run(&ctx, "x", &b"name,email\nA,a@x\n"[..], &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("no phone column in the header (found: name, email)"), "{err}");
    assert!(matches!(run(&ctx, "x", &b""[..], &mut |_| {}), Err(ImportError::Empty)));
    assert!(matches!(run(&ctx, "x", &b"\xef\xbb\xbf"[..], &mut |_| {}), Err(ImportError::Empty)));
    let wide = (0..5_000).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
    let err = run(&ctx, "x", wide.as_bytes(), &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("c19, … 5000 columns in all); name one of: number, phone"), "{err}");
    let err = run(&ctx, "x", &b"PK\x03\x04\x14\x00\x06\x00"[..], &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("not CSV text (a ZIP archive, such as an Excel .xlsx workbook)"), "{err}");
}

#[test]
fn shared_sample_files_import() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/");
    let sample = std::fs::read(format!("{root}leads_sample.csv")).expect("shared/data/leads_sample.csv");
    let (s, _, _d) = run_csv(&sample);
    assert_eq!((s.imported, s.duplicates, s.rejected), (54, 2, 4));
    let crm = std::fs::read(format!("{root}leads_crm_export.csv")).expect("shared/data/leads_crm_export.csv");
    let (s, _, _d) = run_csv(&crm);
    assert_eq!((s.imported, s.duplicates, s.rejected), (30, 0, 0));
}

/// Without a zone column, the address state comes next: it narrows the number's
/// zones when it agrees with them, and is added to them when it does not (so a call
/// is never earlier than the number's own zone allows).
#[test]
fn the_state_column_narrows_or_adds_to_the_number_zones() {
    let csv = b"number,state,timezone\n\
                2087001234,ID,\n\
                2127001234,NY,\n\
                2127001235,FL,\n\
                +44 20 7219 3001,TX,\n\
                4157001236,,\n\
                4157001237,ZZ,\n\
                4157001238,CA,America/Los_Angeles\n";
    let (s, db, _dir) = run_csv(csv);
    assert_eq!(s.imported, 7, "{:?}", s.errors);
    let rows = db.read_blocking(|c| Ok(db::leads::page(c, &LeadFilter::default(), 10, None)?.0)).unwrap();
    let zone = |phone: &str| {
        let r = rows.iter().find(|r| r.phone == phone).unwrap();
        (r.timezone.clone().unwrap_or_default(), r.timezone_source.clone())
    };
    assert_eq!(zone("+12087001234"), ("America/Boise&America/Los_Angeles".into(), "state".into()));
    assert_eq!(zone("+12127001234"), ("America/New_York".into(), "state".into()));
    assert_eq!(zone("+12127001235"), ("America/New_York&America/Chicago".into(), "state+number".into()));
    assert_eq!(zone("+442072193001"), ("Europe/London&America/Chicago&America/Denver".into(), "state+number".into()));
    assert_eq!(zone("+14157001236"), ("America/Los_Angeles".into(), "number".into()));
    assert_eq!(zone("+14157001237"), ("America/Los_Angeles".into(), "number".into()), "unknown state: ignored");
    assert_eq!(zone("+14157001238"), ("America/Los_Angeles".into(), "column".into()), "the column comes first");
}

/// Consent columns are imported when present (several date forms), a bad or future
/// date refuses the row naming the field, and a re-import fills consent in.
#[test]
fn consent_is_imported_and_checked() {
    check(
        b"number,consent_date,opt_in_source\n\
          4157001234,2026-03-01T09:30:00-05:00,web form\n\
          4157001235,2026-03-01,\n\
          4157001236,03/15/2026,paper\n\
          4157001237,yesterday,\n\
          4157001238,2999-01-01,\n",
        (3, 0, 2),
        &[(5, "consent_at", "not a date"), (6, "consent_at", "future")],
    );
    let (_, db, _dir) = run_csv(b"number,consent_at,consent_source\n4157001234,2026-03-01T09:30:00-05:00,web form\n");
    let rows = db.read_blocking(|c| Ok(db::leads::page(c, &LeadFilter::default(), 10, None)?.0)).unwrap();
    assert_eq!(rows[0].consent_at, Some(crate::db::to_ms("2026-03-01T14:30:00Z".parse().unwrap())));
    assert_eq!(rows[0].consent_source, "web form");
    let json = serde_json::to_value(&rows[0]).unwrap();
    assert_eq!(json["consent_at"], "2026-03-01T14:30:00+00:00");
}
