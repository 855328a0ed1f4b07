//! Lead and attempt statuses: the words the API, the dashboard and the store share.

use std::fmt;
use std::str::FromStr;

/// Where a lead (and the attempt that carries it) stands.
///
/// `pending` → `scheduled` → `dialing` → `ringing` → `in_progress` → an outcome.
/// Outcomes are final for the schedule that dialled them; `pending` and `scheduled`
/// are the only statuses from which a lead can be scheduled or claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Scheduled,
    Dialing,
    Ringing,
    InProgress,
    Completed,
    Voicemail,
    NoAnswer,
    Busy,
    Failed,
    Canceled,
    /// A person pressed 1 but the agent's line was busy, did not answer or failed:
    /// the caller heard an apology and the call ended. Not retried by default.
    TransferFailed,
    /// The request reached the provider but no answer came back: the call may exist.
    /// It keeps its slots until the reconciler asks the provider: a call found is
    /// adopted with its real outcome; only when the provider has no record of one is
    /// the claim undone and the lead dialled again (never blindly: that could place a
    /// second paid call).
    Unknown,
    DoNotCall,
    Invalid,
}

pub const ALL: [Status; 15] = [
    Status::Pending,
    Status::Scheduled,
    Status::Dialing,
    Status::Ringing,
    Status::InProgress,
    Status::Completed,
    Status::Voicemail,
    Status::NoAnswer,
    Status::Busy,
    Status::Failed,
    Status::Canceled,
    Status::TransferFailed,
    Status::Unknown,
    Status::DoNotCall,
    Status::Invalid,
];

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Scheduled => "scheduled",
            Status::Dialing => "dialing",
            Status::Ringing => "ringing",
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Voicemail => "voicemail",
            Status::NoAnswer => "no_answer",
            Status::Busy => "busy",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
            Status::TransferFailed => "transfer_failed",
            Status::Unknown => "unknown",
            Status::DoNotCall => "do_not_call",
            Status::Invalid => "invalid",
        }
    }

    /// A call is under way: the lead holds a concurrency slot.
    pub fn is_in_flight(self) -> bool {
        matches!(self, Status::Dialing | Status::Ringing | Status::InProgress)
    }

    /// An outcome: nothing more will happen to this attempt by itself.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Pending | Status::Scheduled) && !self.is_in_flight()
    }

    /// Progress order for forward-only updates: 0 dialing, 1 ringing, 2 in progress, 3 final.
    pub fn rank(self) -> u8 {
        match self {
            Status::Pending | Status::Scheduled | Status::Dialing => 0,
            Status::Ringing => 1,
            Status::InProgress => 2,
            _ => 3,
        }
    }

    /// Statuses a CSV `call_status` column may carry on import. In-flight and
    /// scheduling states belong to this instance and are read as `pending`.
    pub fn from_import(value: &str) -> Option<Status> {
        let v = value.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        match v.as_str() {
            "" | "pending" | "new" | "not_called" | "scheduled" | "dialing" | "ringing" | "in_progress" | "queued" => {
                Some(Status::Pending)
            }
            "no_answer" | "noanswer" => Some(Status::NoAnswer),
            "cancelled" => Some(Status::Canceled),
            "dnc" => Some(Status::DoNotCall),
            other => other.parse().ok().filter(|s: &Status| s.is_final()),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Status, String> {
        ALL.iter().copied().find(|st| st.as_str() == s).ok_or_else(|| format!("unknown status {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_classifies() {
        for st in ALL {
            assert_eq!(st.as_str().parse::<Status>().unwrap(), st);
            assert!(!(st.is_final() && st.is_in_flight()), "{st}");
        }
        assert!(Status::Unknown.is_final());
        assert!(!Status::Scheduled.is_final());
        assert!(Status::Ringing.rank() < Status::InProgress.rank());
        assert!(Status::InProgress.rank() < Status::Busy.rank());
        assert!(Status::TransferFailed.is_final() && Status::TransferFailed.rank() == 3);
    }

    #[test]
    fn import_statuses() {
        assert_eq!(Status::from_import("completed"), Some(Status::Completed));
        assert_eq!(Status::from_import(""), Some(Status::Pending));
        assert_eq!(Status::from_import("No Answer"), Some(Status::NoAnswer));
        assert_eq!(Status::from_import("ringing"), Some(Status::Pending));
        assert_eq!(Status::from_import("called-maybe"), None);
    }
}
