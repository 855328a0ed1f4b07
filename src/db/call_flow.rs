//! What happened inside an answered call, written by the call-flow webhooks: the AMD
//! verdict (`answered_by`), the key pressed (`digits`), the transfer's result, the
//! price, and the keypad opt-out (DNC entry + lead `do_not_call`).

use rusqlite::{OptionalExtension, params};

use crate::db::{Conn, Tx};
use crate::domain::status::Status;

/// The DNC source of an opt-out made by pressing 2 during a call.
pub const KEYPAD_SOURCE: &str = "keypad";

/// The attempt as the call-flow webhooks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowAttempt {
    pub id: i64,
    pub lead_id: i64,
    pub campaign_id: i64,
    /// E.164: the lead's number and the caller ID it was called from.
    pub to_number: String,
    pub caller_number: String,
    pub provider_call_id: Option<String>,
    pub status: Status,
    pub answered_by: Option<String>,
    pub digits: Option<String>,
    /// `connected` | `failed` once a transfer was tried.
    pub transfer_result: Option<String>,
}

pub fn get(conn: &Conn, attempt_id: i64) -> anyhow::Result<Option<FlowAttempt>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, lead_id, campaign_id, to_number, caller_number, provider_call_id, status, answered_by,
                    digits, transfer_result
             FROM attempts WHERE id = ?1",
        )?
        .query_row([attempt_id], |r| {
            Ok(FlowAttempt {
                id: r.get(0)?,
                lead_id: r.get(1)?,
                campaign_id: r.get(2)?,
                to_number: r.get(3)?,
                caller_number: r.get(4)?,
                provider_call_id: r.get(5)?,
                status: r.get::<_, String>(6)?.parse().unwrap_or(Status::Unknown),
                answered_by: r.get(7)?,
                digits: r.get(8)?,
                transfer_result: r.get(9)?,
            })
        })
        .optional()?)
}

/// Stores the AMD verdict (Twilio `AnsweredBy`: human, machine_start,
/// machine_end_beep, machine_end_silence, machine_end_other, fax, unknown).
pub fn set_answered_by(tx: &Tx, attempt_id: i64, answered_by: &str) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE attempts SET answered_by = ?2 WHERE id = ?1")?
        .execute(params![attempt_id, answered_by])?;
    Ok(())
}

/// Stores the key pressed in the message's Gather (the last one, if the message ran twice).
pub fn set_digits(tx: &Tx, attempt_id: i64, digits: &str) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE attempts SET digits = ?2 WHERE id = ?1")?.execute(params![attempt_id, digits])?;
    Ok(())
}

/// Stores a transfer's result (`connected` | `failed`) and the agent leg's length (s).
pub fn set_transfer(tx: &Tx, attempt_id: i64, result: &str, seconds: Option<i64>) -> anyhow::Result<()> {
    tx.prepare_cached(
        "UPDATE attempts SET transfer_result = ?2, transfer_seconds = COALESCE(?3, transfer_seconds) WHERE id = ?1",
    )?
    .execute(params![attempt_id, result, seconds])?;
    Ok(())
}

/// Stores the provider's price for call `call_id` of the attempt (decimal string as
/// reported, e.g. "-0.01300", and its currency, e.g. "USD"); ignored when the attempt
/// carries another call.
pub fn set_price(tx: &Tx, attempt_id: i64, call_id: &str, price: &str, unit: Option<&str>) -> anyhow::Result<()> {
    tx.prepare_cached(
        "UPDATE attempts SET price = ?3, price_unit = COALESCE(?4, price_unit)
         WHERE id = ?1 AND (provider_call_id IS NULL OR provider_call_id = ?2)",
    )?
    .execute(params![attempt_id, call_id, price, unit])?;
    Ok(())
}

/// The person pressed 2: their number goes on the DNC list at once (source
/// `keypad`, with an `added` event) and their lead is marked `do_not_call`, whatever
/// state the call is in. Returns whether the number was newly listed.
pub fn opt_out(tx: &Tx, attempt: &FlowAttempt, now_ms: i64) -> anyhow::Result<bool> {
    set_digits(tx, attempt.id, "2")?;
    let added = crate::db::dnc::add(
        tx,
        &attempt.to_number,
        KEYPAD_SOURCE,
        &format!("pressed 2 during call attempt {}", attempt.id),
        "keypad",
        now_ms,
    )?;
    mark_opted_out(tx, attempt.lead_id, now_ms)?;
    Ok(added.new)
}

/// Marks the lead `do_not_call` and takes it out of the queue.
pub fn mark_opted_out(tx: &Tx, lead_id: i64, now_ms: i64) -> anyhow::Result<()> {
    tx.prepare_cached(
        "UPDATE leads SET status = 'do_not_call', next_call_at = NULL, wait_reason = NULL, updated_at = ?2
         WHERE id = ?1",
    )?
    .execute(params![lead_id, now_ms])?;
    Ok(())
}

/// Did this attempt's person opt out by keypad (pressed 2)? The final status must
/// not put such a lead back to `completed` or into a retry.
pub fn opted_out(conn: &Conn, attempt_id: i64) -> anyhow::Result<bool> {
    let digits: Option<String> = conn
        .prepare_cached("SELECT digits FROM attempts WHERE id = ?1")?
        .query_row([attempt_id], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(digits.as_deref() == Some("2"))
}
