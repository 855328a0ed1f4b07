//! Caller-ID rotation benchmarks: picks per second with 10,000 numbers in the pool.
//!
//! - `rotor_pick/10000`: one tier's weighted rotor (priorities 1..=10), `pick()` only.
//! - `pool_choose/10000`: local-presence tiers over 10,000 numbers in 300 US area codes,
//!   leads cycling over every US area code; `choose` + `used`, `prefer` mode.
//! - `claim_sqlite/10000_numbers`: the whole claim on a SQLite file, one write
//!   transaction (BEGIN IMMEDIATE … COMMIT) per claim, as the call loop runs it;
//!   `claim_sqlite/10000_numbers_no_commit` is the same claim without its own commit
//!   (many claims in one transaction), which separates the claim's work from the
//!   durable commit.
//!
//! Throughput is one pick (or claim) per iteration, so criterion's `thrpt` line is
//! picks per second. Run: `cargo bench --bench rotation`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dialer::compliance::Compliance;
use dialer::compliance::hours::CallingWindow;
use dialer::compliance::rules::{Profile, StateRules};
use dialer::compliance::tz::TzMap;
use dialer::db::leads::NewLead;
use dialer::db::schedules::NewSchedule;
use dialer::db::{self, Db, Tx};
use dialer::dialer::claim::{Claim, Rules, claim};
use dialer::domain::status::Status;
use dialer::numbers::health::{Policy, Warmup};
use dialer::numbers::npa::NpaMap;
use dialer::numbers::pool::{Choice, LeadPlace, LocalPresence, Pool, PoolNumber};
use dialer::numbers::rotation::Rotor;
use dialer::numbers::{Places, lead_place};

const NUMBERS: usize = 10_000;
/// Area codes the caller numbers are spread over (~33 numbers each).
const NUMBER_AREA_CODES: usize = 300;
/// Due leads in the claim benchmark; they are put back in the queue when used up.
const CLAIM_LEADS: usize = 20_000;
/// Calls in flight before the benchmark ends them (a realistic `max_concurrent_calls`).
const IN_FLIGHT: usize = 50;
/// Never binds: caps are not what is measured.
const CAP: u32 = 1_000_000_000;

const NPA_STATES: &str = include_str!("../data/npa_states.txt");

/// Every area code of a US state or DC in `data/npa_states.txt`, in file (NPA) order.
fn us_area_codes() -> Vec<u16> {
    const NOT_STATES: [&str; 18] =
        ["ON", "QC", "BC", "AB", "MB", "SK", "NS", "NB", "NL", "PE", "YT", "NT", "NU", "PR", "VI", "GU", "MP", "AS"];
    NPA_STATES
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut fields = l.split('|');
            let (npa, code) = (fields.next()?.trim(), fields.next()?.trim());
            (code.len() == 2 && !code.starts_with("C-") && !NOT_STATES.contains(&code)).then(|| npa.parse().ok())?
        })
        .collect()
}

fn places() -> Places {
    Places::new(NpaMap::embedded(), Arc::new(TzMap::embedded()))
}

/// The i-th caller number: area code `i mod 300`, priority cycling 1..=10.
fn caller_number(codes: &[u16], i: usize) -> (String, u8) {
    (format!("+1{}{:07}", codes[i % NUMBER_AREA_CODES], 2_000_000 + i), (i % 10) as u8 + 1)
}

/// The i-th lead's phone: cycling over every US area code (some without a caller
/// number, whose leads go to the state or time-zone tier).
fn lead_phone(codes: &[u16], i: usize) -> String {
    format!("+1{}{:07}", codes[i % codes.len()], 3_000_000 + i)
}

fn rotor_pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("rotor_pick");
    group.throughput(Throughput::Elements(1));
    let mut rotor = Rotor::new((1..=NUMBERS as i64).map(|id| (id, ((id - 1) % 10) as u8 + 1)));
    // Steady state: well past the first round.
    for _ in 0..3 * NUMBERS {
        rotor.pick();
    }
    group.bench_function("10000", |b| b.iter(|| black_box(rotor.pick())));
    group.finish();
}

fn pool_choose(c: &mut Criterion) {
    let codes = us_area_codes();
    assert!(codes.len() >= NUMBER_AREA_CODES, "only {} US area codes in data/npa_states.txt", codes.len());
    let places = places();
    let numbers: Vec<PoolNumber> = (0..NUMBERS)
        .map(|i| {
            let (number, priority) = caller_number(&codes, i);
            let (area_code, state, zones) = places.of(&number);
            PoolNumber {
                id: i as i64 + 1,
                number,
                priority,
                area_code,
                state,
                zones,
                pool: None,
                cap: CAP,
                used: 0,
                first_used_day: Some("2026-01-01".into()),
            }
        })
        .collect();
    let leads: Vec<LeadPlace> = (0..codes.len() * 10)
        .map(|i| {
            let phone = lead_phone(&codes, i);
            let (_, _, zones) = places.of(&phone);
            lead_place(&places, &phone, "", &zones)
        })
        .collect();
    let mut pool = Pool::new(1, "2026-03-10".into(), numbers);
    let mut next = 0;
    let mut choose = move || {
        let lead = &leads[next % leads.len()];
        next += 1;
        let choice = pool.choose(lead, LocalPresence::Prefer);
        if let Choice::Number { id, .. } = choice {
            pool.used(id);
        }
        choice
    };
    // Build every tier's rotor once (lazily, on first use), then measure the steady state.
    for _ in 0..3 * NUMBERS {
        choose();
    }
    let mut group = c.benchmark_group("pool_choose");
    group.throughput(Throughput::Elements(1));
    group.bench_function("10000", |b| b.iter(|| black_box(choose())));
    group.finish();
}

/// A store with 10,000 caller numbers (already warmed) and `CLAIM_LEADS` due leads of a fired schedule.
struct ClaimBench {
    db: Db,
    _dir: tempfile::TempDir,
    rules: Rules,
    now: DateTime<Utc>,
    /// Due leads not claimed yet, and claimed calls not ended yet.
    left: usize,
    in_flight: usize,
}

impl ClaimBench {
    fn new() -> ClaimBench {
        let codes = us_area_codes();
        let places = places();
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(&dir.path().join("bench.db")).expect("open db");
        let now = Utc::now();
        let now_ms = db::to_ms(now);
        db.write_blocking(|tx| {
            let numbers: Vec<db::numbers::NewNumber> = (0..NUMBERS)
                .map(|i| {
                    let (number, priority) = caller_number(&codes, i);
                    db::numbers::NewNumber {
                        number,
                        label: None,
                        max_daily_calls: CAP,
                        rotation_priority: priority,
                        pool: None,
                    }
                })
                .collect();
            db::numbers::add(tx, &numbers, "bench", now_ms)?;
            // An established pool: no number is on its first call (which would
            // change `caller_numbers` and so reload the rotation).
            tx.execute("UPDATE caller_numbers SET first_used_day = '2026-01-01'", [])?;
            let import_id = db::imports::start(tx, "bench", now_ms)?;
            let mut ids = Vec::with_capacity(CLAIM_LEADS);
            for i in 0..CLAIM_LEADS {
                let phone = lead_phone(&codes, i);
                let (_, _, zones) = places.of(&phone);
                let timezone = Some(zones.iter().map(|z| z.name()).collect::<Vec<_>>().join("&"));
                let lead = NewLead {
                    line: i as u64,
                    uuid: None,
                    phone,
                    whatsapp: String::new(),
                    name: String::new(),
                    email: String::new(),
                    partner: String::new(),
                    state: String::new(),
                    timezone,
                    timezone_source: "number",
                    status: Status::Pending,
                    consent_at: None,
                    consent_source: String::new(),
                };
                db::leads::upsert(tx, &lead, import_id, now_ms)?;
                ids.push(tx.last_insert_rowid());
            }
            let schedule = NewSchedule {
                start_at_ms: now_ms,
                timezone: "UTC",
                parallel_calls: 50,
                interval_seconds: 1,
                total_leads: CLAIM_LEADS,
                total_batches: 1,
                campaign_id: 1,
            };
            let schedule_id = db::schedules::insert(tx, &schedule, now_ms)?;
            let batch_id = db::schedules::insert_batch(tx, schedule_id, 0, now_ms, CLAIM_LEADS)?;
            db::leads::mark_scheduled(tx, &ids, schedule_id, batch_id, now_ms)?;
            db::schedules::fire_due(tx, now_ms, 60_000)?;
            Ok(())
        })
        .expect("bench data");
        let rules = Rules {
            // The benchmark ends calls itself, every `IN_FLIGHT` claims.
            max_concurrent_calls: u32::MAX,
            compliance: Arc::new(Compliance {
                profile: Profile::None,
                window: CallingWindow::parse("00:00", "24:00").expect("window"),
                rules: StateRules::default(),
            }),
            timezone: "UTC".parse().expect("UTC"),
            provider: "bench",
            // Each lead is claimed once per round; the rolling cap never binds.
            max_calls_per_lead_24h: u32::MAX,
            local_presence: LocalPresence::Prefer,
            warmup: Warmup { enabled: false, start_calls: 25, days: 14 },
            policy: Policy::default(),
            places: Arc::new(places),
            rotation: Arc::default(),
        };
        let mut bench = ClaimBench { db, _dir: dir, rules, now, left: CLAIM_LEADS, in_flight: 0 };
        // Load the pool and build the rotors before measuring.
        let db = bench.db.clone();
        db.write_blocking(|tx| {
            for _ in 0..1_000 {
                bench.claim(tx);
            }
            Ok(())
        })
        .expect("warm-up claims");
        bench
    }

    /// One claim in `tx`; it must dial. Returns its time. Ends the calls in flight
    /// and puts the leads back in the queue when needed, untimed.
    fn claim(&mut self, tx: &Tx) -> Duration {
        let start = Instant::now();
        let result = claim(tx, &self.rules, self.now).expect("claim");
        let took = start.elapsed();
        assert!(matches!(result, Claim::Dial(_)), "the claim did not dial: {result:?}");
        self.after_claim(tx);
        took
    }

    fn after_claim(&mut self, tx: &Tx) {
        self.left -= 1;
        self.in_flight += 1;
        if self.in_flight >= IN_FLIGHT {
            tx.execute(
                "UPDATE attempts SET status = 'completed', ended_at = ?1 WHERE ended_at IS NULL",
                [db::to_ms(self.now)],
            )
            .expect("end calls");
            self.in_flight = 0;
        }
        if self.left == 0 {
            tx.execute("DELETE FROM attempts", []).expect("forget attempts");
            tx.execute(
                "UPDATE leads SET status = 'scheduled', attempts = 0, next_call_at = ?1, wait_reason = NULL
                 WHERE status = 'dialing'",
                [db::to_ms(self.now)],
            )
            .expect("requeue leads");
            self.left = CLAIM_LEADS;
            self.in_flight = 0;
        }
    }

    /// `iters` claims, each in its own write transaction (commit included in the time).
    fn committed(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            let result = self.db.write_blocking(|tx| claim(tx, &self.rules, self.now)).expect("claim");
            total += start.elapsed();
            assert!(matches!(result, Claim::Dial(_)), "the claim did not dial: {result:?}");
            if self.in_flight + 1 >= IN_FLIGHT || self.left == 1 {
                let db = self.db.clone();
                db.write_blocking(|tx| {
                    self.after_claim(tx);
                    Ok(())
                })
                .expect("housekeeping");
            } else {
                self.left -= 1;
                self.in_flight += 1;
            }
        }
        total
    }

    /// `iters` claims in one write transaction (no commit per claim).
    fn uncommitted(&mut self, iters: u64) -> Duration {
        let db = self.db.clone();
        db.write_blocking(|tx| Ok((0..iters).map(|_| self.claim(tx)).sum())).expect("claims")
    }
}

fn claim_sqlite(c: &mut Criterion) {
    let mut bench = ClaimBench::new();
    let mut group = c.benchmark_group("claim_sqlite");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    group.bench_function("10000_numbers", |b| b.iter_custom(|iters| bench.committed(iters)));
    group.bench_function("10000_numbers_no_commit", |b| b.iter_custom(|iters| bench.uncommitted(iters)));
    group.finish();
}

fn fast() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! { name = picks; config = fast(); targets = rotor_pick, pool_choose }
criterion_group! { name = claims; config = fast(); targets = claim_sqlite }
criterion_main!(picks, claims);
