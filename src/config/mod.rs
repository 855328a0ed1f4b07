//! `dialer.toml`: one typed tree, unknown keys rejected, defaults embedded.
//!
//! Layering: built-in defaults ← the TOML file (`--config PATH`) ← environment
//! variables for secrets (`DIALER_TWILIO_ACCOUNT_SID`, `DIALER_TWILIO_AUTH_TOKEN`,
//! `DIALER_TELNYX_API_KEY`, `DIALER_VAPI_API_KEY`, `DIALER_VAPI_WEBHOOK_SECRET`).
//! Every key is documented in `dialer.toml.example`, which is embedded and printed by
//! `dialer config example`.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::compliance::hours::CallingWindow;
use crate::domain::phone::{E164, parse_region};

/// The commented example configuration shipped with the binary.
use crate::compliance::rules::{Profile, StateRules};
use crate::numbers::health::{Policy, Warmup};
use crate::numbers::pool::LocalPresence;
use crate::numbers::rotation::PRIORITIES;

mod provider;
mod server;

pub use provider::{Callee, Faults, Provider, ProviderKind, Simulator, Telnyx, Twilio, Vapi};
pub use server::Server;

pub const EXAMPLE: &str = include_str!("../../dialer.toml.example");

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: Server,
    pub database: Database,
    pub dialing: Dialing,
    pub numbers: Option<Vec<NumberSeed>>,
    pub rotation: Rotation,
    pub compliance: Compliance,
    pub provider: Provider,
    pub simulator: Simulator,
    /// `[log]`: log format (see `telemetry`).
    pub log: crate::telemetry::LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dialing {
    /// IANA zone: default for schedules, daily caps ("today") and leads whose zone is unknown.
    pub timezone: String,
    /// ISO 3166 region used to read numbers written without a country code.
    pub default_region: String,
    /// Calls in flight at once, across all schedules.
    pub max_concurrent_calls: u32,
    /// Create-call requests per second (Twilio's default account CPS is 1).
    pub calls_per_second: f64,
    /// Local time at the called party, "HH:MM". Default 08:00–21:00 (47 CFR 64.1200(c)(1)).
    pub calling_hours_start: String,
    pub calling_hours_end: String,
    /// A batch later than this when the scheduler reaches it is marked `missed`, not fired.
    pub missed_batch_grace_minutes: u32,
    /// What the called party hears (text to speech).
    pub message: String,
    /// Ring time before "no answer", seconds (never below 15: TSR 310.4(b)(4)(ii)).
    pub ring_timeout_seconds: u32,
    /// Longest call, seconds; also bounds when a silent call is reconciled.
    pub max_call_seconds: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberSeed {
    pub number: String,
    #[serde(default = "default_max_daily_calls")]
    pub max_daily_calls: u32,
    /// 1..=10, the number's weight in rotation.
    #[serde(default = "default_priority")]
    pub rotation_priority: u8,
    #[serde(default)]
    pub label: Option<String>,
    /// Campaign pool name; unset = the shared pool.
    #[serde(default)]
    pub pool: Option<String>,
}

/// `[compliance]`: rules that hold whatever the schedule or campaign says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Compliance {
    /// `us`: calls only 08:00–21:00 at the called party's location whatever
    /// `dialing.calling_hours_*` say (FCC 47 CFR 64.1200(c)(1)), plus the state rules.
    /// `none`: only the configured hours (operators outside the US).
    pub profile: Profile,
    /// Calls to one lead (phone number) in any rolling 24 hours, across every caller
    /// ID and schedule (ours; FL, OK and MD set 3 by law — compliance.md §1.6).
    pub max_calls_per_lead_24h: u32,
    /// The state rules file; unset = the copy built into the binary
    /// (`data/state_rules.toml`).
    pub state_rules_path: Option<PathBuf>,
}

impl Default for Compliance {
    fn default() -> Self {
        Compliance { profile: Profile::Us, max_calls_per_lead_24h: 3, state_rules_path: None }
    }
}

/// `[rotation]`: caller-ID selection, warming and health policy (all ours; see
/// `numbers::health` for the rules and README "Caller numbers").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rotation {
    /// strict | prefer | off.
    pub local_presence: LocalPresence,
    /// Ramp a new number's daily cap from `warmup_start_calls` to its `max_daily_calls`.
    pub warmup: bool,
    pub warmup_start_calls: u32,
    pub warmup_days: u32,
    /// Cap reduction for numbers in the warning band (spam score 26–50), percent.
    pub warning_cap_reduction_percent: u8,
    /// How long an at-risk number (score 51–75) rests before it is re-checked, hours.
    pub rest_hours: u32,
    /// Never rest or quarantine more than this share of a pool at once, percent.
    pub max_resting_share_percent: u8,
    /// Derived spam score: look at a number's last N ended calls…
    pub health_window_calls: u32,
    /// …and only score it once it has this many.
    pub health_min_calls: u32,
    /// Answered calls shorter than this count as "hung up at once", seconds.
    pub short_call_seconds: u32,
    /// How often health is re-derived and rests re-checked, minutes.
    pub health_check_minutes: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            local_presence: LocalPresence::Prefer,
            warmup: true,
            warmup_start_calls: 25,
            warmup_days: 14,
            warning_cap_reduction_percent: 50,
            rest_hours: 48,
            max_resting_share_percent: 30,
            health_window_calls: 50,
            health_min_calls: 20,
            short_call_seconds: 6,
            health_check_minutes: 10,
        }
    }
}

impl Rotation {
    pub fn warmup(&self) -> Warmup {
        Warmup { enabled: self.warmup, start_calls: self.warmup_start_calls, days: self.warmup_days }
    }

    pub fn policy(&self) -> Policy {
        Policy {
            warning_cap_reduction_percent: self.warning_cap_reduction_percent,
            rest_hours: self.rest_hours,
            max_resting_share_percent: self.max_resting_share_percent,
        }
    }
}

fn default_priority() -> u8 {
    5
}

/// A secret string: never printed by `Debug` or `Display`.
#[derive(Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"[redacted]\"" })
    }
}

fn default_max_daily_calls() -> u32 {
    100
}

impl Default for Database {
    fn default() -> Self {
        Database { path: PathBuf::from("./dialer-data/dialer.db") }
    }
}

impl Default for Dialing {
    fn default() -> Self {
        Dialing {
            timezone: "America/New_York".into(),
            default_region: "US".into(),
            max_concurrent_calls: 20,
            calls_per_second: 1.0,
            calling_hours_start: "08:00".into(),
            calling_hours_end: "21:00".into(),
            missed_batch_grace_minutes: 15,
            message: "Hello, this is a courtesy call. Thank you for your time. Goodbye.".into(),
            ring_timeout_seconds: 25,
            max_call_seconds: 3600,
        }
    }
}

/// Caller IDs seeded when no `[[numbers]]` are configured: fictional 555-01xx numbers,
/// good only for the simulated carrier.
pub const DEMO_NUMBERS: [&str; 3] = ["+12025550101", "+12025550102", "+12025550103"];

/// Values derived from `Config` once, at start-up, so a bad value fails early.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub timezone: Tz,
    pub region: phonenumber::country::Id,
    pub window: CallingWindow,
    pub state_rules: StateRules,
    /// Numbers from `[[numbers]]` (or the demo numbers with the simulator), added at
    /// start when not stored yet.
    pub numbers: Vec<(E164, NumberSeed)>,
}

impl Config {
    /// Reads `path` (or the defaults when `None`), then environment overrides for secrets.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let mut config = match path {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
                Config::parse(&text).with_context(|| format!("in config file {}", path.display()))?
            }
            None => Config::default(),
        };
        if let Ok(sid) = std::env::var("DIALER_TWILIO_ACCOUNT_SID") {
            config.provider.twilio.account_sid = sid;
        }
        if let Ok(token) = std::env::var("DIALER_TWILIO_AUTH_TOKEN") {
            config.provider.twilio.auth_token = Secret::new(token);
        }
        if let Ok(key) = std::env::var("DIALER_TELNYX_API_KEY") {
            config.provider.telnyx.api_key = Secret::new(key);
        }
        if let Ok(key) = std::env::var("DIALER_VAPI_API_KEY") {
            config.provider.vapi.api_key = Secret::new(key);
        }
        if let Ok(secret) = std::env::var("DIALER_VAPI_WEBHOOK_SECRET") {
            config.provider.vapi.webhook_secret = Secret::new(secret);
        }
        Ok(config)
    }

    pub fn parse(text: &str) -> anyhow::Result<Config> {
        Ok(toml::from_str(text)?)
    }

    /// Checks every value and derives the typed forms; errors name the key.
    pub fn resolve(&self) -> anyhow::Result<Resolved> {
        let d = &self.dialing;
        let timezone: Tz =
            d.timezone.parse().map_err(|_| anyhow::anyhow!("dialing.timezone: unknown IANA zone {:?}", d.timezone))?;
        let region = parse_region(&d.default_region)
            .with_context(|| format!("dialing.default_region: unknown region {:?}", d.default_region))?;
        let window = CallingWindow::parse(&d.calling_hours_start, &d.calling_hours_end)
            .map_err(|e| anyhow::anyhow!("dialing.calling_hours: {e}"))?;
        if d.max_concurrent_calls == 0 {
            bail!("dialing.max_concurrent_calls must be at least 1");
        }
        if !(d.calls_per_second > 0.0 && d.calls_per_second <= 100.0) {
            bail!("dialing.calls_per_second must be in (0, 100]");
        }
        if d.ring_timeout_seconds < 15 || d.ring_timeout_seconds > 600 {
            bail!("dialing.ring_timeout_seconds must be 15..=600 (TSR safe harbor: ring at least 15 s)");
        }
        let mut numbers = Vec::new();
        let seeds: Vec<NumberSeed> = match &self.numbers {
            Some(seeds) => seeds.clone(),
            None if self.provider.kind == ProviderKind::Simulator => DEMO_NUMBERS
                .iter()
                .map(|n| NumberSeed {
                    number: n.to_string(),
                    max_daily_calls: 100,
                    rotation_priority: 5,
                    label: Some("demo".into()),
                    pool: None,
                })
                .collect(),
            None => Vec::new(),
        };
        for (idx, seed) in seeds.iter().enumerate() {
            let number = E164::from_stored(&seed.number).with_context(|| {
                format!("numbers[{idx}].number: {:?} is not in E.164 form (+ and digits)", seed.number)
            })?;
            if !PRIORITIES.contains(&seed.rotation_priority) {
                bail!("numbers[{idx}].rotation_priority must be 1..=10");
            }
            numbers.push((number, seed.clone()));
        }
        self.server.check()?;
        if self.compliance.max_calls_per_lead_24h == 0 {
            bail!("compliance.max_calls_per_lead_24h must be at least 1");
        }
        let r = &self.rotation;
        if r.warning_cap_reduction_percent > 100 || r.max_resting_share_percent > 100 {
            bail!("rotation.warning_cap_reduction_percent and max_resting_share_percent are percentages (0..=100)");
        }
        if r.health_check_minutes == 0 || r.health_window_calls == 0 {
            bail!("rotation.health_check_minutes and health_window_calls must be at least 1");
        }
        let sim = &self.simulator;
        let rates = sim.weights().map(|(_, w)| w);
        if rates.iter().any(|r| r.is_nan() || *r < 0.0) || rates.iter().sum::<f64>() <= 0.0 {
            bail!("simulator rates must be non-negative and not all zero");
        }
        if sim.api == ProviderKind::Simulator {
            bail!("simulator.api must be twilio, telnyx or vapi");
        }
        let f = &sim.faults;
        let shares = [
            ("rate_limited", f.rate_limited),
            ("server_error", f.server_error),
            ("server_error_after_create", f.server_error_after_create),
            ("timeout_before_create", f.timeout_before_create),
            ("timeout_after_create", f.timeout_after_create),
            ("duplicate_callbacks", f.duplicate_callbacks),
            ("reorder_callbacks", f.reorder_callbacks),
            ("invalid_signatures", f.invalid_signatures),
        ];
        for (name, p) in shares {
            if !(0.0..=1.0).contains(&p) {
                bail!("simulator.faults.{name} must be a probability in 0..=1");
            }
        }
        for (name, [lo, hi]) in [("callback_delay_seconds", f.callback_delay_seconds)] {
            if !(lo >= 0.0 && hi >= lo && hi <= 600.0) {
                bail!("simulator.faults.{name} must be [min, max] with 0 <= min <= max <= 600");
            }
        }
        for number in sim.callees.keys() {
            E164::from_stored(number)
                .with_context(|| format!("simulator.callees: {number:?} is not in E.164 form (+ and digits)"))?;
        }
        let timeout = self.provider.request_timeout_seconds;
        if !(0.1..=120.0).contains(&timeout) {
            bail!("provider.request_timeout_seconds must be 0.1..=120");
        }
        if !(0.1..=3600.0).contains(&self.provider.reconcile_after_seconds) {
            bail!("provider.reconcile_after_seconds must be 0.1..=3600 (keep >= 60 with a real provider)");
        }
        for (name, [lo, hi]) in [("ring_seconds", sim.ring_seconds), ("talk_seconds", sim.talk_seconds)] {
            if !(lo >= 0.0 && hi >= lo && hi <= 3600.0) {
                bail!("simulator.{name} must be [min, max] with 0 <= min <= max <= 3600");
            }
        }
        if self.provider.kind == ProviderKind::Telnyx {
            let t = &self.provider.telnyx;
            if t.api_key.is_empty() || t.connection_id.is_empty() || t.public_key.is_empty() {
                bail!(
                    "provider.telnyx.api_key, connection_id and public_key are required when provider.kind = \"telnyx\" \
                     (or set DIALER_TELNYX_API_KEY)"
                );
            }
        }
        if self.provider.kind == ProviderKind::Vapi {
            let v = &self.provider.vapi;
            if v.api_key.is_empty() || v.assistant_id.is_empty() || v.webhook_secret.is_empty() {
                bail!(
                    "provider.vapi.api_key, assistant_id and webhook_secret are required when provider.kind = \"vapi\" \
                     (or set DIALER_VAPI_API_KEY / DIALER_VAPI_WEBHOOK_SECRET)"
                );
            }
        }
        if matches!(self.provider.kind, ProviderKind::Telnyx | ProviderKind::Vapi) && self.server.public_url.is_none() {
            bail!(
                "server.public_url is required with {}: it is the base URL the provider calls back",
                self.provider.kind.as_str()
            );
        }
        if self.provider.kind == ProviderKind::Twilio {
            let t = &self.provider.twilio;
            if t.account_sid.is_empty() || t.auth_token.is_empty() {
                bail!(
                    "provider.twilio.account_sid and auth_token are required when provider.kind = \"twilio\" \
                     (or set DIALER_TWILIO_ACCOUNT_SID / DIALER_TWILIO_AUTH_TOKEN)"
                );
            }
            if self.server.public_url.is_none() {
                bail!("server.public_url is required with Twilio: it is the base URL Twilio calls back");
            }
        }
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("server.public_url must start with http:// or https://");
        }
        let state_rules = match &self.compliance.state_rules_path {
            None => StateRules::embedded(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("compliance.state_rules_path: reading {}", path.display()))?;
                StateRules::parse(&text).with_context(|| format!("compliance.state_rules_path: {}", path.display()))?
            }
        };
        Ok(Resolved { timezone, region, window, state_rules, numbers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_resolves() {
        let config = Config::parse(EXAMPLE).expect("example parses");
        config.resolve().expect("example resolves");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::parse("[dialing]\nmax_concurent_calls = 3\n").unwrap_err();
        assert!(err.to_string().contains("max_concurent_calls"), "{err}");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let mut config = Config::default();
        config.provider.twilio.auth_token = Secret::new("supersecret");
        assert!(!format!("{config:?}").contains("supersecret"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let config = Config::parse("[dialing]\ntimezone = \"Mars/Olympus\"\n").unwrap();
        assert!(config.resolve().unwrap_err().to_string().contains("dialing.timezone"));
        let config = Config::parse("[dialing]\nring_timeout_seconds = 5\n").unwrap();
        assert!(config.resolve().unwrap_err().to_string().contains("ring_timeout_seconds"));
    }
}
