//! Loading the rotation's in-memory pool from the store (inside the claim's
//! transaction): each active number's effective cap today (warming, health) and its
//! place for local presence.

use chrono::{DateTime, NaiveDate, Utc};

use crate::db::{self, Tx};
use crate::dialer::claim::Rules;
use crate::numbers::health::{Band, effective_cap};
use crate::numbers::pool::{Pool, PoolNumber};

/// The pool as of `version`, for local day `day` in the configured zone.
pub fn load_pool(tx: &Tx, rules: &Rules, day: &str, version: i64, now: DateTime<Utc>) -> anyhow::Result<Pool> {
    let today = now.with_timezone(&rules.timezone).date_naive();
    let numbers = db::numbers::pool_rows(tx, day)?
        .into_iter()
        .map(|row| {
            let (area_code, state, zones) = rules.places.of(&row.number);
            let first_used = row.first_used_day.as_deref().and_then(|d| d.parse::<NaiveDate>().ok());
            let band = Band::of(row.spam_score);
            PoolNumber {
                id: row.id,
                priority: row.priority,
                area_code,
                state,
                zones,
                pool: row.pool,
                cap: effective_cap(row.max_daily_calls, first_used, today, band, rules.warmup, &rules.policy),
                used: row.used,
                first_used_day: row.first_used_day,
                number: row.number,
            }
        })
        .collect();
    Ok(Pool::new(version, day.to_string(), numbers))
}

#[cfg(test)]
#[path = "rotation_tests.rs"]
mod rotation_tests;

#[cfg(test)]
#[path = "rotation_props.rs"]
mod rotation_props;
