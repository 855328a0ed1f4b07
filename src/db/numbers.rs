//! Caller numbers and their per-day usage (the rotation's cap ledger).

use rusqlite::params;

use crate::db::{Conn, Tx};
use crate::numbers::rotation::Candidate;

/// Applies the configured caller numbers at start-up: listed numbers are added or
/// get their configured cap and are enabled; stored numbers no longer listed are
/// disabled (kept, with their history). Until numbers can be edited in the dashboard,
/// the config file is where they are managed, so a lowered cap or a removed caller ID
/// must take effect. Returns how many numbers are enabled.
pub fn seed(tx: &Tx, numbers: &[(String, u32)], now_ms: i64) -> anyhow::Result<usize> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO caller_numbers (number, max_daily_calls, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(number) DO UPDATE SET max_daily_calls = excluded.max_daily_calls, enabled = 1",
    )?;
    for (number, cap) in numbers {
        upsert.execute(params![number, cap, now_ms])?;
    }
    let stored: Vec<String> =
        tx.prepare("SELECT number FROM caller_numbers")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut disable = tx.prepare_cached("UPDATE caller_numbers SET enabled = 0 WHERE number = ?1")?;
    for number in stored.iter().filter(|s| !numbers.iter().any(|(n, _)| n == *s)) {
        disable.execute([number])?;
    }
    Ok(numbers.len())
}

/// Enabled numbers with their usage on local day `day` (YYYY-MM-DD).
pub fn candidates(tx: &Tx, day: &str) -> anyhow::Result<Vec<Candidate>> {
    let mut stmt = tx.prepare_cached(
        "SELECT n.id, n.last_pick, COALESCE(u.calls, 0), n.max_daily_calls
         FROM caller_numbers n
         LEFT JOIN number_usage u ON u.number_id = n.id AND u.day = ?1
         WHERE n.enabled = 1",
    )?;
    let rows = stmt
        .query_map([day], |r| {
            Ok(Candidate { id: r.get(0)?, last_pick: r.get(1)?, used_today: r.get(2)?, cap: r.get(3)? })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Reserves one call on `number_id` for `day` if it is under `cap`, and moves the
/// number to the back of the round-robin. Returns false (and changes nothing) when
/// the number is at its cap. The guarded `UPDATE … WHERE calls < cap` makes the
/// check and the increment one statement, so no interleaving can overshoot.
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
    if changed == 0 {
        return Ok(false);
    }
    tx.prepare_cached(
        "UPDATE caller_numbers SET last_pick = (SELECT MAX(last_pick) FROM caller_numbers) + 1
         WHERE id = ?1",
    )?
    .execute([number_id])?;
    Ok(true)
}

/// Gives back a slot reserved for a call that was never placed.
pub fn release(tx: &Tx, number_id: i64, day: &str) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE number_usage SET calls = calls - 1 WHERE number_id = ?1 AND day = ?2 AND calls > 0")?
        .execute(params![number_id, day])?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NumberRow {
    pub id: i64,
    pub number: String,
    pub enabled: bool,
    pub max_daily_calls: i64,
    pub calls_today: i64,
}

pub fn list(conn: &Conn, day: &str) -> anyhow::Result<Vec<NumberRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT n.id, n.number, n.enabled, n.max_daily_calls, COALESCE(u.calls, 0)
         FROM caller_numbers n
         LEFT JOIN number_usage u ON u.number_id = n.id AND u.day = ?1
         ORDER BY n.id",
    )?;
    let rows = stmt
        .query_map([day], |r| {
            Ok(NumberRow {
                id: r.get(0)?,
                number: r.get(1)?,
                enabled: r.get(2)?,
                max_daily_calls: r.get(3)?,
                calls_today: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn number(tx: &Tx, number_id: i64) -> anyhow::Result<String> {
    Ok(tx.prepare_cached("SELECT number FROM caller_numbers WHERE id = ?1")?.query_row([number_id], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use crate::db::Db;

    #[test]
    fn config_is_applied_at_every_start() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("n.db")).unwrap();
        let listed = |n: &[(&str, u32)]| n.iter().map(|(a, c)| (a.to_string(), *c)).collect::<Vec<_>>();
        db.write_blocking(|tx| super::seed(tx, &listed(&[("+12025550101", 5), ("+12025550102", 5)]), 0)).unwrap();
        db.write_blocking(|tx| super::seed(tx, &listed(&[("+12025550101", 3)]), 0)).unwrap();
        let rows = db.read_blocking(|c| super::list(c, "2026-01-01")).unwrap();
        let row = |n: &str| rows.iter().find(|r| r.number == n).unwrap().clone();
        assert_eq!((row("+12025550101").max_daily_calls, row("+12025550101").enabled), (3, true));
        assert!(!row("+12025550102").enabled, "a number removed from the config is disabled");
    }
}
