//! Logging: tracing events to stderr, one line each, plain or JSON.
//!
//! - Format: `DIALER_LOG_FORMAT` (`plain` | `json`) wins over `[log] format` in
//!   dialer.toml; default plain. Level and targets from `RUST_LOG` (default `info`).
//! - Colours only when stderr is a terminal (and `NO_COLOR` is unset), so files,
//!   pipes and the journal get no ANSI escapes.
//! - Under systemd, when stderr is the journal stream (`JOURNAL_STREAM` names
//!   stderr's device and inode, as systemd.exec(5) advises checking), each line
//!   starts with an sd-daemon `<N>` priority prefix that journald turns into the
//!   entry's PRIORITY (`journalctl -p warning` works), and plain lines carry no
//!   timestamp: journald stamps every entry itself.
//!
//! Secrets: configuration secrets are `Secret` (never printed), requests are never
//! logged with their headers, and no event prints a token, password, session id or
//! signature; `tests/observability.rs` runs the binary at `debug` and checks.

use std::io::IsTerminal;
use std::path::Path;

use serde::Deserialize;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// `[log]` in dialer.toml.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

/// How the log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub format: LogFormat,
    /// stderr is the journal: `<N>` prefixes, no timestamp in plain lines.
    pub journald: bool,
    pub ansi: bool,
}

/// Installs the global subscriber for the process, reading `[log]` from the config
/// file at `config_path` (unreadable or invalid: the defaults; the command itself
/// reports the file's errors). A second call does nothing.
pub fn init(config_path: Option<&Path>) {
    let from_file = crate::config::Config::load(config_path).map(|c| c.log.format).ok();
    let env = std::env::var("DIALER_LOG_FORMAT").ok();
    let (format, unknown) = choose(env.as_deref(), from_file);
    let journald = stderr_is_journal();
    let ansi = !journald && std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(layer(Style { format, journald, ansi }, std::io::stderr))
        .try_init();
    if installed.is_ok()
        && let Some(value) = unknown
    {
        tracing::warn!(value, "DIALER_LOG_FORMAT is neither plain nor json: using {format:?}");
    }
}

/// The format from the environment (case-insensitive `plain` | `json`), else the
/// file's, else plain. Also returns an environment value that was not understood.
pub fn choose(env: Option<&str>, file: Option<LogFormat>) -> (LogFormat, Option<String>) {
    match env.map(|v| v.trim().to_ascii_lowercase()) {
        Some(v) if v == "json" => (LogFormat::Json, None),
        Some(v) if v == "plain" => (LogFormat::Plain, None),
        Some(v) if !v.is_empty() => (file.unwrap_or_default(), Some(v)),
        _ => (file.unwrap_or_default(), None),
    }
}

/// The formatting layer for `style`, writing through `writer`.
pub fn layer<S, W>(style: Style, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(style.ansi);
    match (style.format, style.journald) {
        (LogFormat::Json, false) => base.json().boxed(),
        (LogFormat::Json, true) => base.json().map_event_format(Priority).boxed(),
        (LogFormat::Plain, false) => base.boxed(),
        (LogFormat::Plain, true) => base.without_time().map_event_format(Priority).boxed(),
    }
}

/// True when stderr is the journal stream systemd connected: `JOURNAL_STREAM`
/// ("DEV:INODE") equals stderr's own device and inode. The variable alone is not
/// enough: it is inherited by children whose stderr was redirected elsewhere.
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = std::env::var("JOURNAL_STREAM").ok().and_then(|v| parse_stream(&v)) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else { return false };
    std::fs::File::from(fd).metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

fn parse_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// Prefixes each event with its syslog priority, `<3>` error … `<7>` debug/trace,
/// which journald strips and stores as the entry's PRIORITY.
struct Priority<F>(F);

impl<S, N, F> FormatEvent<S, N> for Priority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}

/// A subscriber formatting as `style` into a buffer (tests).
#[cfg(test)]
fn capture(style: Style) -> (impl Subscriber + Send + Sync, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = buffer.clone();
    let writer = move || Sink(sink.clone());
    (tracing_subscriber::registry().with(layer::<tracing_subscriber::Registry, _>(style, writer)), buffer)
}

#[cfg(test)]
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(style: Style) -> Vec<String> {
        let (subscriber, buffer) = capture(style);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(attempt_id = 7, "call ended");
            tracing::error!("claim failed");
        });
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn journald_lines_carry_a_priority_and_no_timestamp() {
        let plain = lines(Style { format: LogFormat::Plain, journald: true, ansi: false });
        assert!(plain[0].starts_with("<6> INFO ") && plain[0].contains("call ended attempt_id=7"), "{plain:?}");
        assert!(plain[1].starts_with("<3>ERROR "), "{plain:?}");
        let json = lines(Style { format: LogFormat::Json, journald: true, ansi: false });
        let event: serde_json::Value = serde_json::from_str(json[0].strip_prefix("<6>").unwrap()).unwrap();
        assert_eq!(event["fields"]["message"], "call ended");
        assert_eq!(event["level"], "INFO");
    }

    #[test]
    fn outside_journald_lines_start_with_a_timestamp_and_have_no_colours() {
        for format in [LogFormat::Plain, LogFormat::Json] {
            let out = lines(Style { format, journald: false, ansi: false });
            assert!(out.iter().all(|l| !l.contains('\u{1b}')), "{out:?}");
            assert!(!out[0].starts_with('<'), "{out:?}");
            if format == LogFormat::Plain {
                assert!(
                    chrono::DateTime::parse_from_rfc3339(out[0].split_whitespace().next().unwrap()).is_ok(),
                    "{out:?}"
                );
            } else {
                let event: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
                assert!(event["timestamp"].is_string(), "{event}");
            }
        }
        let coloured = lines(Style { format: LogFormat::Plain, journald: false, ansi: true });
        assert!(coloured[0].contains('\u{1b}'), "the ansi switch is what removes colours: {coloured:?}");
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        assert_eq!(choose(Some("json"), Some(LogFormat::Plain)), (LogFormat::Json, None));
        assert_eq!(choose(Some(" PLAIN "), Some(LogFormat::Json)), (LogFormat::Plain, None));
        assert_eq!(choose(None, Some(LogFormat::Json)), (LogFormat::Json, None));
        assert_eq!(choose(Some(""), None), (LogFormat::Plain, None));
        assert_eq!(choose(Some("yaml"), Some(LogFormat::Json)), (LogFormat::Json, Some("yaml".into())));
        assert_eq!(parse_stream("8:12345"), Some((8, 12345)));
        assert_eq!(parse_stream("8-12345"), None);
        let config = crate::config::Config::parse("[log]\nformat = \"json\"\n").unwrap();
        assert_eq!(config.log.format, LogFormat::Json);
        assert!(crate::config::Config::parse("[log]\nformat = \"xml\"\n").is_err());
    }
}
