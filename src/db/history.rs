//! Attempt rows as the dashboard and API list them: a lead's history (with why each
//! caller ID was chosen and why a retry followed or not) and the newest calls.

use rusqlite::params;

use crate::db::Conn;

#[derive(Debug, Clone, serde::Serialize)]
pub struct AttemptRow {
    pub id: i64,
    pub lead_id: i64,
    pub caller_number: String,
    pub to_number: String,
    pub provider_call_id: Option<String>,
    pub status: String,
    pub answered_by: Option<String>,
    pub error: Option<String>,
    pub created_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub duration_seconds: Option<i64>,
    pub schedule_id: Option<i64>,
    /// Why this caller ID: local-presence tier (area_code | state | timezone | any)
    /// and how many numbers with capacity that tier had.
    pub caller_tier: Option<String>,
    pub caller_candidates: Option<i64>,
    /// 1 for a lead's first call in its schedule, 2 for the first retry, …
    pub attempt_number: i64,
    pub campaign_id: i64,
    /// Why a retry followed this attempt or not (set when it ended).
    pub next_step: Option<String>,
    /// When the retry it led to is due (UTC ms).
    pub retry_at_ms: Option<i64>,
    /// The key pressed during the message ("1" transfer, "2" opt-out, …).
    pub digits: Option<String>,
    /// `connected` | `failed` once a "press 1" transfer was tried.
    pub transfer_result: Option<String>,
    /// Length of the agent leg of the transfer, seconds.
    pub transfer_seconds: Option<i64>,
    /// The provider's charge as it reported it (e.g. "-0.01300") and its currency.
    pub price: Option<String>,
    pub price_unit: Option<String>,
}

impl AttemptRow {
    /// "-0.013 USD", or "" when the provider reported no price.
    pub fn price_text(&self) -> String {
        match (&self.price, &self.price_unit) {
            (Some(p), Some(u)) => format!("{p} {u}"),
            (Some(p), None) => p.clone(),
            _ => String::new(),
        }
    }

    /// "same area code, 1 of 3 numbers with room", for the lead's attempt list.
    pub fn caller_reason(&self) -> String {
        let tier = match self.caller_tier.as_deref() {
            Some("area_code") => "same area code",
            Some("state") => "same state",
            Some("timezone") => "same time zone",
            Some("any") => "no local number with room; any",
            Some(other) => other,
            None => return String::new(),
        };
        match self.caller_candidates {
            Some(n) => format!("{tier}, 1 of {n} with room"),
            None => tier.to_string(),
        }
    }
}

const COLUMNS: &str = "id, lead_id, caller_number, to_number, provider_call_id, status, answered_by, error,
                       created_at, ended_at, duration_seconds, schedule_id, caller_tier, caller_candidates,
                       attempt_number, campaign_id, next_step, retry_at, digits, transfer_result,
                       transfer_seconds, price, price_unit";

fn row(r: &rusqlite::Row) -> rusqlite::Result<AttemptRow> {
    Ok(AttemptRow {
        id: r.get(0)?,
        lead_id: r.get(1)?,
        caller_number: r.get(2)?,
        to_number: r.get(3)?,
        provider_call_id: r.get(4)?,
        status: r.get(5)?,
        answered_by: r.get(6)?,
        error: r.get(7)?,
        created_at_ms: r.get(8)?,
        ended_at_ms: r.get(9)?,
        duration_seconds: r.get(10)?,
        schedule_id: r.get(11)?,
        caller_tier: r.get(12)?,
        caller_candidates: r.get(13)?,
        attempt_number: r.get(14)?,
        campaign_id: r.get(15)?,
        next_step: r.get(16)?,
        retry_at_ms: r.get(17)?,
        digits: r.get(18)?,
        transfer_result: r.get(19)?,
        transfer_seconds: r.get(20)?,
        price: r.get(21)?,
        price_unit: r.get(22)?,
    })
}

pub fn for_lead(conn: &Conn, lead_id: i64) -> anyhow::Result<Vec<AttemptRow>> {
    let sql = format!("SELECT {COLUMNS} FROM attempts WHERE lead_id = ?1 ORDER BY id");
    let rows = conn.prepare_cached(&sql)?.query_map([lead_id], row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Newest first, keyset-paginated by id like the leads listing.
pub fn page(conn: &Conn, limit: u32, cursor: Option<i64>) -> anyhow::Result<(Vec<AttemptRow>, Option<i64>)> {
    let sql = format!("SELECT {COLUMNS} FROM attempts WHERE id < ?1 ORDER BY id DESC LIMIT ?2");
    let rows: Vec<AttemptRow> = conn
        .prepare_cached(&sql)?
        .query_map(params![cursor.unwrap_or(i64::MAX), limit], row)?
        .collect::<Result<_, _>>()?;
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.id)).flatten();
    Ok((rows, next))
}
