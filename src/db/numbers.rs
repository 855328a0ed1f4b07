//! Caller numbers: the rotation's view (eligible numbers and their usage today) and
//! the cap ledger. Editing, history and health queries are in `number_admin`.

use rusqlite::{OptionalExtension, params};

use crate::db::{Conn, Tx};

/// A caller number to add (config, paste, CSV or API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNumber {
    /// E.164.
    pub number: String,
    pub label: Option<String>,
    pub max_daily_calls: u32,
    /// 1..=10.
    pub rotation_priority: u8,
    pub pool: Option<String>,
}

/// Adds the numbers not stored yet (a stored number keeps its settings: edits made
/// on the Numbers page win over the config file) and records an `added` event by
/// `actor`. Returns the ids of the numbers added. Leads waiting for a local number
/// are released, since one may have arrived.
pub fn add(tx: &Tx, numbers: &[NewNumber], actor: &str, now_ms: i64) -> anyhow::Result<Vec<i64>> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO caller_numbers (number, label, max_daily_calls, rotation_priority, pool, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(number) DO NOTHING",
    )?;
    let mut added = Vec::new();
    for n in numbers {
        if insert.execute(params![n.number, n.label, n.max_daily_calls, n.rotation_priority, n.pool, now_ms])? == 1 {
            let id = tx.last_insert_rowid();
            let detail = format!("added (cap {}, priority {})", n.max_daily_calls, n.rotation_priority);
            event(tx, id, "added", &detail, actor, now_ms)?;
            added.push(id);
        }
    }
    if !added.is_empty() {
        release_local_waits(tx, now_ms)?;
    }
    Ok(added)
}

/// Appends to a number's history.
pub fn event(tx: &Tx, number_id: i64, kind: &str, detail: &str, actor: &str, now_ms: i64) -> anyhow::Result<()> {
    tx.prepare_cached("INSERT INTO number_events (number_id, at, kind, detail, actor) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![number_id, now_ms, kind, detail, actor])?;
    Ok(())
}

/// Leads that waited because no local caller ID had room (strict local presence)
/// are due again: a number was added, restored or given room.
pub fn release_local_waits(tx: &Tx, now_ms: i64) -> anyhow::Result<usize> {
    Ok(tx
        .prepare_cached(
            "UPDATE leads SET next_call_at = ?1, wait_reason = NULL
             WHERE status = 'scheduled' AND wait_reason = 'no_local_number' AND next_call_at > ?1",
        )?
        .execute([now_ms])?)
}

/// Changes whenever any caller number changes (triggers) or a slot is released.
pub fn version(conn: &Conn) -> anyhow::Result<i64> {
    Ok(conn.prepare_cached("SELECT version FROM rotation_meta WHERE id = 1")?.query_row([], |r| r.get(0))?)
}

fn bump_version(tx: &Tx) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE rotation_meta SET version = version + 1 WHERE id = 1")?.execute([])?;
    Ok(())
}

/// A number that may dial: rotation enabled and status `active`.
#[derive(Debug, Clone)]
pub struct PoolRow {
    pub id: i64,
    pub number: String,
    pub priority: u8,
    pub max_daily_calls: u32,
    pub used: u32,
    pub first_used_day: Option<String>,
    pub spam_score: Option<u8>,
    pub pool: Option<String>,
}

/// Every number that may dial, with its calls on local day `day` (YYYY-MM-DD).
pub fn pool_rows(conn: &Conn, day: &str) -> anyhow::Result<Vec<PoolRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT n.id, n.number, n.rotation_priority, n.max_daily_calls, COALESCE(u.calls, 0),
                n.first_used_day, n.spam_score, n.pool
         FROM caller_numbers n
         LEFT JOIN number_usage u ON u.number_id = n.id AND u.day = ?1
         WHERE n.enabled = 1 AND n.status = 'active'
         ORDER BY n.id",
    )?;
    let rows = stmt
        .query_map([day], |r| {
            Ok(PoolRow {
                id: r.get(0)?,
                number: r.get(1)?,
                priority: r.get(2)?,
                max_daily_calls: r.get(3)?,
                used: r.get(4)?,
                first_used_day: r.get(5)?,
                spam_score: r.get(6)?,
                pool: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Reserves one call on `number_id` for `day` if it has fewer than `cap` calls.
/// Returns false (and changes nothing) when it is full. The guarded
/// `UPDATE … WHERE calls < cap` makes the check and the increment one statement on
/// the single writer, so no interleaving of claims can overshoot (pitfalls §B5, §B6).
pub fn reserve(tx: &Tx, number_id: i64, day: &str, cap: u32) -> anyhow::Result<bool> {
    if cap == 0 {
        return Ok(false);
    }
    let changed = tx
        .prepare_cached(
            "INSERT INTO number_usage (number_id, day, calls) VALUES (?1, ?2, 1)
             ON CONFLICT(number_id, day) DO UPDATE SET calls = calls + 1 WHERE calls < ?3",
        )?
        .execute(params![number_id, day, cap])?;
    Ok(changed == 1)
}

/// Starts a number's warming on its first call.
pub fn mark_first_used(tx: &Tx, number_id: i64, day: &str) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE caller_numbers SET first_used_day = ?2 WHERE id = ?1 AND first_used_day IS NULL")?
        .execute(params![number_id, day])?;
    Ok(())
}

/// Gives back a slot reserved for a call that was never placed.
pub fn release(tx: &Tx, number_id: i64, day: &str, now_ms: i64) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE number_usage SET calls = calls - 1 WHERE number_id = ?1 AND day = ?2 AND calls > 0")?
        .execute(params![number_id, day])?;
    // The number may have room again: the rotation reloads.
    bump_version(tx)?;
    release_local_waits(tx, now_ms)?;
    Ok(())
}

/// Calls placed from a number on local day `day`.
pub fn used_on(conn: &Conn, number_id: i64, day: &str) -> anyhow::Result<u32> {
    Ok(conn
        .query_row("SELECT calls FROM number_usage WHERE number_id = ?1 AND day = ?2", params![number_id, day], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0))
}

/// When the next resting number is due to be re-checked (UTC ms).
pub fn earliest_rest_until(conn: &Conn) -> anyhow::Result<Option<i64>> {
    Ok(conn.query_row(
        "SELECT MIN(rest_until) FROM caller_numbers WHERE status = 'resting' AND enabled = 1",
        [],
        |r| r.get(0),
    )?)
}

pub fn number(conn: &Conn, number_id: i64) -> anyhow::Result<String> {
    Ok(conn.prepare_cached("SELECT number FROM caller_numbers WHERE id = ?1")?.query_row([number_id], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn n(number: &str, cap: u32) -> NewNumber {
        NewNumber { number: number.into(), label: None, max_daily_calls: cap, rotation_priority: 5, pool: None }
    }

    #[test]
    fn config_adds_numbers_but_never_overwrites_edits() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("n.db")).unwrap();
        let added =
            db.write_blocking(|tx| add(tx, &[n("+12025550101", 5), n("+12025550102", 5)], "config", 0)).unwrap();
        assert_eq!(added.len(), 2);
        db.write_blocking(|tx| {
            Ok(tx.execute("UPDATE caller_numbers SET max_daily_calls = 9 WHERE id = ?1", [added[0]])?)
        })
        .unwrap();
        let again = db.write_blocking(|tx| add(tx, &[n("+12025550101", 5)], "config", 0)).unwrap();
        assert!(again.is_empty());
        let rows = db.read_blocking(|c| pool_rows(c, "2026-01-01")).unwrap();
        assert_eq!(rows[0].max_daily_calls, 9, "the edit made in the dashboard is kept");
    }

    #[test]
    fn reserve_stops_at_the_cap_and_release_gives_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("n.db")).unwrap();
        let id = db.write_blocking(|tx| add(tx, &[n("+12025550101", 2)], "test", 0)).unwrap()[0];
        let day = "2026-03-08";
        let got: Vec<bool> = (0..3).map(|_| db.write_blocking(|tx| reserve(tx, id, day, 2)).unwrap()).collect();
        assert_eq!(got, vec![true, true, false]);
        let v0 = db.read_blocking(version).unwrap();
        db.write_blocking(|tx| release(tx, id, day, 0)).unwrap();
        assert_eq!(db.read_blocking(|c| used_on(c, id, day)).unwrap(), 1);
        assert!(db.read_blocking(version).unwrap() > v0, "a release reloads the rotation");
        assert_eq!(db.read_blocking(|c| used_on(c, id, "2026-03-09")).unwrap(), 0, "a new local day starts at 0");
    }
}
