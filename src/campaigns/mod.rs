//! Campaign lifecycle rules (ours): `draft → scheduled → running ⇄ paused →
//! completed`, and `cancelled` from any state that is not final. Who moves a
//! campaign: a schedule created for a draft makes it `scheduled`; its first fired
//! batch makes it `running`; a person pauses, resumes or cancels it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub mod pacing;
pub mod retry;
pub mod settings;

pub use settings::{Checked, Settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Scheduled,
    Running,
    Paused,
    Completed,
    Cancelled,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Running => "running",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, CampaignStatus::Completed | CampaignStatus::Cancelled)
    }

    /// Whether `self → to` is a lifecycle step.
    pub fn can_become(self, to: CampaignStatus) -> bool {
        use CampaignStatus::*;
        match (self, to) {
            (from, Cancelled) => !from.is_final(),
            (Draft, Scheduled) | (Scheduled, Running) | (Scheduled | Running, Paused) | (Paused, Running) => true,
            (Running | Paused, Completed) => true,
            _ => false,
        }
    }

    /// Whether a schedule can still be added to a campaign in this state.
    pub fn takes_schedules(self) -> bool {
        !self.is_final()
    }
}

impl fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CampaignStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "draft" => CampaignStatus::Draft,
            "scheduled" => CampaignStatus::Scheduled,
            "running" => CampaignStatus::Running,
            "paused" => CampaignStatus::Paused,
            "completed" => CampaignStatus::Completed,
            "cancelled" => CampaignStatus::Cancelled,
            other => return Err(format!("unknown campaign status {other:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::CampaignStatus::*;
    use super::*;

    #[test]
    fn lifecycle_steps() {
        let all = [Draft, Scheduled, Running, Paused, Completed, Cancelled];
        let allowed: Vec<(CampaignStatus, CampaignStatus)> =
            all.iter().flat_map(|a| all.iter().map(move |b| (*a, *b))).filter(|(a, b)| a.can_become(*b)).collect();
        assert_eq!(
            allowed,
            vec![
                (Draft, Scheduled),
                (Draft, Cancelled),
                (Scheduled, Running),
                (Scheduled, Paused),
                (Scheduled, Cancelled),
                (Running, Paused),
                (Running, Completed),
                (Running, Cancelled),
                (Paused, Running),
                (Paused, Completed),
                (Paused, Cancelled),
            ]
        );
        for s in all {
            assert_eq!(s.as_str().parse::<CampaignStatus>(), Ok(s));
        }
    }
}
