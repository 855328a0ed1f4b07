//! Issue 6's crash-safety acceptance: `kill -9` at 20 random points of a 2,000-lead
//! run. Both sides are the real binary in their own processes: the simulated carrier
//! (`dialer simulator`), whose ledger records every call it creates and lives through
//! the dialer's deaths, and `dialer serve`, SIGKILLed and restarted on one database.
//!
//! The kill points come from a seeded RNG (the seed is printed; `CRASH_SEED=N` replays
//! the plan, though not the exact interleaving; `CRASH_KEEP=1` keeps the database and
//! logs): some while the leads are imported, some while schedules are created, the
//! rest at random numbers of calls placed, whatever is under way then (create-call
//! requests, some of them hanging as the carrier sits on 5 % of its replies; webhooks;
//! batches firing; the start-up reconciliation of the previous crash). The client is
//! a careful operator's script: a request that got no answer is sent again, and a
//! schedule is sent again only if the store shows it was not kept.
//!
//! After the last restart the run must complete, and the carrier's ledger must show
//! every lead's number dialled exactly once, each call held by the lead's attempt.

#[path = "crash/kills.rs"]
mod kills;
mod support;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kills::{DIALING, IMPORT, IMPORT_CHUNKS, Kill, Progress, SCHEDULE_CHUNKS, SCHEDULING};
use serde_json::{Value, json};
use support::process::{DialerProcess, DialerToml, SimProcess, answered, free_addr, log_tail, send};
use support::{all_leads_final, count, open_db};

pub const LEADS: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9s_during_a_2000_lead_run_dial_no_lead_twice_and_lose_none() {
    let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>);
    eprintln!("crash test: seed {seed} (CRASH_SEED={seed} replays this kill plan)");
    let plan = kills::plan(seed);
    let dir = tempfile::tempdir().unwrap();
    let (_dir, root) = match std::env::var_os("CRASH_KEEP") {
        Some(_) => (None, dir.keep()),
        None => {
            let root = dir.path().to_path_buf();
            (Some(dir), root)
        }
    };
    eprintln!("crash test: working in {}", root.display());
    let sim = SimProcess::spawn(&root, SIMULATOR_TOML);
    let addr = free_addr();
    let db_path = root.join("dialer.db");
    let mut dialer = DialerProcess::new(&root, &dialer_toml(addr, &db_path, &sim.base), addr);
    assert!(dialer.run(&["migrate"]).0, "migrate failed: {}", log_tail(&dialer.log, 2000));
    let token = dialer.create_token("crash-test");
    assert!(token.is_some(), "dialer token create failed: {}", log_tail(&dialer.log, 2000));
    dialer.start();
    dialer.healthy(Duration::from_secs(30)).await;

    let started = Instant::now();
    let progress = Arc::new(Progress::default());
    let workload = tokio::spawn(workload(dialer.http.clone(), dialer.base.clone(), db_path.clone(), progress.clone()));
    let mut kills = Vec::new();
    for (index, point) in plan.iter().enumerate() {
        kills::wait_for(point, &progress, &db_path, &workload).await;
        tokio::time::sleep(point.delay).await;
        if let Err(e) = dialer.check_running() {
            panic!("{e} before kill {index}; log:\n{}", log_tail(&dialer.log, 4000));
        }
        let (seen, uptime) = (progress.seen(), dialer.uptime());
        dialer.kill();
        kills.push(Kill::read(index, uptime, point, seen, &db_path, &sim).await);
        dialer.start();
    }
    dialer.healthy(Duration::from_secs(30)).await;
    tokio::time::timeout(Duration::from_secs(60), workload)
        .await
        .expect("the import and the schedules went through after the last restart")
        .expect("the operator's script");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !finished(&open_db(&db_path)) {
        assert!(Instant::now() < deadline, "the run never completed after the last restart: {}", diagnose(&db_path));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let (calls, faults) = loop {
        let ledger = sim.ledger().await;
        let calls = ledger["calls"].as_array().cloned().unwrap_or_default();
        if calls.iter().all(|c| !c["ended"].is_null()) {
            break (calls, ledger["faults"].clone());
        }
        assert!(Instant::now() < deadline, "the carrier's calls never all ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let wall = started.elapsed();
    dialer.check_running().expect("the last dialer ran the job to its end");

    let db = open_db(&db_path);
    report(&db, &kills, &progress, wall, dialer.starts);
    eprintln!("  the carrier's faults: {faults}");
    assert!(faults["timeout_after_create"].as_u64() > Some(0), "no create-call reply was held: {faults}");
    judge(&db, &calls);
    assert_eq!(kills.len(), kills::KILLS_IN_IMPORT + kills::KILLS_IN_SCHEDULING + kills::KILLS_WHILE_DIALING);
    // The kills landed while work was under way, not in quiet moments.
    assert!(kills.iter().any(|k| k.phase == "import"), "no kill landed during the import");
    let busy = kills.iter().filter(|k| k.live_calls > 0).count();
    assert!(busy >= kills::KILLS_WHILE_DIALING / 2, "only {busy} kills landed while the carrier had calls live");
}

/// Every lead has an outcome and no attempt holds a slot.
fn finished(db: &rusqlite::Connection) -> bool {
    count(db, "SELECT COUNT(*) FROM leads") == LEADS as i64
        && all_leads_final(db)
        && count(db, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL") == 0
}

/// The carrier's ledger against the store: each lead's number dialled exactly once,
/// each attempt holding that call and ending as the carrier says the call ended.
fn judge(db: &rusqlite::Connection, calls: &[Value]) {
    let mut per_number: HashMap<&str, Vec<&Value>> = HashMap::new();
    for call in calls {
        per_number.entry(call["to"].as_str().unwrap()).or_default().push(call);
    }
    let twice: Vec<_> = per_number.iter().filter(|(_, c)| c.len() > 1).map(|(to, c)| (*to, c.len())).collect();
    assert!(twice.is_empty(), "dialled more than once by the carrier's ledger: {twice:?}");
    let phones: HashSet<String> = texts(db, "SELECT phone FROM leads").into_iter().map(|mut r| r.remove(0)).collect();
    assert_eq!(phones.len(), LEADS, "every row of the CSV is a lead");
    let dialled: HashSet<String> = per_number.keys().map(|n| n.to_string()).collect();
    let lost: Vec<_> = phones.difference(&dialled).take(10).collect();
    assert!(lost.is_empty(), "leads the carrier never saw a call for: {lost:?}");
    assert_eq!(calls.len(), LEADS, "the carrier created exactly one call per lead");

    assert_eq!(count(db, "SELECT COUNT(*) FROM attempts"), LEADS as i64, "one attempt per lead");
    assert_eq!(count(db, "SELECT COUNT(DISTINCT lead_id) FROM attempts"), LEADS as i64);
    assert_eq!(count(db, "SELECT COUNT(*) FROM leads WHERE attempts <> 1"), 0, "each lead counts one attempt");
    assert_eq!(count(db, "SELECT COUNT(*) FROM attempts WHERE status = 'unknown'"), 0, "no outcome left unknown");
    for row in texts(db, "SELECT to_number, COALESCE(provider_call_id, ''), status FROM attempts") {
        let [to, call_id, status] = &row[..] else { unreachable!() };
        let call = per_number.get(to.as_str()).unwrap_or_else(|| panic!("{to} has an attempt but no call"))[0];
        assert_eq!(call["call_id"].as_str(), Some(call_id.as_str()), "{to}: the attempt holds the carrier's call");
        let ended = call["ended"].as_str().unwrap();
        let expected = dialer::provider::twilio::map_status(ended, call["answered_by"].as_str())
            .unwrap_or_else(|| panic!("{to}: unmapped end {ended:?}"));
        assert_eq!(status, expected.as_str(), "{to}: our outcome differs from the carrier's: {call}");
    }
    let mismatched = "SELECT COUNT(*) FROM attempts a JOIN leads l ON l.id = a.lead_id WHERE l.status <> a.status";
    assert_eq!(count(db, mismatched), 0, "each lead shows its attempt's outcome");
}

/// Prints the figures: wall time, each kill, and what recovery did after them.
fn report(db: &rusqlite::Connection, kills: &[Kill], progress: &Progress, wall: Duration, starts: u32) {
    eprintln!("crash test: {LEADS} leads, {} kill -9s, {starts} starts, {:.1} s", kills.len(), wall.as_secs_f64());
    for kill in kills {
        eprintln!("  {kill}");
    }
    let orphans: BTreeSet<(i64, i64, i64)> = kills.iter().flat_map(|k| k.orphans.iter().copied()).collect();
    let adopted = orphans
        .iter()
        .filter(|(id, lead, created)| {
            let sql = format!(
                "SELECT COUNT(*) FROM attempts WHERE id = {id} AND lead_id = {lead} AND created_at = {created} \
                 AND provider_call_id IS NOT NULL"
            );
            count(db, &sql) == 1
        })
        .count();
    let unknown = count(db, "SELECT COUNT(*) FROM attempts WHERE error LIKE 'outcome unknown%'");
    let fetched = count(db, "SELECT COUNT(*) FROM call_events WHERE sequence LIKE 'reconcile:%'");
    eprintln!(
        "  recovery: {} create-call requests cut off by a kill ({adopted} adopted with the carrier's call, {} undone \
         and dialled again); {unknown} attempts `unknown` after a lost reply, all adopted; {fetched} outcomes \
         fetched from the carrier (webhooks missed while down); {} operator requests cut off and sent again, {} \
         schedules kept though their reply was cut off",
        orphans.len(),
        orphans.len() - adopted,
        progress.cut_off.load(Ordering::SeqCst),
        progress.stored_unanswered.load(Ordering::SeqCst),
    );
}

/// The operator's script: one attempt per lead in the default campaign, the CSV in
/// parts, then the leads in schedules (batches of 25 two seconds apart). A request with
/// no answer is sent again; an import twice is harmless (numbers already stored are
/// duplicates), a schedule twice is not, so the store decides.
async fn workload(http: reqwest::Client, base: String, db_path: PathBuf, progress: Arc<Progress>) {
    let patience = Duration::from_secs(60);
    let patch = json!({"settings": {"max_attempts": 1}});
    let url = format!("{base}/api/campaigns/1");
    let (status, body) = answered("campaign settings", patience, || http.patch(&url).json(&patch)).await;
    assert_eq!(status, 200, "{body}");

    progress.phase.store(IMPORT, Ordering::SeqCst);
    let numbers: Vec<String> = (0..LEADS).map(|i| format!("+1415237{i:04}")).collect();
    let url = format!("{base}/api/leads/import");
    for (n, part) in numbers.chunks(LEADS / IMPORT_CHUNKS).enumerate() {
        let csv: String = part.iter().map(|number| format!("{number},Lead {number}\n")).collect();
        let csv = format!("number,name\n{csv}");
        progress.import.store(n + 1, Ordering::SeqCst);
        loop {
            progress.in_request.store(true, Ordering::SeqCst);
            let sent = send(http.post(&url).header("content-type", "text/csv").body(csv.clone())).await;
            progress.in_request.store(false, Ordering::SeqCst);
            match sent {
                Ok((200, _)) => break,
                Ok((status, body)) => panic!("import part {n}: {status} {body}"),
                Err(_) => cut_off(&progress).await,
            }
        }
    }
    let ids: Vec<i64> = texts(&open_db(&db_path), "SELECT id FROM leads ORDER BY id")
        .into_iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    assert_eq!(ids.len(), LEADS, "every row of the CSV is a lead");

    progress.phase.store(SCHEDULING, Ordering::SeqCst);
    let url = format!("{base}/api/schedule-bulk-calls");
    for (n, part) in ids.chunks(LEADS / SCHEDULE_CHUNKS).enumerate() {
        progress.schedule.store(n + 1, Ordering::SeqCst);
        let list = part.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let pending = format!("SELECT COUNT(*) FROM leads WHERE status = 'pending' AND id IN ({list})");
        let mut was_cut_off = false;
        loop {
            // A schedule is stored whole or not at all (one transaction).
            match count(&open_db(&db_path), &pending) {
                0 => {
                    if was_cut_off {
                        progress.stored_unanswered.fetch_add(1, Ordering::SeqCst);
                    }
                    break;
                }
                left => assert_eq!(left, part.len() as i64, "schedule {n} was stored in part"),
            }
            let start = chrono::Utc::now() + chrono::Duration::seconds(1);
            // 8 schedules × 25 leads every 2 s release 100 leads a second, the dialer's
            // pace: batches keep firing through most of the run, and kills land between.
            let body = json!({"lead_ids": part, "start_at": start.to_rfc3339(), "parallel_calls": 25,
                              "interval_seconds": 2});
            progress.in_request.store(true, Ordering::SeqCst);
            let sent = send(http.post(&url).json(&body)).await;
            progress.in_request.store(false, Ordering::SeqCst);
            match sent {
                Ok((201, _)) => break,
                Ok((status, body)) => panic!("schedule {n}: {status} {body}"),
                Err(_) => {
                    was_cut_off = true;
                    cut_off(&progress).await;
                }
            }
        }
    }
    progress.phase.store(DIALING, Ordering::SeqCst);
}

/// A request got no answer: counted, and a short pause before it is sent again.
async fn cut_off(progress: &Progress) {
    progress.cut_off.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Where the store stands, for failure messages.
pub fn diagnose(db_path: &Path) -> String {
    let db = open_db(db_path);
    let group = |sql: &str| texts(&db, sql).into_iter().map(|r| r.join(" ")).collect::<Vec<_>>().join(", ");
    format!(
        "leads: {}; attempts: {}; open attempts: {}; batches: {}",
        group("SELECT status, COUNT(*) FROM leads GROUP BY 1"),
        group("SELECT status, COUNT(*) FROM attempts GROUP BY 1"),
        group(
            "SELECT status || CASE WHEN provider_call_id IS NULL THEN ' (no call id)' ELSE '' END, COUNT(*) \
             FROM attempts WHERE ended_at IS NULL GROUP BY 1"
        ),
        group("SELECT status, COUNT(*) FROM batches GROUP BY 1"),
    )
}

/// Every row of `sql`, each column as text.
fn texts(db: &rusqlite::Connection, sql: &str) -> Vec<Vec<String>> {
    let mut stmt = db.prepare(sql).unwrap();
    let columns = stmt.column_count();
    let text = |r: &rusqlite::Row, i| -> rusqlite::Result<String> {
        Ok(match r.get_ref(i)? {
            rusqlite::types::ValueRef::Integer(n) => n.to_string(),
            other => other.as_str().unwrap_or_default().to_string(),
        })
    };
    let rows = stmt.query_map([], |r| (0..columns).map(|i| text(r, i)).collect::<rusqlite::Result<Vec<_>>>());
    rows.unwrap().map(Result::unwrap).collect()
}

/// The carrier: quick calls (a ring and each spoken part 0.05–0.3 s), default
/// outcomes, and 5 % of create-call replies held 1.5 s after the call was created
/// (longer than the dialer waits): attempts `unknown`, then adopted, and orphans
/// whose call exists when a kill lands during the hold.
const SIMULATOR_TOML: &str = "[simulator]
ring_seconds = [0.05, 0.3]
talk_seconds = [0.05, 0.3]

[simulator.faults]
timeout_after_create = 0.05
hang_seconds = 1.5
";

/// The dialer, time-scaled: 100 create-call requests a second, 60 calls at once, all
/// day, a reply awaited 1 s, reconciliation a second after a lost reply or a crash.
fn dialer_toml(addr: std::net::SocketAddr, db: &Path, sim: &str) -> String {
    let t = DialerToml {
        dialing: "calls_per_second = 100.0\nmax_concurrent_calls = 60\nmax_call_seconds = 30",
        // Calls of a fraction of a second look like "hung up at once": health would
        // score every number at risk and halve its cap. Health has its own tests.
        rotation: "health_min_calls = 1000000",
        provider: "request_timeout_seconds = 1.0",
        numbers: &dialer::config::DEMO_NUMBERS,
    };
    support::process::dialer_toml(addr, db, sim, &t)
}
