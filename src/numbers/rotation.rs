//! Smooth weighted round-robin over the caller numbers of one tier (ours).
//!
//! Each number has a weight, its `rotation_priority` (1..=10). Over any stretch in
//! which the set of numbers does not change, number `i` has been picked within one
//! call of its ideal share `k · wᵢ / W` after every pick `k` (W = sum of weights), and
//! picks are interleaved: priorities 10, 5, 5 give A B A C A B A C …
//!
//! The rule is "earliest eligible deadline first" (the unit-request case of EEVDF,
//! Stoica et al. 1996, and of Tijdeman's chairman assignment, 1980): after `k` picks,
//! number `i` with `cᵢ` picks is *eligible* when it is not ahead of its share
//! (`cᵢ · W ≤ k · wᵢ`); among eligible numbers the one whose next pick is due first
//! (smallest `(cᵢ + 1) / wᵢ`, ties by id) is picked. Integer arithmetic, deterministic.
//!
//! Numbers of equal weight are picked in turn, so each weight class is a queue and
//! its front is the only candidate of the class: a pick looks at ≤ 10 queue fronts,
//! O(1) in the size of the pool. When the set changes (a number reaches its cap), the
//! counts restart from zero and the queues keep their order, so rotation goes on
//! where it was rather than starting again at the lowest id.

use std::collections::VecDeque;

/// Lowest and highest `rotation_priority`.
pub const PRIORITIES: std::ops::RangeInclusive<u8> = 1..=10;

/// The rotation state of one tier's numbers.
#[derive(Debug, Clone, Default)]
pub struct Rotor {
    /// Index w-1 holds the numbers of weight w, front = next in turn: (id, picks).
    classes: [VecDeque<(i64, u64)>; 10],
    /// Picks since the set last changed.
    picks: u64,
    total_weight: u64,
}

impl Rotor {
    /// A rotor over `members` (id, priority), taken in the given order within a
    /// weight class. Priorities outside 1..=10 are clamped into it.
    pub fn new(members: impl IntoIterator<Item = (i64, u8)>) -> Rotor {
        let mut rotor = Rotor::default();
        for (id, priority) in members {
            let w = priority.clamp(*PRIORITIES.start(), *PRIORITIES.end());
            rotor.classes[usize::from(w - 1)].push_back((id, 0));
            rotor.total_weight += u64::from(w);
        }
        rotor
    }

    /// The next number, or None when the rotor is empty. Records the pick.
    pub fn pick(&mut self) -> Option<i64> {
        let (k, total) = (self.picks, self.total_weight);
        let mut best: Option<(usize, u64, u64, i64)> = None; // (class, picks+1, weight, id)
        for (index, class) in self.classes.iter().enumerate() {
            let Some(&(id, c)) = class.front() else { continue };
            let w = index as u64 + 1;
            // Eligible: not ahead of its share, c/w ≤ k/W.
            if u128::from(c) * u128::from(total) > u128::from(k) * u128::from(w) {
                continue;
            }
            // Earliest deadline (c+1)/w, compared by cross-multiplication; ties by id.
            let better = match best {
                None => true,
                Some((_, bn, bw, bid)) => {
                    let (lhs, rhs) = (u128::from(c + 1) * u128::from(bw), u128::from(bn) * u128::from(w));
                    lhs < rhs || (lhs == rhs && id < bid)
                }
            };
            if better {
                best = Some((index, c + 1, w, id));
            }
        }
        let (index, _, _, id) = best?;
        let class = &mut self.classes[index];
        if let Some((id, c)) = class.pop_front() {
            class.push_back((id, c + 1));
        }
        self.picks += 1;
        Some(id)
    }

    /// Takes `id` out of the rotation (it reached its cap). The shares restart from
    /// here; the turn order is kept. Returns whether it was a member.
    pub fn remove(&mut self, id: i64) -> bool {
        for (index, class) in self.classes.iter_mut().enumerate() {
            if let Some(pos) = class.iter().position(|(m, _)| *m == id) {
                class.remove(pos);
                self.total_weight -= index as u64 + 1;
                self.restart();
                return true;
            }
        }
        false
    }

    fn restart(&mut self) {
        self.picks = 0;
        for class in &mut self.classes {
            // A class's queue is sorted by picks (those picked one time more are at the
            // back), so zeroing keeps "who is next" as it was.
            class.iter_mut().for_each(|m| m.1 = 0);
        }
    }

    pub fn len(&self) -> usize {
        self.classes.iter().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: i64) -> bool {
        self.classes.iter().any(|c| c.iter().any(|(m, _)| *m == id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(members: &[(i64, u8)], n: usize) -> Vec<i64> {
        let mut r = Rotor::new(members.iter().copied());
        (0..n).map_while(|_| r.pick()).collect()
    }

    #[test]
    fn priorities_10_5_5_interleave_50_25_25() {
        assert_eq!(run(&[(1, 10), (2, 5), (3, 5)], 8), vec![1, 2, 1, 3, 1, 2, 1, 3]);
    }

    #[test]
    fn equal_priorities_are_plain_round_robin() {
        assert_eq!(run(&[(1, 5), (2, 5), (3, 5)], 7), vec![1, 2, 3, 1, 2, 3, 1]);
    }

    #[test]
    fn empty_rotor_picks_nothing() {
        assert_eq!(Rotor::new([]).pick(), None);
        let mut r = Rotor::new([(7, 3)]);
        assert!(r.remove(7) && !r.remove(7));
        assert_eq!(r.pick(), None);
    }

    #[test]
    fn removal_keeps_the_turn_order() {
        let mut r = Rotor::new([(1, 5), (2, 5), (3, 5)]);
        assert_eq!((r.pick(), r.pick()), (Some(1), Some(2)));
        r.remove(1);
        assert_eq!((r.pick(), r.pick(), r.pick()), (Some(3), Some(2), Some(3)));
    }

    /// The reference definition, written out directly: each pick goes to the
    /// eligible number with the earliest deadline.
    fn ideal_error(weights: &[u8], counts: &[u64], k: u64) -> f64 {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        weights
            .iter()
            .zip(counts)
            .map(|(w, c)| (*c as f64 - k as f64 * f64::from(*w) / total as f64).abs())
            .fold(0.0, f64::max)
    }

    proptest! {
        /// Over every prefix of a constant set, each number is within one call of
        /// its weighted share.
        #[test]
        fn share_within_one_call_of_ideal(weights in proptest::collection::vec(1u8..=10, 1..16), n in 1usize..400) {
            let members: Vec<(i64, u8)> = weights.iter().enumerate().map(|(i, w)| (i as i64 + 1, *w)).collect();
            let mut r = Rotor::new(members.iter().copied());
            let mut counts = vec![0u64; weights.len()];
            for k in 1..=n as u64 {
                let id = r.pick().unwrap();
                counts[(id - 1) as usize] += 1;
                prop_assert!(ideal_error(&weights, &counts, k) < 1.0, "pick {k}: {counts:?} for {weights:?}");
            }
        }

        /// After members leave, the remaining ones are within one call of their
        /// share of the picks since the last change, and a removed number is never
        /// picked again.
        #[test]
        fn fair_again_after_removals(
            weights in proptest::collection::vec(1u8..=10, 2..12),
            removals in proptest::collection::vec((0usize..400, 0usize..12), 0..4),
            n in 1usize..400,
        ) {
            let mut r = Rotor::new(weights.iter().enumerate().map(|(i, w)| (i as i64, *w)));
            let mut live: Vec<bool> = vec![true; weights.len()];
            let mut since = vec![0u64; weights.len()];
            let mut k = 0u64;
            for step in 0..n {
                for (at, who) in &removals {
                    if *at == step && *who < weights.len() && live[*who] {
                        r.remove(*who as i64);
                        live[*who] = false;
                        since.iter_mut().for_each(|c| *c = 0);
                        k = 0;
                    }
                }
                let Some(id) = r.pick() else { prop_assert!(live.iter().all(|l| !l)); break };
                prop_assert!(live[id as usize], "picked removed number {id}");
                since[id as usize] += 1;
                k += 1;
                let w: Vec<u8> = weights.iter().zip(&live).map(|(w, l)| if *l { *w } else { 0 }).collect();
                let live_w: Vec<u8> = w.iter().copied().filter(|w| *w > 0).collect();
                let live_c: Vec<u64> = since.iter().zip(&live).filter(|(_, l)| **l).map(|(c, _)| *c).collect();
                prop_assert!(ideal_error(&live_w, &live_c, k) < 1.0);
            }
        }

        /// No window of picks is bursty: in any window of length L, a number with
        /// share p gets within 2 of L·p (each end of the window is within 1).
        #[test]
        fn every_window_is_close_to_its_share(weights in proptest::collection::vec(1u8..=10, 1..8), n in 1usize..200) {
            let order = run(&weights.iter().enumerate().map(|(i, w)| (i as i64, *w)).collect::<Vec<_>>(), n);
            let total: f64 = weights.iter().map(|w| f64::from(*w)).sum();
            for start in 0..order.len() {
                for end in start + 1..=order.len() {
                    for (i, w) in weights.iter().enumerate() {
                        let got = order[start..end].iter().filter(|id| **id == i as i64).count() as f64;
                        let ideal = (end - start) as f64 * f64::from(*w) / total;
                        prop_assert!((got - ideal).abs() < 2.0);
                    }
                }
            }
        }
    }
}
