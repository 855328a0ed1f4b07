//! Fault injection on create-call requests (`[simulator.faults]`): what the
//! simulated carrier does to one request, drawn per request.

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
