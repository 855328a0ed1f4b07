//! Embedded, append-only migrations tracked by `PRAGMA user_version`, applied in one
//! EXCLUSIVE transaction (after cargo's `util/sqlite.rs`). A database whose version
//! is newer than this binary knows is refused rather than misread.

use anyhow::bail;
use rusqlite::Connection;

/// In order; the position + 1 is the schema version after applying it.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_claim_index.sql"),
    include_str!("../../migrations/0003_numbers.sql"),
    include_str!("../../migrations/0004_dnc.sql"),
    include_str!("../../migrations/0005_consent.sql"),
    include_str!("../../migrations/0006_campaigns.sql"),
    include_str!("../../migrations/0007_campaign_settings.sql"),
    include_str!("../../migrations/0008_retries.sql"),
    include_str!("../../migrations/0009_lead_campaign.sql"),
    include_str!("../../migrations/0010_call_flow.sql"),
    include_str!("../../migrations/0011_number_provider_id.sql"),
    include_str!("../../migrations/0012_test_call_leads.sql"),
    include_str!("../../migrations/0013_auth.sql"),
    include_str!("../../migrations/0014_attempt_outcome_counts.sql"),
    include_str!("../../migrations/0015_dashboard_count_indexes.sql"),
];

/// The schema version this binary creates (and the newest it can open).
pub fn latest() -> usize {
    MIGRATIONS.len()
}

/// Brings `conn` to the latest schema version. Returns the number of migrations applied.
pub fn apply(conn: &mut Connection) -> anyhow::Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    let current: usize = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if current > MIGRATIONS.len() {
        bail!(
            "database schema version {current} is newer than this binary supports ({}); \
             upgrade dialer",
            MIGRATIONS.len()
        );
    }
    for sql in &MIGRATIONS[current..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len())?;
    tx.commit()?;
    Ok(MIGRATIONS.len() - current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_once_and_refuses_newer_databases() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(apply(&mut conn).unwrap(), MIGRATIONS.len());
        assert_eq!(apply(&mut conn).unwrap(), 0);
        conn.pragma_update(None, "user_version", MIGRATIONS.len() + 1).unwrap();
        assert!(apply(&mut conn).unwrap_err().to_string().contains("newer"));
    }

    #[test]
    fn dnc_entries_survive_the_rebuild_of_0004() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO dnc (phone, source, reason, created_at) VALUES ('+14157001235', 'keypad', '', 20),
                                                                        ('+14157001234', 'api', 'asked', 10);",
        )
        .unwrap();
        apply(&mut conn).unwrap();
        let rows: Vec<(i64, String, String, String, i64)> = conn
            .prepare("SELECT id, phone, source, reason, created_at FROM dnc ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, "+14157001234".into(), "api".into(), "asked".into(), 10),
                (2, "+14157001235".into(), "keypad".into(), String::new(), 20)
            ]
        );
        let dup = conn.execute("INSERT INTO dnc (phone, source, created_at) VALUES ('+14157001234', 'api', 30)", []);
        assert!(dup.is_err(), "a phone is listed once");
    }

    #[test]
    fn attempts_and_their_events_survive_the_rebuild_of_0008() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        for sql in &MIGRATIONS[..7] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 7).unwrap();
        conn.execute_batch(
            "INSERT INTO leads (id, uuid, phone, status, created_at, updated_at)
                 VALUES (7, 'u7', '+14157001234', 'busy', 0, 0);
             INSERT INTO caller_numbers (id, number, max_daily_calls, created_at) VALUES (3, '+12022370100', 10, 0);
             INSERT INTO attempts (id, lead_id, caller_number_id, caller_number, to_number, usage_day, provider,
                                   provider_call_id, status, created_at, caller_tier)
                 VALUES (5, 7, 3, '+12022370100', '+14157001234', '2026-06-10', 'twilio', 'CA1', 'busy', 10, 'any');
             INSERT INTO call_events (attempt_id, provider_call_id, sequence, status, params, received_at)
                 VALUES (5, 'CA1', '0', 'busy', '[]', 11);",
        )
        .unwrap();
        apply(&mut conn).unwrap();
        let row: (i64, i64, i64, String, i64) = conn
            .query_row(
                "SELECT a.id, a.attempt_number, a.campaign_id, a.caller_tier, e.attempt_id
                 FROM attempts a JOIN call_events e ON e.attempt_id = a.id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(row, (5, 1, 1, "any".into(), 5));
        let fk: i64 = conn.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 0);
        let insert = "INSERT INTO attempts (lead_id, caller_number_id, caller_number, to_number, usage_day, provider,
                                            status, created_at, schedule_id, attempt_number)
                      VALUES (7, 3, 'x', 'y', 'd', 'twilio', 'dialing', 20, NULL, ?1)";
        conn.execute(
            "INSERT INTO schedules (id, start_at, timezone, parallel_calls, interval_seconds, total_leads,
                                    total_batches, created_at) VALUES (1, 0, 'UTC', 1, 1, 1, 1, 0)",
            [],
        )
        .unwrap();
        conn.execute(&insert.replace("NULL", "1"), [1]).unwrap();
        conn.execute(&insert.replace("NULL", "1"), [2]).unwrap();
        assert!(conn.execute(&insert.replace("NULL", "1"), [2]).is_err(), "one row per attempt number");
    }
}
