//! Tests for `rules.rs`: the shipped data file, parse errors, and table-driven gate checks.

use super::*;
use chrono::{Duration, NaiveDateTime};
use chrono_tz::America::{Adak, Anchorage, Chicago, Denver, Los_Angeles, New_York, Phoenix, Puerto_Rico};
use chrono_tz::Asia::Kolkata;
use chrono_tz::Pacific::{Guam, Honolulu};
use proptest::prelude::*;

/// "YYYY-MM-DDTHH:MM:SS" read as UTC.
fn u(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").expect(s).and_utc()
}
fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect(s)
}

/// The shipped rules plus the compliance.md example blackout (LA, Tropical Storm Gordon dates moved to 2026).
fn fixture() -> StateRules {
    let blackout = "[[blackout]]\nstates = [\"LA\"]\nfrom = \"2026-09-03\"\nto = 2026-10-03\nreason = \"emergency\"\n";
    StateRules::parse(&format!("{EMBEDDED}\n{blackout}")).expect("fixture parses")
}

struct Row {
    text: String,
    profile: Profile,
    window: CallingWindow,
    days: [bool; 7],
    zones: Vec<Tz>,
    states: Vec<String>,
    at: DateTime<Utc>,
    expect: String,
}

/// Table rows: `PROFILE WINDOW DAYS ZONES STATES UTC-INSTANT EXPECT  # comment`. PROFILE = `us`|`none`,
/// WINDOW = `HH:MM-HH:MM` (campaign), DAYS = `all`|`wkd` (Mon–Fri)|`none`, ZONES and STATES comma-separated
/// or `-` for none.
fn rows(table: &str) -> Vec<Row> {
    let parse = |line: &str| {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 7, "bad row {line}");
        let (start, end) = f[1].split_once('-').expect(line);
        let list = |s: &str| s.split(',').filter(|x| *x != "-").map(str::to_string).collect::<Vec<_>>();
        Row {
            text: line.trim().to_string(),
            profile: if f[0] == "us" { Profile::Us } else { Profile::None },
            window: CallingWindow::parse(start, end).expect(line),
            days: match f[2] {
                "all" => [true; 7],
                "wkd" => [true, true, true, true, true, false, false],
                _ => [false; 7],
            },
            zones: list(f[3]).iter().map(|z| z.parse().expect(z)).collect(),
            states: list(f[4]),
            at: u(f[5]),
            expect: f[6].to_string(),
        }
    };
    let lines = table.lines().map(|l| l.split('#').next().unwrap_or(""));
    lines.filter(|l| !l.trim().is_empty()).map(parse).collect()
}

fn gate<'a>(rules: &'a StateRules, row: &Row) -> Gate<'a> {
    Gate { profile: row.profile, campaign_window: row.window, allowed_days: row.days, rules }
}

#[test]
fn embedded_data_file() {
    let rules = StateRules::embedded();
    let codes: Vec<&str> = rules.states().iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["AL", "FL", "LA", "MD", "MS", "OK"]);
    let eight_to_eight = CallingWindow::parse("08:00", "20:00").ok();
    for code in ["FL", "OK", "MD"] {
        let r = rules.get(code).expect(code);
        assert_eq!((r.window, r.max_calls_per_24h, r.automated_consent_required), (eight_to_eight, Some(3), true));
        assert!(!r.no_sunday && r.holidays.is_empty(), "{code}");
    }
    for code in ["AL", "LA", "MS"] {
        let r = rules.get(code).expect(code);
        assert!(r.no_sunday && r.max_calls_per_24h.is_none() && !r.automated_consent_required, "{code}");
    }
    assert_eq!(rules.get("ms").map(|r| r.window), Some(eight_to_eight));
    assert_eq!(rules.get("AL").map(|r| r.window), Some(None));
    for r in rules.states() {
        assert_eq!(r.reviewed, d("2026-11-21"), "{}", r.code);
        assert!(r.source.contains("https://"), "{}", r.code);
        assert!(r.holidays.iter().all(|h| (d("2026-01-01")..=d("2027-12-31")).contains(h)), "{}", r.code);
    }
    let (al, la) = (&rules.get("AL").expect("AL").holidays, &rules.get("LA").expect("LA").holidays);
    assert_eq!((al.len(), la.len()), (35, 31));
    // Observed dates: Saturday → Friday before, Sunday → Monday after (both years, incl. New Year 2028).
    for h in ["2026-07-03", "2027-07-05", "2027-12-24", "2027-12-31", "2026-11-26", "2027-11-25"] {
        assert!(al.contains(&d(h)) && la.contains(&d(h)), "{h}");
    }
    for (code, list) in [("AL", al), ("LA", la)] {
        for h in list {
            let observed = match h.weekday() {
                chrono::Weekday::Sat => h.pred_opt(),
                chrono::Weekday::Sun => h.succ_opt(),
                _ => continue,
            };
            assert!(observed.is_some_and(|o| list.contains(&o)), "{code} {h}: observed date missing");
        }
    }
    assert!(rules.blackouts().is_empty());
    assert_eq!(rules.get("TX"), None);
}

#[test]
fn parse_accepts_minimal_and_toml_dates() {
    let text = concat!(
        "[[state]]\ncode = \"ZZ\"\nsource = \" s \"\nreviewed = 2026-11-21\n",
        "holidays = [2026-12-25, \"2026-01-01\", \"2026-12-25\"]\n",
    );
    let rules = StateRules::parse(text).expect("valid");
    let r = rules.get("zz").expect("ZZ");
    assert_eq!((r.source.as_str(), r.reviewed, r.window, r.no_sunday), ("s", d("2026-11-21"), None, false));
    assert_eq!(r.holidays, [d("2026-01-01"), d("2026-12-25")]);
    assert_eq!(StateRules::parse("").expect("empty file"), StateRules::default());
}

#[test]
fn parse_errors_name_entry_and_field() {
    let ok = "code = \"FL\"\nsource = \"s\"\nreviewed = \"2026-11-21\"\n";
    let second = |extra: &str| {
        format!("[[state]]\ncode = \"AL\"\nsource = \"s\"\nreviewed = \"2026-11-21\"\n[[state]]\n{extra}")
    };
    let blackout = |states: &str, to: &str, rest: &str| {
        format!("[[blackout]]\nstates = {states}\nfrom = \"2026-10-03\"\nto = \"{to}\"\n{rest}")
    };
    let cases: &[(String, &[&str])] = &[
        (second(&format!("{ok}windw = 1")), &["[[state]] entry 2 (code \"FL\")", "unknown field `windw`"]),
        (second(&format!("{ok}window = {{ start = \"21:00\", end = \"08:00\" }}")), &["entry 2", "`window`", "before"]),
        (second(&format!("{ok}window = {{ start = \"08:00\", end = \"25:00\" }}")), &["`window`", "25:00"]),
        (second(&format!("{ok}window = {{ start = \"08:00\", end = \"20:00\", x = 1 }}")), &["unknown field `x`"]),
        (second(&format!("{ok}window = {{ start = \"08:00\" }}")), &["missing field `end` in `window`"]),
        (
            second(&format!("{ok}max_calls_per_24h = 0")),
            &["(code \"FL\")", "expected a nonzero u32 in `max_calls_per_24h`"],
        ),
        (second(&format!("{ok}max_calls_per_24h = \"3\"")), &["expected a nonzero u32 in `max_calls_per_24h`"]),
        (second(&format!("{ok}no_sunday = \"yes\"")), &["(code \"FL\")", "expected a boolean in `no_sunday`"]),
        (second(&format!("{ok}holidays = [\"2026-01-01\", \"2026-13-01\"]")), &["`holidays`", "item 2", "2026-13-01"]),
        (second(&format!("{ok}automated_consent_required = 1")), &["`automated_consent_required`"]),
        (second("code = \"fl\"\nsource = \"s\"\nreviewed = \"2026-11-21\""), &["entry 2 (code \"fl\")", "`code`"]),
        (second("code = \"FLA\"\nsource = \"s\"\nreviewed = \"2026-11-21\""), &["`code`", "two-letter"]),
        (second("code = \"FL\"\nreviewed = \"2026-11-21\""), &["(code \"FL\")", "missing field `source`"]),
        (second("code = \"FL\"\nsource = \"\"\nreviewed = \"2026-11-21\""), &["field `source`: must not be empty"]),
        (second("code = \"FL\"\nsource = \"s\"\nreviewed = \"21/11/2026\""), &["`reviewed`", "YYYY-MM-DD"]),
        (second("code = \"FL\"\nsource = \"s\"\nreviewed = 2026-11-21T10:00:00"), &["`reviewed`"]),
        (second("source = \"s\"\nreviewed = \"2026-11-21\""), &["entry 2 (code \"?\")", "missing field `code`"]),
        (second("code = \"AL\"\nsource = \"s\"\nreviewed = \"2026-11-21\""), &["entry 2 (code \"AL\")", "duplicate"]),
        (blackout("[\"LA\"]", "2026-09-03", "reason = \"r\""), &["[[blackout]] entry 1", "`to`", "before"]),
        (blackout("[]", "2026-10-03", "reason = \"r\""), &["`states`", "at least one"]),
        (blackout("[\"La\"]", "2026-10-03", "reason = \"r\""), &["`states`", "item 1"]),
        (blackout("[\"LA\"]", "2026-10-03", ""), &["missing field `reason`"]),
        (blackout("[\"LA\"]", "2026-10-03", "reason = \"r\"\nuntil = 1"), &["unknown field `until`"]),
        ("[[states]]\ncode = \"FL\"".into(), &["state rules", "unknown field `states`"]),
        ("state = 1".into(), &["state rules", "line 1"]),
        (
            "state = [1]".into(),
            &["[[state]] entry 1 (code \"?\")", "invalid type: integer `1`, expected a [[state]] table"],
        ),
        ("[[state]\ncode = \"FL\"".into(), &["state rules", "line 1"]),
    ];
    for (text, wants) in cases {
        let err = format!("{:#}", StateRules::parse(text).expect_err(text));
        for want in *wants {
            assert!(err.contains(want), "{text:?}: {err:?} lacks {want:?}");
        }
    }
    let long = format!("[[state]]\ncode = \"{}\"\nsource = \"s\"\nreviewed = \"2026-11-21\"", "X".repeat(10_000));
    assert!(StateRules::parse(&long).is_err_and(|e| e.to_string().len() < 300));
}

#[test]
fn is_open_table() {
    let table = "
        # federal edges, New York EST (UTC-5), Thursday 2026-01-15
        us 00:00-24:00 all America/New_York - 2026-01-15T12:59:59 closed   # 07:59:59
        us 00:00-24:00 all America/New_York - 2026-01-15T13:00:00 open     # 08:00:00
        us 00:00-24:00 all America/New_York - 2026-01-16T01:59:59 open     # 20:59:59
        us 00:00-24:00 all America/New_York - 2026-01-16T02:00:00 closed   # 21:00:00
        # FL 08:00-20:00; area-code state and address state both apply, stricter wins
        us 08:00-21:00 all America/New_York FL    2026-01-16T00:59:59 open   # 19:59:59
        us 08:00-21:00 all America/New_York FL    2026-01-16T01:00:00 closed # 20:00:00
        us 08:00-21:00 all America/New_York TX,FL 2026-01-16T01:30:00 closed
        us 08:00-21:00 all America/New_York TX    2026-01-16T01:30:00 open
        us 08:00-21:00 all America/New_York fl    2026-01-16T01:30:00 closed # lower case
        us 08:00-21:00 all America/Chicago  OK    2026-01-16T02:00:00 closed # 20:00 CST
        us 08:00-21:00 all America/New_York MD    2026-01-16T01:00:00 closed
        us 08:00-21:00 all America/Chicago  MS    2026-01-16T01:59:59 open   # 19:59:59 CST
        none 00:00-24:00 all America/New_York FL  2026-01-15T12:00:00 closed # 07:00: state still applies
        # pitfalls 16: 12:30Z is 03:30 Anchorage, 02:30 Adak and Honolulu
        us 08:00-21:00 all America/Anchorage AK 2026-01-15T12:30:00 closed
        us 08:00-21:00 all America/Adak,America/Anchorage AK 2026-01-15T12:30:00 closed
        us 08:00-21:00 all Pacific/Honolulu HI 2026-01-15T12:30:00 closed
        us 08:00-21:00 all Pacific/Honolulu HI 2026-01-15T18:00:00 open
        # Arizona: MST (UTC-7) all year, while Denver is on MDT (UTC-6) in July
        us 08:00-21:00 all America/Phoenix AZ 2026-07-15T14:59:59 closed
        us 08:00-21:00 all America/Phoenix AZ 2026-07-15T15:00:00 open
        us 08:00-21:00 all America/Denver  CO 2026-07-15T14:00:00 open
        us 08:00-21:00 all America/Phoenix AZ 2026-01-15T14:59:59 closed
        us 08:00-21:00 all America/Phoenix AZ 2026-01-15T15:00:00 open
        # multi-zone: every zone must be open
        us 08:00-21:00 all America/Chicago,America/Denver - 2026-01-15T14:00:00 closed # 08:00 / 07:00
        us 08:00-21:00 all America/Chicago,America/Denver - 2026-01-15T15:00:00 open   # 09:00 / 08:00
        us 08:00-21:00 all America/Chicago,America/Denver - 2026-01-16T03:00:00 closed # 21:00 / 20:00
        # allowed days, on each zone's local date
        us 08:00-21:00 wkd  America/New_York - 2026-01-17T17:00:00 closed # Saturday 12:00
        us 08:00-21:00 wkd  Pacific/Honolulu - 2026-01-17T04:00:00 open   # Friday 18:00 HST
        us 08:00-21:00 none America/New_York - 2026-01-15T17:00:00 closed
        # Sunday bans and holidays, Chicago CST (UTC-6)
        us 08:00-21:00 all America/Chicago AL 2026-01-17T18:00:00 open   # Saturday noon
        us 08:00-21:00 all America/Chicago AL 2026-01-18T18:00:00 closed # Sunday noon
        us 08:00-21:00 all America/Chicago TX 2026-01-18T18:00:00 open
        us 08:00-21:00 all America/Chicago MS 2026-01-18T18:00:00 closed
        us 08:00-21:00 all America/Chicago AL 2026-01-19T18:00:00 closed # Lee / MLK day
        us 08:00-21:00 all America/Chicago LA 2026-11-25T18:00:00 open
        us 08:00-21:00 all America/Chicago LA 2026-11-26T18:00:00 closed # Thanksgiving
        us 08:00-21:00 all America/Chicago LA 2026-11-27T18:00:00 closed # day after
        us 08:00-21:00 all America/Chicago LA 2026-07-03T18:00:00 closed # July 4 observed
        us 08:00-21:00 all America/Chicago AL 2027-12-31T18:00:00 closed # New Year 2028 observed
        # holidays follow the local date: AL Veterans Day, Wednesday 2026-11-11 CST
        none 00:00-24:00 all America/Chicago AL 2026-11-11T05:59:59 open   # Tue 23:59:59
        none 00:00-24:00 all America/Chicago AL 2026-11-11T06:00:00 closed # Wed 00:00
        none 00:00-24:00 all America/Chicago AL 2026-11-12T05:59:59 closed
        none 00:00-24:00 all America/Chicago AL 2026-11-12T06:00:00 open
        none 00:00-24:00 all America/Chicago,America/New_York AL 2026-11-12T05:30:00 closed # Chicago still Wed
        # blackout LA 2026-09-03..2026-10-03 inclusive (CDT)
        us 08:00-21:00 all America/Chicago LA    2026-09-02T18:00:00 open
        us 08:00-21:00 all America/Chicago LA    2026-09-03T18:00:00 closed
        us 08:00-21:00 all America/Chicago LA    2026-10-03T18:00:00 closed
        us 08:00-21:00 all America/Chicago LA    2026-10-05T18:00:00 open
        us 08:00-21:00 all America/Chicago TX    2026-09-03T18:00:00 open
        us 08:00-21:00 all America/Chicago TX,LA 2026-09-03T18:00:00 closed
        # profiles and campaign windows: intersection, campaign never widens
        none 00:00-24:00 all America/New_York - 2026-01-15T08:00:00 open   # 03:00 local
        none 00:00-24:00 all Asia/Kolkata     - 2026-01-15T20:00:00 open   # 01:30 local
        us   06:00-23:00 all America/New_York - 2026-01-15T12:00:00 closed # 07:00: federal wins
        us   06:00-23:00 all America/New_York - 2026-01-16T03:00:00 closed # 22:00
        us   09:00-17:00 all America/New_York - 2026-01-15T13:30:00 closed # 08:30
        us   09:00-17:00 all America/New_York - 2026-01-15T14:00:00 open
        us   09:00-17:00 all America/New_York - 2026-01-15T22:00:00 closed # 17:00
        # unknown zone is not dialable
        us   08:00-21:00 all - - 2026-01-15T17:00:00 closed
        none 00:00-24:00 all - - 2026-01-15T17:00:00 closed
    ";
    let rules = fixture();
    for row in rows(table) {
        let states: Vec<&str> = row.states.iter().map(String::as_str).collect();
        assert_eq!(gate(&rules, &row).is_open(&row.zones, &states, row.at), row.expect == "open", "{}", row.text);
    }
    let row = &rows("us 08:00-21:00 all America/New_York - 2026-01-16T01:59:59 open")[0];
    let sub = row.at + Duration::milliseconds(999);
    assert!(gate(&rules, row).is_open(&[New_York], &[], sub), "20:59:59.999 is open");
}

#[test]
fn next_open_table() {
    let table = "
        # 07:59:59 -> 08:00:00; 21:00 -> next day 08:00 EST; FL closes at 20:00
        us 08:00-21:00 all America/New_York - 2026-01-15T12:59:59 2026-01-15T13:00:00
        us 08:00-21:00 all America/New_York - 2026-01-16T02:00:00 2026-01-16T13:00:00
        us 08:00-21:00 all America/New_York FL 2026-01-16T01:00:00 2026-01-16T13:00:00
        # Friday 21:30 EST, weekdays only -> Monday 08:00 EST
        us 08:00-21:00 wkd America/New_York - 2026-01-17T02:30:00 2026-01-19T13:00:00
        # spring forward 2026-03-08 (07:00Z): 02:30 does not exist, the window opens at 03:00 EDT
        none 02:30-21:00 all America/New_York - 2026-03-08T06:00:00 2026-03-08T07:00:00
        us   08:00-21:00 all America/New_York - 2026-03-08T03:00:00 2026-03-08T12:00:00 # 08:00 EDT
        # fall back 2026-11-01 (06:00Z): 01:30 happens twice, the first (EDT) opens
        none 01:30-21:00 all America/New_York - 2026-11-01T04:00:00 2026-11-01T05:30:00
        none 01:30-01:45 all America/New_York - 2026-11-01T05:45:00 2026-11-01T06:30:00 # then the EST one
        none 00:00-01:30 all America/New_York - 2026-11-01T05:30:00 2026-11-01T06:00:00 # clock moves back in
        # AL: Saturday 21:00 CST -> Sunday banned, Monday is Lee/MLK day -> Tuesday 08:00 CST
        us 08:00-21:00 all America/Chicago AL 2026-01-18T03:00:00 2026-01-20T14:00:00
        us 08:00-21:00 all America/Chicago AL 2026-01-25T03:00:00 2026-01-26T14:00:00
        # LA: Wednesday 20:00 CST -> Thanksgiving, day after -> Saturday 08:00 CST
        us 08:00-21:00 all America/Chicago LA 2026-11-26T02:00:00 2026-11-28T14:00:00
        # LA blackout through Saturday 2026-10-03, Sunday banned -> Monday 08:00 CDT
        us 08:00-21:00 all America/Chicago LA 2026-09-03T12:00:00 2026-10-05T13:00:00
        us 08:00-21:00 all America/Chicago TX 2026-09-03T12:00:00 2026-09-03T13:00:00
        # multi-zone: opens at 08:00 Denver = 09:00 Chicago
        us 08:00-21:00 all America/Chicago,America/Denver - 2026-01-15T10:00:00 2026-01-15T15:00:00
        # 12:30Z Alaska and Hawaii: 08:00 AKST = 17:00Z, 08:00 HST = 18:00Z
        us 08:00-21:00 all America/Anchorage AK 2026-01-15T12:30:00 2026-01-15T17:00:00
        us 08:00-21:00 all America/Adak,America/Anchorage AK 2026-01-15T12:30:00 2026-01-15T18:00:00
        us 08:00-21:00 all Pacific/Honolulu HI 2026-01-15T12:30:00 2026-01-15T18:00:00
        # Arizona: 08:00 MST = 15:00Z in July and January
        us 08:00-21:00 all America/Phoenix AZ 2026-07-15T12:00:00 2026-07-15T15:00:00
        us 08:00-21:00 all America/Phoenix AZ 2026-01-15T12:00:00 2026-01-15T15:00:00
        # never: windows never overlap (Honolulu 18-19Z, Kolkata 02:30-03:30Z), no day, no zone,
        # campaign outside the federal window
        us 08:00-09:00 all Pacific/Honolulu,Asia/Kolkata - 2026-01-15T00:00:00 none
        us 08:00-21:00 none America/New_York - 2026-01-15T00:00:00 none
        us 08:00-21:00 all - - 2026-01-15T00:00:00 none
        us 21:00-24:00 all America/New_York - 2026-01-15T00:00:00 none
        # already open: `after` itself
        none 00:00-24:00 all America/New_York - 2026-01-15T08:00:00 2026-01-15T08:00:00
    ";
    let rules = fixture();
    for row in rows(table) {
        let states: Vec<&str> = row.states.iter().map(String::as_str).collect();
        let want = (row.expect != "none").then(|| u(&row.expect));
        assert_eq!(gate(&rules, &row).next_open(&row.zones, &states, row.at), want, "{}", row.text);
    }
    let row = &rows("us 08:00-21:00 all America/New_York - 2026-01-15T12:59:59 -")[0];
    let g = gate(&rules, row);
    assert_eq!(g.next_open(&[New_York], &[], row.at + Duration::milliseconds(500)), Some(u("2026-01-15T13:00:00")));
    let open = u("2026-01-15T15:00:00") + Duration::nanoseconds(123);
    assert_eq!(g.next_open(&[New_York], &[], open), Some(open));
    for at in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
        let _ = (g.next_open(&[Kolkata, New_York], &["LA"], at), g.is_open(&[Kolkata], &["LA"], at));
    }
}

#[test]
fn caps_and_consent() {
    let rules = fixture();
    let g = Gate {
        profile: Profile::Us,
        campaign_window: CallingWindow::us_federal(),
        allowed_days: [true; 7],
        rules: &rules,
    };
    assert_eq!(g.max_calls_per_24h(&["FL"]), Some(3));
    assert_eq!(g.max_calls_per_24h(&["TX", "ok"]), Some(3));
    assert_eq!(g.max_calls_per_24h(&["TX", "AL"]), None);
    assert_eq!(g.max_calls_per_24h(&[]), None);
    let zz = "[[state]]\ncode = \"ZZ\"\nmax_calls_per_24h = 2\nsource = \"s\"\nreviewed = \"2026-11-21\"";
    let all = StateRules::parse(&format!("{EMBEDDED}\n{zz}")).expect("valid");
    let g2 = Gate { rules: &all, ..g };
    assert_eq!(g2.max_calls_per_24h(&["FL", "ZZ"]), Some(2));
    assert!(g.automated_consent_required(&["TX", "MD"]) && !g.automated_consent_required(&["AL", "TX"]));
}

const ZONES: &[Tz] =
    &[New_York, Chicago, Denver, Phoenix, Los_Angeles, Anchorage, Adak, Honolulu, Puerto_Rico, Guam, Kolkata];
const STATES: &[&str] = &["FL", "OK", "MD", "AL", "LA", "MS", "TX", "NY", "CA", "AK", "HI"];
/// 00:00 UTC on the US DST transition days of 2026 and 2027.
const US_DST_DAYS: &[i64] = &[1_772_928_000, 1_793_491_200, 1_804_982_400, 1_825_545_600];
const CAMPAIGNS: &[(&str, &str)] =
    &[("08:00", "21:00"), ("00:00", "24:00"), ("09:00", "17:00"), ("02:30", "03:30"), ("01:00", "02:00")];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn next_open_is_first_open_instant(
        zone_idx in proptest::collection::vec(0..ZONES.len(), 1..=3),
        state_idx in proptest::collection::vec(0..STATES.len(), 0..=2),
        secs in prop_oneof![
            1_767_225_600i64..1_830_297_600, // 2026-01-01 .. 2028-01-01 UTC
            (0..US_DST_DAYS.len(), -2 * DAY..2 * DAY).prop_map(|(i, delta)| US_DST_DAYS[i] + delta),
        ],
        us in any::<bool>(),
        campaign in 0..CAMPAIGNS.len(),
        days in proptest::array::uniform7(prop_oneof![4 => Just(true), 1 => Just(false)]),
    ) {
        let rules = fixture();
        let zones: Vec<Tz> = zone_idx.iter().map(|&i| ZONES[i]).collect();
        let states: Vec<&str> = state_idx.iter().map(|&i| STATES[i]).collect();
        let (start, end) = CAMPAIGNS[campaign];
        let profile = if us { Profile::Us } else { Profile::None };
        let campaign_window = CallingWindow::parse(start, end).unwrap();
        let g = Gate { profile, campaign_window, allowed_days: days, rules: &rules };
        let after = DateTime::from_timestamp(secs, 0).unwrap();
        let got = g.next_open(&zones, &states, after);
        if g.is_open(&zones, &states, after) {
            prop_assert_eq!(got, Some(after));
        }
        let Some(r) = got else { return Ok(()) };
        prop_assert!(r >= after && r <= after + Duration::days(400) && g.is_open(&zones, &states, r));
        let mut t = after;
        while t < r - Duration::seconds(1) {
            prop_assert!(!g.is_open(&zones, &states, t), "open at {} before {}", t, r);
            t += Duration::minutes(7);
        }
        if r > after {
            prop_assert!(!g.is_open(&zones, &states, r - Duration::seconds(1)));
        }
    }
}
