//! The do-not-call list: one entry per E.164 number, across all campaigns, with an
//! append-only audit log (`dnc_events`) of every addition and removal.
//!
//! Every way a number gets on the list (the Numbers-style page, the API, an opt-out
//! by keypad or a future inbound path) goes through [`add`], in a write transaction:
//! once it commits, the next claim sees it (claims run on the same single writer and
//! check the list right before every dial), and the number's lead, if it is waiting
//! (`pending` or `scheduled`), is marked `do_not_call` in the same transaction.

use rusqlite::{OptionalExtension, params, params_from_iter};
use serde::Serialize;

use crate::db::{Conn, Tx};

/// One listed number.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(skip)]
    pub id: i64,
    pub phone: String,
    /// Where the opt-out came from: keypad | inbound | api | dashboard | … (kept from
    /// the first time the number was listed).
    pub source: String,
    pub reason: String,
    /// UTC ms.
    pub created_at: i64,
}

/// One change to the list, for the audit history.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub phone: String,
    /// added | removed
    pub action: String,
    pub source: String,
    pub reason: String,
    /// Who made the change: user | api | caller | system.
    pub actor: String,
    /// UTC ms.
    pub at: i64,
}

/// What [`add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// False when the number was already listed (its first entry is kept as it was).
    pub new: bool,
    /// Waiting leads with this number now marked `do_not_call`.
    pub leads_marked: usize,
}

const COLUMNS: &str = "id, phone, source, reason, created_at";

fn entry(r: &rusqlite::Row) -> rusqlite::Result<Entry> {
    Ok(Entry { id: r.get(0)?, phone: r.get(1)?, source: r.get(2)?, reason: r.get(3)?, created_at: r.get(4)? })
}

fn event(r: &rusqlite::Row) -> rusqlite::Result<Event> {
    Ok(Event {
        phone: r.get(0)?,
        action: r.get(1)?,
        source: r.get(2)?,
        reason: r.get(3)?,
        actor: r.get(4)?,
        at: r.get(5)?,
    })
}

/// Puts `phone` (E.164, checked by the caller) on the list. Idempotent: a number
/// already listed keeps its first entry (source, reason, time) and no event is
/// written. A new entry is recorded as an `added` event. Either way the number's
/// lead is marked `do_not_call` if it is waiting (see [`mark_leads`]).
pub fn add(tx: &Tx, phone: &str, source: &str, reason: &str, actor: &str, now_ms: i64) -> anyhow::Result<Added> {
    let new = tx
        .prepare_cached(
            "INSERT INTO dnc (phone, source, reason, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (phone) DO NOTHING",
        )?
        .execute(params![phone, source, reason, now_ms])?
        == 1;
    if new {
        log(tx, phone, "added", source, reason, actor, now_ms)?;
    }
    Ok(Added { new, leads_marked: mark_leads(tx, phone, now_ms)? })
}

/// Takes `phone` off the list and records a `removed` event with `reason` and
/// `actor`. Returns false (and writes nothing) if it was not listed.
///
/// Leads already marked `do_not_call` stay so: removal only stops future scrubbing
/// and lets leads imported or reset to `pending` afterwards be dialled.
pub fn remove(tx: &Tx, phone: &str, reason: &str, actor: &str, now_ms: i64) -> anyhow::Result<bool> {
    let source: Option<String> = tx
        .prepare_cached("DELETE FROM dnc WHERE phone = ?1 RETURNING source")?
        .query_row([phone], |r| r.get(0))
        .optional()?;
    let Some(source) = source else { return Ok(false) };
    log(tx, phone, "removed", &source, reason, actor, now_ms)?;
    Ok(true)
}

fn log(tx: &Tx, phone: &str, action: &str, source: &str, reason: &str, actor: &str, at: i64) -> anyhow::Result<()> {
    tx.prepare_cached(
        "INSERT INTO dnc_events (phone, action, source, reason, actor, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![phone, action, source, reason, actor, at])?;
    Ok(())
}

/// Marks the lead with `phone` `do_not_call` if it is waiting (`pending` or
/// `scheduled`). A lead in a call or with an outcome is never touched: the call in
/// flight ends as it ends, and the claim refuses any later dial. Returns how many
/// leads changed (0 or 1: phones are unique). The status change keeps the per-status
/// counts right through the `lead_counts` triggers.
pub fn mark_leads(tx: &Tx, phone: &str, now_ms: i64) -> anyhow::Result<usize> {
    Ok(tx
        .prepare_cached(
            "UPDATE leads SET status = 'do_not_call', next_call_at = NULL, wait_reason = NULL, updated_at = ?2
             WHERE phone = ?1 AND status IN ('pending', 'scheduled')",
        )?
        .execute(params![phone, now_ms])?)
}

/// Is `phone` listed?
pub fn contains(conn: &Conn, phone: &str) -> anyhow::Result<bool> {
    Ok(conn.prepare_cached("SELECT 1 FROM dnc WHERE phone = ?1")?.query_row([phone], |_| Ok(())).optional()?.is_some())
}

/// Is anything listed? (Lets a big import skip the per-row lookup when the list is empty.)
pub fn is_empty(conn: &Conn) -> anyhow::Result<bool> {
    Ok(!conn.query_row("SELECT EXISTS (SELECT 1 FROM dnc)", [], |r| r.get::<_, bool>(0))?)
}

pub fn get(conn: &Conn, phone: &str) -> anyhow::Result<Option<Entry>> {
    let sql = format!("SELECT {COLUMNS} FROM dnc WHERE phone = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([phone], entry).optional()?)
}

/// A search: digits in `q` match anywhere in the number (`415 700` finds
/// `+14157001234`); a `q` without digits matches the source or the reason.
fn filter(q: Option<&str>, args: &mut Vec<rusqlite::types::Value>) -> String {
    let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) else { return "1".into() };
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        let escaped = q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        args.push(pattern.clone().into());
        args.push(pattern.into());
        "(source LIKE ? ESCAPE '\\' OR reason LIKE ? ESCAPE '\\')".into()
    } else {
        args.push(format!("%{digits}%").into());
        "phone LIKE ?".into()
    }
}

/// One page, newest first. `cursor` is the last id of the previous page; the next
/// cursor is returned when more entries may follow (keyset pagination).
pub fn page(
    conn: &Conn,
    q: Option<&str>,
    limit: u32,
    cursor: Option<i64>,
) -> anyhow::Result<(Vec<Entry>, Option<i64>)> {
    let mut args = Vec::new();
    let where_sql = filter(q, &mut args);
    args.push(cursor.unwrap_or(i64::MAX).into());
    args.push(i64::from(limit).into());
    let sql = format!("SELECT {COLUMNS} FROM dnc WHERE {where_sql} AND id < ? ORDER BY id DESC LIMIT ?");
    let rows = conn.prepare_cached(&sql)?.query_map(params_from_iter(args), entry)?.collect::<Result<Vec<_>, _>>()?;
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.id)).flatten();
    Ok((rows, next))
}

/// Entries matching `q` (all of them without one).
pub fn count(conn: &Conn, q: Option<&str>) -> anyhow::Result<i64> {
    let mut args = Vec::new();
    let sql = format!("SELECT COUNT(*) FROM dnc WHERE {}", filter(q, &mut args));
    Ok(conn.query_row(&sql, params_from_iter(args), |r| r.get(0))?)
}

/// Calls `f` with every entry, oldest first, for the export.
pub fn for_each(conn: &Conn, mut f: impl FnMut(&Entry) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let sql = format!("SELECT {COLUMNS} FROM dnc ORDER BY id");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        f(&entry(row)?)?;
    }
    Ok(())
}

/// A number's audit history, newest first (kept after the number is removed).
pub fn events(conn: &Conn, phone: &str, limit: u32) -> anyhow::Result<Vec<Event>> {
    let rows = conn
        .prepare_cached(
            "SELECT phone, action, source, reason, actor, at FROM dnc_events WHERE phone = ?1
             ORDER BY id DESC LIMIT ?2",
        )?
        .query_map(params![phone, limit], event)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The latest changes to the whole list, newest first.
pub fn recent_events(conn: &Conn, limit: u32) -> anyhow::Result<Vec<Event>> {
    let rows = conn
        .prepare_cached("SELECT phone, action, source, reason, actor, at FROM dnc_events ORDER BY id DESC LIMIT ?1")?
        .query_map([limit], event)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn lead(tx: &Tx, phone: &str, status: &str) {
        tx.execute(
            "INSERT INTO leads (uuid, phone, status, created_at, updated_at) VALUES (?1, ?2, ?3, 0, 0)",
            params![uuid::Uuid::new_v4().to_string(), phone, status],
        )
        .unwrap();
    }

    fn status(db: &Db, phone: &str) -> String {
        let phone = phone.to_string();
        db.read_blocking(|c| Ok(c.query_row("SELECT status FROM leads WHERE phone = ?1", [phone], |r| r.get(0))?))
            .unwrap()
    }

    #[test]
    fn add_is_idempotent_marks_only_waiting_leads_and_remove_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        db.write_blocking(|tx| {
            lead(tx, "+14157001001", "pending");
            lead(tx, "+14157001002", "scheduled");
            lead(tx, "+14157001003", "ringing");
            lead(tx, "+14157001004", "completed");
            Ok(())
        })
        .unwrap();
        let phones = ["+14157001001", "+14157001002", "+14157001003", "+14157001004"];
        let added = db
            .write_blocking(|tx| {
                phones.iter().map(|p| add(tx, p, "api", "asked", "api", 10)).collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        let marked: Vec<usize> = added.iter().map(|a| a.leads_marked).collect();
        assert_eq!(marked, [1, 1, 0, 0]);
        assert!(added.iter().all(|a| a.new));
        let statuses: Vec<String> = phones.iter().map(|p| status(&db, p)).collect();
        assert_eq!(statuses, ["do_not_call", "do_not_call", "ringing", "completed"]);
        let counts: i64 = db
            .read_blocking(|c| {
                Ok(c.query_row("SELECT n FROM lead_counts WHERE status = 'do_not_call'", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(counts, 2, "lead counts follow");

        // Again, from another source: the first entry stands, no second event.
        let again = db.write_blocking(|tx| add(tx, phones[0], "keypad", "pressed 2", "caller", 20)).unwrap();
        assert_eq!(again, Added { new: false, leads_marked: 0 });
        let e = db.read_blocking(|c| get(c, phones[0])).unwrap().unwrap();
        assert_eq!((e.source.as_str(), e.reason.as_str(), e.created_at), ("api", "asked", 10));

        assert!(db.write_blocking(|tx| remove(tx, phones[0], "wrong number", "user", 30)).unwrap());
        assert!(!db.write_blocking(|tx| remove(tx, phones[0], "again", "user", 40)).unwrap());
        let history = db.read_blocking(|c| events(c, phones[0], 10)).unwrap();
        let kinds: Vec<(&str, &str, &str)> =
            history.iter().map(|e| (e.action.as_str(), e.reason.as_str(), e.actor.as_str())).collect();
        assert_eq!(kinds, [("removed", "wrong number", "user"), ("added", "asked", "api")]);
        assert_eq!(status(&db, phones[0]), "do_not_call", "a marked lead stays marked");

        // Search and pages: newest first, keyset.
        let (first, next) = db.read_blocking(|c| page(c, None, 2, None)).unwrap();
        assert_eq!(first.iter().map(|e| e.phone.as_str()).collect::<Vec<_>>(), [phones[3], phones[2]]);
        let (rest, next) = db.read_blocking(move |c| page(c, None, 2, next)).unwrap();
        assert_eq!(rest.iter().map(|e| e.phone.as_str()).collect::<Vec<_>>(), [phones[1]]);
        assert_eq!(next, None);
        assert_eq!(db.read_blocking(|c| count(c, Some("700-1003"))).unwrap(), 1);
        assert_eq!(db.read_blocking(|c| count(c, Some("ask"))).unwrap(), 3);
        assert_eq!(db.read_blocking(|c| count(c, None)).unwrap(), 3);
    }
}
