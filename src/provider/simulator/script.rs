//! Which callee answers a simulated call: the scripted one for its number, else
//! one drawn from the `[simulator]` weights.

use rand::Rng;

use crate::config::{Callee, Simulator};

pub fn callee(settings: &Simulator, to: &str) -> Callee {
    if let Some(scripted) = settings.callees.get(to) {
        return *scripted;
    }
    let weights = settings.weights();
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    let mut x = rand::thread_rng().gen_range(0.0..total.max(f64::MIN_POSITIVE));
    for (callee, w) in weights {
        if x < w {
            return callee;
        }
        x -= w;
    }
    Callee::Silence
}

/// A duration drawn uniformly from `[lo, hi]` seconds.
pub fn seconds_between([lo, hi]: [f64; 2]) -> std::time::Duration {
    let secs = if hi > lo { rand::thread_rng().gen_range(lo..=hi) } else { lo };
    std::time::Duration::from_secs_f64(secs.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_numbers_win_and_weights_draw() {
        let mut s = Simulator {
            answer_rate: 0.0,
            machine_rate: 0.0,
            no_answer_rate: 0.0,
            failed_rate: 0.0,
            ..Simulator::default()
        };
        s.busy_rate = 1.0;
        s.callees.insert("+14152370001".into(), Callee::Press2);
        assert_eq!(callee(&s, "+14152370001"), Callee::Press2);
        assert!((0..50).all(|_| callee(&s, "+14152370002") == Callee::Busy));
    }
}
