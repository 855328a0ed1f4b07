//! Checking what a user sends about caller numbers (a pasted list or CSV, a bulk
//! action, an edit, a reputation-service score file) before anything is written.
//! Errors name the line, the field and the reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::db::number_admin::Change;
use crate::db::numbers::NewNumber;
use crate::domain::phone::E164;
use crate::numbers::rotation::PRIORITIES;

/// Highest `max_daily_calls` accepted (ours: above this a cap means nothing).
pub const MAX_CAP: u32 = 100_000;
const MAX_TEXT: usize = 80;

/// A refused line of a pasted list or CSV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// 1-based line in the text.
    pub line: u64,
    pub field: String,
    pub value: String,
    pub reason: String,
}

impl Rejection {
    /// A refused line; the echoed value is cut to 80 characters.
    pub fn new(line: u64, field: &str, value: &str, reason: String) -> Rejection {
        Rejection { line, field: field.into(), value: value.chars().take(MAX_TEXT).collect(), reason }
    }
}

/// A pasted list or small CSV, read leniently: BOM stripped, cells trimmed, ragged
/// rows allowed, blank rows skipped. `headers` are the lower-cased column names when
/// the first line is a header (`is_header` decides), and unreadable rows are already
/// turned into rejections naming their line.
pub struct ListRows {
    pub headers: Option<Vec<String>>,
    /// (1-based line, cells)
    pub rows: Vec<(u64, csv::StringRecord)>,
    pub errors: Vec<Rejection>,
}

impl ListRows {
    pub fn read(text: &str, is_header: impl Fn(&str) -> bool) -> ListRows {
        let text = text.trim_start_matches('\u{feff}');
        let has_header = is_header(&text.lines().next().unwrap_or("").to_ascii_lowercase());
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(has_header)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = has_header
            .then(|| reader.headers().map(|h| h.iter().map(|s| s.to_ascii_lowercase()).collect()).unwrap_or_default());
        let (mut rows, mut errors) = (Vec::new(), Vec::new());
        for record in reader.records() {
            match record {
                Ok(r) if r.iter().all(str::is_empty) => {}
                Ok(r) => rows.push((r.position().map_or(0, |p| p.line()), r)),
                Err(e) => errors.push(Rejection {
                    line: e.position().map_or(0, |p| p.line()),
                    field: "row".into(),
                    value: String::new(),
                    reason: e.to_string(),
                }),
            }
        }
        ListRows { headers, rows, errors }
    }

    /// Position of the first header among `names`.
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        self.headers.as_ref()?.iter().position(|h| names.contains(&h.as_str()))
    }
}

/// Numbers to add, from a pasted list (one number per line) or a CSV whose header
/// names the columns `number` (or `phone`), `label`, `max_daily_calls`,
/// `rotation_priority`, `pool`. Bad lines are rejected one by one; good ones kept.
pub fn parse_numbers(text: &str, region: phonenumber::country::Id) -> (Vec<NewNumber>, Vec<Rejection>) {
    let list = ListRows::read(text, |first| first.contains("number") || first.contains("phone"));
    let col = |names: &[&str]| list.column(names);
    let (number_col, label_col) =
        (col(&["number", "phone", "phone_number", "caller_id"]).unwrap_or(0), col(&["label"]));
    let (cap_col, prio_col, pool_col) =
        (col(&["max_daily_calls", "cap"]), col(&["rotation_priority", "priority"]), col(&["pool"]));
    let (mut good, mut bad) = (Vec::new(), list.errors.clone());
    for (line, record) in &list.rows {
        let line = *line;
        let cell = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("").to_string();
        let raw = cell(Some(number_col));
        let reject = |field: &str, value: &str, reason: String| Rejection::new(line, field, value, reason);
        let number = match E164::parse(&raw, region) {
            Ok(n) => n,
            Err(e) => {
                bad.push(reject("number", &raw, e.to_string()));
                continue;
            }
        };
        let parsed = (|| {
            let cap = match cell(cap_col) {
                s if s.is_empty() => 100,
                s => cap(&s).map_err(|r| reject("max_daily_calls", &s, r))?,
            };
            let priority = match cell(prio_col) {
                s if s.is_empty() => 5,
                s => priority(&s).map_err(|r| reject("rotation_priority", &s, r))?,
            };
            let label = text_field(&cell(label_col)).map_err(|r| reject("label", &cell(label_col), r))?;
            let pool = pool_name(&cell(pool_col)).map_err(|r| reject("pool", &cell(pool_col), r))?;
            Ok(NewNumber {
                number: number.as_str().to_string(),
                label,
                max_daily_calls: cap,
                rotation_priority: priority,
                pool,
            })
        })();
        match parsed {
            Ok(n) if good.iter().any(|g: &NewNumber| g.number == n.number) => {
                bad.push(reject("number", &raw, "listed twice".into()));
            }
            Ok(n) => good.push(n),
            Err(r) => bad.push(r),
        }
    }
    (good, bad)
}

pub fn cap(s: &str) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|c| *c <= MAX_CAP)
        .ok_or_else(|| format!("must be a whole number 0..={MAX_CAP}"))
}

pub fn priority(s: &str) -> Result<u8, String> {
    s.trim().parse::<u8>().ok().filter(|p| PRIORITIES.contains(p)).ok_or_else(|| "must be 1..=10".to_string())
}

pub fn score(s: &str) -> Result<u8, String> {
    s.trim().parse::<u8>().ok().filter(|p| *p <= 100).ok_or_else(|| "must be a whole number 0..=100".to_string())
}

/// Empty → None; otherwise at most 80 characters with no control characters.
pub fn text_field(s: &str) -> Result<Option<String>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > MAX_TEXT || s.chars().any(char::is_control) {
        return Err(format!("at most {MAX_TEXT} characters, no control characters"));
    }
    Ok(Some(s.to_string()))
}

/// Empty → the shared pool; otherwise letters, digits, `-`, `_`, at most 40.
pub fn pool_name(s: &str) -> Result<Option<String>, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("shared") {
        return Ok(None);
    }
    if s.len() > 40 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err("a pool name is letters, digits, '-' or '_', at most 40".into());
    }
    Ok(Some(s.to_string()))
}

/// What the Numbers page's bulk bar and `POST /api/numbers/bulk` can do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Enable,
    Disable,
    SetCap,
    SetPriority,
    SetPool,
    SetScore,
    Rest,
    Quarantine,
    Restore,
    Retire,
}

impl BulkAction {
    pub fn parse(s: &str) -> Result<BulkAction, String> {
        serde_json::from_value(serde_json::Value::String(s.trim().to_string())).map_err(|_| {
            format!(
                "unknown action {s:?}; one of enable, disable, set_cap, set_priority, set_pool, set_score, \
                 rest, quarantine, restore, retire"
            )
        })
    }

    /// The edit this action makes; `value` is the cap, priority, pool, score or
    /// rest hours (default `rest_hours`).
    pub fn change(&self, value: &str, rest_hours: u32, now: DateTime<Utc>) -> Result<Change, String> {
        let field = |r: String, name: &str| format!("value: {name} {r}");
        Ok(match self {
            BulkAction::Enable => Change { rotation_enabled: Some(true), ..Change::default() },
            BulkAction::Disable => Change { rotation_enabled: Some(false), ..Change::default() },
            BulkAction::SetCap => {
                Change { max_daily_calls: Some(cap(value).map_err(|r| field(r, "cap"))?), ..Change::default() }
            }
            BulkAction::SetPriority => Change {
                rotation_priority: Some(priority(value).map_err(|r| field(r, "priority"))?),
                ..Change::default()
            },
            BulkAction::SetPool => {
                Change { pool: Some(pool_name(value).map_err(|r| field(r, "pool"))?), ..Change::default() }
            }
            BulkAction::SetScore => {
                let s = if value.trim().is_empty() { None } else { Some(score(value).map_err(|r| field(r, "score"))?) };
                Change { spam_score: Some((s, "manual".into())), ..Change::default() }
            }
            BulkAction::Rest => {
                let hours = if value.trim().is_empty() {
                    rest_hours
                } else {
                    value
                        .trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|h| (1..=24 * 365).contains(h))
                        .ok_or_else(|| "value: rest hours must be 1..=8760".to_string())?
                };
                let until = now + chrono::Duration::hours(i64::from(hours));
                Change { status: Some(("resting".into(), Some(crate::db::to_ms(until)))), ..Change::default() }
            }
            BulkAction::Quarantine => Change { status: Some(("quarantined".into(), None)), ..Change::default() },
            BulkAction::Restore => Change { status: Some(("active".into(), None)), ..Change::default() },
            BulkAction::Retire => Change { status: Some(("retired".into(), None)), ..Change::default() },
        })
    }
}

/// One imported score: E.164 number, score 0..=100, the service that scored it.
pub type ScoreRow = (String, u8, Option<String>);

/// A reputation service's scores: CSV `number,spam_score[,source]`, header optional.
pub fn parse_scores(text: &str, region: phonenumber::country::Id) -> (Vec<ScoreRow>, Vec<Rejection>) {
    let list = ListRows::read(text, |first| first.contains("score"));
    let (mut good, mut bad) = (Vec::new(), list.errors.clone());
    for (line, record) in &list.rows {
        let line = *line;
        let (raw, raw_score) = (record.get(0).unwrap_or(""), record.get(1).unwrap_or(""));
        let reject = |field: &str, value: &str, reason: String| Rejection::new(line, field, value, reason);
        // A stored number is matched as written (demo numbers are fictional 555s).
        let number = E164::parse(raw, region).or_else(|e| E164::from_stored(raw).ok_or(e));
        match (number, score(raw_score), text_field(record.get(2).unwrap_or(""))) {
            (Err(e), _, _) => bad.push(reject("number", raw, e.to_string())),
            (_, Err(r), _) => bad.push(reject("spam_score", raw_score, r)),
            (_, _, Err(r)) => bad.push(reject("source", record.get(2).unwrap_or(""), r)),
            (Ok(n), Ok(s), Ok(src)) => good.push((n.as_str().to_string(), s, src)),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: phonenumber::country::Id = phonenumber::country::Id::US;

    #[test]
    fn pasted_list_and_csv_with_per_line_errors() {
        let (good, bad) = parse_numbers("+1 (415) 237-0123\n202-237-0144\nnot a number\n\n+14152370123\n", US);
        assert_eq!(good.iter().map(|n| n.number.as_str()).collect::<Vec<_>>(), ["+14152370123", "+12022370144"]);
        assert_eq!((bad[0].line, bad[0].field.as_str()), (3, "number"));
        assert_eq!(bad[1].reason, "listed twice");

        let csv = "number,label,max_daily_calls,rotation_priority,pool\n\
                   +14152370123,SF,50,10,admissions\n+12022370144,DC,lots,5,\n+12122370100,NY,5,11,\n";
        let (good, bad) = parse_numbers(csv, US);
        assert_eq!(good.len(), 1);
        assert_eq!((good[0].max_daily_calls, good[0].rotation_priority), (50, 10));
        assert_eq!(good[0].pool.as_deref(), Some("admissions"));
        assert_eq!((bad[0].line, bad[0].field.as_str()), (3, "max_daily_calls"));
        assert_eq!(
            (bad[1].line, bad[1].field.as_str(), bad[1].reason.as_str()),
            (4, "rotation_priority", "must be 1..=10")
        );
    }

    #[test]
    fn bulk_actions_check_their_values() {
        let now = Utc::now();
        assert!(BulkAction::parse("explode").is_err());
        assert_eq!(BulkAction::SetCap.change("40", 48, now).unwrap().max_daily_calls, Some(40));
        assert!(BulkAction::SetPriority.change("0", 48, now).unwrap_err().contains("1..=10"));
        let rest = BulkAction::Rest.change("", 48, now).unwrap();
        let until = rest.status.unwrap().1.unwrap();
        assert_eq!(until, crate::db::to_ms(now + chrono::Duration::hours(48)));
        assert!(BulkAction::SetPool.change("bad pool!", 48, now).is_err());
    }

    #[test]
    fn score_files() {
        let (good, bad) = parse_scores("number,spam_score,source\n+14152370123,80,nomorobo\n+14152370124,101\n", US);
        assert_eq!(good, vec![("+14152370123".to_string(), 80, Some("nomorobo".to_string()))]);
        assert_eq!((bad[0].line, bad[0].field.as_str()), (3, "spam_score"));
    }
}
