//! Backups at the SQLite level: an online copy of a live database, the checks a copy
//! must pass before anyone relies on it, and the exclusive lock `dialer restore`
//! takes before replacing a database. File placement (temp files, renames, fsync)
//! is the caller's (`cli::backup`).
//!
//! Why the copy holds one read transaction: SQLite's backup API restarts from the
//! first page whenever another connection writes between two steps, so stepping a
//! busy dialer's database with pauses could restart for ever. A read transaction
//! held across the steps pins one WAL snapshot instead: the copy is that consistent
//! snapshot, and the writer is never blocked (WAL readers do not block the writer;
//! only checkpoints wait, so the WAL grows a little during the copy).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::db::migrations;

/// Pages copied per step (4 KiB each: 1 MiB), and the pause between steps, so a
/// large copy leaves the disk to the dialer's own writes in between.
pub const PAGES_PER_STEP: i32 = 256;
pub const STEP_PAUSE: Duration = Duration::from_millis(5);
const MAX_RESTARTS: u32 = 3;

/// What a database file holds, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `PRAGMA user_version`: the number of migrations applied.
    pub schema_version: usize,
    pub leads: i64,
    pub attempts: i64,
    /// Page count × page size, bytes.
    pub bytes: i64,
}

/// How the copy went: pages copied and steps taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub pages: i32,
    pub steps: u32,
    /// Times the copy started over (SQLite restarts it when the source changes under
    /// it); 0 expected, since the snapshot is pinned.
    pub restarts: u32,
}

/// Copies the database at `src` (which must exist; it is never created) into
/// `dest` (an empty or missing file) with SQLite's online backup API, `pages` per
/// step with `pause` between steps, from one consistent snapshot (see the module
/// doc). Safe while `dialer serve` writes. Errors: `src` missing or not a database,
/// `dest` not writable, a failing step.
pub fn copy_online(src: &Path, dest: &Path, pages: i32, pause: Duration) -> anyhow::Result<Copied> {
    // READ_WRITE without CREATE: a missing database is an error, not a new empty one.
    let mut source = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .with_context(|| format!("opening the database {}", src.display()))?;
    source.busy_timeout(Duration::from_secs(5))?;
    let mut target = Connection::open(dest).with_context(|| format!("creating the backup file {}", dest.display()))?;
    let snapshot = source.transaction()?;
    // The first read starts the read transaction: from here the snapshot is fixed.
    snapshot
        .query_row("SELECT COUNT(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0))
        .with_context(|| format!("{} is not a readable SQLite database", src.display()))?;
    let backup = Backup::new(&snapshot, &mut target)?;
    let mut copied = Copied { pages: 0, steps: 0, restarts: 0 };
    let mut last_remaining = i32::MAX;
    loop {
        let step = backup.step(pages.max(1)).context("copying database pages")?;
        copied.steps += 1;
        let progress = backup.progress();
        if progress.remaining > last_remaining {
            copied.restarts += 1;
            // Cannot happen with the snapshot pinned; never loop for ever if it does.
            if copied.restarts > MAX_RESTARTS {
                bail!("the database kept changing under the copy ({} restarts)", copied.restarts);
            }
        }
        last_remaining = progress.remaining;
        copied.pages = progress.pagecount;
        match step {
            StepResult::Done => break,
            // Busy/Locked: the destination is locked for a moment; retry after the pause.
            _ => std::thread::sleep(pause),
        }
    }
    drop(backup);
    snapshot.finish()?;
    // The copy carries the source's WAL flag; a backup is one self-contained file.
    rollback_mode(&target)?;
    target.close().map_err(|(_, e)| e).context("closing the backup file")?;
    Ok(copied)
}

/// Puts the database file at `path` in rollback-journal mode (checkpointing any WAL
/// beside it), so it is one self-contained file that a read-only open leaves alone.
/// For a copy being restored, before it is checked. Errors: not a database.
pub fn self_contained(path: &Path) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .with_context(|| format!("opening {}", path.display()))?;
    rollback_mode(&conn)?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(())
}

fn rollback_mode(conn: &Connection) -> anyhow::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    anyhow::ensure!(mode.eq_ignore_ascii_case("delete"), "could not leave {mode} journal mode");
    Ok(())
}

/// Checks that `path` is a dialer database this binary can use: SQLite, `PRAGMA
/// integrity_check` ok, schema version between 1 and this binary's, a `leads`
/// table. Opens it read-only; changes nothing. Errors say which check failed.
pub fn inspect(path: &Path) -> anyhow::Result<Summary> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", path.display()))?;
    let summary = summarise(&conn).with_context(|| format!("{} is not a usable dialer database", path.display()))?;
    if summary.schema_version > migrations::latest() {
        bail!(
            "{} has schema version {}, newer than this binary supports ({}); use a newer dialer",
            path.display(),
            summary.schema_version,
            migrations::latest()
        );
    }
    Ok(summary)
}

fn summarise(conn: &Connection) -> anyhow::Result<Summary> {
    // The first read fails with "file is not a database" for anything but SQLite.
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).context("reading the header")?;
    let mut problems = Vec::new();
    conn.pragma_query(None, "integrity_check", |row| {
        problems.push(row.get::<_, String>(0)?);
        Ok(())
    })
    .context("running PRAGMA integrity_check")?;
    if problems != ["ok"] {
        let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
        bail!("PRAGMA integrity_check failed: {}", shown.join("; "));
    }
    let has_leads: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'leads')",
        [],
        |r| r.get(0),
    )?;
    if version < 1 || !has_leads {
        bail!("it is SQLite but has no dialer schema (user_version {version})");
    }
    let count = |table: &str| conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0));
    let bytes: i64 =
        conn.query_row("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()", [], |r| r.get(0))?;
    Ok(Summary { schema_version: version as usize, leads: count("leads")?, attempts: count("attempts")?, bytes })
}

/// Brings the database file at `path` to this binary's schema (a restored backup
/// from an older version). Returns the number of migrations applied.
pub fn migrate(path: &Path) -> anyhow::Result<usize> {
    let mut conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .with_context(|| format!("opening {}", path.display()))?;
    let applied = migrations::apply(&mut conn)?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(applied)
}

/// An exclusive hold on a database file: while it lives, no other connection (in
/// this or another process) can open it for reading or writing, and none had it open
/// when it was taken. The database is left in rollback-journal mode with no `-wal`
/// (checkpointed first), so replacing the file cannot pair it with a stale WAL.
pub struct ExclusiveLock {
    _conn: Connection,
}

/// Takes [`ExclusiveLock`] on `path` without waiting. Errors: the database is open
/// elsewhere (`dialer serve`, a backup, the sqlite3 shell): every connection to a
/// WAL database holds a shared lock on the file for as long as it is open, so
/// SQLite's exclusive lock is refused. Reliable on local filesystems (POSIX locks),
/// not on network filesystems.
pub fn lock_exclusive(path: &Path) -> anyhow::Result<ExclusiveLock> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(Duration::ZERO)?;
    let in_use = || format!("the database {} is in use (is `dialer serve` running? stop it first)", path.display());
    // EXCLUSIVE locking mode keeps the lock after each transaction until close.
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE").with_context(in_use)?;
    // Leaving WAL checkpoints the WAL into the file and needs every other
    // connection gone; a database already in rollback mode just takes the lock.
    let mode = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get::<_, String>(0)).with_context(in_use)?;
    if !mode.eq_ignore_ascii_case("delete") {
        // SQLite reports the unchanged mode when it cannot switch.
        bail!(in_use());
    }
    conn.execute_batch("BEGIN EXCLUSIVE; SELECT COUNT(*) FROM sqlite_schema; COMMIT;").with_context(in_use)?;
    Ok(ExclusiveLock { _conn: conn })
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
