//! Prometheus metrics. Counters and histograms observed as things happen (webhook
//! latency, provider errors) live here in memory; counts read from the store at
//! scrape time (`db::metrics`) are rendered next to them by [`Metrics::render`]
//! in the OpenMetrics text format (what `prometheus-client` writes and Prometheus
//! reads natively). Names carry the `dialer_` prefix and base units (`_seconds`).
//!
//! Label values are bounded: statuses and health bands come from fixed lists,
//! webhook labels from a fixed route table, provider error codes from
//! [`error_code`]. Nothing a caller sends becomes a label as such.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::db::metrics::StoreCounts;
use crate::domain::status::{ALL, Status};
use crate::numbers::health::Band;
use crate::provider::ProviderError;

type Labels<const N: usize> = [(&'static str, String); N];

/// Webhook handling time buckets, seconds: a handler is a signature check and one
/// SQLite write (an fsync), normally a few milliseconds; Twilio gives up on a voice
/// webhook after 15 s.
const WEBHOOK_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 15.0];

fn webhook_histogram() -> Histogram {
    Histogram::new(WEBHOOK_BUCKETS)
}

/// Shared by handlers and loops through `AppState::metrics`.
pub struct Metrics {
    /// The in-memory families below, plus build info and start time.
    registry: Registry,
    webhook_seconds: Family<Labels<3>, Histogram, fn() -> Histogram>,
    provider_errors: Family<Labels<3>, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        let start: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
        start.set(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64());
        registry.register_with_unit(
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Unit::Seconds,
            start,
        );
        let dialer = registry.sub_registry_with_prefix("dialer");
        let version = vec![("version", env!("CARGO_PKG_VERSION").to_string())];
        dialer.register("build", "The running dialer's version", Info::new(version));
        let webhook_seconds =
            Family::<Labels<3>, Histogram, fn() -> Histogram>::new_with_constructor(webhook_histogram);
        dialer.register_with_unit(
            "webhook_duration",
            "Time to handle a provider webhook, by provider, route and HTTP status (forged ones included)",
            Unit::Seconds,
            webhook_seconds.clone(),
        );
        let provider_errors = Family::<Labels<3>, Counter>::default();
        dialer.register(
            "provider_errors",
            "Provider errors answering create-call requests, by provider, class (provider::errors) and code \
             (the provider's code or HTTP status, or connect/timeout/unreadable/other)",
            provider_errors.clone(),
        );
        Metrics { registry, webhook_seconds, provider_errors }
    }
}

/// What the loops report in memory, read at scrape time.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    pub scheduler_alive: bool,
    pub call_loop_alive: bool,
    /// Dialing is held after a provider refusal (credentials, throttling).
    pub dialing_held: bool,
    /// The in-flight cap in use (lowered after the provider's concurrency limit).
    pub max_concurrent_calls: u32,
}

impl Metrics {
    /// One webhook handled in `elapsed`. `path` picks the labels from a fixed table
    /// (anything else under `/webhooks/` is `other`); `status` is the HTTP status sent.
    pub fn webhook(&self, path: &str, status: u16, elapsed: Duration) {
        let (provider, route) = webhook_route(path);
        let labels = [("provider", provider.to_string()), ("route", route.to_string()), ("code", status.to_string())];
        self.webhook_seconds.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// One create-call request that `provider` (`Provider::name`) answered with `error`.
    pub fn provider_error(&self, provider: &str, error: &ProviderError) {
        let labels =
            [("provider", provider.to_string()), ("class", class(error).to_string()), ("code", error_code(error))];
        self.provider_errors.get_or_create(&labels).inc();
    }

    /// The whole exposition: in-memory metrics, then the store's counts and `live`.
    /// Every known status and band is written, at 0 when absent, so a series never
    /// disappears. Errors: only a failing `fmt::Write` (none for a `String`).
    pub fn render(&self, store: &StoreCounts, live: &Live) -> Result<String, std::fmt::Error> {
        let mut scrape = Registry::with_prefix("dialer");
        let calls = Family::<Labels<1>, Counter>::default();
        let in_flight = Family::<Labels<1>, Gauge>::default();
        let leads = Family::<Labels<1>, Gauge>::default();
        for status in ALL {
            let n = |pairs: &[(String, i64)]| pairs.iter().find(|(s, _)| s == status.as_str()).map_or(0, |(_, n)| *n);
            let label = |key| [(key, status.as_str().to_string())];
            if status.is_final() {
                calls.get_or_create(&label("outcome")).inc_by(u64::try_from(n(&store.calls_ended)).unwrap_or(0));
            }
            if status.is_in_flight() || status == Status::Unknown {
                in_flight.get_or_create(&label("status")).set(n(&store.calls_in_flight));
            }
            leads.get_or_create(&label("status")).set(n(&store.leads));
        }
        scrape.register("calls", "Calls that ended, by outcome (attempt status), from the store", calls);
        scrape.register(
            "calls_in_flight",
            "Calls holding a concurrency slot, by status (unknown: awaiting the reconciler)",
            in_flight,
        );
        scrape.register("leads", "Leads by status, from the store", leads);
        let queue: Gauge = Gauge::default();
        queue.set(store.queue_depth);
        scrape.register("queue_depth", "Leads whose batch fired and that wait to be dialled", queue);

        let numbers = Family::<Labels<2>, Gauge>::default();
        for status in ["active", "resting", "quarantined", "retired"] {
            for band in [Band::Healthy, Band::Warning, Band::AtRisk, Band::Flagged] {
                let n: i64 = store
                    .numbers
                    .iter()
                    .filter(|c| c.status == status && Band::of(c.spam_score) == band)
                    .map(|c| c.count)
                    .sum();
                numbers.get_or_create(&[("status", status.to_string()), ("health", band.as_str().to_string())]).set(n);
            }
        }
        scrape.register("caller_numbers", "Caller numbers by status and health band (spam score)", numbers);
        let dialable: Gauge = Gauge::default();
        dialable
            .set(store.numbers.iter().filter(|c| c.status == "active" && c.rotation_enabled).map(|c| c.count).sum());
        scrape.register("caller_numbers_dialable", "Caller numbers active and in rotation", dialable);

        let loops = Family::<Labels<1>, Gauge>::default();
        loops.get_or_create(&[("loop", "scheduler".into())]).set(i64::from(live.scheduler_alive));
        loops.get_or_create(&[("loop", "call".into())]).set(i64::from(live.call_loop_alive));
        scrape.register("loop_up", "1 when the loop reported within its bound (as /healthz judges)", loops);
        let held: Gauge = Gauge::default();
        held.set(i64::from(live.dialing_held));
        scrape.register("dialing_held", "1 while dialing holds after a provider refusal", held);
        let cap: Gauge = Gauge::default();
        cap.set(i64::from(live.max_concurrent_calls));
        scrape.register("max_concurrent_calls", "The in-flight cap in use (lowered after a provider limit)", cap);

        let mut out = String::with_capacity(8 * 1024);
        encode_registry(&mut out, &self.registry)?;
        encode_registry(&mut out, &scrape)?;
        encode_eof(&mut out)?;
        Ok(out)
    }
}

/// (provider, route) labels of a webhook path; `other` for anything not routed.
fn webhook_route(path: &str) -> (&'static str, &'static str) {
    match path.strip_prefix("/webhooks/").unwrap_or("") {
        "twilio/status" => ("twilio", "status"),
        "twilio/voice" => ("twilio", "voice"),
        "twilio/gather" => ("twilio", "gather"),
        "twilio/dial" => ("twilio", "dial"),
        "twilio/amd" => ("twilio", "amd"),
        "twilio/voicemail" => ("twilio", "voicemail"),
        "telnyx" => ("telnyx", "events"),
        "vapi" => ("vapi", "events"),
        _ => ("other", "other"),
    }
}

/// The error's class, as in `provider::errors::Class` (lower case).
fn class(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::Retry(_) => "retry",
        ProviderError::Throttle(_) => "throttle",
        ProviderError::Lead { .. } => "lead",
        ProviderError::Config { .. } => "config",
        ProviderError::Rejected { .. } => "rejected",
        ProviderError::Unknown(_) => "unknown",
    }
}

/// The `code` label of a provider error: the provider's code (or the HTTP status it
/// was classified by) when the error carries one, else the kind of transport
/// failure. Always digits (at most 6) or one of `connect`, `timeout`, `unreadable`,
/// `other`, so a provider's message can never grow the label set. The clients write
/// the code before the first `": "`: `20429: …`, `HTTP 503: …`, `rate limited
/// (10011): …`, `Vapi HTTP 502: …`.
pub fn error_code(error: &ProviderError) -> String {
    let message = match error {
        ProviderError::Lead { code, .. }
        | ProviderError::Config { code, .. }
        | ProviderError::Rejected { code, .. } => {
            return bounded_digits(&code.to_string()).unwrap_or("other").to_string();
        }
        ProviderError::Retry(m) | ProviderError::Throttle(m) | ProviderError::Unknown(m) => m,
    };
    let head = message.split(": ").next().unwrap_or("");
    let numeric = bounded_digits(head)
        .or_else(|| head.rsplit_once("HTTP ").and_then(|(_, s)| bounded_digits(s)))
        .or_else(|| head.strip_suffix(')').and_then(|h| h.rsplit_once('(')).and_then(|(_, s)| bounded_digits(s)));
    if let Some(code) = numeric {
        return code.to_string();
    }
    let m = message.to_ascii_lowercase();
    let word = if m.starts_with("cannot connect") {
        "connect"
    } else if m.contains("timed out") || m.contains("timeout") {
        "timeout"
    } else if m.contains("unreadable") {
        "unreadable"
    } else {
        "other"
    };
    word.to_string()
}

/// `s` when it is 1 to 6 ASCII digits.
fn bounded_digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_come_from_the_clients_messages_and_stay_bounded() {
        let cases = [
            (ProviderError::Retry("20429: Too Many Requests".into()), "20429"),
            (ProviderError::Retry("rate limited (10011): slow down".into()), "10011"),
            (ProviderError::Retry("Vapi rate limit (429): busy".into()), "429"),
            (ProviderError::Retry("cannot connect to http://127.0.0.1:4000: refused".into()), "connect"),
            (ProviderError::Throttle("10004: Call concurrency limit".into()), "10004"),
            (ProviderError::Throttle("Vapi concurrency limit reached (concurrencyBlocked)".into()), "other"),
            (ProviderError::Unknown("HTTP 503: Service Unavailable".into()), "503"),
            (ProviderError::Unknown("Vapi HTTP 502: bad gateway".into()), "502"),
            (
                ProviderError::Unknown("no reply to create-call: error sending request: operation timed out".into()),
                "timeout",
            ),
            (ProviderError::Unknown("unreadable create-call response: EOF (12345)".into()), "unreadable"),
            (ProviderError::Lead { code: 21211, message: "Invalid To".into() }, "21211"),
            (ProviderError::Config { code: 20003, message: String::new() }, "20003"),
            (ProviderError::Rejected { code: -1, message: String::new() }, "other"),
            (ProviderError::Rejected { code: 1_234_567, message: String::new() }, "other"),
        ];
        for (error, code) in cases {
            assert_eq!(error_code(&error), code, "{error}");
        }
    }

    #[test]
    fn the_exposition_has_every_status_and_the_observed_values() {
        let metrics = Metrics::default();
        metrics.webhook("/webhooks/twilio/status", 204, Duration::from_millis(3));
        metrics.webhook("/webhooks/anything/else", 404, Duration::from_millis(1));
        metrics.provider_error("twilio", &ProviderError::Retry("20429: Too Many Requests".into()));
        metrics.provider_error("twilio", &ProviderError::Retry("20429: Too Many Requests".into()));
        let store = StoreCounts {
            calls_ended: vec![("completed".into(), 7), ("busy".into(), 2)],
            calls_in_flight: vec![("ringing".into(), 1)],
            queue_depth: 12,
            leads: vec![("pending".into(), 3)],
            numbers: vec![crate::db::metrics::NumberCount {
                status: "resting".into(),
                spam_score: Some(60),
                rotation_enabled: true,
                count: 2,
            }],
        };
        let live = Live { scheduler_alive: true, call_loop_alive: false, dialing_held: false, max_concurrent_calls: 5 };
        let text = metrics.render(&store, &live).unwrap();
        for line in [
            "dialer_calls_total{outcome=\"completed\"} 7",
            "dialer_calls_total{outcome=\"busy\"} 2",
            "dialer_calls_total{outcome=\"no_answer\"} 0",
            "dialer_calls_in_flight{status=\"ringing\"} 1",
            "dialer_calls_in_flight{status=\"unknown\"} 0",
            "dialer_queue_depth 12",
            "dialer_leads{status=\"pending\"} 3",
            "dialer_caller_numbers{status=\"resting\",health=\"at_risk\"} 2",
            "dialer_caller_numbers{status=\"active\",health=\"healthy\"} 0",
            "dialer_caller_numbers_dialable 0",
            "dialer_loop_up{loop=\"call\"} 0",
            "dialer_provider_errors_total{provider=\"twilio\",class=\"retry\",code=\"20429\"} 2",
            "dialer_webhook_duration_seconds_count{provider=\"twilio\",route=\"status\",code=\"204\"} 1",
            "dialer_webhook_duration_seconds_bucket{le=\"0.005\",provider=\"twilio\",route=\"status\",code=\"204\"} 1",
            "dialer_webhook_duration_seconds_count{provider=\"other\",route=\"other\",code=\"404\"} 1",
            "dialer_build_info{version=\"",
            "# TYPE process_start_time_seconds gauge",
        ] {
            assert!(text.lines().any(|l| l.starts_with(line)), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert!(!text.contains("outcome=\"dialing\""), "only final statuses are outcomes");
    }
}
