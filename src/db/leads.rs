//! Leads: import upserts, keyset-paginated listing, counts, scheduling marks.

use anyhow::Context;
use rusqlite::{OptionalExtension, params, params_from_iter};

use crate::db::{Conn, Tx};
use crate::domain::status::Status;

/// A lead as the import produced it (phone already E.164).
#[derive(Debug, Clone)]
pub struct NewLead {
    pub line: u64,
    pub uuid: Option<String>,
    pub phone: String,
    pub whatsapp: String,
    pub name: String,
    pub email: String,
    pub partner: String,
    pub state: String,
    /// IANA zones joined by '&', or None when unknown.
    pub timezone: Option<String>,
    pub timezone_source: &'static str,
    pub status: Status,
    /// When the lead agreed to be called (UTC ms) and how (web form, …), if known.
    pub consent_at: Option<i64>,
    pub consent_source: String,
}

/// What happened to one `NewLead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upsert {
    Inserted,
    /// Same E.164 already stored (or earlier in the file): empty fields were filled in.
    Merged,
    /// Refused; the reason names the conflict.
    Conflict(String),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LeadRow {
    pub id: i64,
    pub uuid: String,
    pub phone: String,
    pub name: String,
    pub email: String,
    pub partner: String,
    pub status: String,
    pub attempts: i64,
    pub timezone: Option<String>,
    #[serde(skip)]
    pub timezone_source: String,
    #[serde(skip)]
    pub state: String,
    #[serde(skip)]
    pub next_call_at: Option<i64>,
    #[serde(skip)]
    pub schedule_id: Option<i64>,
    /// Why a scheduled lead is waiting: `calling_hours` | `no_local_number` | `lead_24h_cap`.
    pub wait_reason: Option<String>,
    /// When the lead agreed to be called, RFC 3339 UTC in the API.
    #[serde(serialize_with = "rfc3339")]
    pub consent_at: Option<i64>,
    pub consent_source: String,
}

fn rfc3339<S: serde::Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_some(&crate::db::from_ms(*ms).to_rfc3339()),
        None => s.serialize_none(),
    }
}

/// Filter shared by the listing, the count and "select all matching".
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    pub status: Option<Status>,
    /// Substring of name, phone or email (case-insensitive for ASCII).
    pub q: Option<String>,
}

impl LeadFilter {
    fn sql(&self, args: &mut Vec<rusqlite::types::Value>) -> String {
        let mut clauses = Vec::new();
        if let Some(status) = self.status {
            clauses.push("status = ?".to_string());
            args.push(status.as_str().to_string().into());
        }
        if let Some(q) = self.q.as_deref().filter(|q| !q.trim().is_empty()) {
            let escaped = q.trim().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            clauses
                .push("(name LIKE ? ESCAPE '\\' OR phone LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\')".to_string());
            for _ in 0..3 {
                args.push(pattern.clone().into());
            }
        }
        if clauses.is_empty() { "1".to_string() } else { clauses.join(" AND ") }
    }
}

/// Inserts or merges one lead (the caller batches many per transaction).
pub fn upsert(tx: &Tx, lead: &NewLead, import_id: i64, now_ms: i64) -> anyhow::Result<Upsert> {
    let existing: Option<(i64, String)> = tx
        .prepare_cached("SELECT id, uuid FROM leads WHERE phone = ?1")?
        .query_row([&lead.phone], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some(uuid) = &lead.uuid {
        let owner: Option<String> =
            tx.prepare_cached("SELECT phone FROM leads WHERE uuid = ?1")?.query_row([uuid], |r| r.get(0)).optional()?;
        if let Some(owner) = owner.filter(|p| *p != lead.phone) {
            return Ok(Upsert::Conflict(format!("lead_uuid is already used by the lead with phone {owner}")));
        }
    }
    match existing {
        Some((id, _)) => {
            // Merge: keep what is stored, fill what is empty. Status is never changed
            // by a re-import: a lead in flight or done stays so.
            tx.prepare_cached(
                "UPDATE leads SET
                    whatsapp = CASE WHEN whatsapp = '' THEN ?2 ELSE whatsapp END,
                    name     = CASE WHEN name = '' OR test_only = 1 THEN ?3 ELSE name END,
                    email    = CASE WHEN email = ''    THEN ?4 ELSE email END,
                    partner  = CASE WHEN partner = ''  THEN ?5 ELSE partner END,
                    state    = CASE WHEN state = ''    THEN ?6 ELSE state END,
                    consent_at = COALESCE(consent_at, ?8),
                    consent_source = CASE WHEN consent_source = '' THEN ?9 ELSE consent_source END,
                    test_only = 0,
                    updated_at = ?7
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                lead.whatsapp,
                lead.name,
                lead.email,
                lead.partner,
                lead.state,
                now_ms,
                lead.consent_at,
                lead.consent_source
            ])?;
            Ok(Upsert::Merged)
        }
        None => {
            // v7 ids are time-ordered, so a big import appends to the uuid index
            // instead of writing all over it.
            let uuid = lead.uuid.clone().unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
            tx.prepare_cached(
                "INSERT INTO leads (uuid, phone, whatsapp, name, email, partner, state, timezone,
                                    timezone_source, status, import_id, created_at, updated_at,
                                    consent_at, consent_source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14)",
            )?
            .execute(params![
                uuid,
                lead.phone,
                lead.whatsapp,
                lead.name,
                lead.email,
                lead.partner,
                lead.state,
                lead.timezone,
                lead.timezone_source,
                lead.status.as_str(),
                import_id,
                now_ms,
                lead.consent_at,
                lead.consent_source
            ])?;
            Ok(Upsert::Inserted)
        }
    }
}

const COLUMNS: &str = "id, uuid, phone, name, email, partner, status, attempts, timezone,
                       timezone_source, state, next_call_at, schedule_id, wait_reason, consent_at, consent_source";

fn row(r: &rusqlite::Row) -> rusqlite::Result<LeadRow> {
    Ok(LeadRow {
        id: r.get(0)?,
        uuid: r.get(1)?,
        phone: r.get(2)?,
        name: r.get(3)?,
        email: r.get(4)?,
        partner: r.get(5)?,
        status: r.get(6)?,
        attempts: r.get(7)?,
        timezone: r.get(8)?,
        timezone_source: r.get(9)?,
        state: r.get(10)?,
        next_call_at: r.get(11)?,
        schedule_id: r.get(12)?,
        wait_reason: r.get(13)?,
        consent_at: r.get(14)?,
        consent_source: r.get(15)?,
    })
}

/// One page, newest first. `cursor` is the last id of the previous page; the next
/// cursor is returned when more rows may follow. Keyset pagination: every page costs
/// the same at any depth.
pub fn page(
    conn: &Conn,
    filter: &LeadFilter,
    limit: u32,
    cursor: Option<i64>,
) -> anyhow::Result<(Vec<LeadRow>, Option<i64>)> {
    let mut args = Vec::new();
    let where_sql = filter.sql(&mut args);
    args.push(cursor.unwrap_or(i64::MAX).into());
    args.push(i64::from(limit).into());
    let sql = format!("SELECT {COLUMNS} FROM leads WHERE {where_sql} AND id < ? ORDER BY id DESC LIMIT ?");
    let rows = conn.prepare_cached(&sql)?.query_map(params_from_iter(args), row)?.collect::<Result<Vec<_>, _>>()?;
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.id)).flatten();
    Ok((rows, next))
}

/// Leads matching `filter`. Without a text query this reads the trigger-kept
/// `lead_counts` table (O(statuses)); with one it scans.
pub fn count(conn: &Conn, filter: &LeadFilter) -> anyhow::Result<i64> {
    if filter.q.as_deref().is_none_or(|q| q.trim().is_empty()) {
        let n = match filter.status {
            Some(status) => conn
                .prepare_cached("SELECT n FROM lead_counts WHERE status = ?1")?
                .query_row([status.as_str()], |r| r.get(0))
                .optional()?
                .unwrap_or(0),
            None => conn.query_row("SELECT COALESCE(SUM(n), 0) FROM lead_counts", [], |r| r.get(0))?,
        };
        return Ok(n);
    }
    let mut args = Vec::new();
    let sql = format!("SELECT COUNT(*) FROM leads WHERE {}", filter.sql(&mut args));
    Ok(conn.query_row(&sql, params_from_iter(args), |r| r.get(0))?)
}

/// Count of leads per status, for the dashboard's filter chips.
pub fn counts_by_status(conn: &Conn) -> anyhow::Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached("SELECT status, n FROM lead_counts WHERE n > 0 ORDER BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn get(conn: &Conn, id: i64) -> anyhow::Result<Option<LeadRow>> {
    let sql = format!("SELECT {COLUMNS} FROM leads WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], row).optional()?)
}

/// Ids and statuses of `ids` that exist, in the order given.
pub fn statuses(tx: &Tx, ids: &[i64]) -> anyhow::Result<Vec<(i64, Option<Status>)>> {
    let mut stmt = tx.prepare_cached("SELECT status FROM leads WHERE id = ?1")?;
    ids.iter()
        .map(|id| {
            let status: Option<String> = stmt.query_row([id], |r| r.get(0)).optional()?;
            Ok((*id, status.and_then(|s| s.parse().ok())))
        })
        .collect()
}

/// Ids of schedulable (`pending`) leads matching `filter`, oldest first.
pub fn schedulable_ids(tx: &Tx, filter: &LeadFilter) -> anyhow::Result<Vec<i64>> {
    let mut args = Vec::new();
    let where_sql = filter.sql(&mut args);
    // Leads made by a test call are only scheduled when ticked by hand.
    let sql = format!("SELECT id FROM leads WHERE {where_sql} AND status = 'pending' AND test_only = 0 ORDER BY id");
    let ids = tx
        .prepare(&sql)?
        .query_map(params_from_iter(args), |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()
        .context("selecting schedulable leads")?;
    Ok(ids)
}

/// Puts `ids` into `batch_id` of `schedule_id`; they wait (next_call_at NULL) until it fires.
pub fn mark_scheduled(tx: &Tx, ids: &[i64], schedule_id: i64, batch_id: i64, now_ms: i64) -> anyhow::Result<()> {
    let mut stmt = tx.prepare_cached(
        "UPDATE leads SET status = 'scheduled', schedule_id = ?2, batch_id = ?3, next_call_at = NULL, wait_reason = NULL,
                          campaign_id = COALESCE((SELECT campaign_id FROM schedules WHERE id = ?2), 1), updated_at = ?4
         WHERE id = ?1 AND status = 'pending'",
    )?;
    for id in ids {
        if stmt.execute(params![id, schedule_id, batch_id, now_ms])? != 1 {
            anyhow::bail!("lead {id} changed while it was being scheduled");
        }
    }
    Ok(())
}

/// Sets a lead's status (used for DNC and outcome updates by the call loop).
pub fn set_status(tx: &Tx, id: i64, status: Status, now_ms: i64) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE leads SET status = ?2, next_call_at = NULL, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, status.as_str(), now_ms])?;
    Ok(())
}
