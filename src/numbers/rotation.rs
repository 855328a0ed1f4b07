//! Round-robin over enabled caller numbers, skipping any at its daily cap.
//!
//! Pure: the store supplies the candidates (inside the claim transaction) and
//! reserves the slot for the pick with a guarded update, so the pick and the cap
//! check cannot drift apart.

/// An enabled caller number as the rotation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    /// Round-robin position: lower was picked longer ago (0 = never).
    pub last_pick: i64,
    /// Calls placed from it on the current local day.
    pub used_today: u32,
    /// Its `max_daily_calls`.
    pub cap: u32,
}

/// The number to dial from next: the one picked longest ago among those under
/// their cap (ties by id, so the order is deterministic). None when every number
/// is at its cap, or there are none.
pub fn pick(candidates: &[Candidate]) -> Option<i64> {
    candidates.iter().filter(|c| c.used_today < c.cap).min_by_key(|c| (c.last_pick, c.id)).map(|c| c.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn simulate(mut pool: Vec<Candidate>, picks: usize) -> Vec<i64> {
        let mut seq = pool.iter().map(|c| c.last_pick).max().unwrap_or(0);
        let mut out = Vec::new();
        for _ in 0..picks {
            let Some(id) = pick(&pool) else { break };
            let c = pool.iter_mut().find(|c| c.id == id).unwrap();
            seq += 1;
            c.last_pick = seq;
            c.used_today += 1;
            out.push(id);
        }
        out
    }

    fn c(id: i64, used: u32, cap: u32) -> Candidate {
        Candidate { id, last_pick: 0, used_today: used, cap }
    }

    #[test]
    fn round_robin_in_order() {
        assert_eq!(simulate(vec![c(1, 0, 10), c(2, 0, 10), c(3, 0, 10)], 6), vec![1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn skips_capped_numbers_and_stops_when_all_are_capped() {
        assert_eq!(simulate(vec![c(1, 0, 2), c(2, 5, 5), c(3, 0, 1)], 10), vec![1, 3, 1]);
        assert_eq!(pick(&[]), None);
        assert_eq!(pick(&[c(1, 0, 0)]), None);
    }

    proptest! {
        /// No sequence of picks takes a number past its cap, and picks stop only when
        /// every number is full.
        #[test]
        fn never_exceeds_caps(caps in proptest::collection::vec((0u32..20, 0u32..20), 1..8), picks in 0usize..200) {
            let pool: Vec<Candidate> = caps.iter().enumerate()
                .map(|(i, (used, cap))| Candidate { id: i as i64 + 1, last_pick: 0, used_today: (*used).min(*cap), cap: *cap })
                .collect();
            let room: u32 = pool.iter().map(|c| c.cap - c.used_today).sum();
            let got = simulate(pool.clone(), picks);
            prop_assert_eq!(got.len(), picks.min(room as usize));
            for c in &pool {
                let n = got.iter().filter(|id| **id == c.id).count() as u32;
                prop_assert!(c.used_today + n <= c.cap);
            }
        }

        /// With equal room, usage stays within one call of even.
        #[test]
        fn spreads_evenly(n in 1usize..10, picks in 0usize..100) {
            let pool: Vec<Candidate> = (0..n).map(|i| c(i as i64, 0, 1000)).collect();
            let got = simulate(pool, picks);
            let counts: Vec<usize> = (0..n).map(|i| got.iter().filter(|id| **id == i as i64).count()).collect();
            prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
        }
    }
}
