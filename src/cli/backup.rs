//! `dialer backup FILE` and `dialer restore FILE [--force]`: the files around a
//! backup (temp files beside the destination, atomic renames, fsync, ownership);
//! the SQLite side (online copy, checks, the exclusive lock) is `db::backup`.
//!
//! Both write a temp file in the destination's folder and check it before renaming
//! it into place, so a failed or interrupted run never leaves a half-written file
//! under the final name, and never replaces a good file with a bad one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::db::backup::{self as sqlite, Summary};

/// Writes a consistent copy of the configured database to `file` (replacing it if it
/// exists), checked with `PRAGMA integrity_check` and its schema version, then prints
/// what it wrote. Safe while `dialer serve` runs (see `db::backup`). Errors: no
/// database, `file` is the database itself or a folder, a failing copy or check.
pub fn backup(config: &Config, file: &Path) -> anyhow::Result<()> {
    let live = &config.database.path;
    if !live.is_file() {
        bail!("no database at {} (database.path)", live.display());
    }
    if file.is_dir() {
        bail!("{} is a folder; give the backup a file name", file.display());
    }
    if same_file(live, file) {
        bail!("{} is the live database; give the backup another name", file.display());
    }
    let started = Instant::now();
    let dir = folder_of(file);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Created 0600: a backup holds leads' personal data.
    let temp = tempfile::Builder::new()
        .prefix(".dialer-backup-")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    let copied = sqlite::copy_online(live, temp.path(), sqlite::PAGES_PER_STEP, sqlite::STEP_PAUSE)?;
    temp.as_file().sync_all()?;
    let summary = sqlite::inspect(temp.path()).context("checking the copy (nothing was written)")?;
    temp.persist(file).map_err(|e| e.error).with_context(|| format!("renaming the copy to {}", file.display()))?;
    sync_dir(&dir)?;
    println!(
        "backup written to {}: {}; {} pages in {} steps, {:.1} s",
        file.display(),
        describe(&summary),
        copied.pages,
        copied.steps,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Replaces (or creates) the configured database with the backup `file`: checks it
/// (SQLite, integrity, schema version not newer than this binary), refuses an
/// existing database unless `force`, refuses while the database is open anywhere
/// (`db::backup::lock_exclusive`), migrates the copy to this binary's schema and
/// renames it into place, removing the old database's `-wal`, `-shm` and `-journal`.
/// The new file takes the owner of the file it replaces (or of its folder), so a
/// restore run as root leaves a file the service's user can write.
pub fn restore(config: &Config, file: &Path, force: bool) -> anyhow::Result<()> {
    let target = &config.database.path;
    if !file.is_file() {
        bail!("{} is not a file", file.display());
    }
    if sidecar(file, "-wal").exists() {
        bail!(
            "{} has a -wal file beside it: it is a live database, not a backup (its latest writes are in the \
             -wal); take one with `dialer backup`",
            file.display()
        );
    }
    if same_file(file, target) {
        bail!("{} is the configured database itself", file.display());
    }
    let started = Instant::now();
    let dir = folder_of(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // The checks read the copy, so what was checked is exactly what is put in place,
    // and the backup file itself is never opened for writing.
    let mut temp = tempfile::Builder::new()
        .prefix(".dialer-restore-")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    std::io::copy(&mut File::open(file)?, temp.as_file_mut()).with_context(|| format!("copying {}", file.display()))?;
    temp.as_file().sync_all()?;
    let summary = sqlite::self_contained(temp.path())
        .and_then(|()| sqlite::inspect(temp.path()))
        .with_context(|| format!("checking {}", file.display()))?;

    let exists = target.exists();
    if exists && !force {
        bail!(
            "{} already exists; pass --force to replace it (take a backup of it first: dialer backup FILE)",
            target.display()
        );
    }
    // Held until the rename is done: nothing can open the old database meanwhile.
    let lock = if exists { Some(sqlite::lock_exclusive(target)?) } else { None };
    let applied = sqlite::migrate(temp.path()).context("migrating the restored copy")?;
    copy_owner(if exists { target } else { &dir }, temp.path());
    // The old database's WAL, shared memory or journal beside the new file would be
    // replayed into it: remove them before it takes the name.
    for suffix in ["-wal", "-shm", "-journal"] {
        let stale = sidecar(target, suffix);
        if stale.exists() {
            std::fs::remove_file(&stale).with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    let placed = if exists { temp.persist(target) } else { temp.persist_noclobber(target) };
    placed.map_err(|e| e.error).with_context(|| format!("renaming the restored copy to {}", target.display()))?;
    sync_dir(&dir)?;
    drop(lock);
    let migrated = match applied {
        0 => String::new(),
        n => format!(", {n} migration(s) applied"),
    };
    println!(
        "restored {} from {}: {}{migrated}, {:.1} s",
        target.display(),
        file.display(),
        describe(&summary),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn describe(s: &Summary) -> String {
    format!(
        "{:.1} MB, schema version {}, integrity ok, {} leads, {} attempts",
        s.bytes as f64 / 1_000_000.0,
        s.schema_version,
        s.leads,
        s.attempts
    )
}

/// The folder a file is in ("." for a bare name).
fn folder_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `path` + suffix, SQLite's naming for `-wal`, `-shm` and `-journal`.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Makes the rename durable: without it a power cut can bring back the old name.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))
}

/// Gives `file` the owner and group of `like` (the replaced database, or its folder
/// unless that is a shared sticky folder such as /tmp). Only root may give a file
/// away: anyone else gets a warning when the owners differ.
fn copy_owner(like: &Path, file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (Ok(want), Ok(have)) = (std::fs::metadata(like), std::fs::metadata(file)) else { return };
        let shared_folder = want.is_dir() && want.mode() & 0o1000 != 0;
        if shared_folder || (want.uid(), want.gid()) == (have.uid(), have.gid()) {
            return;
        }
        if let Err(e) = std::os::unix::fs::chown(file, Some(want.uid()), Some(want.gid())) {
            eprintln!(
                "warning: could not give {} the owner of {} ({e}); the service may not be able to write it",
                file.display(),
                like.display()
            );
        }
    }
}
