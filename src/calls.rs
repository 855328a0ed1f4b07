//! Applying provider call events to attempts and leads: shared by the webhook
//! handlers and the reconciler. Replays are no-ops (dedupe on call id + sequence)
//! and status only moves forward, whatever order events arrive in.

use crate::campaigns::retry;
use crate::db::{self, Tx};
use crate::domain::status::Status;

/// One status event, already authenticated.
#[derive(Debug, Clone)]
pub struct StatusEvent {
    /// From our callback URL (`?attempt_id=`), so events that beat the create-call
    /// response still find their attempt.
    pub attempt_id: Option<i64>,
    pub call_id: String,
    /// Provider sequence number; the (call id, sequence) pair is the dedupe key.
    pub sequence: String,
    pub status: Option<Status>,
    /// The provider's own status word, stored verbatim.
    pub raw_status: String,
    pub answered_by: Option<String>,
    pub duration_seconds: Option<i64>,
    /// Every parameter received, as a JSON array of pairs.
    pub params_json: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Duplicate,
    Ignored(&'static str),
    Progress(Status),
    /// The call ended: its concurrency slot is free.
    Final(Status),
}

/// Records `event` and applies it if it moves the attempt forward.
pub fn apply(tx: &Tx, event: &StatusEvent, now_ms: i64) -> anyhow::Result<Applied> {
    let attempt = match event.attempt_id {
        Some(id) => db::attempts::state(tx, id)?,
        None => None,
    };
    if let Some(a) = &attempt
        && a.provider_call_id.as_deref().is_some_and(|id| id != event.call_id)
    {
        return Ok(Applied::Ignored("call id does not match the attempt"));
    }
    // Stored even when no attempt matches, so every authenticated event is on record.
    let fresh = db::attempts::insert_event(
        tx,
        attempt.as_ref().map(|a| a.id),
        &event.call_id,
        &event.sequence,
        &event.raw_status,
        &event.params_json,
        now_ms,
    )?;
    let Some(attempt) = attempt else { return Ok(Applied::Ignored("no such attempt")) };
    if !fresh {
        return Ok(Applied::Duplicate);
    }
    if attempt.provider_call_id.is_none() {
        db::attempts::set_provider_call_id(tx, attempt.id, &event.call_id)?;
    }
    let Some(new) = event.status else { return Ok(Applied::Ignored("status not understood")) };
    let flow = db::call_flow::get(tx, attempt.id)?;
    let new = outcome(
        new,
        flow.as_ref().and_then(|f| f.answered_by.as_deref()),
        flow.as_ref().and_then(|f| f.digits.as_deref()),
        flow.as_ref().and_then(|f| f.transfer_result.as_deref()),
    );
    if !advances(attempt.status, new) {
        return Ok(Applied::Ignored("not newer than the stored status"));
    }
    let progress = db::attempts::Progress {
        answered_by: event.answered_by.as_deref(),
        duration_seconds: event.duration_seconds,
        error: None,
    };
    db::attempts::set_status(tx, &attempt, new, &progress, now_ms)?;
    if !new.is_final() {
        return Ok(Applied::Progress(new));
    }
    after_final(tx, &attempt, new, now_ms)?;
    if flow.and_then(|f| f.digits).as_deref() == Some("2") {
        // The person opted out by keypad during this call: the attempt keeps its
        // outcome, the lead stays `do_not_call` (the final status mirrored it away).
        db::call_flow::mark_opted_out(tx, attempt.lead_id, now_ms)?;
    }
    Ok(Applied::Final(new))
}

/// Did a person interact with the call: a key pressed in the message's Gather
/// (`digits`), or a transfer tried (`transfer_result`)? Then a machine verdict that
/// came later (async AMD) is wrong about who answered, and must not act on the call
/// or decide its outcome.
pub fn person_interacted(digits: Option<&str>, transfer_result: Option<&str>) -> bool {
    digits.is_some_and(|d| !d.is_empty()) || transfer_result.is_some()
}

/// The outcome to store for a provider status, given what the call flow recorded on
/// the attempt. A call that ended normally (`completed`) after a "press 1" transfer
/// the agent never took (`failed`) is `transfer_failed`. Else, one whose AMD verdict
/// (`answered_by`, e.g. from the async AMD callback) was a machine or fax is
/// `voicemail`, like `completed` + `AnsweredBy` in the callback itself, unless a
/// person pressed a key (`digits`) or a transfer was tried: that call reached a
/// person, whatever AMD said, so it is `completed` (or `transfer_failed`), even when
/// the final callback itself says `voicemail`. Anything else is kept.
pub fn outcome(
    status: Status,
    answered_by: Option<&str>,
    digits: Option<&str>,
    transfer_result: Option<&str>,
) -> Status {
    let machine = answered_by.is_some_and(|a| a.starts_with("machine") || a == "fax");
    let person = person_interacted(digits, transfer_result);
    let ended_normally = match status {
        Status::Completed => true,
        // A machine verdict carried by the final callback (`completed` + `AnsweredBy`),
        // overruled by a person's key press.
        Status::Voicemail => person,
        _ => false,
    };
    if !ended_normally {
        status
    } else if transfer_result == Some("failed") {
        Status::TransferFailed
    } else if person || !machine {
        Status::Completed
    } else {
        Status::Voicemail
    }
}

/// What follows an attempt that just got its final status `outcome`: a retry in the
/// same schedule (the lead goes back to `scheduled`, due after the campaign's retry
/// delay) or nothing, with the reason recorded on the attempt either way
/// (`campaigns::retry::next` has the rule). Called in the transaction that wrote the
/// final status, wherever it came from (webhook, create-call result, reconciler).
pub fn after_final(tx: &Tx, attempt: &db::attempts::AttemptState, outcome: Status, now_ms: i64) -> anyhow::Result<()> {
    let (status, settings) = db::campaigns::checked(tx, attempt.campaign_id)?
        .unwrap_or((crate::campaigns::CampaignStatus::Cancelled, Default::default()));
    if attempt.schedule_id.is_none() {
        // A call outside any schedule (a test call) is never retried.
        return db::attempts::set_next_step(tx, attempt, "not retried: not part of a schedule", None, now_ms);
    }
    let next = retry::next(&settings, status, outcome, attempt.attempt_number, db::from_ms(now_ms));
    let at = match &next {
        retry::Next::Retry { at, .. } => Some(db::to_ms(*at)),
        retry::Next::Done { .. } => None,
    };
    db::attempts::set_next_step(tx, attempt, next.note(), at, now_ms)
}

/// Forward-only: a later stage replaces an earlier one; a final status is kept,
/// except `unknown`, which a real final status from the provider resolves.
pub fn advances(current: Status, new: Status) -> bool {
    if current == Status::Unknown {
        return new.is_final() && new != Status::Unknown;
    }
    !current.is_final() && new.rank() > current.rank()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::status::ALL;

    #[test]
    fn forward_only() {
        assert!(advances(Status::Dialing, Status::Ringing));
        assert!(advances(Status::Ringing, Status::Completed));
        assert!(!advances(Status::InProgress, Status::Ringing));
        assert!(!advances(Status::Completed, Status::Busy));
        assert!(advances(Status::Unknown, Status::Completed));
        assert!(!advances(Status::Unknown, Status::Ringing));
    }

    #[test]
    fn a_completed_call_whose_transfer_failed_is_transfer_failed() {
        let human = Some("human");
        let one = Some("1");
        assert_eq!(outcome(Status::Completed, human, one, Some("failed")), Status::TransferFailed);
        assert_eq!(outcome(Status::Completed, human, one, Some("connected")), Status::Completed);
        assert_eq!(outcome(Status::Completed, None, None, None), Status::Completed);
        // An async AMD verdict stored before the final callback (which may not repeat it).
        assert_eq!(outcome(Status::Completed, Some("machine_end_beep"), None, None), Status::Voicemail);
        assert_eq!(outcome(Status::Completed, Some("fax"), None, None), Status::Voicemail);
        assert_eq!(outcome(Status::Completed, Some("unknown"), None, None), Status::Completed);
        // Only the end of the call is reinterpreted: progress, and other outcomes, are kept.
        assert_eq!(outcome(Status::InProgress, human, one, Some("failed")), Status::InProgress);
        assert_eq!(outcome(Status::Voicemail, Some("machine_end_beep"), None, None), Status::Voicemail);
        assert_eq!(outcome(Status::Busy, Some("machine_start"), None, None), Status::Busy);
        assert_eq!(outcome(Status::NoAnswer, None, one, None), Status::NoAnswer);
        assert!(advances(Status::InProgress, Status::TransferFailed));
        assert!(!advances(Status::TransferFailed, Status::Completed), "final: never changes");
    }

    #[test]
    fn a_key_pressed_overrules_a_late_machine_verdict() {
        // Async AMD said machine after the person pressed a key: they were a person.
        for by in ["machine_end_beep", "machine_start", "fax"] {
            let by = Some(by);
            // Pressed 1, the agent took the call: completed, never voicemail.
            assert_eq!(outcome(Status::Completed, by, Some("1"), Some("connected")), Status::Completed, "{by:?}");
            // Pressed 1, the agent did not: transfer_failed.
            assert_eq!(outcome(Status::Completed, by, Some("1"), Some("failed")), Status::TransferFailed, "{by:?}");
            // Pressed 2 (opted out) or another key: completed.
            assert_eq!(outcome(Status::Completed, by, Some("2"), None), Status::Completed, "{by:?}");
            assert_eq!(outcome(Status::Completed, by, Some("7"), None), Status::Completed, "{by:?}");
            // A transfer result alone (digits lost) says the same.
            assert_eq!(outcome(Status::Completed, by, None, Some("connected")), Status::Completed, "{by:?}");
            // The final callback itself said voicemail (`completed` + AnsweredBy=machine…).
            assert_eq!(outcome(Status::Voicemail, by, Some("1"), Some("connected")), Status::Completed, "{by:?}");
            assert_eq!(outcome(Status::Voicemail, by, Some("1"), Some("failed")), Status::TransferFailed, "{by:?}");
            assert_eq!(outcome(Status::Voicemail, by, Some("2"), None), Status::Completed, "{by:?}");
            // No key (empty Digits counts as none): the machine verdict stands.
            assert_eq!(outcome(Status::Completed, by, Some(""), None), Status::Voicemail, "{by:?}");
            assert_eq!(outcome(Status::Voicemail, by, None, None), Status::Voicemail, "{by:?}");
        }
        assert!(person_interacted(Some("1"), None));
        assert!(person_interacted(None, Some("failed")));
        assert!(!person_interacted(None, None));
        assert!(!person_interacted(Some(""), None));
    }

    #[test]
    fn any_order_of_events_ends_in_the_same_final_status() {
        // Applying a set of events in any order converges: the final one wins once.
        let events = [Status::Dialing, Status::Ringing, Status::InProgress, Status::Completed];
        let orders = [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]];
        for order in orders {
            let mut current = Status::Dialing;
            for idx in order {
                if advances(current, events[idx]) {
                    current = events[idx];
                }
            }
            assert_eq!(current, Status::Completed);
        }
        for st in ALL.into_iter().filter(|s| s.is_final() && *s != Status::Unknown) {
            assert!(ALL.iter().all(|n| !advances(st, *n)), "{st} must never change");
        }
    }
}
