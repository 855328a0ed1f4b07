//! Call attempts, the claim queue and provider call events.

use rusqlite::{OptionalExtension, params};

use crate::db::{Conn, Tx};
use crate::domain::status::Status;

/// Calls holding a concurrency slot (no final status yet).
pub fn in_flight(tx: &Conn) -> anyhow::Result<i64> {
    Ok(tx.prepare_cached("SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL")?.query_row([], |r| r.get(0))?)
}

/// A scheduled lead whose batch has fired and whose time has come.
#[derive(Debug, Clone)]
pub struct DueLead {
    pub id: i64,
    pub phone: String,
    pub timezone: Option<String>,
    /// The CSV's state column (may be empty).
    pub state: String,
    /// The campaign of its schedule (`leads.campaign_id`, set when it was scheduled).
    pub campaign_id: i64,
    pub schedule_id: Option<i64>,
    pub batch_id: Option<i64>,
    /// A consent time is on record (`consent_at`).
    pub has_consent: bool,
    /// When it became due (UTC ms): the queue order is (due_at, id).
    pub due_at: i64,
}

/// Up to `limit` due leads, in due order (batch time, then id). Only leads of a
/// `running` campaign are due: pausing stops new dials at the next claim.
pub fn due_leads(tx: &Tx, now_ms: i64, limit: u32) -> anyhow::Result<Vec<DueLead>> {
    due_leads_except(tx, now_ms, limit, &[])
}

/// [`due_leads`] without the leads of the campaigns in `except` (campaigns whose
/// calls-per-minute pace lets no call start now).
///
/// Each running campaign's first `limit` due leads come from its own range of the
/// `leads_due_campaign` index and are merged here, so the cost is O(running campaigns
/// × limit) whatever backlog paused or paced campaigns hold.
pub fn due_leads_except(tx: &Tx, now_ms: i64, limit: u32, except: &[i64]) -> anyhow::Result<Vec<DueLead>> {
    let running: Vec<i64> = tx
        .prepare_cached("SELECT id FROM campaigns WHERE status = 'running' ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    // The limit is part of the SQL text: a bound LIMIT makes SQLite re-prepare the
    // statement on every call (callers use a couple of constant limits).
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT id, phone, timezone, schedule_id, batch_id, state, campaign_id, consent_at IS NOT NULL, next_call_at
         FROM leads
         WHERE campaign_id = ?1 AND status = 'scheduled' AND next_call_at IS NOT NULL AND next_call_at <= ?2
         ORDER BY next_call_at, id LIMIT {limit}"
    ))?;
    let mut due = Vec::new();
    for campaign in running.into_iter().filter(|c| !except.contains(c)) {
        let rows = stmt.query_map(params![campaign, now_ms], |r| {
            Ok(DueLead {
                id: r.get(0)?,
                phone: r.get(1)?,
                timezone: r.get(2)?,
                schedule_id: r.get(3)?,
                batch_id: r.get(4)?,
                state: r.get(5)?,
                campaign_id: r.get(6)?,
                has_consent: r.get(7)?,
                due_at: r.get(8)?,
            })
        })?;
        for row in rows {
            due.push(row?);
        }
    }
    due.sort_by_key(|l| (l.due_at, l.id));
    due.truncate(limit as usize);
    Ok(due)
}

/// Earliest time after `now_ms` at which a scheduled lead becomes due.
pub fn next_due_lead(conn: &Conn, now_ms: i64) -> anyhow::Result<Option<i64>> {
    Ok(conn.query_row(
        "SELECT MIN(next_call_at) FROM leads
         WHERE status = 'scheduled' AND next_call_at IS NOT NULL AND next_call_at > ?1",
        [now_ms],
        |r| r.get(0),
    )?)
}

/// Scheduled leads waiting for a local caller ID (strict local presence), capped.
/// Through its partial index (migration 0015), named because without statistics the
/// planner would walk every scheduled lead instead (~120 ms at a million).
pub fn waiting_for_local_number(conn: &Conn) -> anyhow::Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM (SELECT 1 FROM leads INDEXED BY leads_waiting_local
         WHERE status = 'scheduled' AND wait_reason = 'no_local_number' LIMIT ?1)",
        [COUNT_CAP],
        |r| r.get(0),
    )?)
}

/// Counts above this are reported as this: exact counts of a million queued leads
/// would cost the dashboard tens of milliseconds on every page.
pub const COUNT_CAP: i64 = 100_000;

/// Scheduled leads deferred past `now_ms`, counted by wait reason (`calling_hours`,
/// `retry`, `lead_24h_cap`, …; a lead deferred before reasons were recorded counts as
/// `calling_hours`), at most [`COUNT_CAP`] leads looked at.
pub fn waiting_by_reason(conn: &Conn, now_ms: i64) -> anyhow::Result<Vec<(String, i64)>> {
    let rows = conn
        .prepare_cached(
            "SELECT COALESCE(wait_reason, 'calling_hours') AS reason, COUNT(*) FROM (
                 SELECT wait_reason FROM leads
                 WHERE status = 'scheduled' AND next_call_at IS NOT NULL AND next_call_at > ?1 LIMIT ?2)
             GROUP BY reason ORDER BY 2 DESC, 1",
        )?
        .query_map(params![now_ms, COUNT_CAP], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Leads whose batch has fired and are waiting for their turn (queue depth), capped.
pub fn queue_depth(conn: &Conn) -> anyhow::Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM (SELECT 1 FROM leads
         WHERE status = 'scheduled' AND next_call_at IS NOT NULL LIMIT ?1)",
        [COUNT_CAP],
        |r| r.get(0),
    )?)
}

pub fn on_dnc(tx: &Tx, phone: &str) -> anyhow::Result<bool> {
    Ok(tx.prepare_cached("SELECT 1 FROM dnc WHERE phone = ?1")?.query_row([phone], |_| Ok(())).optional()?.is_some())
}

/// Moves a lead's next eligible time (e.g. to when its calling hours open).
/// Puts a due lead back to wait until `next_ms`, with the reason shown on the
/// dashboard (`calling_hours` | `no_local_number` | `lead_24h_cap`).
/// Whether the lead has a call under way (an attempt still holding its slot), from
/// any schedule or a test call: a second call to it must wait.
pub fn lead_in_call(tx: &Tx, lead_id: i64) -> anyhow::Result<bool> {
    Ok(tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM attempts WHERE lead_id = ?1 AND ended_at IS NULL)")?
        .query_row([lead_id], |r| r.get(0))?)
}

pub fn defer(tx: &Tx, lead_id: i64, next_ms: i64, reason: &str) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE leads SET next_call_at = ?2, wait_reason = ?3 WHERE id = ?1")?
        .execute(params![lead_id, next_ms, reason])?;
    Ok(())
}

/// A due lead of a campaign that requires consent, without one on record: back to
/// `pending` (out of the schedule, never dialled), wait reason `no_consent`.
pub fn skip_no_consent(tx: &Tx, lead_id: i64, now_ms: i64) -> anyhow::Result<()> {
    tx.prepare_cached(
        "UPDATE leads SET status = 'pending', next_call_at = NULL, schedule_id = NULL, batch_id = NULL,
                          wait_reason = 'no_consent', updated_at = ?2
         WHERE id = ?1",
    )?
    .execute(params![lead_id, now_ms])?;
    Ok(())
}

/// Calls of a campaign in flight.
pub fn in_flight_for_campaign(tx: &Tx, campaign_id: i64) -> anyhow::Result<i64> {
    Ok(tx
        .prepare_cached("SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL AND campaign_id = ?1")?
        .query_row([campaign_id], |r| r.get(0))?)
}

/// Calls of a campaign placed since `since_ms` (UTC ms).
pub fn campaign_calls_since(tx: &Tx, campaign_id: i64, since_ms: i64) -> anyhow::Result<i64> {
    Ok(tx
        .prepare_cached("SELECT COUNT(*) FROM attempts WHERE created_at >= ?2 AND campaign_id = ?1")?
        .query_row(params![campaign_id, since_ms], |r| r.get(0))?)
}

/// Start times (UTC ms, ascending) of the calls made to `lead_id` since `since_ms`,
/// whatever the caller number or schedule: the rolling 24-hour count.
pub fn lead_calls_since(tx: &Tx, lead_id: i64, since_ms: i64) -> anyhow::Result<Vec<i64>> {
    let rows = tx
        .prepare_cached("SELECT created_at FROM attempts WHERE lead_id = ?1 AND created_at > ?2 ORDER BY created_at")?
        .query_map(params![lead_id, since_ms], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Attempts a lead already has in a schedule (the next one is this + 1).
pub fn count_in_schedule(tx: &Tx, lead_id: i64, schedule_id: Option<i64>) -> anyhow::Result<u32> {
    Ok(tx
        .prepare_cached("SELECT COUNT(*) FROM attempts WHERE lead_id = ?1 AND schedule_id IS ?2")?
        .query_row(params![lead_id, schedule_id], |r| r.get(0))?)
}

pub struct NewAttempt<'a> {
    pub lead: &'a DueLead,
    pub caller_number_id: i64,
    pub caller_number: &'a str,
    pub usage_day: &'a str,
    pub provider: &'a str,
    /// Why this caller number: its local-presence tier and how many numbers with
    /// capacity that tier had.
    pub tier: &'a str,
    pub candidates: i64,
    /// 1 for the first call of the lead in this schedule; the unique key
    /// (lead, schedule, attempt number) refuses a second row with the same number.
    pub attempt_number: u32,
}

/// Writes the attempt (status `dialing`) and moves the lead to `dialing`. This row
/// exists before the provider is asked for anything.
pub fn insert(tx: &Tx, a: &NewAttempt, now_ms: i64) -> anyhow::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO attempts (lead_id, schedule_id, batch_id, caller_number_id, caller_number, to_number,
                               usage_day, provider, status, created_at, caller_tier, caller_candidates,
                               attempt_number, campaign_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'dialing', ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        a.lead.id,
        a.lead.schedule_id,
        a.lead.batch_id,
        a.caller_number_id,
        a.caller_number,
        a.lead.phone,
        a.usage_day,
        a.provider,
        now_ms,
        a.tier,
        a.candidates,
        a.attempt_number,
        a.lead.campaign_id
    ])?;
    let id = tx.last_insert_rowid();
    if a.lead.schedule_id.is_none() {
        // A test call: the lead's own status and schedule are not its business.
        return Ok(id);
    }
    tx.prepare_cached(
        "UPDATE leads SET status = 'dialing', attempts = attempts + 1, next_call_at = NULL, wait_reason = NULL,
                          updated_at = ?2
         WHERE id = ?1",
    )?
    .execute(params![a.lead.id, now_ms])?;
    Ok(id)
}

/// The fields of an attempt that event handling reads.
#[derive(Debug, Clone)]
pub struct AttemptState {
    pub id: i64,
    pub lead_id: i64,
    /// E.164 called and caller numbers.
    pub to_number: String,
    pub caller_number: String,
    pub status: Status,
    pub provider_call_id: Option<String>,
    pub caller_number_id: i64,
    pub usage_day: String,
    pub created_at: i64,
    pub schedule_id: Option<i64>,
    pub attempt_number: u32,
    pub campaign_id: i64,
}

pub fn state(tx: &Conn, attempt_id: i64) -> anyhow::Result<Option<AttemptState>> {
    Ok(tx
        .prepare_cached(
            "SELECT id, lead_id, status, provider_call_id, caller_number_id, usage_day, created_at,
                    to_number, caller_number, schedule_id, attempt_number, campaign_id
             FROM attempts WHERE id = ?1",
        )?
        .query_row([attempt_id], |r| {
            Ok(AttemptState {
                id: r.get(0)?,
                lead_id: r.get(1)?,
                to_number: r.get(7)?,
                caller_number: r.get(8)?,
                status: r.get::<_, String>(2)?.parse().unwrap_or(Status::Unknown),
                provider_call_id: r.get(3)?,
                caller_number_id: r.get(4)?,
                usage_day: r.get(5)?,
                created_at: r.get(6)?,
                schedule_id: r.get(9)?,
                attempt_number: r.get(10)?,
                campaign_id: r.get(11)?,
            })
        })
        .optional()?)
}

pub fn set_provider_call_id(tx: &Tx, attempt_id: i64, call_id: &str) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE attempts SET provider_call_id = ?2 WHERE id = ?1 AND provider_call_id IS NULL")?
        .execute(params![attempt_id, call_id])?;
    Ok(())
}

/// A progress or final update for an attempt, mirrored onto its lead.
#[derive(Debug, Clone, Default)]
pub struct Progress<'a> {
    pub answered_by: Option<&'a str>,
    pub duration_seconds: Option<i64>,
    pub error: Option<&'a str>,
}

/// Sets the attempt's status (the caller enforces forward-only order) and the
/// lead's. A final status also releases the concurrency slot (`ended_at`), except
/// `unknown`: a call that may exist keeps its slot until [`end`] (the reconciler).
pub fn set_status(tx: &Tx, a: &AttemptState, status: Status, p: &Progress, now_ms: i64) -> anyhow::Result<()> {
    let ended_at = (status.is_final() && status != Status::Unknown).then_some(now_ms);
    let answered_at = (status == Status::InProgress).then_some(now_ms);
    tx.prepare_cached(
        "UPDATE attempts SET status = ?2,
                answered_by = COALESCE(?3, answered_by),
                duration_seconds = COALESCE(?4, duration_seconds),
                error = COALESCE(?5, error),
                answered_at = COALESCE(answered_at, ?6),
                ended_at = COALESCE(?7, ended_at)
         WHERE id = ?1",
    )?
    .execute(params![a.id, status.as_str(), p.answered_by, p.duration_seconds, p.error, answered_at, ended_at])?;
    if a.schedule_id.is_none() {
        // A test call's outcome is its own; the lead keeps its status.
        return Ok(());
    }
    // An opt-out is final whatever arrives later (a late progress event, the
    // reconciler): a lead marked `do_not_call` is never un-marked here.
    tx.prepare_cached("UPDATE leads SET status = ?2, updated_at = ?3 WHERE id = ?1 AND status <> 'do_not_call'")?
        .execute(params![a.lead_id, status.as_str(), now_ms])?;
    Ok(())
}

/// Records what follows an ended attempt: `next_step` (why a retry follows or not)
/// and, for a retry, puts the lead back in the queue at `retry_at_ms` (status
/// `scheduled`, wait reason `retry`) in the same schedule.
pub fn set_next_step(
    tx: &Tx,
    a: &AttemptState,
    note: &str,
    retry_at_ms: Option<i64>,
    now_ms: i64,
) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE attempts SET next_step = ?2, retry_at = ?3 WHERE id = ?1")?.execute(params![
        a.id,
        note,
        retry_at_ms
    ])?;
    if let Some(at) = retry_at_ms {
        tx.prepare_cached(
            "UPDATE leads SET status = 'scheduled', next_call_at = ?2, wait_reason = 'retry', updated_at = ?3
             WHERE id = ?1 AND status <> 'do_not_call'",
        )?
        .execute(params![a.lead_id, at, now_ms])?;
    }
    Ok(())
}

/// Releases an attempt's concurrency slot.
pub fn end(tx: &Tx, attempt_id: i64, now_ms: i64) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE attempts SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL")?
        .execute(params![attempt_id, now_ms])?;
    Ok(())
}

/// Undoes a claim whose request the provider refused without processing it: the
/// attempt row goes (no call exists, nothing was charged), the caller number gets its
/// slot back, and the lead returns to the queue at `retry_at_ms`. A test call (no
/// schedule) has no queue to return to: its attempt is kept as `failed` with `why`,
/// so the operator sees what happened, and its slot is returned the same way.
pub fn unplace(tx: &Tx, a: &AttemptState, retry_at_ms: i64, why: &str, now_ms: i64) -> anyhow::Result<()> {
    crate::db::numbers::release(tx, a.caller_number_id, &a.usage_day, now_ms)?;
    if a.schedule_id.is_none() {
        tx.prepare_cached(
            "UPDATE attempts SET status = 'failed', error = ?2, ended_at = COALESCE(ended_at, ?3),
                                 next_step = 'not placed; a test call is never retried'
             WHERE id = ?1",
        )?
        .execute(params![a.id, why, now_ms])?;
        return Ok(());
    }
    tx.prepare_cached("DELETE FROM attempts WHERE id = ?1")?.execute([a.id])?;
    tx.prepare_cached(
        "UPDATE leads SET status = 'scheduled', next_call_at = ?2, attempts = MAX(attempts - 1, 0), updated_at = ?3
         WHERE id = ?1 AND status <> 'do_not_call'",
    )?
    .execute(params![a.lead_id, retry_at_ms, now_ms])?;
    Ok(())
}

/// Records a provider webhook; false when this (call id, sequence) was seen before.
pub fn insert_event(
    tx: &Tx,
    attempt_id: Option<i64>,
    call_id: &str,
    sequence: &str,
    status: &str,
    params_json: &str,
    now_ms: i64,
) -> anyhow::Result<bool> {
    let n = tx
        .prepare_cached(
            "INSERT INTO call_events (attempt_id, provider_call_id, sequence, status, params, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )?
        .execute(params![attempt_id, call_id, sequence, status, params_json, now_ms])?;
    Ok(n == 1)
}

/// Attempts still holding a concurrency slot, created before `before_ms`.
pub fn unresolved(conn: &Conn, before_ms: i64) -> anyhow::Result<Vec<AttemptState>> {
    let ids: Vec<i64> = conn
        .prepare_cached("SELECT id FROM attempts WHERE ended_at IS NULL AND created_at < ?1 ORDER BY id")?
        .query_map([before_ms], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.extend(state(conn, id)?);
    }
    Ok(out)
}

/// Attempts created at or after `since_ms` (calls today).
pub fn count_since(conn: &Conn, since_ms: i64) -> anyhow::Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM attempts WHERE created_at >= ?1", [since_ms], |r| r.get(0))?)
}

/// True when some attempt already carries this provider call id.
pub fn call_id_taken(conn: &Conn, call_id: &str) -> anyhow::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM attempts WHERE provider_call_id = ?1")?
        .query_row([call_id], |_| Ok(()))
        .optional()?
        .is_some())
}
