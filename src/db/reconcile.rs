//! Writes of the reconciler and of a create-call that got no reply.

use rusqlite::params;

use crate::db::Tx;

/// A create-call got no reply (timeout, 5xx, reset): the attempt becomes `unknown`
/// with `error`, and keeps its concurrency slot (`ended_at` stays NULL) and its
/// caller-ID slot. Its lead stays `dialing`: it has no outcome until the reconciler
/// learns whether the call exists, so no campaign completes over it.
pub fn mark_unknown(tx: &Tx, attempt_id: i64, error: &str) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE attempts SET status = 'unknown', error = ?2 WHERE id = ?1 AND ended_at IS NULL")?
        .execute(params![attempt_id, error])?;
    Ok(())
}
