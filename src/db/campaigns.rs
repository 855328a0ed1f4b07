//! Campaigns and their lifecycle history.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::campaigns::{CampaignStatus, Checked, Settings};
use crate::db::{Conn, Tx};

/// The campaign schedules belong to when none is chosen.
pub const DEFAULT_ID: i64 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct CampaignRow {
    pub id: i64,
    pub name: String,
    pub status: String,
    /// UTC ms.
    pub created_at: i64,
    pub updated_at: i64,
    /// Schedules, and leads waiting to be called (scheduled, not yet dialled; the
    /// count stops at 100,000 so that pages stay fast with millions queued).
    pub schedules: i64,
    pub queued_leads: i64,
    /// `campaigns::Settings` as stored (JSON object).
    pub settings: serde_json::Value,
}

const SELECT: &str = "SELECT c.id, c.name, c.status, c.created_at, c.updated_at,
    (SELECT COUNT(*) FROM schedules s WHERE s.campaign_id = c.id),
    (SELECT COUNT(*) FROM (SELECT 1 FROM leads l WHERE l.campaign_id = c.id AND l.status = 'scheduled'
      LIMIT 100000)),
    c.settings
    FROM campaigns c";

fn row(r: &rusqlite::Row) -> rusqlite::Result<CampaignRow> {
    Ok(CampaignRow {
        id: r.get(0)?,
        name: r.get(1)?,
        status: r.get(2)?,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
        schedules: r.get(5)?,
        queued_leads: r.get(6)?,
        settings: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
    })
}

pub fn list(conn: &Conn) -> anyhow::Result<Vec<CampaignRow>> {
    let rows =
        conn.prepare_cached(&format!("{SELECT} ORDER BY c.id"))?.query_map([], row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn get(conn: &Conn, id: i64) -> anyhow::Result<Option<CampaignRow>> {
    Ok(conn.prepare_cached(&format!("{SELECT} WHERE c.id = ?1"))?.query_row([id], row).optional()?)
}

pub fn status(conn: &Conn, id: i64) -> anyhow::Result<Option<CampaignStatus>> {
    let s: Option<String> =
        conn.prepare_cached("SELECT status FROM campaigns WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()?;
    s.map(|s| s.parse::<CampaignStatus>().map_err(anyhow::Error::msg)).transpose()
}

/// A new `draft` campaign; `Ok(None)` if the name is taken.
pub fn create(tx: &Tx, name: &str, actor: &str, now_ms: i64) -> anyhow::Result<Option<i64>> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO campaigns (name, status, created_at, updated_at) VALUES (?1, 'draft', ?2, ?2)
             ON CONFLICT(name) DO NOTHING",
        )?
        .execute(params![name, now_ms])?;
    if inserted == 0 {
        return Ok(None);
    }
    let id = tx.last_insert_rowid();
    event(tx, id, None, CampaignStatus::Draft, "created", actor, now_ms)?;
    Ok(Some(id))
}

fn event(
    tx: &Tx,
    id: i64,
    from: Option<CampaignStatus>,
    to: CampaignStatus,
    reason: &str,
    actor: &str,
    now_ms: i64,
) -> anyhow::Result<()> {
    tx.prepare_cached(
        "INSERT INTO campaign_events (campaign_id, at, from_status, to_status, reason, actor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![id, now_ms, from.map(|s| s.as_str()), to.as_str(), reason, actor])?;
    Ok(())
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    NotAllowed { from: CampaignStatus, to: CampaignStatus },
}

/// Moves campaign `id` to `to`, recording the reason; refused if it is not a
/// lifecycle step from its current state.
pub fn transition(
    tx: &Tx,
    id: i64,
    to: CampaignStatus,
    reason: &str,
    actor: &str,
    now_ms: i64,
) -> anyhow::Result<Result<CampaignStatus, Refused>> {
    let Some(from) = status(tx, id)? else { return Ok(Err(Refused::NotFound)) };
    if !from.can_become(to) {
        return Ok(Err(Refused::NotAllowed { from, to }));
    }
    tx.prepare_cached("UPDATE campaigns SET status = ?2, updated_at = ?3 WHERE id = ?1")?.execute(params![
        id,
        to.as_str(),
        now_ms
    ])?;
    event(tx, id, Some(from), to, reason, actor, now_ms)?;
    Ok(Ok(from))
}

/// The campaign of a schedule moves on by itself: `draft → scheduled` when a
/// schedule is created, `scheduled → running` when its first batch fires.
pub fn advance(tx: &Tx, id: i64, to: CampaignStatus, reason: &str, now_ms: i64) -> anyhow::Result<()> {
    use CampaignStatus::{Draft, Running, Scheduled};
    // Only these two steps are automatic; a paused campaign stays paused when its
    // next batch fires.
    if status(tx, id)?.is_some_and(|from| matches!((from, to), (Draft, Scheduled) | (Scheduled, Running))) {
        transition(tx, id, to, reason, "system", now_ms)?.ok();
    }
    Ok(())
}

/// Marks `completed` every running or paused campaign (not the default one) that
/// has had a schedule and has nothing left: no batch to fire and no lead waiting
/// or in a call. Returns the ids completed.
pub fn complete_finished(tx: &Tx, now_ms: i64) -> anyhow::Result<Vec<i64>> {
    let ids: Vec<i64> = tx
        .prepare_cached(
            "SELECT c.id FROM campaigns c
             WHERE c.id <> 1 AND c.status IN ('running', 'paused')
               AND EXISTS (SELECT 1 FROM schedules s WHERE s.campaign_id = c.id)
               AND NOT EXISTS (SELECT 1 FROM batches b JOIN schedules s ON s.id = b.schedule_id
                               WHERE s.campaign_id = c.id AND b.status = 'pending')
               AND NOT EXISTS (SELECT 1 FROM leads l JOIN schedules s ON s.id = l.schedule_id
                               WHERE s.campaign_id = c.id
                                 AND l.status IN ('scheduled', 'dialing', 'ringing', 'in_progress'))",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        transition(tx, *id, CampaignStatus::Completed, "every lead has an outcome", "system", now_ms)?.ok();
    }
    Ok(ids)
}

/// The stored settings (JSON) of every running campaign, for the claim: only their
/// leads are due, and finished campaigns pile up over the years.
pub fn settings_running(conn: &Conn) -> anyhow::Result<Vec<(i64, String)>> {
    let rows = conn
        .prepare_cached("SELECT id, settings FROM campaigns WHERE status = 'running'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A campaign's status and checked settings (`None` if it does not exist). Stored
/// settings were checked when written; a row edited by hand into something invalid
/// reads as the defaults, with a warning, rather than stopping the campaign.
pub fn checked(conn: &Conn, id: i64) -> anyhow::Result<Option<(CampaignStatus, Checked)>> {
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT status, settings FROM campaigns WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((status, json)) = row else { return Ok(None) };
    let status = status.parse::<CampaignStatus>().map_err(anyhow::Error::msg)?;
    Ok(Some((status, parse_settings(id, &json))))
}

/// Checked settings from their stored JSON; the defaults (with a warning) if unreadable.
pub fn parse_settings(id: i64, json: &str) -> Checked {
    match serde_json::from_str::<Settings>(json).map_err(|e| e.to_string()).and_then(|s| s.check()) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(campaign_id = id, error = %e, "campaign settings unreadable; using defaults");
            Checked::default()
        }
    }
}

/// Replaces a campaign's settings (already checked) and records the change.
pub fn set_settings(tx: &Tx, id: i64, json: &str, actor: &str, now_ms: i64) -> anyhow::Result<bool> {
    let Some(current) = status(tx, id)? else { return Ok(false) };
    tx.prepare_cached("UPDATE campaigns SET settings = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, json, now_ms])?;
    event(tx, id, Some(current), current, &format!("settings: {json}"), actor, now_ms)?;
    Ok(true)
}

/// Schedules of a campaign that still have batches to fire.
pub fn active_schedules(conn: &Conn, id: i64) -> anyhow::Result<Vec<i64>> {
    let rows = conn
        .prepare_cached("SELECT id FROM schedules WHERE campaign_id = ?1 AND status = 'active'")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignEvent {
    pub at: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: String,
    pub actor: String,
}

pub fn events(conn: &Conn, id: i64) -> anyhow::Result<Vec<CampaignEvent>> {
    let rows = conn
        .prepare_cached(
            "SELECT at, from_status, to_status, reason, actor FROM campaign_events
             WHERE campaign_id = ?1 ORDER BY id DESC LIMIT 200",
        )?
        .query_map([id], |r| {
            Ok(CampaignEvent {
                at: r.get(0)?,
                from_status: r.get(1)?,
                to_status: r.get(2)?,
                reason: r.get(3)?,
                actor: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
