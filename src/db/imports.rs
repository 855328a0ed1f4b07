//! Import runs and their rejected rows.

use rusqlite::params;

use crate::db::{Conn, Tx};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejection {
    pub line: u64,
    pub field: String,
    pub value: String,
    pub reason: String,
    #[serde(skip)]
    pub raw: String,
}

pub fn start(tx: &Tx, filename: &str, now_ms: i64) -> anyhow::Result<i64> {
    tx.execute("INSERT INTO imports (filename, started_at) VALUES (?1, ?2)", params![filename, now_ms])?;
    Ok(tx.last_insert_rowid())
}

pub fn add_rejection(tx: &Tx, import_id: i64, r: &Rejection) -> anyhow::Result<()> {
    tx.prepare_cached(
        "INSERT INTO import_rejections (import_id, line, field, value, reason, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![import_id, r.line as i64, r.field, r.value, r.reason, r.raw])?;
    Ok(())
}

/// Adds a chunk's figures to the running totals.
pub fn add_counts(tx: &Tx, import_id: i64, imported: u64, duplicates: u64, rejected: u64) -> anyhow::Result<()> {
    tx.prepare_cached(
        "UPDATE imports SET imported = imported + ?2, duplicates = duplicates + ?3,
                            rejected = rejected + ?4
         WHERE id = ?1",
    )?
    .execute(params![import_id, imported as i64, duplicates as i64, rejected as i64])?;
    Ok(())
}

pub fn finish(tx: &Tx, import_id: i64, now_ms: i64) -> anyhow::Result<()> {
    tx.execute("UPDATE imports SET finished_at = ?2 WHERE id = ?1", params![import_id, now_ms])?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportRow {
    pub id: i64,
    pub filename: String,
    pub imported: i64,
    pub duplicates: i64,
    pub rejected: i64,
}

pub fn get(conn: &Conn, import_id: i64) -> anyhow::Result<Option<ImportRow>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row("SELECT id, filename, imported, duplicates, rejected FROM imports WHERE id = ?1", [import_id], |r| {
            Ok(ImportRow {
                id: r.get(0)?,
                filename: r.get(1)?,
                imported: r.get(2)?,
                duplicates: r.get(3)?,
                rejected: r.get(4)?,
            })
        })
        .optional()?)
}

/// Rejected rows of an import, in file order; `limit` bounds memory for huge files.
pub fn rejections(conn: &Conn, import_id: i64, limit: u32) -> anyhow::Result<Vec<Rejection>> {
    let mut stmt = conn.prepare_cached(
        "SELECT line, field, value, reason, raw FROM import_rejections
         WHERE import_id = ?1 ORDER BY line LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![import_id, limit], |r| {
            Ok(Rejection {
                line: r.get::<_, i64>(0)? as u64,
                field: r.get(1)?,
                value: r.get(2)?,
                reason: r.get(3)?,
                raw: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
