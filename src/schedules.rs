//! Bulk scheduling and cancelling: the operations behind the modal and the API.
//! All checks and writes of one request happen in one transaction, so a schedule is
//! either stored whole (schedule, batches, lead marks) or not at all.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::db::leads::LeadFilter;
use crate::db::schedules::{CancelTarget, NewSchedule};
use crate::db::{self, Db};
use crate::domain::schedule::{INTERVAL_RANGE, PARALLEL_RANGE, estimated_completion, plan};
use crate::domain::status::Status;

/// A start slightly in the past (clock skew, a slow form) is read as "now".
const PAST_TOLERANCE: Duration = Duration::seconds(60);
/// The furthest ahead a schedule may start.
const MAX_AHEAD: Duration = Duration::days(366);

/// Which leads to schedule.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Exactly these; any that is unknown or not `pending` refuses the whole request.
    Ids(Vec<i64>),
    /// Every `pending` lead matching the filter ("Select all" across pages); leads
    /// that match but are not schedulable are skipped and counted.
    Matching(LeadFilter),
}

#[derive(Debug, Clone)]
pub struct BulkRequest {
    pub selection: Selection,
    pub start_at: DateTime<Utc>,
    /// The zone the start was given in (shown back to the user).
    pub timezone: Tz,
    pub parallel_calls: u32,
    pub interval_seconds: u32,
    /// The campaign the schedule belongs to (`db::campaigns::DEFAULT_ID` if none chosen).
    pub campaign_id: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub schedule_id: i64,
    pub campaign_id: i64,
    pub total_leads: usize,
    pub total_batches: usize,
    /// RFC 3339, UTC.
    pub start_at: String,
    /// When the last batch fires, RFC 3339, UTC.
    pub estimated_completion: String,
    /// Matching leads left out because they were not `pending` (select mode only).
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("start {start} is in the past (now {now})")]
    StartInPast { start: String, now: String },
    #[error("start {0} is more than a year ahead")]
    StartTooFar(String),
    #[error("no leads selected")]
    NoLeads,
    #[error("no pending lead matches the selection ({matched} matched, none schedulable)")]
    NothingSchedulable { matched: usize },
    #[error("lead {0} does not exist")]
    UnknownLead(i64),
    #[error("lead {id} is {status}, only pending leads can be scheduled")]
    NotSchedulable { id: i64, status: Status },
    #[error("parallel_calls must be between 1 and 50, got {0}")]
    Parallel(u32),
    #[error("interval_seconds must be between 1 and 3600, got {0}")]
    Interval(u32),
    #[error("{0}")]
    BadStart(String),
    #[error("campaign {0} does not exist")]
    UnknownCampaign(i64),
    #[error("campaign {id} is {status}: it takes no more schedules")]
    CampaignClosed { id: i64, status: crate::campaigns::CampaignStatus },
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// Resolves a local date and time in `tz` to UTC. A time skipped by a DST change is
/// an error; a repeated one (fall back) means its first occurrence.
pub fn local_start(date: &str, time: &str, tz: Tz) -> Result<DateTime<Utc>, ScheduleError> {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| ScheduleError::BadStart(format!("date {date:?} is not YYYY-MM-DD")))?;
    let t = NaiveTime::parse_from_str(time, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M:%S"))
        .map_err(|_| ScheduleError::BadStart(format!("time {time:?} is not HH:MM")))?;
    tz.from_local_datetime(&d.and_time(t))
        .earliest()
        .map(|local| local.with_timezone(&Utc))
        .ok_or_else(|| ScheduleError::BadStart(format!("{date} {time} does not exist in {tz} (DST change)")))
}

/// Parses an RFC 3339 timestamp that carries an offset. Offset-less times are refused
/// rather than guessed (a naive time read as UTC shifts a schedule by hours).
pub fn rfc3339_start(value: &str) -> Result<DateTime<Utc>, ScheduleError> {
    DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        ScheduleError::BadStart(format!(
            "start_at {value:?} is not RFC 3339 with an offset (e.g. 2026-11-22T10:00:00-05:00); \
             or send {{\"date\", \"time\", \"timezone\"}}"
        ))
    })
}

/// Validates and stores a bulk schedule. Returns what the API answers with 201.
pub async fn create(db: &Db, req: BulkRequest, now: DateTime<Utc>) -> Result<Created, ScheduleError> {
    if !PARALLEL_RANGE.contains(&req.parallel_calls) {
        return Err(ScheduleError::Parallel(req.parallel_calls));
    }
    if !INTERVAL_RANGE.contains(&req.interval_seconds) {
        return Err(ScheduleError::Interval(req.interval_seconds));
    }
    if req.start_at < now - PAST_TOLERANCE {
        return Err(ScheduleError::StartInPast {
            start: req.start_at.with_timezone(&req.timezone).to_rfc3339(),
            now: now.with_timezone(&req.timezone).to_rfc3339(),
        });
    }
    if req.start_at > now + MAX_AHEAD {
        return Err(ScheduleError::StartTooFar(req.start_at.with_timezone(&req.timezone).to_rfc3339()));
    }
    let start = req.start_at.max(now);
    db.write(move |tx| -> anyhow::Result<Result<Created, ScheduleError>> {
        match db::campaigns::status(tx, req.campaign_id)? {
            None => return Ok(Err(ScheduleError::UnknownCampaign(req.campaign_id))),
            Some(status) if !status.takes_schedules() => {
                return Ok(Err(ScheduleError::CampaignClosed { id: req.campaign_id, status }));
            }
            Some(_) => {}
        }
        let (ids, skipped) = match &req.selection {
            Selection::Ids(ids) => {
                let mut seen = std::collections::HashSet::new();
                let ids: Vec<i64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
                for (id, status) in db::leads::statuses(tx, &ids)? {
                    match status {
                        None => return Ok(Err(ScheduleError::UnknownLead(id))),
                        Some(Status::Pending) => {}
                        Some(status) => return Ok(Err(ScheduleError::NotSchedulable { id, status })),
                    }
                }
                (ids, 0)
            }
            Selection::Matching(filter) => {
                let ids = db::leads::schedulable_ids(tx, filter)?;
                let matched = usize::try_from(db::leads::count(tx, filter)?).unwrap_or(0);
                if ids.is_empty() && matched > 0 {
                    return Ok(Err(ScheduleError::NothingSchedulable { matched }));
                }
                let skipped = matched.saturating_sub(ids.len());
                (ids, skipped)
            }
        };
        if ids.is_empty() {
            return Ok(Err(ScheduleError::NoLeads));
        }
        let now_ms = db::to_ms(now);
        let batches = plan(ids.len(), req.parallel_calls, req.interval_seconds, start);
        let schedule_id = db::schedules::insert(
            tx,
            &NewSchedule {
                start_at_ms: db::to_ms(start),
                timezone: req.timezone.name(),
                parallel_calls: req.parallel_calls,
                interval_seconds: req.interval_seconds,
                total_leads: ids.len(),
                total_batches: batches.len(),
                campaign_id: req.campaign_id,
            },
            now_ms,
        )?;
        let reason = format!("schedule {schedule_id} created ({} leads)", ids.len());
        db::campaigns::advance(tx, req.campaign_id, crate::campaigns::CampaignStatus::Scheduled, &reason, now_ms)?;
        for batch in &batches {
            let batch_id =
                db::schedules::insert_batch(tx, schedule_id, batch.index, db::to_ms(batch.due_at), batch.leads.len())?;
            db::leads::mark_scheduled(tx, &ids[batch.leads.clone()], schedule_id, batch_id, now_ms)?;
        }
        Ok(Ok(Created {
            schedule_id,
            campaign_id: req.campaign_id,
            total_leads: ids.len(),
            total_batches: batches.len(),
            start_at: start.to_rfc3339(),
            estimated_completion: estimated_completion(ids.len(), req.parallel_calls, req.interval_seconds, start)
                .to_rfc3339(),
            skipped,
        }))
    })
    .await?
}

/// Cancels one schedule or all; returns the number of batches cancelled, or None
/// when the schedule does not exist.
pub async fn cancel(db: &Db, target: CancelTarget, now: DateTime<Utc>) -> anyhow::Result<Option<usize>> {
    db.write(move |tx| db::schedules::cancel(tx, target, db::to_ms(now))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_start_handles_dst() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let t = local_start("2026-11-22", "10:00", ny).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T15:00:00+00:00");
        // 02:30 does not exist on 2026-03-08 in New York.
        assert!(local_start("2026-03-08", "02:30", ny).is_err());
        // 01:30 happens twice on 2026-11-01: the first (EDT) one.
        assert_eq!(local_start("2026-11-01", "01:30", ny).unwrap().to_rfc3339(), "2026-11-01T05:30:00+00:00");
        assert!(local_start("22/11/2026", "10:00", ny).is_err());
    }

    #[test]
    fn offsetless_timestamps_are_refused() {
        assert!(rfc3339_start("2026-11-22T10:00:00").is_err());
        assert_eq!(rfc3339_start("2026-11-22T10:00:00+05:30").unwrap().to_rfc3339(), "2026-11-22T04:30:00+00:00");
    }
}
