//! Local presence and caps over random pools and random lead sequences.

use proptest::prelude::*;

use super::*;

const CODES: [(u16, &str); 4] = [(212, "NY"), (646, "NY"), (305, "FL"), (907, "AK")];

fn number(id: i64, priority: u8, code: usize, cap: u32, used: u32) -> PoolNumber {
    let (area_code, state) = CODES[code % CODES.len()];
    PoolNumber {
        id,
        number: format!("+1{area_code}555{id:04}"),
        priority,
        area_code: Some(area_code),
        state: Some(state.to_string()),
        zones: vec![],
        pool: None,
        cap,
        used: used.min(cap),
        first_used_day: None,
    }
}

fn lead(code: usize) -> LeadPlace {
    let (area_code, state) = CODES[code % CODES.len()];
    LeadPlace { area_code: Some(area_code), state: Some(state.to_string()), zones: vec![], pool: None }
}

fn has_room(p: &Pool, f: impl Fn(&PoolNumber) -> bool) -> bool {
    p.numbers.iter().any(|n| n.used < n.cap && f(n))
}

#[test]
fn same_area_code_first_then_state_then_any() {
    let mut p = Pool::new(0, "d".into(), vec![number(1, 5, 0, 1, 0), number(2, 5, 1, 1, 0), number(3, 5, 2, 1, 0)]);
    let l = lead(0); // 212, NY
    assert_eq!(p.choose(&l, LocalPresence::Prefer), Choice::Number { id: 1, tier: Tier::AreaCode, candidates: 1 });
    p.used(1);
    assert_eq!(p.choose(&l, LocalPresence::Prefer), Choice::Number { id: 2, tier: Tier::State, candidates: 1 });
    p.used(2);
    assert_eq!(p.choose(&l, LocalPresence::Strict), Choice::NoLocal);
    assert_eq!(p.choose(&l, LocalPresence::Prefer), Choice::Number { id: 3, tier: Tier::Any, candidates: 1 });
    p.used(3);
    assert_eq!(p.choose(&l, LocalPresence::Prefer), Choice::Empty);
}

#[test]
fn shared_time_zone_before_any() {
    let ny: Tz = "America/New_York".parse().unwrap();
    let la: Tz = "America/Los_Angeles".parse().unwrap();
    let mut east = number(1, 5, 2, 5, 0);
    east.zones = vec![ny];
    let mut west = number(2, 5, 3, 5, 0);
    west.zones = vec![la];
    let mut p = Pool::new(0, "d".into(), vec![west, east]);
    let l = LeadPlace { area_code: Some(404), state: Some("GA".into()), zones: vec![ny], pool: None };
    for _ in 0..3 {
        assert_eq!(p.choose(&l, LocalPresence::Prefer), Choice::Number { id: 1, tier: Tier::TimeZone, candidates: 1 });
    }
}

#[test]
fn a_campaign_pool_uses_only_its_numbers() {
    let mut a = number(1, 5, 0, 5, 0);
    a.pool = Some("admissions".into());
    let mut p = Pool::new(0, "d".into(), vec![a, number(2, 5, 0, 5, 0)]);
    let l = LeadPlace { pool: Some("admissions".into()), ..lead(0) };
    for _ in 0..3 {
        assert!(matches!(p.choose(&l, LocalPresence::Off), Choice::Number { id: 1, .. }));
    }
    let other = LeadPlace { pool: Some("sales".into()), ..lead(0) };
    assert_eq!(p.choose(&other, LocalPresence::Off), Choice::Empty);
}

proptest! {
    /// Whatever the pool and the sequence of leads: no number goes past its cap;
    /// `prefer` uses a number of the lead's area code whenever one has room (and the
    /// state tier before the rest); `strict` uses only local numbers and says
    /// `NoLocal` only when none has room; picks stop only when nothing has room.
    #[test]
    fn caps_and_local_presence_hold(
        pool in proptest::collection::vec((1u8..=10, 0usize..4, 0u32..6, 0u32..6), 1..10),
        leads in proptest::collection::vec((0usize..4, 0usize..3), 1..80),
    ) {
        let numbers: Vec<PoolNumber> = pool.iter().enumerate()
            .map(|(i, (w, code, cap, used))| number(i as i64 + 1, *w, *code, *cap, *used)).collect();
        let mut p = Pool::new(0, "d".into(), numbers.clone());
        let mut placed = vec![0u32; numbers.len()];
        for (code, mode) in leads {
            let mode = [LocalPresence::Prefer, LocalPresence::Strict, LocalPresence::Off][mode];
            let l = lead(code);
            let area_room = has_room(&p, |n| n.area_code == l.area_code);
            let state_room = has_room(&p, |n| n.state == l.state);
            match p.choose(&l, mode) {
                Choice::Number { id, tier, candidates } => {
                    let n = p.number(id).unwrap().clone();
                    prop_assert!(n.used < n.cap, "{id} is full");
                    prop_assert!(candidates >= 1);
                    match mode {
                        LocalPresence::Prefer if area_room => prop_assert_eq!(tier, Tier::AreaCode),
                        LocalPresence::Prefer if state_room => prop_assert_eq!(tier, Tier::State),
                        LocalPresence::Strict => prop_assert!(tier.is_local()),
                        _ => {}
                    }
                    match tier {
                        Tier::AreaCode => prop_assert_eq!(n.area_code, l.area_code),
                        Tier::State => prop_assert_eq!(n.state, l.state),
                        _ => {}
                    }
                    placed[(id - 1) as usize] += 1;
                    p.used(id);
                }
                Choice::NoLocal => {
                    prop_assert_eq!(mode, LocalPresence::Strict);
                    prop_assert!(!area_room && !state_room && has_room(&p, |_| true));
                }
                Choice::Empty => prop_assert!(!has_room(&p, |_| true)),
            }
        }
        for (n, got) in numbers.iter().zip(&placed) {
            prop_assert!(n.used + got <= n.cap, "number {} placed {} over cap {}", n.id, n.used + got, n.cap);
        }
    }
}
