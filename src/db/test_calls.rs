//! Test calls: one call placed now to a number the operator types, through a
//! campaign's call flow, outside any schedule (never retried, see
//! `calls::after_final`). The number becomes (or already is) a lead, so the call has
//! an attempt row and the same caps and DNC checks as any other; the lead's own
//! status is left alone (`db::attempts` skips leads for attempts without a schedule).
//! A lead made here is `test_only`: "select all" scheduling leaves it out.

use rusqlite::{OptionalExtension, params};

use crate::db::attempts::DueLead;
use crate::db::{Conn, Tx};

/// Why a number cannot be test-called now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Busy {
    /// The lead is in a schedule (waiting or being dialled): a test call would be a
    /// second call to it.
    InSchedule(String),
    /// The lead is marked `do_not_call` or `invalid`.
    Marked(String),
}

/// The lead with `phone` (E.164), created when absent as "Test call" with `zones`
/// ('&'-joined IANA names, from the number), ready to be dialled for `campaign_id`.
/// Errors: store failures. `Ok(Err(Busy))` when the lead is scheduled or in a call.
pub fn lead_for(
    tx: &Tx,
    phone: &str,
    zones: Option<&str>,
    campaign_id: i64,
    now_ms: i64,
) -> anyhow::Result<Result<DueLead, Busy>> {
    let found: Option<(i64, String, Option<String>, String, bool)> = tx
        .query_row(
            "SELECT id, status, timezone, state, consent_at IS NOT NULL FROM leads WHERE phone = ?1",
            [phone],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    // A call to the number already under way (another test call): not a second one.
    if let Some((id, ..)) = &found
        && crate::db::attempts::lead_in_call(tx, *id)?
    {
        return Ok(Err(Busy::InSchedule("in a call".into())));
    }
    let (id, timezone, state, has_consent) = match found {
        Some((_, status, ..)) if matches!(status.as_str(), "scheduled" | "dialing" | "ringing" | "in_progress") => {
            return Ok(Err(Busy::InSchedule(status)));
        }
        // Opted out (even if the DNC entry was removed since: removal never un-marks
        // a lead) or a number the provider refused: not called, not even as a test.
        Some((_, status, ..)) if matches!(status.as_str(), "do_not_call" | "invalid") => {
            return Ok(Err(Busy::Marked(status)));
        }
        Some((id, _, timezone, state, consent)) => (id, timezone, state, consent),
        None => {
            tx.execute(
                "INSERT INTO leads (uuid, phone, name, timezone, timezone_source, status, test_only, created_at,
                                    updated_at)
                 VALUES (?1, ?2, 'Test call', ?3, ?4, 'pending', 1, ?5, ?5)",
                params![
                    uuid::Uuid::new_v4().to_string(),
                    phone,
                    zones,
                    if zones.is_some() { "number" } else { "default" },
                    now_ms
                ],
            )?;
            (tx.last_insert_rowid(), zones.map(String::from), String::new(), false)
        }
    };
    Ok(Ok(DueLead {
        id,
        phone: phone.to_string(),
        timezone,
        state,
        campaign_id,
        schedule_id: None,
        batch_id: None,
        has_consent,
        due_at: now_ms,
    }))
}

/// A test call as the page and the API show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct View {
    pub attempt_id: i64,
    pub lead_id: i64,
    pub campaign_id: i64,
    /// E.164.
    pub to_number: String,
    pub caller_number: String,
    pub status: String,
    pub answered_by: Option<String>,
    pub transfer_result: Option<String>,
    pub duration_seconds: Option<i64>,
    pub error: Option<String>,
    /// UTC ms.
    pub created_at: i64,
    pub ended_at: Option<i64>,
    /// Provider events received for the call, oldest first: (UTC ms, provider status word).
    pub events: Vec<(i64, String)>,
}

/// A call outside any schedule (test calls are the only ones), or None.
pub fn view(conn: &Conn, attempt_id: i64) -> anyhow::Result<Option<View>> {
    let view = conn
        .query_row(
            "SELECT id, lead_id, campaign_id, to_number, caller_number, status, answered_by, transfer_result,
                    duration_seconds, error, created_at, ended_at
             FROM attempts WHERE id = ?1 AND schedule_id IS NULL",
            [attempt_id],
            |r| {
                Ok(View {
                    attempt_id: r.get(0)?,
                    lead_id: r.get(1)?,
                    campaign_id: r.get(2)?,
                    to_number: r.get(3)?,
                    caller_number: r.get(4)?,
                    status: r.get(5)?,
                    answered_by: r.get(6)?,
                    transfer_result: r.get(7)?,
                    duration_seconds: r.get(8)?,
                    error: r.get(9)?,
                    created_at: r.get(10)?,
                    ended_at: r.get(11)?,
                    events: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut view) = view else { return Ok(None) };
    let mut stmt =
        conn.prepare_cached("SELECT received_at, status FROM call_events WHERE attempt_id = ?1 ORDER BY id")?;
    view.events = stmt.query_map([attempt_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    Ok(Some(view))
}

/// The latest calls outside any schedule, newest first: (attempt id, to, status, created_at UTC ms).
pub fn recent(conn: &Conn, limit: u32) -> anyhow::Result<Vec<(i64, String, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, to_number, status, created_at FROM attempts WHERE schedule_id IS NULL ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
