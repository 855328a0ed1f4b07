//! SIGTERM while a schedule runs against the simulated carrier in its own process:
//! the dialer exits 0 within the budget with no attempt half-written; restarted, it
//! accepts the webhooks of the calls that were still in progress, finishes the run,
//! and the carrier's ledger shows every lead dialled exactly once.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{SHUTDOWN_BUDGET, Serve};
use crate::support::process::{BIN, DialerToml, SimProcess};
use crate::support::{all_leads_final, authorized_client, count, open_db};

const LEADS: usize = 30;

/// Everyone answers and listens; each step of the call flow (the message, the wait
/// for a key, the message again, goodbye) takes about a second, so a call lasts
/// 4–6 s and the calls in progress at the shutdown are still going after the restart.
const SIMULATOR: &str = "[simulator]
answer_rate = 1.0
machine_rate = 0.0
busy_rate = 0.0
no_answer_rate = 0.0
failed_rate = 0.0
press_1_rate = 0.0
press_2_rate = 0.0
fax_rate = 0.0
ring_seconds = [0.2, 0.5]
talk_seconds = [0.8, 1.2]
";

fn dialer_toml(addr: SocketAddr, db: &Path, sim: &str) -> String {
    let t = DialerToml {
        dialing: "calls_per_second = 20.0\nmax_concurrent_calls = 15",
        rotation: "",
        provider: "",
        numbers: &["+12022370101", "+12022370102", "+12022370103"],
    };
    crate::support::process::dialer_toml(addr, db, sim, &t)
}

/// A loopback address for a dialer that must come back on the same port after a
/// restart. Picked below the ephemeral range (32768+), which port-0 binds of the
/// tests running beside this one draw from, so none of them can take it meanwhile.
fn fixed_addr() -> SocketAddr {
    use rand::Rng;
    loop {
        let port = rand::thread_rng().gen_range(20_000..32_000);
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return listener.local_addr().unwrap();
        }
    }
}

async fn healthy(http: &reqwest::Client, addr: SocketAddr, serve: &Serve) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("http://{addr}/healthz")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "never healthy; log:\n{}", serve.tail());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_db(db: &Path, timeout: Duration, what: &str, check: impl Fn(&rusqlite::Connection) -> bool) {
    let deadline = Instant::now() + timeout;
    while !check(&open_db(db)) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn ids(conn: &rusqlite::Connection, sql: &str) -> Vec<i64> {
    conn.prepare(sql).unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_schedule_exits_cleanly_and_the_restart_finishes_with_no_lead_dialled_twice() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::spawn(dir.path(), SIMULATOR);
    let addr = fixed_addr();
    let db = dir.path().join("dialer.db");
    let config = dir.path().join("dialer.toml");
    std::fs::write(&config, dialer_toml(addr, &db, &sim.base)).unwrap();
    let log = dir.path().join("dialer.log");
    let created = Command::new(BIN).arg("--config").arg(&config).args(["token", "create", "shutdown-test"]).output();
    let created = created.unwrap();
    assert!(created.status.success(), "token create: {}", String::from_utf8_lossy(&created.stderr));
    let http = authorized_client(String::from_utf8_lossy(&created.stdout).trim());
    let url = |path: &str| format!("http://{addr}{path}");

    let mut serve = Serve::start(&config, &log, None, None);
    healthy(&http, addr, &serve).await;
    let one_attempt = json!({"settings": {"max_attempts": 1}});
    let resp = http.patch(url("/api/campaigns/1")).json(&one_attempt).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let csv: String = (0..LEADS).map(|i| format!("+1415237{i:04},Lead {i}\n")).collect();
    let imported = http
        .post(url("/api/leads/import"))
        .header("content-type", "text/csv")
        .body(format!("number,name\n{csv}"))
        .send()
        .await
        .unwrap();
    assert_eq!(imported.json::<serde_json::Value>().await.unwrap()["imported"], LEADS);
    let schedule = json!({"select": {"status": "pending"}, "start_at": chrono::Utc::now().to_rfc3339(),
                          "parallel_calls": 10, "interval_seconds": 1});
    let resp = http.post(url("/api/schedule-bulk-calls")).json(&schedule).send().await.unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());

    wait_db(&db, Duration::from_secs(60), "calls in progress", |c| {
        count(c, "SELECT COUNT(*) FROM attempts WHERE provider_call_id IS NOT NULL AND ended_at IS NULL") >= 5
    })
    .await;
    let signal_ms = chrono::Utc::now().timestamp_millis();
    serve.terminate();
    let signalled = Instant::now();
    let status = tokio::task::block_in_place(|| serve.exit_within(SHUTDOWN_BUDGET + Duration::from_secs(5)));
    let took = signalled.elapsed();
    eprintln!("shutdown mid-schedule: {took:?}");
    assert!(status.success(), "{status}; log:\n{}", serve.tail());
    assert!(took < SHUTDOWN_BUDGET, "took {took:?}");

    let conn = open_db(&db);
    // Every attempt has its call id (the create-calls in flight were answered and
    // recorded) or an outcome: none is left for the reconciler to guess about.
    let half_written =
        count(&conn, "SELECT COUNT(*) FROM attempts WHERE provider_call_id IS NULL AND ended_at IS NULL");
    assert_eq!(half_written, 0, "attempts left without their call id");
    // Dialing stopped at the signal: at most the claim already under way followed it.
    let after_signal = count(&conn, &format!("SELECT COUNT(*) FROM attempts WHERE created_at > {signal_ms}"));
    assert!(after_signal <= 1, "{after_signal} calls started after SIGTERM");
    let in_progress = ids(&conn, "SELECT id FROM attempts WHERE ended_at IS NULL");
    assert!(!in_progress.is_empty(), "calls were in progress at the shutdown");
    assert!(!all_leads_final(&conn), "the run was not over");
    let before = count(&conn, "SELECT COUNT(*) FROM attempts");
    drop(conn);

    let restarted_ms = chrono::Utc::now().timestamp_millis();
    let mut serve = Serve::start(&config, &log, None, None);
    healthy(&http, addr, &serve).await;
    wait_db(&db, Duration::from_secs(90), "every lead reaches an outcome after the restart", all_leads_final).await;
    let conn = open_db(&db);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM attempts"), LEADS as i64, "{before} before the shutdown");
    assert_eq!(count(&conn, "SELECT COUNT(DISTINCT lead_id) FROM attempts"), LEADS as i64);
    let list = in_progress.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let heard_after = count(
        &conn,
        &format!(
            "SELECT COUNT(DISTINCT attempt_id) FROM call_events WHERE attempt_id IN ({list}) AND received_at >= {restarted_ms}"
        ),
    );
    eprintln!(
        "{} calls in progress at the shutdown; webhooks of {heard_after} accepted after the restart",
        in_progress.len()
    );
    assert!(heard_after >= 1, "no webhook of a call in progress was accepted after the restart");
    let unended = count(&conn, &format!("SELECT COUNT(*) FROM attempts WHERE id IN ({list}) AND ended_at IS NULL"));
    assert_eq!(unended, 0, "the calls in progress at the shutdown all ended");

    // The carrier's own record: one call per lead, none twice, none missing.
    let deadline = Instant::now() + Duration::from_secs(30);
    let calls = loop {
        let calls = sim.calls().await;
        if calls.iter().all(|c| !c["ended"].is_null()) {
            break calls;
        }
        assert!(Instant::now() < deadline, "the simulator's calls never all ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let dialled: BTreeSet<&str> = calls.iter().map(|c| c["to"].as_str().unwrap()).collect();
    assert_eq!(calls.len(), LEADS, "one call per lead in the ledger");
    assert_eq!(dialled.len(), LEADS, "no lead dialled twice");

    serve.terminate();
    let status = tokio::task::block_in_place(|| serve.exit_within(SHUTDOWN_BUDGET + Duration::from_secs(5)));
    assert!(status.success(), "{status}");
}
