//! Caller numbers as records: listing, editing with history, spam scores and the
//! samples health is derived from.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::db::numbers::{event, release_local_waits};
use crate::db::{Conn, Tx};

/// A caller number as the Numbers page and `GET /api/numbers` show it.
#[derive(Debug, Clone, Serialize)]
pub struct NumberRow {
    pub id: i64,
    pub number: String,
    pub label: Option<String>,
    pub rotation_enabled: bool,
    pub max_daily_calls: u32,
    pub rotation_priority: u8,
    /// active | resting | quarantined | retired.
    pub status: String,
    /// UTC ms.
    pub rest_until: Option<i64>,
    pub spam_score: Option<u8>,
    /// manual | derived | import:<source>.
    pub spam_source: Option<String>,
    pub spam_updated_at: Option<i64>,
    pub pool: Option<String>,
    pub first_used_day: Option<String>,
    pub attention: Option<String>,
    /// Calls placed on the current local day.
    pub calls_today: u32,
    pub created_at: i64,
    /// The provider's id for the number (Vapi `phoneNumberId`), when imported from the account.
    pub provider_id: Option<String>,
}

const COLUMNS: &str = "n.id, n.number, n.label, n.enabled, n.max_daily_calls, n.rotation_priority, n.status,
    n.rest_until, n.spam_score, n.spam_source, n.spam_updated_at, n.pool, n.first_used_day, n.attention,
    COALESCE(u.calls, 0), n.created_at, n.provider_id";

fn row(r: &rusqlite::Row) -> rusqlite::Result<NumberRow> {
    Ok(NumberRow {
        id: r.get(0)?,
        number: r.get(1)?,
        label: r.get(2)?,
        rotation_enabled: r.get(3)?,
        max_daily_calls: r.get(4)?,
        rotation_priority: r.get(5)?,
        status: r.get(6)?,
        rest_until: r.get(7)?,
        spam_score: r.get(8)?,
        spam_source: r.get(9)?,
        spam_updated_at: r.get(10)?,
        pool: r.get(11)?,
        first_used_day: r.get(12)?,
        attention: r.get(13)?,
        calls_today: r.get(14)?,
        created_at: r.get(15)?,
        provider_id: r.get(16)?,
    })
}

/// Every number, with its calls on local day `day`, by id.
pub fn list(conn: &Conn, day: &str) -> anyhow::Result<Vec<NumberRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM caller_numbers n
         LEFT JOIN number_usage u ON u.number_id = n.id AND u.day = ?1 ORDER BY n.id"
    );
    let rows = conn.prepare_cached(&sql)?.query_map([day], row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn get(conn: &Conn, id: i64, day: &str) -> anyhow::Result<Option<NumberRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM caller_numbers n
         LEFT JOIN number_usage u ON u.number_id = n.id AND u.day = ?2 WHERE n.id = ?1"
    );
    Ok(conn.prepare_cached(&sql)?.query_row(params![id, day], row).optional()?)
}

pub fn id_of(conn: &Conn, number: &str) -> anyhow::Result<Option<i64>> {
    Ok(conn.query_row("SELECT id FROM caller_numbers WHERE number = ?1", [number], |r| r.get(0)).optional()?)
}

#[derive(Debug, Clone, Serialize)]
pub struct NumberEvent {
    /// UTC ms.
    pub at: i64,
    pub kind: String,
    pub detail: String,
    pub actor: String,
}

/// A number's history, newest first.
pub fn events(conn: &Conn, id: i64, limit: u32) -> anyhow::Result<Vec<NumberEvent>> {
    let rows = conn
        .prepare_cached(
            "SELECT at, kind, detail, actor FROM number_events WHERE number_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?
        .query_map(params![id, limit], |r| {
            Ok(NumberEvent { at: r.get(0)?, kind: r.get(1)?, detail: r.get(2)?, actor: r.get(3)? })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// An edit of one number; `None` fields are left as they are. Values are checked
/// by the caller (`numbers::edit`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub label: Option<Option<String>>,
    pub rotation_enabled: Option<bool>,
    pub max_daily_calls: Option<u32>,
    pub rotation_priority: Option<u8>,
    pub pool: Option<Option<String>>,
    /// New status and, for `resting`, until when (UTC ms).
    pub status: Option<(String, Option<i64>)>,
    /// New score (None clears it) and its source.
    pub spam_score: Option<(Option<u8>, String)>,
    /// Set or clear the "needs attention" note.
    pub attention: Option<Option<String>>,
}

/// Applies `change` to number `id`, recording one history entry per field that
/// actually changed, with `reason` and `actor`. Returns false if there is no such
/// number.
pub fn apply(tx: &Tx, id: i64, change: &Change, reason: &str, actor: &str, now_ms: i64) -> anyhow::Result<bool> {
    let Some(cur) = get(tx, id, "")? else { return Ok(false) };
    let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
    let log = |kind: &str, detail: String| event(tx, id, kind, &detail, actor, now_ms);
    let mut more_room = false;
    if let Some(label) = &change.label
        && *label != cur.label
    {
        tx.execute("UPDATE caller_numbers SET label = ?2 WHERE id = ?1", params![id, label])?;
        log("edit", format!("label {:?} → {:?}", cur.label.unwrap_or_default(), label.clone().unwrap_or_default()))?;
    }
    if let Some(on) = change.rotation_enabled
        && on != cur.rotation_enabled
    {
        tx.execute("UPDATE caller_numbers SET enabled = ?2 WHERE id = ?1", params![id, on])?;
        log("edit", format!("rotation {}{why}", if on { "enabled" } else { "disabled" }))?;
        more_room |= on;
    }
    if let Some(cap) = change.max_daily_calls
        && cap != cur.max_daily_calls
    {
        tx.execute("UPDATE caller_numbers SET max_daily_calls = ?2 WHERE id = ?1", params![id, cap])?;
        log("edit", format!("daily cap {} → {cap}{why}", cur.max_daily_calls))?;
        more_room |= cap > cur.max_daily_calls;
    }
    if let Some(p) = change.rotation_priority
        && p != cur.rotation_priority
    {
        tx.execute("UPDATE caller_numbers SET rotation_priority = ?2 WHERE id = ?1", params![id, p])?;
        log("edit", format!("priority {} → {p}{why}", cur.rotation_priority))?;
    }
    if let Some(pool) = &change.pool
        && *pool != cur.pool
    {
        tx.execute("UPDATE caller_numbers SET pool = ?2 WHERE id = ?1", params![id, pool])?;
        let name = |p: &Option<String>| p.clone().unwrap_or_else(|| "shared".into());
        log("edit", format!("pool {} → {}{why}", name(&cur.pool), name(pool)))?;
    }
    if let Some((score, source)) = &change.spam_score {
        tx.execute(
            "UPDATE caller_numbers SET spam_score = ?2, spam_source = ?3, spam_updated_at = ?4 WHERE id = ?1",
            params![id, score, source, now_ms],
        )?;
        if *score != cur.spam_score || cur.spam_source.as_deref() != Some(source) {
            let shown = score.map_or("cleared".to_string(), |s| s.to_string());
            log("score", format!("spam score {shown} ({source}){why}"))?;
        }
    }
    if let Some((status, until)) = &change.status
        && (*status != cur.status || *until != cur.rest_until)
    {
        // Any status change by a person settles the "needs attention" note.
        tx.execute(
            "UPDATE caller_numbers SET status = ?2, rest_until = ?3, attention = NULL WHERE id = ?1",
            params![id, status, until],
        )?;
        let until = until.map(|u| format!(" until {}", crate::db::from_ms(u).format("%Y-%m-%d %H:%M UTC")));
        log("status", format!("{} → {status}{}{why}", cur.status, until.unwrap_or_default()))?;
        more_room |= status == "active";
    }
    if let Some(note) = &change.attention
        && *note != cur.attention
    {
        tx.execute("UPDATE caller_numbers SET attention = ?2 WHERE id = ?1", params![id, note])?;
        if let Some(note) = note {
            log("attention", note.clone())?;
        }
    }
    if more_room {
        release_local_waits(tx, now_ms)?;
    }
    Ok(true)
}

/// One ended call of a number, for its derived health: answered by a person, and
/// how long it lasted (seconds).
#[derive(Debug, Clone, Copy)]
pub struct CallSample {
    pub answered: bool,
    pub duration_seconds: Option<u32>,
}

/// A number's last `limit` ended calls, newest first.
pub fn recent_calls(conn: &Conn, id: i64, limit: u32) -> anyhow::Result<Vec<CallSample>> {
    let rows = conn
        .prepare_cached(
            "SELECT status = 'completed', duration_seconds FROM attempts
             WHERE caller_number_id = ?1 AND ended_at IS NOT NULL AND status <> 'unknown'
             ORDER BY id DESC LIMIT ?2",
        )?
        .query_map(params![id, limit], |r| Ok(CallSample { answered: r.get(0)?, duration_seconds: r.get(1)? }))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
