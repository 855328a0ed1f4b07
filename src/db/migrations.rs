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
}
