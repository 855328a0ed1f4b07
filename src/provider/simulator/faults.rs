//! Fault injection on create-call requests (`[simulator.faults]`): what the
//! simulated carrier does to one request, drawn per request.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use crate::config::Faults;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateFault {
    None,
    /// 429: not processed, nothing created.
    RateLimited,
    /// 500, nothing created.
    ServerError,
    /// 500, but the call was created and goes ahead.
    ServerErrorAfterCreate,
    /// No reply within the client's patience, nothing created.
    TimeoutBeforeCreate,
    /// No reply within the client's patience, but the call was created.
    TimeoutAfterCreate,
}

impl CreateFault {
    /// Whether the call exists after this request.
    pub fn creates(self) -> bool {
        matches!(self, CreateFault::None | CreateFault::ServerErrorAfterCreate | CreateFault::TimeoutAfterCreate)
    }
}

/// How many of each fault one simulated carrier served, for `GET /sim/ledger`
/// (`"faults"`), so a test can show its faults really happened.
#[derive(Default)]
pub struct Counts {
    create: [AtomicU64; 6],
    duplicated: AtomicU64,
    reordered: AtomicU64,
    forged: AtomicU64,
}

/// A callback fault, as counted.
#[derive(Debug, Clone, Copy)]
pub enum CallbackFault {
    Duplicated,
    Reordered,
    Forged,
}

const NAMES: [(CreateFault, &str); 6] = [
    (CreateFault::None, "none"),
    (CreateFault::RateLimited, "rate_limited"),
    (CreateFault::ServerError, "server_error"),
    (CreateFault::ServerErrorAfterCreate, "server_error_after_create"),
    (CreateFault::TimeoutBeforeCreate, "timeout_before_create"),
    (CreateFault::TimeoutAfterCreate, "timeout_after_create"),
];

impl Counts {
    pub fn create(&self, fault: CreateFault) {
        if let Some(i) = NAMES.iter().position(|(k, _)| *k == fault) {
            self.create[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn callback(&self, fault: CallbackFault) {
        let counter = match fault {
            CallbackFault::Duplicated => &self.duplicated,
            CallbackFault::Reordered => &self.reordered,
            CallbackFault::Forged => &self.forged,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `{"none": N, "rate_limited": N, …, "duplicated_callbacks": N,
    /// "reordered_callbacks": N, "forged_callbacks": N, "callback_faults": total}`.
    pub fn json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (i, (_, name)) in NAMES.iter().enumerate() {
            map.insert((*name).into(), self.create[i].load(Ordering::Relaxed).into());
        }
        let callbacks = [
            ("duplicated_callbacks", &self.duplicated),
            ("reordered_callbacks", &self.reordered),
            ("forged_callbacks", &self.forged),
        ];
        let mut total = 0;
        for (name, counter) in callbacks {
            let n = counter.load(Ordering::Relaxed);
            total += n;
            map.insert(name.into(), n.into());
        }
        map.insert("callback_faults".into(), total.into());
        serde_json::Value::Object(map)
    }
}

/// Draws the fault for one create-call request.
pub fn draw(f: &Faults) -> CreateFault {
    let x: f64 = rand::thread_rng().r#gen();
    let table = [
        (f.rate_limited, CreateFault::RateLimited),
        (f.server_error, CreateFault::ServerError),
        (f.server_error_after_create, CreateFault::ServerErrorAfterCreate),
        (f.timeout_before_create, CreateFault::TimeoutBeforeCreate),
        (f.timeout_after_create, CreateFault::TimeoutAfterCreate),
    ];
    let mut edge = 0.0;
    for (p, fault) in table {
        edge += p;
        if x < edge {
            return fault;
        }
    }
    CreateFault::None
}

/// Draws true with probability `p`.
pub fn chance(p: f64) -> bool {
    p > 0.0 && rand::thread_rng().r#gen::<f64>() < p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_roughly_kept() {
        let f = Faults { rate_limited: 0.5, timeout_after_create: 0.25, ..Faults::default() };
        let draws: Vec<CreateFault> = (0..4000).map(|_| draw(&f)).collect();
        let share = |k| draws.iter().filter(|d| **d == k).count() as f64 / 4000.0;
        assert!((share(CreateFault::RateLimited) - 0.5).abs() < 0.05);
        assert!((share(CreateFault::TimeoutAfterCreate) - 0.25).abs() < 0.05);
        assert_eq!(share(CreateFault::ServerError), 0.0);
        assert_eq!(draw(&Faults::default()), CreateFault::None);
    }
}
