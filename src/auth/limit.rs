//! Login throttling with exponential backoff (OWASP Authentication Cheat Sheet,
//! "Protect against automated attacks"; NIST SP 800-63B §5.2.2 rate limiting).
//!
//! Failures are counted per key; the caller uses two keys per attempt, the
//! username and the client address, so one address cannot guess many passwords
//! and many addresses cannot guess one user's. The first `FREE` failures cost
//! nothing; each later one locks the key for `BASE` × 2^(n − FREE − 1), at most
//! `MAX`. A success clears the username's key. In memory: a restart forgets it,
//! which costs an attacker a restart each time, not a way in.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const FREE: u32 = 5;
pub const BASE: Duration = Duration::from_secs(1);
pub const MAX: Duration = Duration::from_secs(15 * 60);
/// Keys kept at most; the oldest idle ones are dropped first (memory bound against
/// an attacker inventing usernames).
const MAX_KEYS: usize = 10_000;
/// Longest key stored as is; longer ones are stored as their SHA-256.
const MAX_KEY_LEN: usize = 128;
/// A key with no failure for this long starts again from zero.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    locked_until: Option<Instant>,
    last_failure: Instant,
}

#[derive(Default)]
pub struct Limiter {
    keys: Mutex<HashMap<String, Entry>>,
}

impl Limiter {
    /// `Err(wait)` when any of `keys` is locked at `now`; the caller answers
    /// 429 with `Retry-After` and does not check the password.
    pub fn check(&self, keys: &[&str], now: Instant) -> Result<(), Duration> {
        let map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let wait = keys
            .iter()
            .filter_map(|k| map.get(stored(k).as_ref()))
            .filter_map(|e| e.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        wait.map_or(Ok(()), Err)
    }

    /// Records a failed attempt on every key; returns the longest lock now in force.
    pub fn failed(&self, keys: &[&str], now: Instant) -> Option<Duration> {
        let mut map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, e| now.saturating_duration_since(e.last_failure) < FORGET_AFTER);
            if map.len() >= MAX_KEYS {
                // Still full: drop the entries that are not locked.
                map.retain(|_, e| e.locked_until.is_some_and(|u| u > now));
            }
        }
        let mut longest = None;
        for key in keys {
            let e = map.entry(stored(key).into_owned()).or_insert(Entry {
                failures: 0,
                locked_until: None,
                last_failure: now,
            });
            if now.saturating_duration_since(e.last_failure) >= FORGET_AFTER {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last_failure = now;
            if let Some(lock) = lock_for(e.failures) {
                e.locked_until = Some(now + lock);
                longest = longest.max(Some(lock));
            }
        }
        longest
    }

    /// A successful login: the username's failures are forgotten (the address's
    /// are kept, so one good account does not unlock guessing on others).
    pub fn succeeded(&self, key: &str) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).remove(stored(key).as_ref());
    }
}

/// The key as kept: itself, or its SHA-256 when longer than [`MAX_KEY_LEN`] (a
/// login form may carry a username of a megabyte).
fn stored(key: &str) -> Cow<'_, str> {
    if key.len() <= MAX_KEY_LEN { Cow::Borrowed(key) } else { Cow::Owned(crate::auth::secret::digest(key)) }
}

/// The lock after the `failures`-th consecutive failure.
pub fn lock_for(failures: u32) -> Option<Duration> {
    let over = failures.checked_sub(FREE).filter(|n| *n > 0)?;
    let factor = 1u32.checked_shl(over - 1).unwrap_or(u32::MAX);
    Some(BASE.saturating_mul(factor).min(MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_after_the_free_attempts_and_is_capped() {
        let locks: Vec<_> = (1..=20).map(lock_for).collect();
        assert!(locks[..5].iter().all(Option::is_none));
        assert_eq!(locks[5], Some(Duration::from_secs(1)));
        assert_eq!(locks[6], Some(Duration::from_secs(2)));
        assert_eq!(locks[9], Some(Duration::from_secs(16)));
        assert_eq!(locks[19], Some(MAX));
        assert_eq!(lock_for(u32::MAX), Some(MAX));
    }

    #[test]
    fn a_locked_key_refuses_until_its_time_and_success_clears_the_user() {
        let l = Limiter::default();
        let t0 = Instant::now();
        for i in 0..FREE {
            assert!(l.check(&["u:alice", "ip:1"], t0).is_ok(), "attempt {i} is free");
            assert_eq!(l.failed(&["u:alice", "ip:1"], t0), None);
        }
        assert_eq!(l.failed(&["u:alice", "ip:1"], t0), Some(BASE));
        assert_eq!(l.check(&["u:alice"], t0), Err(BASE));
        assert_eq!(l.check(&["ip:1"], t0 + BASE / 2), Err(BASE / 2));
        assert!(l.check(&["u:alice", "ip:1"], t0 + BASE).is_ok());
        assert!(l.check(&["u:bob", "ip:2"], t0).is_ok(), "other keys are free");
        l.succeeded("u:alice");
        assert!(l.check(&["u:alice"], t0).is_ok());
        assert_eq!(l.check(&["ip:1"], t0), Err(BASE), "the address keeps its lock");
    }

    #[test]
    fn long_keys_are_stored_bounded_and_still_counted() {
        // A login form may carry a 1 MiB username: 10,000 such keys would be 10 GB.
        let l = Limiter::default();
        let t0 = Instant::now();
        let long = format!("u:{}", "x".repeat(1 << 20));
        for _ in 0..=FREE {
            l.failed(&[&long], t0);
        }
        assert!(l.keys.lock().unwrap().keys().all(|k| k.len() <= MAX_KEY_LEN), "stored bounded");
        assert_eq!(l.check(&[&long], t0), Err(BASE), "the long key is locked");
        let other = format!("u:{}y", "x".repeat(1 << 20));
        assert!(l.check(&[&other], t0).is_ok(), "another long key is its own");
        l.succeeded(&long);
        assert!(l.check(&[&long], t0).is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_invented_usernames() {
        let l = Limiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS + 500) {
            l.failed(&[&format!("u:{i}")], t0);
        }
        assert!(l.keys.lock().unwrap().len() <= MAX_KEYS);
    }
}
