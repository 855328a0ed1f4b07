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
];

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
}
