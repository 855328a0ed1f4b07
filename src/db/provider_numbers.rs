//! Caller numbers imported from the provider account: each keeps the provider's id
//! for it (`caller_numbers.provider_id`), which Vapi dials by (`phoneNumberId`).

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use crate::db::numbers::{self, NewNumber};
use crate::db::{Conn, Tx};
use crate::provider::OwnedNumber;

/// What importing one provider number did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Imported {
    /// Not in the pool before: added with the default cap and priority.
    Added,
    /// Already in the pool: its provider id was set (or changed).
    Linked,
    /// Already in the pool with this provider id: nothing changed.
    Unchanged,
}

/// Adds `number` (E.164) to the pool if it is new, and records `provider_id` on it
/// either way; a number already in the pool keeps its cap, priority, status and pool.
/// The change is in the number's history (`actor`).
pub fn import(tx: &Tx, number: &NewNumber, provider_id: &str, actor: &str, now_ms: i64) -> anyhow::Result<Imported> {
    let added = !numbers::add(tx, std::slice::from_ref(number), actor, now_ms)?.is_empty();
    let (id, old): (i64, Option<String>) =
        tx.query_row("SELECT id, provider_id FROM caller_numbers WHERE number = ?1", [&number.number], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    if old.as_deref() == Some(provider_id) {
        return Ok(if added { Imported::Added } else { Imported::Unchanged });
    }
    tx.execute("UPDATE caller_numbers SET provider_id = ?2 WHERE id = ?1", params![id, provider_id])?;
    let detail = match old {
        Some(old) => format!("provider id {old} → {provider_id}"),
        None => format!("provider id {provider_id}"),
    };
    numbers::event(tx, id, "edit", &detail, actor, now_ms)?;
    Ok(if added { Imported::Added } else { Imported::Linked })
}

/// The provider id of caller number `number_id` (None when never imported).
pub fn provider_id(conn: &Conn, number_id: i64) -> anyhow::Result<Option<String>> {
    Ok(conn
        .query_row("SELECT provider_id FROM caller_numbers WHERE id = ?1", [number_id], |r| r.get(0))
        .optional()?
        .flatten())
}

/// Every stored number (E.164) → its provider id (None when never imported), to mark
/// which of the provider's numbers are already in the pool.
pub fn stored(conn: &Conn) -> anyhow::Result<HashMap<String, Option<String>>> {
    let mut stmt = conn.prepare("SELECT number, provider_id FROM caller_numbers")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A number imported from the provider gets the same defaults as one pasted without
/// a cap or priority (`numbers::edit`).
pub const DEFAULT_CAP: u32 = 100;
pub const DEFAULT_PRIORITY: u8 = 5;

/// Splits the provider's numbers into those `chosen` (E.164; None = all) and the
/// chosen numbers the account does not have.
pub fn choose(owned: Vec<OwnedNumber>, chosen: Option<&[String]>) -> (Vec<OwnedNumber>, Vec<String>) {
    let Some(chosen) = chosen else { return (owned, Vec::new()) };
    let chosen: Vec<&str> = chosen.iter().map(|n| n.trim()).filter(|n| !n.is_empty()).collect();
    let missing = chosen.iter().filter(|c| !owned.iter().any(|o| o.number == **c)).map(|c| c.to_string()).collect();
    (owned.into_iter().filter(|o| chosen.contains(&o.number.as_str())).collect(), missing)
}

/// Imports each of `picked` ([`import`], default cap and priority, the provider's
/// name as the label for new numbers). Returns (E.164 number, what was done), in order.
pub fn import_owned(
    tx: &Tx,
    picked: &[OwnedNumber],
    actor: &str,
    now_ms: i64,
) -> anyhow::Result<Vec<(String, Imported)>> {
    picked
        .iter()
        .map(|n| {
            let new = NewNumber {
                number: n.number.clone(),
                label: n.label.as_ref().map(|l| l.chars().take(80).collect()),
                max_daily_calls: DEFAULT_CAP,
                rotation_priority: DEFAULT_PRIORITY,
                pool: None,
            };
            Ok((n.number.clone(), import(tx, &new, &n.provider_id, actor, now_ms)?))
        })
        .collect()
}

/// Records the provider id of each of `owned` that is already in the pool without
/// one (nothing is added): for start-up, so numbers seeded from the config can dial
/// through Vapi. Returns how many were linked.
pub fn link_known(tx: &Tx, owned: &[OwnedNumber], actor: &str, now_ms: i64) -> anyhow::Result<usize> {
    let stored = stored(tx)?;
    let mut linked = 0;
    for n in owned {
        if let Some(None) = stored.get(&n.number) {
            let id: i64 = tx.query_row("SELECT id FROM caller_numbers WHERE number = ?1", [&n.number], |r| r.get(0))?;
            tx.execute("UPDATE caller_numbers SET provider_id = ?2 WHERE id = ?1", params![id, n.provider_id])?;
            numbers::event(tx, id, "edit", &format!("provider id {}", n.provider_id), actor, now_ms)?;
            linked += 1;
        }
    }
    Ok(linked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(number: &str, id: &str) -> OwnedNumber {
        OwnedNumber { number: number.into(), provider_id: id.into(), label: Some("line".into()) }
    }

    #[test]
    fn import_adds_links_and_keeps_settings() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open(&dir.path().join("t.db")).unwrap();
        db.write_blocking(|tx| {
            let seeded = NewNumber {
                number: "+12025550101".into(),
                label: None,
                max_daily_calls: 7,
                rotation_priority: 9,
                pool: None,
            };
            numbers::add(tx, &[seeded], "config", 0)?;
            let all = [owned("+12025550101", "pn-1"), owned("+12025550104", "pn-4")];
            let (picked, missing) = choose(all.to_vec(), Some(&["+12025550104".into(), "+19995550100".into()]));
            assert_eq!((picked.len(), missing), (1, vec!["+19995550100".to_string()]));
            assert_eq!(link_known(tx, &all, "startup", 1)?, 1, "only the stored number is linked");
            assert_eq!(link_known(tx, &all, "startup", 1)?, 0);
            let done = import_owned(tx, &all, "api", 2)?;
            assert_eq!(done, [("+12025550101".into(), Imported::Unchanged), ("+12025550104".into(), Imported::Added)]);
            let renumbered = import_owned(tx, &[owned("+12025550101", "pn-9")], "api", 3)?;
            assert_eq!(renumbered[0].1, Imported::Linked);
            let id: i64 =
                tx.query_row("SELECT id FROM caller_numbers WHERE number = '+12025550101'", [], |r| r.get(0))?;
            assert_eq!(provider_id(tx, id)?.as_deref(), Some("pn-9"));
            let kept: (i64, i64) = tx.query_row(
                "SELECT max_daily_calls, rotation_priority FROM caller_numbers WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            assert_eq!(kept, (7, 9), "an imported number keeps its settings");
            Ok(())
        })
        .unwrap();
    }
}
