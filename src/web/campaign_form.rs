//! The campaign settings form: stored [`Settings`] ⇄ the strings and ticks an HTML form
//! shows, and a posted form → `Settings` with an error that names the field. The
//! settings are then checked by `Settings::check`, like the API's.

use crate::campaigns::Settings;
use crate::campaigns::settings::{DAYS, DEFAULT_RETRY_OUTCOMES, RETRYABLE};

/// What the form shows; empty strings mean "unset" (the global value or default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormValues {
    pub calling_hours_start: String,
    pub calling_hours_end: String,
    /// Monday first.
    pub days: [bool; 7],
    pub timezone: String,
    pub max_concurrent_calls: String,
    pub max_calls_per_day: String,
    pub calls_per_minute: String,
    pub auto_adjust: bool,
    pub pool: String,
    pub max_attempts: String,
    pub retry_delay_minutes: String,
    /// Ticks for `RETRYABLE`, in its order.
    pub retry: [bool; 5],
    pub message: String,
    pub message_audio_url: String,
    pub agent_number: String,
    pub voicemail_message: String,
    pub require_consent: bool,
    /// "" (the default, detect_message_end) or an `AmdMode` word.
    pub amd: String,
    /// "" (= caller), "caller", "lead" or a number.
    pub transfer_caller_id: String,
}

/// One `<option>` of the answering-machine detection select.
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// (name, label, ticked) for the day checkboxes.
pub struct Tick {
    pub name: &'static str,
    pub ticked: bool,
}

impl FormValues {
    pub fn from_settings(s: &Settings) -> FormValues {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let num = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
        let days = match &s.allowed_days {
            None => [true; 7],
            Some(list) => std::array::from_fn(|i| list.iter().any(|d| d.trim().eq_ignore_ascii_case(DAYS[i]))),
        };
        let outcomes: Vec<String> = match &s.retry_outcomes {
            None => DEFAULT_RETRY_OUTCOMES.iter().map(|o| o.as_str().to_string()).collect(),
            Some(list) => list.iter().map(|o| o.trim().to_string()).collect(),
        };
        FormValues {
            calling_hours_start: text(&s.calling_hours_start),
            calling_hours_end: text(&s.calling_hours_end),
            days,
            timezone: text(&s.timezone),
            max_concurrent_calls: num(s.max_concurrent_calls),
            max_calls_per_day: num(s.max_calls_per_day),
            calls_per_minute: num(s.calls_per_minute),
            auto_adjust: s.auto_adjust.unwrap_or(false),
            pool: text(&s.pool),
            max_attempts: num(s.max_attempts),
            retry_delay_minutes: num(s.retry_delay_minutes),
            retry: std::array::from_fn(|i| outcomes.iter().any(|o| o == RETRYABLE[i].as_str())),
            message: text(&s.message),
            message_audio_url: text(&s.message_audio_url),
            agent_number: text(&s.agent_number),
            voicemail_message: text(&s.voicemail_message),
            require_consent: s.require_consent.unwrap_or(false),
            amd: text(&s.amd),
            transfer_caller_id: text(&s.transfer_caller_id),
        }
    }

    /// Reads a posted form (repeated `allowed_days` and `retry_outcomes` ticks).
    pub fn from_form(pairs: &[(String, String)]) -> FormValues {
        let get =
            |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
        let ticked = |name: &str, value: &str| pairs.iter().any(|(n, v)| n == name && v == value);
        FormValues {
            calling_hours_start: get("calling_hours_start"),
            calling_hours_end: get("calling_hours_end"),
            days: std::array::from_fn(|i| ticked("allowed_days", DAYS[i])),
            timezone: get("timezone"),
            max_concurrent_calls: get("max_concurrent_calls"),
            max_calls_per_day: get("max_calls_per_day"),
            calls_per_minute: get("calls_per_minute"),
            auto_adjust: ticked("auto_adjust", "on"),
            pool: get("pool"),
            max_attempts: get("max_attempts"),
            retry_delay_minutes: get("retry_delay_minutes"),
            retry: std::array::from_fn(|i| ticked("retry_outcomes", RETRYABLE[i].as_str())),
            message: get("message"),
            message_audio_url: get("message_audio_url"),
            agent_number: get("agent_number"),
            voicemail_message: get("voicemail_message"),
            require_consent: ticked("require_consent", "on"),
            amd: get("amd"),
            transfer_caller_id: get("transfer_caller_id"),
        }
    }

    /// The settings to store: blank fields unset, every day ticked = no day limit.
    /// Errors name the field ("max_attempts: … is not a whole number").
    pub fn to_settings(&self) -> Result<Settings, String> {
        let text = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
        let num = |name: &str, v: &str| -> Result<Option<u32>, String> {
            match v.trim() {
                "" => Ok(None),
                t => t.parse::<u32>().map(Some).map_err(|_| format!("{name}: {t:?} is not a whole number")),
            }
        };
        let allowed_days = (!self.days.iter().all(|d| *d))
            .then(|| DAYS.iter().zip(self.days).filter(|(_, on)| *on).map(|(d, _)| d.to_string()).collect());
        Ok(Settings {
            calling_hours_start: text(&self.calling_hours_start),
            calling_hours_end: text(&self.calling_hours_end),
            allowed_days,
            max_concurrent_calls: num("max_concurrent_calls", &self.max_concurrent_calls)?,
            max_calls_per_day: num("max_calls_per_day", &self.max_calls_per_day)?,
            calls_per_minute: num("calls_per_minute", &self.calls_per_minute)?,
            auto_adjust: self.auto_adjust.then_some(true),
            pool: text(&self.pool),
            max_attempts: num("max_attempts", &self.max_attempts)?,
            retry_delay_minutes: num("retry_delay_minutes", &self.retry_delay_minutes)?,
            retry_outcomes: Some(
                RETRYABLE.iter().zip(self.retry).filter(|(_, on)| *on).map(|(o, _)| o.as_str().to_string()).collect(),
            ),
            timezone: text(&self.timezone),
            message: text(&self.message),
            message_audio_url: text(&self.message_audio_url),
            agent_number: text(&self.agent_number),
            voicemail_message: text(&self.voicemail_message),
            require_consent: self.require_consent.then_some(true),
            amd: text(&self.amd),
            transfer_caller_id: text(&self.transfer_caller_id),
        })
    }

    /// The AMD select: blank = the default (detect_message_end), then every mode.
    pub fn amd_choices(&self) -> Vec<Choice> {
        let mut out =
            vec![Choice { value: "", label: "default: detect the end of the greeting", selected: self.amd.is_empty() }];
        for (value, label) in [
            ("off", "off: everyone hears the message"),
            ("enable", "enable: fast verdict, machines are hung up on"),
            ("detect_message_end", "detect message end: voicemail after the beep"),
            ("async", "async: message at once, voicemail when a machine is detected"),
        ] {
            out.push(Choice { value, label, selected: self.amd == value });
        }
        out
    }

    pub fn day_ticks(&self) -> Vec<Tick> {
        DAYS.iter().zip(self.days).map(|(name, ticked)| Tick { name, ticked }).collect()
    }

    pub fn retry_ticks(&self) -> Vec<Tick> {
        RETRYABLE.iter().zip(self.retry).map(|(o, ticked)| Tick { name: o.as_str(), ticked }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> FormValues {
        let owned: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        FormValues::from_form(&owned)
    }

    #[test]
    fn a_posted_form_becomes_checked_settings_and_round_trips() {
        let f = form(&[
            ("calling_hours_start", "09:00"),
            ("calling_hours_end", "17:30"),
            ("allowed_days", "mon"),
            ("allowed_days", "wed"),
            ("max_attempts", " 4 "),
            ("retry_delay_minutes", "30"),
            ("retry_outcomes", "busy"),
            ("retry_outcomes", "voicemail"),
            ("calls_per_minute", "12"),
            ("auto_adjust", "on"),
            ("message", "Hello from the admissions team"),
            ("agent_number", "+14152370100"),
            ("require_consent", "on"),
            ("pool", ""),
        ]);
        let s = f.to_settings().unwrap();
        assert_eq!(s.allowed_days, Some(vec!["mon".to_string(), "wed".to_string()]));
        assert_eq!(s.retry_outcomes, Some(vec!["busy".to_string(), "voicemail".to_string()]));
        assert_eq!((s.max_attempts, s.calls_per_minute, s.pool.as_deref()), (Some(4), Some(12), None));
        let c = s.check().unwrap();
        assert!(c.require_consent && c.auto_adjust);
        assert_eq!(FormValues::from_settings(&s), f);
    }

    #[test]
    fn every_day_ticked_means_no_day_limit_and_errors_name_the_field() {
        let all: Vec<(&str, &str)> = DAYS.iter().map(|d| ("allowed_days", *d)).collect();
        assert_eq!(form(&all).to_settings().unwrap().allowed_days, None);
        assert_eq!(form(&[]).to_settings().unwrap().check().unwrap_err(), "allowed_days: at least one day");
        let err = form(&[("max_attempts", "three")]).to_settings().unwrap_err();
        assert_eq!(err, "max_attempts: \"three\" is not a whole number");
        // Stored defaults show the default retry outcomes ticked and every day ticked.
        let blank = FormValues::from_settings(&Settings::default());
        assert_eq!((blank.days, blank.retry), ([true; 7], [true, true, true, false, false]));
        assert!(blank.amd_choices()[0].selected);
    }

    #[test]
    fn call_flow_fields_round_trip_and_errors_name_the_field() {
        let f = form(&[("amd", "async"), ("transfer_caller_id", "lead"), ("retry_outcomes", "transfer_failed")]);
        let s = f.to_settings().unwrap();
        assert_eq!((s.amd.as_deref(), s.transfer_caller_id.as_deref()), (Some("async"), Some("lead")));
        assert_eq!(s.retry_outcomes, Some(vec!["transfer_failed".to_string()]));
        assert_eq!(FormValues::from_settings(&s), f);
        assert!(f.amd_choices().iter().any(|c| c.value == "async" && c.selected));
        let err = form(&[("allowed_days", "mon"), ("transfer_caller_id", "nobody")])
            .to_settings()
            .unwrap()
            .check()
            .unwrap_err();
        assert!(err.starts_with("transfer_caller_id: "), "{err}");
    }
}
