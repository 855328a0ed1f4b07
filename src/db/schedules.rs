//! Bulk schedules and their batches. Batches are rows, never in-memory jobs: the
//! scheduler re-derives what is due from here on every wake-up.

use rusqlite::{OptionalExtension, params};

use crate::db::{Conn, Tx};

pub struct NewSchedule<'a> {
    pub start_at_ms: i64,
    pub timezone: &'a str,
    pub parallel_calls: u32,
    pub interval_seconds: u32,
    pub total_leads: usize,
    pub total_batches: usize,
    pub campaign_id: i64,
}

pub fn insert(tx: &Tx, s: &NewSchedule, now_ms: i64) -> anyhow::Result<i64> {
    tx.execute(
        "INSERT INTO schedules (start_at, timezone, parallel_calls, interval_seconds, total_leads,
                                total_batches, created_at, campaign_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            s.start_at_ms,
            s.timezone,
            s.parallel_calls,
            s.interval_seconds,
            s.total_leads as i64,
            s.total_batches as i64,
            now_ms,
            s.campaign_id
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

pub fn insert_batch(tx: &Tx, schedule_id: i64, index: u32, due_at_ms: i64, lead_count: usize) -> anyhow::Result<i64> {
    tx.prepare_cached("INSERT INTO batches (schedule_id, batch_index, due_at, lead_count) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![schedule_id, index, due_at_ms, lead_count as i64])?;
    Ok(tx.last_insert_rowid())
}

/// What one scheduler pass did.
#[derive(Debug, Default)]
pub struct FireOutcome {
    /// (batch id, schedule id, batch index, lateness ms)
    pub fired: Vec<(i64, i64, i64, i64)>,
    /// (batch id, schedule id, batch index, leads released)
    pub missed: Vec<(i64, i64, i64, usize)>,
    /// Earliest due time of a batch still pending, ms.
    pub next_due_ms: Option<i64>,
}

/// Fires every pending batch due at `now_ms`, in due order. A batch later than
/// `grace_ms` is marked `missed` instead and its leads go back to `pending` (keeping
/// their schedule and batch ids so the user sees where they came from).
pub fn fire_due(tx: &Tx, now_ms: i64, grace_ms: i64) -> anyhow::Result<FireOutcome> {
    let due: Vec<(i64, i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT id, schedule_id, batch_index, due_at FROM batches
             WHERE status = 'pending' AND due_at <= ?1 ORDER BY due_at, id",
        )?
        .query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let mut outcome = FireOutcome::default();
    for (batch_id, schedule_id, index, due_at) in due {
        let lateness = now_ms - due_at;
        if lateness > grace_ms {
            tx.prepare_cached("UPDATE batches SET status = 'missed' WHERE id = ?1")?.execute([batch_id])?;
            let released = tx
                .prepare_cached(
                    "UPDATE leads SET status = 'pending', next_call_at = NULL, updated_at = ?2
                     WHERE batch_id = ?1 AND status = 'scheduled'",
                )?
                .execute(params![batch_id, now_ms])?;
            outcome.missed.push((batch_id, schedule_id, index, released));
        } else {
            tx.prepare_cached("UPDATE batches SET status = 'fired', fired_at = ?2 WHERE id = ?1")?
                .execute(params![batch_id, now_ms])?;
            // Due order in the call queue is the batch's due time, so earlier batches
            // go out first even when two schedules overlap.
            tx.prepare_cached("UPDATE leads SET next_call_at = ?2 WHERE batch_id = ?1 AND status = 'scheduled'")?
                .execute(params![batch_id, due_at])?;
            outcome.fired.push((batch_id, schedule_id, index, lateness));
            let campaign: i64 = tx
                .prepare_cached("SELECT campaign_id FROM schedules WHERE id = ?1")?
                .query_row([schedule_id], |r| r.get(0))?;
            let reason = format!("schedule {schedule_id} batch {index} fired");
            crate::db::campaigns::advance(tx, campaign, crate::campaigns::CampaignStatus::Running, &reason, now_ms)?;
        }
    }
    outcome.next_due_ms =
        tx.prepare_cached("SELECT MIN(due_at) FROM batches WHERE status = 'pending'")?.query_row([], |r| r.get(0))?;
    Ok(outcome)
}

/// Which schedules a cancel applies to.
#[derive(Debug, Clone, Copy)]
pub enum CancelTarget {
    One(i64),
    All,
}

/// Cancels the pending batches of the target schedule(s); their leads that have not
/// been dialled yet return to `pending`. Calls already under way are not touched.
/// Returns the number of batches cancelled, or None when the schedule does not exist.
pub fn cancel(tx: &Tx, target: CancelTarget, now_ms: i64) -> anyhow::Result<Option<usize>> {
    let ids: Vec<i64> = match target {
        CancelTarget::One(id) => {
            let exists: Option<i64> =
                tx.query_row("SELECT id FROM schedules WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            match exists {
                Some(id) => vec![id],
                None => return Ok(None),
            }
        }
        CancelTarget::All => tx
            .prepare("SELECT id FROM schedules WHERE status = 'active'")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
    };
    let mut cancelled = 0;
    for id in ids {
        cancelled += tx
            .prepare_cached("UPDATE batches SET status = 'cancelled' WHERE schedule_id = ?1 AND status = 'pending'")?
            .execute([id])?;
        tx.prepare_cached(
            "UPDATE leads SET status = 'pending', schedule_id = NULL, batch_id = NULL, next_call_at = NULL,
                              updated_at = ?2
             WHERE schedule_id = ?1 AND status = 'scheduled'",
        )?
        .execute(params![id, now_ms])?;
        tx.prepare_cached(
            "UPDATE schedules SET status = 'cancelled', cancelled_at = ?2 WHERE id = ?1 AND status = 'active'",
        )?
        .execute(params![id, now_ms])?;
    }
    Ok(Some(cancelled))
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BatchRow {
    pub job_id: String,
    pub batch_id: i64,
    pub schedule_id: i64,
    pub batch_index: i64,
    pub due_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub lead_count: i64,
    pub status: String,
}

/// Batches, newest schedule first. `include_done` adds fired and cancelled ones.
pub fn batches(conn: &Conn, include_done: bool, limit: u32) -> anyhow::Result<Vec<BatchRow>> {
    let filter = if include_done { "1" } else { "status IN ('pending', 'missed')" };
    let sql = format!(
        "SELECT id, schedule_id, batch_index, due_at, fired_at, lead_count, status FROM batches
         WHERE {filter} ORDER BY due_at, id LIMIT ?1"
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map([limit], |r| {
            let schedule_id: i64 = r.get(1)?;
            let index: i64 = r.get(2)?;
            Ok(BatchRow {
                job_id: format!("schedule-{schedule_id}-batch-{index}"),
                batch_id: r.get(0)?,
                schedule_id,
                batch_index: index,
                due_at_ms: r.get(3)?,
                fired_at_ms: r.get(4)?,
                lead_count: r.get(5)?,
                status: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn count_batches(conn: &Conn, include_done: bool) -> anyhow::Result<i64> {
    let filter = if include_done { "1" } else { "status IN ('pending', 'missed')" };
    Ok(conn.query_row(&format!("SELECT COUNT(*) FROM batches WHERE {filter}"), [], |r| r.get(0))?)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ScheduleRow {
    pub id: i64,
    pub start_at_ms: i64,
    pub timezone: String,
    pub parallel_calls: i64,
    pub interval_seconds: i64,
    pub total_leads: i64,
    pub total_batches: i64,
    pub status: String,
    pub batches_pending: i64,
    pub batches_fired: i64,
    pub batches_missed: i64,
    pub batches_cancelled: i64,
    pub next_due_ms: Option<i64>,
}

/// Schedules with their batch counts, newest first.
pub fn list(conn: &Conn, limit: u32) -> anyhow::Result<Vec<ScheduleRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.start_at, s.timezone, s.parallel_calls, s.interval_seconds, s.total_leads,
                s.total_batches, s.status,
                SUM(b.status = 'pending'), SUM(b.status = 'fired'), SUM(b.status = 'missed'),
                SUM(b.status = 'cancelled'), MIN(CASE WHEN b.status = 'pending' THEN b.due_at END)
         FROM schedules s LEFT JOIN batches b ON b.schedule_id = s.id
         GROUP BY s.id ORDER BY s.id DESC LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([limit], |r| {
            Ok(ScheduleRow {
                id: r.get(0)?,
                start_at_ms: r.get(1)?,
                timezone: r.get(2)?,
                parallel_calls: r.get(3)?,
                interval_seconds: r.get(4)?,
                total_leads: r.get(5)?,
                total_batches: r.get(6)?,
                status: r.get(7)?,
                batches_pending: r.get::<_, Option<i64>>(8)?.unwrap_or(0),
                batches_fired: r.get::<_, Option<i64>>(9)?.unwrap_or(0),
                batches_missed: r.get::<_, Option<i64>>(10)?.unwrap_or(0),
                batches_cancelled: r.get::<_, Option<i64>>(11)?.unwrap_or(0),
                next_due_ms: r.get(12)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Earliest pending batch time, ms.
pub fn next_due(conn: &Conn) -> anyhow::Result<Option<i64>> {
    Ok(conn.query_row("SELECT MIN(due_at) FROM batches WHERE status = 'pending'", [], |r| r.get(0))?)
}
