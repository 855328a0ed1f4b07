//! The online copy under concurrent writes, the checks on a copy, the restore lock.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use rusqlite::Connection;

use super::*;
use crate::db::Db;

/// A dialer database with `rows` filler rows of 1 KiB (≈ rows / 4 pages) besides the schema.
fn database_with_filler(path: &Path, rows: i64) {
    drop(Db::open(path).unwrap());
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE filler (id INTEGER PRIMARY KEY, v BLOB NOT NULL)").unwrap();
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO filler (v) SELECT randomblob(1024) FROM n",
        [rows],
    )
    .unwrap();
}

fn filler_rows(path: &Path) -> (i64, i64) {
    let conn = Connection::open(path).unwrap();
    conn.query_row("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM filler", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
}

#[test]
fn a_copy_under_constant_writes_is_one_snapshot_and_never_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("dialer.db");
    database_with_filler(&live, 4_000);

    // Another connection commits a row after another while the copy runs, as the
    // dialer's writer would.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicI64::new(0));
    let writer = {
        let (live, stop, written) = (live.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let conn = Connection::open(&live).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            while !stop.load(Ordering::Relaxed) {
                conn.execute("INSERT INTO filler (v) VALUES (randomblob(1024))", []).unwrap();
                written.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while written.load(Ordering::Relaxed) < 50 {
        std::thread::yield_now();
    }
    let before = filler_rows(&live).0;
    let copy = dir.path().join("copy.db");
    let copied = copy_online(&live, &copy, 16, Duration::from_millis(1)).unwrap();
    let after = filler_rows(&live).0;
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    assert!(after > before, "the writer must have committed during the copy ({before} → {after})");
    assert!(copied.steps > 20, "small steps with pauses: {copied:?}");
    assert_eq!(copied.restarts, 0, "the pinned snapshot must not restart: {copied:?}");
    let summary = inspect(&copy).unwrap();
    assert_eq!(summary.schema_version, migrations::latest());
    // One snapshot: rows 1..=n with no gap, n between the counts seen around the copy.
    let (rows, max_id) = filler_rows(&copy);
    assert_eq!(rows, max_id, "a torn copy would miss rows");
    assert!((before..=after).contains(&rows), "{before} ≤ {rows} ≤ {after}");
}

#[test]
fn the_copy_never_creates_a_missing_source() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let err = copy_online(&missing, &dir.path().join("copy.db"), 16, Duration::ZERO).unwrap_err();
    assert!(format!("{err:#}").contains("nope.db"), "{err:#}");
    assert!(!missing.exists());
}

#[test]
fn inspect_refuses_what_is_not_a_usable_dialer_database() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |path: &Path| format!("{:#}", inspect(path).unwrap_err());

    let text = dir.path().join("leads.csv");
    std::fs::write(&text, "number,name\n+14152370101,Ann\n".repeat(200)).unwrap();
    assert!(refused(&text).contains("not a database"), "{}", refused(&text));

    let empty = dir.path().join("empty.db");
    Connection::open(&empty).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
    assert!(refused(&empty).contains("no dialer schema"), "{}", refused(&empty));

    let newer = dir.path().join("newer.db");
    drop(Db::open(&newer).unwrap());
    Connection::open(&newer).unwrap().pragma_update(None, "user_version", migrations::latest() + 1).unwrap();
    assert!(refused(&newer).contains("newer than this binary"), "{}", refused(&newer));

    // Garbage over the middle of the filler table's pages: integrity_check catches it.
    let corrupt = dir.path().join("corrupt.db");
    database_with_filler(&corrupt, 1_000);
    let mut bytes = std::fs::read(&corrupt).unwrap();
    assert!(bytes.len() > 200 * 4096, "the filler is in the main file (checkpointed at close)");
    let middle = bytes.len() / 2 / 4096 * 4096;
    bytes[middle..middle + 4096].fill(0x5a);
    std::fs::write(&corrupt, bytes).unwrap();
    let err = refused(&corrupt);
    assert!(err.contains("integrity_check") || err.contains("malformed"), "{err}");

    let good = dir.path().join("good.db");
    drop(Db::open(&good).unwrap());
    let summary = inspect(&good).unwrap();
    assert_eq!((summary.schema_version, summary.leads, summary.attempts), (migrations::latest(), 0, 0));
}

#[test]
fn the_restore_lock_is_refused_while_the_database_is_open_and_then_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dialer.db");
    let db = Db::open(&path).unwrap();
    let err = lock_exclusive(&path).err().expect("refused while a Db is open");
    assert!(format!("{err:#}").contains("in use"), "{err:#}");
    drop(db);

    let lock = lock_exclusive(&path).unwrap();
    assert!(!dir.path().join("dialer.db-wal").exists(), "the WAL is checkpointed and gone");
    let other = Connection::open(&path).unwrap();
    other.busy_timeout(Duration::ZERO).unwrap();
    assert!(other.query_row("SELECT COUNT(*) FROM leads", [], |r| r.get::<_, i64>(0)).is_err(), "held exclusively");
    drop(lock);
    assert_eq!(other.query_row("SELECT COUNT(*) FROM leads", [], |r| r.get::<_, i64>(0)).unwrap(), 0);
}
