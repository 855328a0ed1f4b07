//! Pacing counts for one campaign, from its attempt rows (definitions in
//! `campaigns::pacing`), and `connected_at`, written when the message starts.
//!
//! Every query reads a campaign's attempts through `attempts_campaign`
//! (`campaign_id, created_at`), so it costs the calls in its window, never all
//! leads or all attempts: the previous start is one index probe, the 30-day
//! aggregate one range scan.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::campaigns::pacing::{
    ABANDON_AFTER_MS, Abandonment, Counts, Metrics, PaceSettings, Recommendation, WINDOW_MS, recommendations,
};
use crate::db::attempts::COUNT_CAP;
use crate::db::campaigns::parse_settings;
use crate::db::{Conn, Tx};

/// Start (UTC ms) of the campaign's newest attempt: the GCRA's previous call.
pub fn last_start(conn: &Conn, campaign_id: i64) -> anyhow::Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT MAX(created_at) FROM attempts WHERE campaign_id = ?1")?
        .query_row([campaign_id], |r| r.get(0))
        .optional()?
        .flatten())
}

/// Ids of the running campaigns (few rows: campaigns, not leads).
pub fn running_ids(conn: &Conn) -> anyhow::Result<Vec<i64>> {
    let ids = conn
        .prepare_cached("SELECT id FROM campaigns WHERE status = 'running' ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// The 30-day window's counts: (ended, answered, abandonment, started in the last
/// minute, started in the last 5 minutes). One range scan of `attempts_campaign`.
fn window(conn: &Conn, campaign_id: i64, now_ms: i64) -> anyhow::Result<(i64, i64, Abandonment, i64, i64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT COALESCE(SUM(ended), 0), COALESCE(SUM(ended AND answered), 0),
                COALESCE(SUM(live), 0), COALESCE(SUM(live AND abandoned), 0),
                COALESCE(SUM(created_at > ?3 - 60000), 0), COALESCE(SUM(created_at > ?3 - 300000), 0)
         FROM (SELECT created_at,
                 ended_at IS NOT NULL AND status NOT IN ('unknown', 'canceled', 'invalid') AS ended,
                 (answered_at IS NOT NULL OR status IN ('completed', 'voicemail')) AS answered,
                 (answered_at IS NOT NULL OR status IN ('completed', 'voicemail'))
                   AND (answered_by IS NULL OR answered_by IN ('human', 'unknown'))
                   AND (ended_at IS NOT NULL OR answered_at <= ?3 - ?4) AS live,
                 connected_at IS NULL OR COALESCE(connected_at > answered_at + ?4, 0)
                   OR COALESCE(transfer_result = 'failed', 0) AS abandoned
               FROM attempts WHERE campaign_id = ?1 AND created_at >= ?2)",
    )?;
    Ok(stmt.query_row(params![campaign_id, now_ms - WINDOW_MS, now_ms, ABANDON_AFTER_MS], |r| {
        Ok((r.get(0)?, r.get(1)?, Abandonment { live_answers: r.get(2)?, abandoned: r.get(3)? }, r.get(4)?, r.get(5)?))
    })?)
}

/// Live answers and abandoned calls of the campaign over the 30 days before `now_ms`.
pub fn abandonment(conn: &Conn, campaign_id: i64, now_ms: i64) -> anyhow::Result<Abandonment> {
    Ok(window(conn, campaign_id, now_ms)?.2)
}

/// Everything [`Metrics`] needs for one campaign at `now_ms` (UTC ms).
pub fn counts(conn: &Conn, campaign_id: i64, now_ms: i64) -> anyhow::Result<Counts> {
    let (ended, answered, abandonment, last_minute, last_5_minutes) = window(conn, campaign_id, now_ms)?;
    // The partial index `attempts_in_flight` holds only calls without a final status.
    let in_flight = conn
        .prepare_cached("SELECT COUNT(*) FROM attempts WHERE ended_at IS NULL AND campaign_id = ?1")?
        .query_row([campaign_id], |r| r.get(0))?;
    // Through `leads_schedule`: the campaign's own leads only, capped like the global count.
    let queue_depth = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM (SELECT 1 FROM schedules s JOIN leads l ON l.schedule_id = s.id
             WHERE s.campaign_id = ?1 AND l.status = 'scheduled' AND l.next_call_at IS NOT NULL LIMIT ?2)",
        )?
        .query_row(params![campaign_id, COUNT_CAP], |r| r.get(0))?;
    Ok(Counts { ended, answered, abandonment, in_flight, last_minute, last_5_minutes, queue_depth })
}

/// A campaign's pacing as the API and the dashboard show it.
#[derive(Debug, Clone, Serialize)]
pub struct Pacing {
    pub campaign_id: i64,
    pub name: String,
    #[serde(flatten)]
    pub metrics: Metrics,
    pub recommendations: Vec<Recommendation>,
}

/// Pacing of the campaigns matching `where_sql` (one parameter), by id; `global` is
/// `dialing.max_concurrent_calls`.
fn matching(
    conn: &Conn,
    where_sql: &str,
    arg: &dyn rusqlite::ToSql,
    now_ms: i64,
    global: u32,
) -> anyhow::Result<Vec<Pacing>> {
    let campaigns: Vec<(i64, String, String)> = conn
        .prepare_cached(&format!("SELECT id, name, settings FROM campaigns WHERE {where_sql} ORDER BY id"))?
        .query_map([arg], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(campaigns.len());
    for (id, name, json) in campaigns {
        let pace = PaceSettings::of(&parse_settings(id, &json), global);
        let metrics = Metrics::new(&counts(conn, id, now_ms)?, &pace);
        out.push(Pacing { campaign_id: id, name, recommendations: recommendations(&metrics), metrics });
    }
    Ok(out)
}

/// One campaign's pacing (`None` if it does not exist).
pub fn of_campaign(conn: &Conn, campaign_id: i64, now_ms: i64, global: u32) -> anyhow::Result<Option<Pacing>> {
    Ok(matching(conn, "id = ?1", &campaign_id, now_ms, global)?.pop())
}

/// The pacing of every running campaign, by id: the dashboard's Pacing panel.
pub fn running(conn: &Conn, now_ms: i64, global: u32) -> anyhow::Result<Vec<Pacing>> {
    matching(conn, "status = ?1", &"running", now_ms, global)
}

/// Records when the message (or an agent) reached the answered call of attempt
/// `attempt_id` (UTC ms): set once, and only if the attempt exists and `call_id`
/// is its call. Returns whether it was recorded.
pub fn set_connected(tx: &Tx, attempt_id: i64, call_id: &str, now_ms: i64) -> anyhow::Result<bool> {
    let n = tx
        .prepare_cached(
            "UPDATE attempts SET connected_at = ?3
             WHERE id = ?1 AND connected_at IS NULL AND (provider_call_id IS NULL OR provider_call_id = ?2)",
        )?
        .execute(params![attempt_id, call_id, now_ms])?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use crate::campaigns::pacing::Abandonment;
    use crate::db::{self, Db};
    use crate::dialer::claim::Claim;
    use crate::dialer::fixtures::{add_numbers, claim_at, plain_leads, rules, seed_leads, store, utc};
    use crate::numbers::pool::LocalPresence;

    /// Sets columns of the `n`th attempt (1-based, in creation order).
    fn edit(db: &Db, n: i64, set: &str) {
        let sql = format!(
            "UPDATE attempts SET {set} WHERE id = (SELECT id FROM attempts ORDER BY id LIMIT 1 OFFSET {})",
            n - 1
        );
        db.write_blocking(|tx| Ok(tx.execute(&sql, [])?)).unwrap();
    }

    #[test]
    fn counts_follow_the_documented_definitions() {
        let s = store();
        add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
        let at = utc(2026, 6, 10, 15, 0, 0);
        seed_leads(&s.db, &plain_leads(10), at);
        let r = rules("UTC", LocalPresence::Off, 20);
        for _ in 0..9 {
            assert!(matches!(claim_at(&s.db, &r, at), Claim::Dial(_)));
        }
        let now = at + Duration::hours(1);
        let t = db::to_ms(at) + 10_000;
        let answered = |by: &str, connected: &str| {
            format!(
                "status = 'completed', answered_by = {by}, answered_at = {t}, connected_at = {connected}, ended_at = {}",
                t + 60_000
            )
        };
        edit(&s.db, 1, &answered("'human'", &format!("{}", t + 1_000))); // reached in 1 s
        edit(&s.db, 2, &answered("'human'", &format!("{}", t + 2_500))); // abandoned: 2.5 s
        edit(&s.db, 3, &answered("NULL", "NULL")); // abandoned: never reached
        edit(
            &s.db,
            4,
            &format!("status = 'voicemail', answered_by = 'machine_start', answered_at = {t}, ended_at = {t}"),
        );
        edit(&s.db, 5, &format!("status = 'busy', ended_at = {t}"));
        edit(&s.db, 6, &format!("{}, transfer_result = 'failed'", answered("'human'", &format!("{}", t + 500))));
        // Answered a second ago, still in progress: not judged yet.
        edit(
            &s.db,
            7,
            &format!("status = 'in_progress', answered_by = 'human', answered_at = {}", db::to_ms(now) - 1_000),
        );
        edit(&s.db, 8, &format!("status = 'unknown', ended_at = {t}"));
        // An abandoned call 31 days ago is outside the window.
        let old = db::to_ms(now - Duration::days(31));
        edit(
            &s.db,
            9,
            &format!(
                "status = 'completed', answered_by = 'human', answered_at = {old}, created_at = {old}, ended_at = {old}"
            ),
        );
        let counts = s.db.read_blocking(|c| super::counts(c, 1, db::to_ms(now))).unwrap();
        assert_eq!((counts.ended, counts.answered), (6, 5), "{counts:?}");
        assert_eq!(counts.abandonment, Abandonment { live_answers: 4, abandoned: 3 });
        assert_eq!((counts.in_flight, counts.queue_depth), (1, 1));
        assert_eq!((counts.last_minute, counts.last_5_minutes), (0, 0), "every call started an hour ago");
        let last = s.db.read_blocking(|c| super::last_start(c, 1)).unwrap();
        assert_eq!(last, Some(db::to_ms(at)));
        let none = s.db.read_blocking(|c| super::last_start(c, 99)).unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn connected_at_is_set_once_and_only_for_the_attempts_call() {
        let s = store();
        add_numbers(&s.db, &[("+12022370100".into(), 100, 5)]);
        let at = utc(2026, 6, 10, 15, 0, 0);
        seed_leads(&s.db, &plain_leads(1), at);
        let Claim::Dial(call) = claim_at(&s.db, &rules("UTC", LocalPresence::Off, 5), at) else { panic!("a call") };
        let set = |call_id: &str, ms: i64| {
            s.db.write_blocking(|tx| super::set_connected(tx, call.attempt_id, call_id, ms)).unwrap()
        };
        s.db.write_blocking(|tx| db::attempts::set_provider_call_id(tx, call.attempt_id, "CA1")).unwrap();
        assert!(!set("CA2", 5), "another call's request");
        assert!(set("CA1", 7));
        assert!(!set("CA1", 9), "kept: the first time the message started");
        assert!(!s.db.write_blocking(|tx| super::set_connected(tx, 999, "CA1", 9)).unwrap(), "no such attempt");
        let stored: i64 =
            s.db.read_blocking(|c| Ok(c.query_row("SELECT connected_at FROM attempts", [], |r| r.get(0))?)).unwrap();
        assert_eq!(stored, 7);
    }
}
