//! The crash test's kill points: drawn from a seed, waited for, and what each kill
//! interrupted (read from the store and the carrier right after it).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::support::process::SimProcess;
use crate::support::{count, open_db};
use crate::{LEADS, diagnose};

pub const KILLS_IN_IMPORT: usize = 3;
pub const KILLS_IN_SCHEDULING: usize = 2;
pub const KILLS_WHILE_DIALING: usize = 15;
/// The CSV goes up in this many requests (100 rows each); the leads are scheduled in
/// this many schedules (250 leads each).
pub const IMPORT_CHUNKS: usize = 20;
pub const SCHEDULE_CHUNKS: usize = 8;

/// Where the operator's script is (`Progress::phase`).
pub const IMPORT: usize = 1;
pub const SCHEDULING: usize = 2;
pub const DIALING: usize = 3;
pub const PHASES: [&str; 4] = ["setup", "import", "scheduling", "dialing"];

/// The operator's script's progress, shared with the killer.
#[derive(Default)]
pub struct Progress {
    pub phase: AtomicUsize,
    /// 1 + the index of the import request being sent.
    pub import: AtomicUsize,
    /// 1 + the index of the schedule being created.
    pub schedule: AtomicUsize,
    /// An import or schedule request is on the wire.
    pub in_request: AtomicBool,
    /// Requests a kill cut off, sent again.
    pub cut_off: AtomicUsize,
    /// Schedules stored whose reply a kill cut off (found in the store, not re-sent).
    pub stored_unanswered: AtomicUsize,
}

impl Progress {
    /// The phase's name, and whether a request is on the wire.
    pub fn seen(&self) -> (&'static str, bool) {
        (PHASES[self.phase.load(Ordering::SeqCst)], self.in_request.load(Ordering::SeqCst))
    }
}

/// One kill point: a moment of the run, then a random extra delay.
#[derive(Debug, Clone)]
pub struct Point {
    pub at: At,
    pub delay: Duration,
}

#[derive(Debug, Clone, Copy)]
pub enum At {
    /// Once import request `n` (0-based) is sent.
    Import(usize),
    /// Once schedule `n` is sent.
    Schedule(usize),
    /// Once this many attempts exist.
    Placed(i64),
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Import(n) => write!(f, "csv part {n}"),
            At::Schedule(n) => write!(f, "schedule {n}"),
            At::Placed(n) => write!(f, "call {n}"),
        }
    }
}

/// The kill points of `seed`, in the order they are waited for.
pub fn plan(seed: u64) -> Vec<Point> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut picks = |n: usize, k: usize| {
        let mut v = rand::seq::index::sample(&mut rng, n, k).into_vec();
        v.sort();
        v
    };
    let import = picks(IMPORT_CHUNKS, KILLS_IN_IMPORT);
    let schedule = picks(SCHEDULE_CHUNKS, KILLS_IN_SCHEDULING);
    let mut placed: Vec<i64> = (0..KILLS_WHILE_DIALING).map(|_| rng.gen_range(10..LEADS as i64 - 50)).collect();
    placed.sort();
    // An import or schedule request takes a few milliseconds here: a delay this short
    // lands inside it or right after it, before the next one.
    let mut points: Vec<Point> = Vec::new();
    for n in import {
        points.push(Point { at: At::Import(n), delay: Duration::from_millis(rng.gen_range(0..12)) });
    }
    for n in schedule {
        points.push(Point { at: At::Schedule(n), delay: Duration::from_millis(rng.gen_range(0..8)) });
    }
    for n in placed {
        points.push(Point { at: At::Placed(n), delay: Duration::from_millis(rng.gen_range(0..200)) });
    }
    points
}

/// Waits until the run reaches `point` (or went past it).
pub async fn wait_for(point: &Point, progress: &Progress, db_path: &Path, workload: &tokio::task::JoinHandle<()>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let phase = || progress.phase.load(Ordering::SeqCst);
    loop {
        let reached = match point.at {
            At::Import(n) => progress.import.load(Ordering::SeqCst) > n || phase() > IMPORT,
            At::Schedule(n) => progress.schedule.load(Ordering::SeqCst) > n || phase() > SCHEDULING,
            At::Placed(n) => count(&open_db(db_path), "SELECT COUNT(*) FROM attempts") >= n,
        };
        if reached {
            return;
        }
        assert!(!workload.is_finished() || phase() == DIALING, "the operator's script failed");
        assert!(Instant::now() < deadline, "never reached kill point {}: {}", point.at, diagnose(db_path));
        // The import and schedule requests are short: look often.
        let poll = if matches!(point.at, At::Placed(_)) { 5 } else { 1 };
        tokio::time::sleep(Duration::from_millis(poll)).await;
    }
}

/// What a kill interrupted.
pub struct Kill {
    pub index: usize,
    /// How long the killed process had been running.
    pub uptime: Duration,
    pub point: At,
    pub phase: &'static str,
    /// An import or schedule request was on the wire.
    pub in_request: bool,
    pub leads: i64,
    /// Leads no longer `pending`.
    pub scheduled: i64,
    pub attempts: i64,
    /// Attempts holding a concurrency slot (no final status yet).
    pub open: i64,
    /// `dialing` attempts with no call id: create-call requests cut off mid-flight,
    /// as (attempt id, lead id, created_at).
    pub orphans: Vec<(i64, i64, i64)>,
    /// Batches still to fire.
    pub batches_left: i64,
    /// Calls the carrier had not ended: their webhooks are still to come.
    pub live_calls: usize,
}

impl Kill {
    /// Reads the store (the dialer is dead: nothing moves) and the carrier's ledger;
    /// `seen` is what [`Progress::seen`] said just before the kill.
    pub async fn read(
        index: usize,
        uptime: Duration,
        point: &Point,
        seen: (&'static str, bool),
        db_path: &Path,
        sim: &SimProcess,
    ) -> Kill {
        let (phase, in_request) = seen;
        let live_calls = sim.calls().await.iter().filter(|c| c["ended"].is_null()).count();
        let db = open_db(db_path);
        let sql = "SELECT id, lead_id, created_at FROM attempts WHERE status = 'dialing' AND provider_call_id IS NULL";
        let mut stmt = db.prepare(sql).unwrap();
        let orphans = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap);
        Kill {
            index,
            uptime,
            point: point.at,
            phase,
            in_request,
            leads: count(&db, "SELECT COUNT(*) FROM leads"),
            scheduled: count(&db, "SELECT COUNT(*) FROM leads WHERE status <> 'pending'"),
            attempts: count(&db, "SELECT COUNT(*) FROM attempts"),
            open: count(&db, "SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL"),
            orphans: orphans.collect(),
            batches_left: count(&db, "SELECT COUNT(*) FROM batches WHERE status = 'pending'"),
            live_calls,
        }
    }
}

impl std::fmt::Display for Kill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let wire = if self.in_request { ", request on the wire" } else { "" };
        write!(
            f,
            "kill {:>2} at {} ({}{wire}, up {} ms): {} leads, {} scheduled, {} batches to fire, {} attempts, {} open, \
             {} create-call requests cut off, {} carrier calls live",
            self.index,
            self.point,
            self.phase,
            self.uptime.as_millis(),
            self.leads,
            self.scheduled,
            self.batches_left,
            self.attempts,
            self.open,
            self.orphans.len(),
            self.live_calls
        )
    }
}
