//! Calling hours evaluated in the called party's local time.
//!
//! Rule: 47 CFR 64.1200(c)(1) and 16 CFR 310.4(c) allow telephone solicitations only between
//! 08:00 and 21:00 local time **at the called party's location** (compliance.md §1.1).
//! When a number maps to several candidate zones, the call is allowed only if **every**
//! zone is inside the window (compliance.md §3.4, pitfalls.md D.15–D.16).
//!
//! All instants passed in and returned are UTC (`DateTime<Utc>`); windows are local
//! wall-clock times. Offsets come from chrono-tz at each call (never cached), so DST
//! transitions (spring-forward gaps, fall-back repeats) and non-hour offsets such as
//! Asia/Kolkata (+05:30) and Asia/Kathmandu (+05:45) are exact to the second.

use chrono::{DateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Seconds per day.
const DAY: i64 = 86_400;
/// How far [`CallingWindow::next_open`] searches, in seconds (8 days).
const SEARCH_HORIZON: i64 = 8 * DAY;
/// Offset sampling step used to locate UTC-offset transitions, in seconds. Real tzdata
/// never has two transitions of one zone within an hour.
const SAMPLE_STEP: i64 = 3_600;
/// Longest user value echoed back in an error message, in characters.
const MAX_ECHO: usize = 32;

/// Error from [`CallingWindow::parse`]; each variant names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Start is not `HH:MM` in 00:00–23:59.
    #[error("invalid calling-window start {0:?}: expected HH:MM from 00:00 to 23:59")]
    BadStart(String),
    /// End is not `HH:MM` in 00:00–23:59 or `24:00`.
    #[error("invalid calling-window end {0:?}: expected HH:MM from 00:00 to 24:00")]
    BadEnd(String),
    /// Start is not strictly before end (windows never wrap past midnight).
    #[error("calling-window start {start:?} must be before end {end:?}")]
    NotBefore {
        /// Start as given.
        start: String,
        /// End as given.
        end: String,
    },
}

/// A daily local-time window `[start, end)`. `end` may be `24:00` (end of day), in which
/// case the window is open from `start` until local midnight. `start < end` always holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallingWindow {
    /// Local seconds after midnight, `0..86_400`.
    start: u32,
    /// Local seconds after midnight, `start+1..=86_400` (`86_400` = 24:00).
    end: u32,
}

fn echo(s: &str) -> String {
    s.chars().take(MAX_ECHO).collect()
}

/// Parses `H:MM` / `HH:MM` (surrounding whitespace ignored) into local seconds after
/// midnight; `24:00` only when `allow_24`.
fn parse_hhmm(s: &str, allow_24: bool) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (0..=23, 0..=59) => Some(h * 3600 + m * 60),
        (24, 0) if allow_24 => Some(DAY as u32),
        _ => None,
    }
}

/// UTC offset of `tz` at UTC second `ts`, in seconds (`None` only outside chrono's range).
fn offset_at(tz: Tz, ts: i64) -> Option<i64> {
    let utc = DateTime::from_timestamp(ts, 0)?.naive_utc();
    Some(i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()))
}

impl CallingWindow {
    /// Parses local start and end times, `"HH:MM"` (24-hour; a 1-digit hour is accepted).
    /// `end` may be `"24:00"`. Errors name the bad value; `start >= end` is rejected.
    pub fn parse(start: &str, end: &str) -> Result<CallingWindow, WindowError> {
        let s = parse_hhmm(start, false).ok_or_else(|| WindowError::BadStart(echo(start)))?;
        let e = parse_hhmm(end, true).ok_or_else(|| WindowError::BadEnd(echo(end)))?;
        if s >= e {
            return Err(WindowError::NotBefore { start: echo(start), end: echo(end) });
        }
        Ok(CallingWindow { start: s, end: e })
    }

    /// The federal window, 08:00–21:00 local (47 CFR 64.1200(c)(1), 16 CFR 310.4(c)).
    pub fn us_federal() -> CallingWindow {
        CallingWindow { start: 8 * 3600, end: 21 * 3600 }
    }

    /// The hours inside both windows; None when they do not overlap. A campaign's
    /// hours are intersected with the configured ones: they can narrow, never widen.
    pub fn intersect(&self, other: &CallingWindow) -> Option<CallingWindow> {
        let (start, end) = (self.start.max(other.start), self.end.min(other.end));
        (start < end).then_some(CallingWindow { start, end })
    }

    /// Local start time (inclusive).
    pub fn start(&self) -> NaiveTime {
        NaiveTime::from_num_seconds_from_midnight_opt(self.start, 0).unwrap_or(NaiveTime::MIN)
    }

    /// Local end time (exclusive); `None` means 24:00 (open until local midnight).
    pub fn end(&self) -> Option<NaiveTime> {
        NaiveTime::from_num_seconds_from_midnight_opt(self.end, 0)
    }

    /// Whether zone `tz` is inside the window at UTC second `ts` (`None` = out of range).
    fn open_in(&self, tz: Tz, ts: i64) -> Option<bool> {
        let local = (ts + offset_at(tz, ts)?).rem_euclid(DAY);
        Some(i64::from(self.start) <= local && local < i64::from(self.end))
    }

    /// True when UTC instant `at` is inside the window in the local time of EVERY zone of
    /// `zones`. Empty `zones` (unknown location) → false. Sub-second precision: the window
    /// closes at exactly `end` (20:59:59.999 is open, 21:00:00 is not).
    pub fn is_open(&self, zones: &[Tz], at: DateTime<Utc>) -> bool {
        let ts = at.timestamp();
        !zones.is_empty() && zones.iter().all(|&tz| self.open_in(tz, ts) == Some(true))
    }

    /// The earliest UTC instant `>= after` at which [`is_open`](Self::is_open) is true, or
    /// `None` if there is none within 8 days after `after` (e.g. zones whose windows never
    /// overlap, or empty `zones`). Returns `after` itself when already open; otherwise the
    /// result is a whole UTC second, e.g. exactly 08:00:00 local.
    ///
    /// Exact, not stepped: the answer is either `after` or an instant where some zone's
    /// window opens, i.e. a local `start` under that zone's current offset (in UTC) or a UTC
    /// offset transition of that zone (spring-forward gap swallowing `start`: the first valid
    /// instant after the gap; fall-back repeating local times back into the window). All
    /// such candidates are enumerated day by day and checked with `is_open`.
    pub fn next_open(&self, zones: &[Tz], after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if zones.is_empty() {
            return None;
        }
        if self.is_open(zones, after) {
            return Some(after);
        }
        let a = after.timestamp();
        let limit = a.checked_add(SEARCH_HORIZON)?;
        let mut candidates = Vec::new();
        let mut c0 = a;
        while c0 < limit {
            let c1 = (c0 + DAY).min(limit);
            candidates.clear();
            for &tz in zones {
                self.push_openings(tz, c0, c1, &mut candidates)?;
            }
            candidates.sort_unstable();
            candidates.dedup();
            for &c in &candidates {
                let t = DateTime::from_timestamp(c, 0)?;
                if self.is_open(zones, t) {
                    return Some(t);
                }
            }
            c0 = c1;
        }
        None
    }

    /// Pushes every UTC second in `(c0, c1]` at which zone `tz` may go from closed to open:
    /// its offset transitions, and local `start` under each offset it has in that span.
    fn push_openings(&self, tz: Tz, c0: i64, c1: i64, out: &mut Vec<i64>) -> Option<()> {
        let mut prev = offset_at(tz, c0)?;
        let mut offsets = vec![prev];
        let mut t = c0;
        while t < c1 {
            let next = (t + SAMPLE_STEP).min(c1);
            let off = offset_at(tz, next)?;
            if off != prev {
                // Binary search the first second with the new offset in (t, next].
                let (mut lo, mut hi) = (t, next);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if offset_at(tz, mid)? == off {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                out.push(hi);
                if !offsets.contains(&off) {
                    offsets.push(off);
                }
                prev = off;
            }
            t = next;
        }
        for off in offsets {
            for day in (c0 + off).div_euclid(DAY)..=(c1 + off).div_euclid(DAY) {
                let c = day * DAY + i64::from(self.start) - off;
                if c0 < c && c <= c1 {
                    out.push(c);
                }
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveDateTime};
    use chrono_tz::America::{Adak, Anchorage, Los_Angeles as LA, New_York as NY};
    use chrono_tz::America::{Phoenix, St_Johns};
    use chrono_tz::Asia::{Kathmandu, Kolkata};
    use chrono_tz::Australia::{Lord_Howe, Sydney};
    use chrono_tz::Europe::London;
    use chrono_tz::Pacific::{Chatham, Honolulu};
    use proptest::prelude::*;

    /// "YYYY-MM-DDTHH:MM:SS" read as UTC.
    fn u(s: &str) -> DateTime<Utc> {
        let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S");
        t.expect(s).and_utc()
    }
    fn w((s, e): (&str, &str)) -> CallingWindow {
        CallingWindow::parse(s, e).expect("valid window")
    }
    const FED: (&str, &str) = ("08:00", "21:00");

    #[test]
    fn parse_and_accessors() {
        let (f, p) = (CallingWindow::us_federal(), CallingWindow::parse);
        let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0);
        assert_eq!((f, Some(f.start()), f.end()), (w(FED), hm(8, 0), hm(21, 0)));
        assert_eq!(w(("8:00", "24:00")).end(), None);
        assert_eq!(Some(w((" 00:00", "00:01 ")).start()), hm(0, 0));
        for s in ",8,24:00,08:60,08:0,108:00,-1:00,a:bc,08:00:00,８:00".split(',') {
            assert_eq!(p(s, "21:00"), Err(WindowError::BadStart(s.into())));
        }
        for e in ",24:01,25:00,21:5,9pm".split(',') {
            assert_eq!(p("08:00", e), Err(WindowError::BadEnd(e.into())));
        }
        let msg = p("21:00", "08:00").map_err(|e| e.to_string());
        let want = r#"calling-window start "21:00" must be before end "08:00""#;
        assert_eq!(msg, Err(want.to_string()));
        assert!(p("08:00", "08:00").is_err());
        let long = p(&"9".repeat(10_000), "21:00").map_err(|e| e.to_string());
        assert!(long.is_err_and(|m| m.len() < 200));
    }

    type Row = (String, CallingWindow, Vec<Tz>, DateTime<Utc>, String);
    /// Table rows: `WINDOW ZONES UTC-INSTANT EXPECT  # comment`, WINDOW = `HH:MM-HH:MM`,
    /// ZONES = comma-separated IANA names or `-` for none, instants `YYYY-MM-DDTHH:MM:SS` UTC.
    fn rows(table: &str) -> Vec<Row> {
        let lines = table.lines().map(|l| l.split('#').next().unwrap_or(""));
        let row = |l: &str| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 4, "bad row {l}");
            let (s, e) = f[0].split_once('-').expect(l);
            let zones = f[1].split(',').filter(|z| *z != "-");
            let zones = zones.map(|z| z.parse().expect(z)).collect();
            (l.trim().into(), w((s, e)), zones, u(f[2]), f[3].into())
        };
        lines.filter(|l| !l.trim().is_empty()).map(row).collect()
    }

    /// Asserts `win.is_open(zones, at) == expect_open`; `row` labels the failure.
    fn check(win: CallingWindow, zones: &[Tz], at: DateTime<Utc>, expect_open: bool, row: &str) {
        assert_eq!(win.is_open(zones, at), expect_open, "{row}");
    }

    #[test]
    fn is_open_table() {
        let map = super::super::tz::TzMap::embedded();
        let ak = map.zones_for_digits("19075550100");
        assert_eq!(ak, Some(vec![Adak, Anchorage]));
        assert_eq!(map.zones_for_digits("18085550100"), Some(vec![Honolulu]));
        let table = "
            # pitfalls D.15: Los Angeles refused at 07:59 Pacific while it is 10:59 Eastern
            08:00-21:00 America/Los_Angeles 2026-01-15T15:59:00 closed
            08:00-21:00 America/New_York    2026-01-15T15:59:00 open
            08:00-21:00 America/Los_Angeles 2026-01-15T16:00:00 open
            # pitfalls D.16: 12:30Z = 03:30 Anchorage, 02:30 Adak, 02:30 Honolulu
            08:00-21:00 America/Adak,America/Anchorage 2026-01-15T12:30:00 closed
            08:00-21:00 Pacific/Honolulu    2026-01-15T12:30:00 closed
            08:00-21:00 Pacific/Honolulu    2026-01-15T18:00:00 open   # 08:00 HST
            # boundaries, New York EST = UTC-5
            08:00-21:00 America/New_York    2026-01-15T12:59:59 closed
            08:00-21:00 America/New_York    2026-01-15T13:00:00 open
            08:00-21:00 America/New_York    2026-01-16T01:59:59 open
            08:00-21:00 America/New_York    2026-01-16T02:00:00 closed
            # multi-zone: every zone must be open
            08:00-21:00 America/New_York,America/Los_Angeles 2026-01-15T14:00:00 closed # 09/06
            08:00-21:00 America/New_York,America/Los_Angeles 2026-01-15T16:00:00 open   # 11/08
            08:00-21:00 America/New_York,America/Los_Angeles 2026-01-16T02:00:00 closed # 21/18
            08:00-21:00 America/Boise,America/Los_Angeles 2026-01-15T15:30:00 closed # 208 split
            08:00-21:00 -                   2026-01-15T16:00:00 closed # no zones = unknown
            # 2026-03-08 spring forward (07:00Z, 02:00 EST -> 03:00 EDT), EDT = UTC-4
            08:00-21:00 America/New_York    2026-03-08T11:59:59 closed
            08:00-21:00 America/New_York    2026-03-08T12:00:00 open
            08:00-21:00 America/New_York    2026-03-09T00:59:59 open
            08:00-21:00 America/New_York    2026-03-09T01:00:00 closed
            # 2026-11-01 fall back (06:00Z, 02:00 EDT -> 01:00 EST), EST = UTC-5
            08:00-21:00 America/New_York    2026-11-01T12:59:59 closed
            08:00-21:00 America/New_York    2026-11-01T13:00:00 open
            08:00-21:00 America/New_York    2026-11-02T01:59:59 open
            08:00-21:00 America/New_York    2026-11-02T02:00:00 closed
            # Arizona: MST (UTC-7) all year while Denver moves to MDT
            08:00-21:00 America/Phoenix     2026-07-15T15:00:00 open
            08:00-21:00 America/Phoenix     2026-07-15T14:00:00 closed
            08:00-21:00 America/Denver      2026-07-15T14:00:00 open
            08:00-21:00 America/Phoenix     2026-01-15T15:00:00 open
            # non-hour offsets: +05:30, +05:45
            08:00-21:00 Asia/Kolkata        2026-01-15T02:29:59 closed
            08:00-21:00 Asia/Kolkata        2026-01-15T02:30:00 open
            08:00-21:00 Asia/Kathmandu      2026-01-15T02:14:59 closed
            08:00-21:00 Asia/Kathmandu      2026-01-15T02:15:00 open
            # end 24:00 = open through 23:59:59 local
            09:00-24:00 America/New_York    2026-01-16T04:59:59 open
            09:00-24:00 America/New_York    2026-01-16T05:00:00 closed
        ";
        for (row, win, zones, at, want) in rows(table) {
            check(win, &zones, at, want == "open", &row);
        }
        let sub = u("2026-01-16T01:59:59") + Duration::milliseconds(999);
        check(w(FED), &[NY], sub, true, "NY 20:59:59.999");
    }

    #[test]
    fn next_open_table() {
        let table = "
            # 22:00 EST -> next day 08:00:00 EST; 07:59:59 -> 08:00:00; DST day 08:00 EDT
            08:00-21:00 America/New_York 2026-01-16T03:00:00 2026-01-16T13:00:00
            08:00-21:00 America/New_York 2026-01-15T12:59:59 2026-01-15T13:00:00
            08:00-21:00 America/New_York 2026-03-08T03:00:00 2026-03-08T12:00:00
            # start 02:30 does not exist on 2026-03-08: first valid instant is 03:00 EDT
            02:30-21:00 America/New_York 2026-03-08T06:00:00 2026-03-08T07:00:00
            # fall back re-enters [00:00, 01:30): 01:30 EDT closed, 01:00 EST (06:00Z) open
            00:00-01:30 America/New_York 2026-11-01T05:30:00 2026-11-01T06:00:00
            # 01:30 happens twice: first EDT (05:30Z), then EST (06:30Z)
            01:30-01:45 America/New_York 2026-11-01T05:00:00 2026-11-01T05:30:00
            01:30-01:45 America/New_York 2026-11-01T05:45:00 2026-11-01T06:30:00
            # multi-zone waits for the last zone: 08:00 PST = 16:00Z
            08:00-21:00 America/Los_Angeles,America/New_York 2026-01-15T12:00:00 \
                                                             2026-01-15T16:00:00
            08:00-21:00 Asia/Kathmandu 2026-01-15T00:00:00 2026-01-15T02:15:00
            08:00-21:00 Asia/Kolkata,Asia/Kathmandu 2026-01-15T00:00:00 2026-01-15T02:30:00
            # never overlapping (Honolulu 18-19Z, Kolkata 02:30-03:30Z); no zones
            08:00-09:00 Pacific/Honolulu,Asia/Kolkata 2026-01-15T00:00:00 none
            08:00-21:00 - 2026-01-15T00:00:00 none
            # NY/London 08-13 overlap only between the US (Mar 8) and EU (Mar 29) switches;
            # the answer is exactly 24 h after `after` (edge of a search chunk)
            08:00-13:00 America/New_York,Europe/London 2026-01-15T00:00:00 none
            08:00-13:00 America/New_York,Europe/London 2026-03-07T12:00:00 2026-03-08T12:00:00
        ";
        for (row, win, zones, after, want) in rows(table) {
            let want = (want != "none").then(|| u(&want));
            assert_eq!(win.next_open(&zones, after), want, "{row}");
        }
        let open = u("2026-01-15T15:00:00") + Duration::nanoseconds(123);
        assert_eq!(w(FED).next_open(&[NY], open), Some(open));
        let early = u("2026-01-15T12:59:59") + Duration::milliseconds(500);
        let eight = u("2026-01-15T13:00:00");
        assert_eq!(w(FED).next_open(&[NY], early), Some(eight));
        for at in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
            let zones = [Kolkata, NY];
            let _ = (w(FED).next_open(&zones, at), w(FED).is_open(&zones, at));
        }
    }

    const ZONES: &[Tz] =
        &[Kolkata, Kathmandu, Honolulu, Adak, Anchorage, Phoenix, NY, LA, Sydney, Lord_Howe, London, St_Johns, Chatham];
    /// DST transition days: US, EU, AU/Lord Howe, NZ/Chatham (2026), US 2027–28.
    const DST_DAYS: &str = "2026-03-08 2026-11-01 2026-03-29 2026-10-25 2026-04-05 2026-10-04 \
                            2026-09-27 2027-03-14 2027-11-07 2028-03-12 2028-11-05";
    const DST_N: usize = 11;
    fn dst_day(i: usize) -> i64 {
        let d = DST_DAYS.split_whitespace().nth(i).expect("i < DST_N");
        u(&format!("{d}T00:00:00")).timestamp()
    }

    /// Brute-force oracle: every open-set boundary of ZONES is on a whole UTC minute in
    /// 2025–2028, so the first open instant is `after` or the first open whole minute.
    fn brute(win: CallingWindow, zones: &[Tz], after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if win.is_open(zones, after) {
            return Some(after);
        }
        let first = (after.timestamp().div_euclid(60) + 1) * 60;
        (first..=after.timestamp() + SEARCH_HORIZON)
            .step_by(60)
            .filter_map(|m| DateTime::from_timestamp(m, 0))
            .find(|&t| win.is_open(zones, t))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn next_open_is_earliest_open_instant(
            idx in proptest::collection::vec(0..ZONES.len(), 1..=3),
            secs in prop_oneof![
                1_735_689_600i64..1_861_920_000,
                (0..DST_N, -2 * DAY..2 * DAY).prop_map(|(i, d)| dst_day(i) + d),
            ],
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
            (a, b) in (0u32..1440, 0u32..1440),
        ) {
            let zones: Vec<Tz> = idx.iter().map(|&i| ZONES[i]).collect();
            let (s, e) = (a.min(b), a.max(b) + 1);
            let hhmm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
            let win = CallingWindow::parse(&hhmm(s), &hhmm(e)).unwrap();
            let after = DateTime::from_timestamp(secs, nanos).unwrap();
            let got = win.next_open(&zones, after);
            prop_assert_eq!(got, brute(win, &zones, after));
            if win.is_open(&zones, after) {
                prop_assert_eq!(got, Some(after));
            }
            if let Some(r) = got {
                prop_assert!(r >= after && win.is_open(&zones, r));
                prop_assert_eq!(win.next_open(&zones, r), Some(r));
                let before = r - Duration::seconds(1);
                if r != after {
                    prop_assert!(r.timestamp_subsec_nanos() == 0 && r.timestamp() % 60 == 0);
                    prop_assert!(before < after || !win.is_open(&zones, before));
                }
            }
        }
    }
}
