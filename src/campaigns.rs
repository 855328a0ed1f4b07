//! Campaign lifecycle rules (ours): `draft → scheduled → running ⇄ paused →
//! completed`, and `cancelled` from any state that is not final. Who moves a
//! campaign: a schedule created for a draft makes it `scheduled`; its first fired
//! batch makes it `running`; a person pauses, resumes or cancels it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

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

/// A campaign's own settings (JSON in `campaigns.settings`). Every field is
/// optional: unset means the global value from `dialer.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Local calling hours, "HH:MM"; intersected with `dialing.calling_hours_*` and
    /// the compliance profile (they can narrow, never widen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_hours_start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_hours_end: Option<String>,
    /// Days calls may go out, in the lead's local date: "mon" … "sun". Unset = every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_days: Option<Vec<String>>,
    /// Calls of this campaign in flight at once (also bounded by the global limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_calls: Option<u32>,
    /// Calls placed per local day (`dialing.timezone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_calls_per_day: Option<u32>,
    /// Caller numbers of this pool only (see the Numbers page); unset = every number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Settings checked and in the form the claim uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub window: Option<crate::compliance::hours::CallingWindow>,
    /// Monday first.
    pub allowed_days: [bool; 7],
    pub max_concurrent_calls: Option<u32>,
    pub max_calls_per_day: Option<u32>,
    pub pool: Option<String>,
}

impl Settings {
    /// Checks every field; the error names it.
    pub fn check(&self) -> Result<Checked, String> {
        let window = match (&self.calling_hours_start, &self.calling_hours_end) {
            (None, None) => None,
            (Some(s), Some(e)) => {
                Some(crate::compliance::hours::CallingWindow::parse(s, e).map_err(|e| format!("calling_hours: {e}"))?)
            }
            _ => return Err("calling_hours_start and calling_hours_end: set both or neither".into()),
        };
        let allowed_days = match &self.allowed_days {
            None => [true; 7],
            Some(days) => {
                let mut allowed = [false; 7];
                for d in days {
                    let i = DAYS.iter().position(|x| x.eq_ignore_ascii_case(d.trim())).ok_or_else(|| {
                        format!("allowed_days: {d:?} is not one of mon, tue, wed, thu, fri, sat, sun")
                    })?;
                    allowed[i] = true;
                }
                if !allowed.contains(&true) {
                    return Err("allowed_days: at least one day".into());
                }
                allowed
            }
        };
        if self.max_concurrent_calls == Some(0) || self.max_calls_per_day == Some(0) {
            return Err("max_concurrent_calls and max_calls_per_day: at least 1 (pause the campaign instead)".into());
        }
        let pool = match &self.pool {
            None => None,
            Some(p) => crate::numbers::edit::pool_name(p).map_err(|e| format!("pool: {e}"))?,
        };
        Ok(Checked {
            window,
            allowed_days,
            max_concurrent_calls: self.max_concurrent_calls,
            max_calls_per_day: self.max_calls_per_day,
            pool,
        })
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    #[test]
    fn settings_are_checked_field_by_field() {
        let ok: Settings = serde_json::from_str(
            r#"{"calling_hours_start": "09:00", "calling_hours_end": "17:00", "allowed_days": ["mon", "FRI"],
                "max_concurrent_calls": 2, "pool": "admissions"}"#,
        )
        .unwrap();
        let c = ok.check().unwrap();
        assert_eq!(c.allowed_days, [true, false, false, false, true, false, false]);
        assert_eq!(c.pool.as_deref(), Some("admissions"));
        let bad = |json: &str| serde_json::from_str::<Settings>(json).unwrap().check().unwrap_err();
        assert!(bad(r#"{"calling_hours_start": "09:00"}"#).starts_with("calling_hours_start"));
        assert!(bad(r#"{"calling_hours_start": "18:00", "calling_hours_end": "09:00"}"#).starts_with("calling_hours"));
        assert!(bad(r#"{"allowed_days": ["funday"]}"#).starts_with("allowed_days"));
        assert!(bad(r#"{"max_calls_per_day": 0}"#).starts_with("max_concurrent_calls"));
        assert!(serde_json::from_str::<Settings>(r#"{"speed": 3}"#).is_err(), "unknown fields are refused");
        assert_eq!(Settings::default().check().unwrap().allowed_days, [true; 7]);
    }
}
