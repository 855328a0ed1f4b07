//! `dialer backup` and `dialer restore` through the real binary: a backup taken while
//! a 2,000-lead schedule runs against the simulated carrier is a sound SQLite file,
//! and a restore of it into a fresh configuration serves the same leads. Plus what
//! restore refuses.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::{count, leads_csv, spawn};

const BIN: &str = env!("CARGO_BIN_EXE_dialer");
const LEADS: usize = 2_000;

/// `n` (≤ 20,000) distinct valid numbers in two areas (415 and 202), as a CSV.
fn many_leads_csv(n: usize) -> String {
    let mut csv = String::from("lead_uuid,number,whatsapp_number,name,email,partner,call_status\n");
    for i in 0..n {
        let area = if i % 2 == 0 { 415 } else { 202 };
        csv.push_str(&format!(",+1{area}237{:04},,Lead {i},lead{i}@example.com,Acme,pending\n", i / 2));
    }
    csv
}

/// A configuration file naming only the database (all backup and restore read).
fn config_file(dir: &Path, db: &Path) -> std::path::PathBuf {
    let path = dir.join("dialer.toml");
    std::fs::write(&path, format!("[database]\npath = {:?}\n", db.to_str().unwrap())).unwrap();
    path
}

/// Runs `dialer --config CONFIG ARGS…`; returns (success, stdout, stderr).
fn dialer(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).arg("--config").arg(config).args(args).output().expect("run dialer");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (id, uuid, phone, name, email, status) of every lead, by id.
type Leads = BTreeMap<i64, (String, String, String, String, String)>;

fn leads_in(conn: &rusqlite::Connection) -> Leads {
    let mut stmt = conn.prepare("SELECT id, uuid, phone, name, email, status FROM leads").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn leads_served(app: &support::TestApp) -> Leads {
    let mut leads = Leads::new();
    let mut cursor: Option<i64> = None;
    loop {
        let path = match cursor {
            Some(c) => format!("/api/leads?limit=500&cursor={c}"),
            None => "/api/leads?limit=500".to_string(),
        };
        let page = app.get_json(&path).await;
        for l in page["leads"].as_array().unwrap() {
            let s = |k: &str| l[k].as_str().unwrap_or_default().to_string();
            leads.insert(l["id"].as_i64().unwrap(), (s("uuid"), s("phone"), s("name"), s("email"), s("status")));
        }
        match page["next_cursor"].as_i64() {
            Some(next) => cursor = Some(next),
            None => return leads,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_during_a_running_schedule_is_sound_and_restores_the_same_leads() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    // Room for every call today: the run must still be going when the backup is taken.
    for n in config.numbers.as_mut().unwrap() {
        n.max_daily_calls = 1_000;
    }
    let app = spawn(config);
    app.ready().await;
    assert_eq!(app.import_csv(&many_leads_csv(LEADS)).await["imported"], LEADS);
    let body = json!({"select": {"status": "pending"}, "start_at": chrono::Utc::now().to_rfc3339(),
                      "parallel_calls": 50, "interval_seconds": 1});
    let (status, created) = app.post_json("/api/schedule-bulk-calls", body).await;
    assert_eq!(status, 201, "{created}");
    app.wait_for(Duration::from_secs(60), "calls under way", |c| count(c, "SELECT COUNT(*) FROM attempts") >= 30).await;

    let live_config = config_file(dir.path(), &app.db_path);
    let file = dir.path().join("backups/dialer-backup.db");
    let started = std::time::Instant::now();
    let (ok, stdout, stderr) = dialer(&live_config, &["backup", file.to_str().unwrap()]);
    let took = started.elapsed();
    assert!(ok, "backup failed: {stdout}{stderr}");
    assert!(stdout.contains("integrity ok") && stdout.contains(&format!("{LEADS} leads")), "{stdout}");
    eprintln!("backup of a running schedule: {took:?}: {stdout}");
    // Nothing but the backup itself is left in its folder (the temp file was renamed).
    let names: Vec<_> =
        std::fs::read_dir(dir.path().join("backups")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["dialer-backup.db"]);

    // The backup is a self-contained SQLite file (no -wal) that passes integrity_check.
    let backup = rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let check: String = backup.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let attempts_in_backup = count(&backup, "SELECT COUNT(*) FROM attempts");
    let saved = leads_in(&backup);
    drop(backup);
    assert_eq!(saved.len(), LEADS);
    // Taken mid-run: some calls made, not all, and the run went on after it.
    assert!((30..LEADS as i64).contains(&attempts_in_backup), "{attempts_in_backup} attempts in the backup");
    app.wait_for(Duration::from_secs(60), "the run goes on after the backup", |c| {
        count(c, "SELECT COUNT(*) FROM attempts") > attempts_in_backup
    })
    .await;
    app.stop();

    // Restore into a new configuration, then serve it.
    let fresh = tempfile::tempdir().unwrap();
    let restored_config = support::config(fresh.path());
    let restored_file = config_file(fresh.path(), &restored_config.database.path);
    let (ok, stdout, stderr) = dialer(&restored_file, &["restore", file.to_str().unwrap()]);
    assert!(ok, "restore failed: {stdout}{stderr}");
    assert!(stdout.contains("restored") && stdout.contains(&format!("{LEADS} leads")), "{stdout}");
    let restored = spawn(restored_config);
    restored.healthy().await;
    let served = leads_served(&restored).await;
    assert_eq!(served.len(), LEADS);
    // The same leads; a status may have moved on since (the restored schedule resumes),
    // but one that was final in the backup is still the same.
    for (id, (uuid, phone, name, email, status)) in &saved {
        let (u, p, n, e, s) = served.get(id).unwrap_or_else(|| panic!("lead {id} missing after the restore"));
        assert_eq!((u, p, n, e), (uuid, phone, name, email), "lead {id}");
        if !["pending", "scheduled", "dialing", "ringing", "in_progress"].contains(&status.as_str()) {
            assert_eq!(s, status, "lead {id} had an outcome in the backup");
        }
    }
    restored.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_refuses_a_live_database_without_force_in_use_or_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = support::config(dir.path());
    let app = spawn(config);
    app.ready().await;
    app.import_csv(&leads_csv(20)).await;
    let live_config = config_file(dir.path(), &app.db_path);
    let file = dir.path().join("copy.db");
    let (ok, out, err) = dialer(&live_config, &["backup", file.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let (ok, _, err) = dialer(&live_config, &["backup", app.db_path.to_str().unwrap()]);
    assert!(!ok && err.contains("live database"), "{err}");

    // An existing database needs --force; with it, a running server still blocks it.
    let (ok, _, err) = dialer(&live_config, &["restore", file.to_str().unwrap()]);
    assert!(!ok && err.contains("--force"), "{err}");
    let (ok, _, err) = dialer(&live_config, &["restore", file.to_str().unwrap(), "--force"]);
    assert!(!ok && err.contains("in use"), "{err}");
    assert_eq!(app.get_json("/api/leads?limit=1").await["total"], 20, "the live database is untouched");

    // Files that are not a dialer backup.
    let fresh = tempfile::tempdir().unwrap();
    let target = fresh.path().join("dialer.db");
    let fresh_config = config_file(fresh.path(), &target);
    let csv = fresh.path().join("leads.csv");
    std::fs::write(&csv, leads_csv(50)).unwrap();
    let (ok, _, err) = dialer(&fresh_config, &["restore", csv.to_str().unwrap()]);
    assert!(!ok && err.contains("not a database"), "{err}");
    let (ok, _, err) = dialer(&fresh_config, &["restore", app.db_path.to_str().unwrap()]);
    assert!(!ok && err.contains("-wal"), "a live database file is not a backup: {err}");
    assert!(!target.exists(), "nothing was written");
    let leftovers: Vec<_> = std::fs::read_dir(fresh.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "only the config and the CSV: {leftovers:?}");

    // Once the server is stopped, --force replaces the database; stale WAL files of the
    // old one are not paired with the new file.
    app.stop();
    let (ok, out, err) = dialer(&live_config, &["restore", file.to_str().unwrap(), "--force"]);
    assert!(ok, "{out}{err}");
    let db_path = dir.path().join("dialer.db");
    for suffix in ["-wal", "-shm"] {
        let mut name = db_path.clone().into_os_string();
        name.push(suffix);
        assert!(!Path::new(&name).exists(), "{suffix} left beside the restored database");
    }
    let conn = support::open_db(&db_path);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM leads"), 20);
}
