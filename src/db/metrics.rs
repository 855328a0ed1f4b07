//! What `/metrics` reads from the store at scrape time. Every query is O(statuses)
//! or walks a small partial index, so a scrape stays cheap at 1,000,000 leads:
//! ended attempts come from the trigger-kept `attempt_outcome_counts` (0014), leads
//! from `lead_counts`, calls under way from the `attempts_in_flight` partial index,
//! the queue from the covering `leads_status_due` index. Caller numbers are few
//! (thousands at most), so that table is read whole.

use crate::db::Conn;

/// Counts as they stand in one read transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Attempts that ended (`ended_at` set), by final status.
    pub calls_ended: Vec<(String, i64)>,
    /// Attempts still holding a concurrency slot, by status (`dialing`, `ringing`,
    /// `in_progress`, or `unknown` while the reconciler has not settled it).
    pub calls_in_flight: Vec<(String, i64)>,
    /// Leads whose batch fired and that wait to be dialled (incl. those waiting for
    /// calling hours, a retry or a caller number). Not capped.
    pub queue_depth: i64,
    /// Leads by status (test-call leads included).
    pub leads: Vec<(String, i64)>,
    /// Caller numbers by (status, spam score, rotation enabled) → how many.
    pub numbers: Vec<NumberCount>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberCount {
    /// `active`, `resting`, `quarantined` or `retired`.
    pub status: String,
    /// 0..100, None when never scored.
    pub spam_score: Option<u8>,
    pub rotation_enabled: bool,
    pub count: i64,
}

/// Reads every count in one transaction, so the figures agree with each other.
/// Errors: SQLite errors only.
pub fn counts(conn: &Conn) -> anyhow::Result<StoreCounts> {
    let tx = conn.unchecked_transaction()?;
    let pairs = |sql: &str| -> anyhow::Result<Vec<(String, i64)>> {
        let mut stmt = tx.prepare_cached(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        Ok(rows)
    };
    let calls_ended = pairs("SELECT status, n FROM attempt_outcome_counts WHERE n > 0 ORDER BY status")?;
    let calls_in_flight =
        pairs("SELECT status, COUNT(*) FROM attempts WHERE ended_at IS NULL GROUP BY status ORDER BY status")?;
    let leads = pairs("SELECT status, n FROM lead_counts WHERE n > 0 ORDER BY status")?;
    let queue_depth = tx
        .prepare_cached("SELECT COUNT(*) FROM leads WHERE status = 'scheduled' AND next_call_at IS NOT NULL")?
        .query_row([], |r| r.get(0))?;
    let numbers = tx
        .prepare_cached(
            "SELECT status, spam_score, enabled, COUNT(*) FROM caller_numbers
             GROUP BY status, spam_score, enabled ORDER BY status, spam_score, enabled",
        )?
        .query_map([], |r| {
            Ok(NumberCount {
                status: r.get(0)?,
                spam_score: r.get::<_, Option<i64>>(1)?.map(|s| s.clamp(0, 100) as u8),
                rotation_enabled: r.get(2)?,
                count: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(StoreCounts { calls_ended, calls_in_flight, queue_depth, leads, numbers })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plans that keep a scrape cheap: no query scans `attempts` or `leads`.
    #[test]
    fn scrape_queries_use_their_indexes() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        let plan = |sql: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        let in_flight = plan("SELECT status, COUNT(*) FROM attempts WHERE ended_at IS NULL GROUP BY status");
        assert!(in_flight.contains("USING INDEX attempts_in_flight"), "{in_flight}");
        let queue = plan("SELECT COUNT(*) FROM leads WHERE status = 'scheduled' AND next_call_at IS NOT NULL");
        assert!(queue.contains("COVERING INDEX"), "{queue}");
    }

    /// The trigger-kept counts equal a full count after inserts, endings, status
    /// changes of ended attempts, re-opened attempts and deletes.
    #[test]
    fn outcome_counts_follow_every_write() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO caller_numbers (id, number, created_at) VALUES (1, '+12022370101', 0);
             INSERT INTO leads (id, uuid, phone, created_at, updated_at) VALUES (1, 'a', '+14152370001', 0, 0);",
        )
        .unwrap();
        let insert = |n: i64, status: &str, ended: Option<i64>| {
            conn.execute(
                "INSERT INTO attempts (lead_id, attempt_number, caller_number_id, caller_number, to_number,
                                       usage_day, provider, status, created_at, ended_at)
                 VALUES (1, ?1, 1, '+12022370101', '+14152370001', '2026-01-01', 'twilio', ?2, 0, ?3)",
                rusqlite::params![n, status, ended],
            )
            .unwrap();
        };
        let full = |conn: &rusqlite::Connection| -> Vec<(String, i64)> {
            let mut stmt = conn
                .prepare("SELECT status, COUNT(*) FROM attempts WHERE ended_at IS NOT NULL GROUP BY status ORDER BY 1")
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
        };
        for (i, (status, ended)) in
            [("dialing", None), ("ringing", None), ("busy", Some(1)), ("failed", Some(2)), ("dialing", None)]
                .into_iter()
                .enumerate()
        {
            insert(i as i64 + 1, status, ended);
        }
        let steps = [
            "UPDATE attempts SET status = 'completed', ended_at = 9 WHERE id = 1",
            "UPDATE attempts SET status = 'in_progress' WHERE id = 2",
            "UPDATE attempts SET status = 'voicemail' WHERE id = 1",
            "UPDATE attempts SET status = 'unknown' WHERE id = 5",
            "UPDATE attempts SET ended_at = 10 WHERE id = 5",
            "UPDATE attempts SET ended_at = NULL WHERE id = 3",
            "DELETE FROM attempts WHERE id IN (2, 4)",
        ];
        for sql in steps {
            conn.execute(sql, []).unwrap();
            assert_eq!(counts(&conn).unwrap().calls_ended, full(&conn), "after {sql}");
        }
        let expected: Vec<(String, i64)> = vec![("unknown".into(), 1), ("voicemail".into(), 1)];
        assert_eq!(counts(&conn).unwrap().calls_ended, expected);
        assert_eq!(counts(&conn).unwrap().calls_in_flight, vec![("busy".to_string(), 1)]);
    }
}
