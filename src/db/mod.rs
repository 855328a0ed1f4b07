//! The store: SQLite through rusqlite, the only module that touches it.
//!
//! One writer connection (every write is a `BEGIN IMMEDIATE` transaction on it, so
//! claims, cap reservations and attempt inserts are serialised) and a few reader
//! connections (WAL lets them read while the writer writes). Blocking work runs on
//! tokio's blocking pool; no connection is held across an `.await`.
//! SQL lives in one file per aggregate as plain functions taking a `&Tx` or `&Conn`.

pub mod attempts;
pub mod auth;
pub mod backup;
pub mod call_flow;
pub mod campaigns;
pub mod dnc;
pub mod history;
pub mod imports;
pub mod leads;
pub mod metrics;
pub mod migrations;
pub mod number_admin;
pub mod numbers;
pub mod pacing;
pub mod provider_numbers;
pub mod reconcile;
pub mod schedules;
pub mod test_calls;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

/// A write transaction on the single writer connection.
pub type Tx<'a> = rusqlite::Transaction<'a>;
/// A read-only connection.
pub type Conn = rusqlite::Connection;

const READERS: usize = 4;

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    /// Errors: unreadable file, a database newer than this binary, a failing migration.
    pub fn open(path: &Path) -> anyhow::Result<Db> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating database folder {}", dir.display()))?;
        }
        let mut writer = Connection::open(path).with_context(|| format!("opening database {}", path.display()))?;
        configure(&writer)?;
        migrations::apply(&mut writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            reader.busy_timeout(Duration::from_secs(5))?;
            readers.push(Mutex::new(reader));
        }
        Ok(Db { inner: Arc::new(Inner { writer: Mutex::new(writer), readers }) })
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer, on the blocking pool.
    /// The transaction commits when `f` returns `Ok` and rolls back otherwise.
    pub async fn write<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> anyhow::Result<T> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.write_blocking(f)).await.context("db writer task")?
    }

    /// `write` for callers already off the async runtime (CLI import, blocking tasks).
    pub fn write_blocking<T>(&self, f: impl FnOnce(&Tx<'_>) -> anyhow::Result<T>) -> anyhow::Result<T> {
        // A panic while holding the lock poisons it; the connection itself is still
        // consistent (SQLite rolled the transaction back), so keep using it.
        let mut conn = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs `f` on a reader connection, on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> anyhow::Result<T> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read_blocking(f)).await.context("db reader task")?
    }

    pub fn read_blocking<T>(&self, f: impl FnOnce(&Conn) -> anyhow::Result<T>) -> anyhow::Result<T> {
        for reader in &self.inner.readers {
            if let Ok(conn) = reader.try_lock() {
                return f(&conn);
            }
        }
        let conn = self.inner.readers[0].lock().unwrap_or_else(|e| e.into_inner());
        f(&conn)
    }

    /// Checks that the database answers a write (for `/healthz`).
    pub async fn ping_write(&self) -> anyhow::Result<()> {
        self.write(|tx| {
            tx.execute_batch("SELECT 1")?;
            Ok(())
        })
        .await
    }
}

fn configure(conn: &Connection) -> anyhow::Result<()> {
    // busy_timeout first so the pragmas below wait rather than fail on a locked file.
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a committed transaction survives power loss, not just a process crash;
    // acknowledged writes (a schedule, an attempt) must never be lost.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Milliseconds since the Unix epoch, UTC: the store's time unit.
pub fn to_ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`to_ms`]; out-of-range values clamp to the epoch.
pub fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod durability_tests {
    use super::Db;

    /// No write is acknowledged before it is durable: WAL with `synchronous=FULL`
    /// fsyncs the log at every commit, so a commit survives a power cut, not only a
    /// crashed process (SQLite docs, "PRAGMA synchronous").
    #[test]
    fn the_writer_commits_durably_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("d.db")).unwrap();
        let (sync, journal): (i64, String) = db
            .write_blocking(|tx| {
                Ok((
                    tx.pragma_query_value(None, "synchronous", |r| r.get(0))?,
                    tx.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                ))
            })
            .unwrap();
        assert_eq!((sync, journal.as_str()), (2, "wal"), "synchronous=FULL (2) and WAL");
    }
}
