//! Command line: `dialer serve | import FILE | config example | check-config | migrate | plan |
//! simulator --bind ADDR | numbers provider-list | numbers provider-import |
//! admin create|reset-password | token create|list|revoke | backup FILE | restore FILE`.

mod admin;
mod backup;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::compliance::tz::TzMap;
use crate::config::{self, Config};
use crate::db::Db;
use crate::leads::import;
use crate::numbers::Places;
use crate::numbers::npa::NpaMap;

#[derive(Parser)]
#[command(name = "dialer", version, about = "Self-hosted outbound dialer")]
pub struct Cli {
    /// Configuration file (TOML). Without it, built-in defaults are used.
    #[arg(long, global = true, env = "DIALER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the dashboard, the API and the webhooks, and run the scheduler and call loop.
    Serve,
    /// Import leads from a CSV file (same rules as the dashboard upload).
    Import { file: PathBuf },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Check the configuration and print it with secrets redacted.
    CheckConfig,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// How many caller numbers a target daily volume needs (caps, warming, a buffer
    /// for rests), compared with the numbers in the database.
    Plan {
        /// Target calls per day.
        #[arg(long)]
        calls_per_day: u32,
        /// Daily cap assumed per number.
        #[arg(long, default_value_t = 100)]
        cap: u32,
        /// Spare numbers for rests and quarantine, percent (20-30 recommended).
        #[arg(long, default_value_t = 25)]
        buffer: u8,
    },
    /// Caller numbers and the provider account's numbers.
    Numbers {
        #[command(subcommand)]
        command: NumbersCommand,
    },
    /// Dashboard users.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// API tokens for scripts (`Authorization: Bearer TOKEN`).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Write a consistent copy of the database to FILE (SQLite online backup; safe
    /// while `dialer serve` runs).
    Backup { file: PathBuf },
    /// Replace the database with the backup FILE (checked first). Stop the service before.
    Restore {
        file: PathBuf,
        /// Overwrite an existing database.
        #[arg(long)]
        force: bool,
    },
    /// Run only the simulated carrier (the config's `[simulator]` section) until
    /// SIGINT/SIGTERM; prints its base URL and the `[provider]` settings to use.
    Simulator {
        /// Address to listen on, e.g. `127.0.0.1:8089`.
        #[arg(long, default_value = "127.0.0.1:8089")]
        bind: std::net::SocketAddr,
    },
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a dashboard user. The password is read from stdin (one line), or asked
    /// for on the terminal.
    Create { username: String },
    /// Set a new password for a user and end all of their sessions.
    ResetPassword { username: String },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it once on stdout (only its hash is stored).
    Create {
        name: String,
        /// The token may only read (GET); it cannot change anything.
        #[arg(long)]
        read_only: bool,
    },
    /// List API tokens (name, prefix, access, created, last used, revoked).
    List,
    /// Revoke an API token by id or name.
    Revoke { token: String },
}

#[derive(Subcommand)]
pub enum NumbersCommand {
    /// List the numbers owned on the configured provider account, marking those
    /// already in the rotation pool.
    ProviderList,
    /// Add numbers of the provider account to the rotation pool with their provider
    /// ids (a number already in the pool keeps its settings and gets its id).
    ProviderImport {
        /// Every number on the account.
        #[arg(long, conflicts_with = "numbers", required_unless_present = "numbers")]
        all: bool,
        /// E.164 numbers of the account to add.
        numbers: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the commented example configuration.
    Example,
}

pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    crate::telemetry::init(cli.config.as_deref());
    let load = || Config::load(cli.config.as_deref());
    match cli.command {
        Command::Serve => {
            let config = load()?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(config.server.bind)
                    .await
                    .with_context(|| format!("binding {}", config.server.bind))?;
                crate::app::run(config, listener, shutdown_signal()).await
            })
        }
        Command::Import { file } => import_file(&load()?, &file),
        Command::Config { command: ConfigCommand::Example } => {
            print!("{}", config::EXAMPLE);
            Ok(())
        }
        Command::CheckConfig => {
            let config = load()?;
            let resolved = config.resolve()?;
            println!("configuration OK\n{config:#?}\ncaller numbers: {}", resolved.numbers.len());
            Ok(())
        }
        Command::Plan { calls_per_day, cap, buffer } => plan(&load()?, calls_per_day, cap, buffer),
        Command::Simulator { bind } => simulator(&load()?, bind),
        Command::Numbers { command } => provider_numbers(&load()?, command),
        Command::Admin { command } => admin::admin(&load()?, command),
        Command::Token { command } => admin::token(&load()?, command),
        Command::Backup { file } => backup::backup(&load()?, &file),
        Command::Restore { file, force } => backup::restore(&load()?, &file, force),
        Command::Migrate => {
            let config = load()?;
            Db::open(&config.database.path)?;
            println!("database {} is at the latest schema", config.database.path.display());
            Ok(())
        }
    }
}

fn import_file(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let resolved = config.resolve()?;
    let db = Db::open(&config.database.path)?;
    let places = Places::new(NpaMap::embedded(), std::sync::Arc::new(TzMap::embedded()));
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {elapsed} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let ctx = import::Context { db: &db, region: resolved.region, places: &places };
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let summary = import::run(&ctx, &name, input, &mut |bytes| bar.set_position(bytes))?;
    bar.finish_and_clear();
    let shown = serde_json::json!({
        "imported": summary.imported,
        "duplicates": summary.duplicates,
        "rejected": summary.rejected,
        "dnc": summary.dnc,
        "errors": summary.errors.iter().take(20).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&shown)?);
    if summary.rejected > 20 {
        println!("(first 20 of {} rejected rows; all are kept with import {})", summary.rejected, summary.import_id);
    }
    Ok(())
}

/// `dialer numbers provider-list | provider-import`: asks the configured provider
/// (with `provider.kind = "simulator"`, a simulator started for the command).
fn provider_numbers(config: &Config, command: NumbersCommand) -> anyhow::Result<()> {
    use crate::db::provider_numbers as pn;
    let db = Db::open(&config.database.path)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (provider, owned) = runtime.block_on(async {
        let stop = tokio_util::sync::CancellationToken::new();
        let public_url = config.server.public_url.clone().unwrap_or_else(|| format!("http://{}", config.server.bind));
        let built = crate::provider::build::build(config, &public_url, &stop).await?;
        let owned = built.provider.list_numbers().await.context("listing the provider account's numbers");
        stop.cancel();
        owned.map(|owned| (built.provider.name(), owned))
    })?;
    match command {
        NumbersCommand::ProviderList => {
            let stored = db.read_blocking(pn::stored)?;
            for n in &owned {
                let pool = match stored.get(&n.number) {
                    Some(Some(id)) if *id == n.provider_id => "in pool",
                    Some(_) => "in pool, no provider id",
                    None => "-",
                };
                println!("{}\t{}\t{}\t{pool}", n.number, n.provider_id, n.label.as_deref().unwrap_or(""));
            }
            println!("{} number(s) on the {provider} account", owned.len());
        }
        NumbersCommand::ProviderImport { all, numbers } => {
            let (picked, missing) = pn::choose(owned, (!all).then_some(numbers.as_slice()));
            let now_ms = crate::db::to_ms(chrono::Utc::now());
            let done = db.write_blocking(|tx| pn::import_owned(tx, &picked, "cli", now_ms))?;
            for (number, what) in &done {
                println!("{number}\t{what:?}");
            }
            for number in &missing {
                println!("{number}\tnot on the account");
            }
            if !missing.is_empty() && done.is_empty() {
                anyhow::bail!("none of the numbers is on the provider account");
            }
        }
    }
    Ok(())
}

/// `dialer simulator`: the simulated carrier alone, so it outlives a dialer that crashes.
fn simulator(config: &Config, bind: std::net::SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("binding {bind}"))?;
        let stop = tokio_util::sync::CancellationToken::new();
        let base = crate::provider::simulator::spawn(listener, config.simulator.clone(), stop.clone())?;
        println!("{}", crate::provider::simulator::instructions(&base));
        shutdown_signal().await;
        stop.cancel();
        Ok(())
    })
}

/// Completes at the first SIGTERM (systemd's stop) or SIGINT (Ctrl-C). The handlers
/// are installed when this is called, not when first polled, so a signal during
/// start-up is not lost. Call inside the runtime.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (term, int) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let recv = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! { _ = recv(term) => {}, _ = recv(int) => {} }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown signal received");
    }
}

/// `dialer plan`: prints the plan, then how the stored numbers compare (when the
/// database exists; the plan alone needs none).
fn plan(config: &Config, calls_per_day: u32, cap: u32, buffer: u8) -> anyhow::Result<()> {
    use crate::numbers::{health, plan};
    let r = &config.rotation;
    let p = plan::plan(calls_per_day, cap, buffer, r.warmup(), &r.policy()).map_err(|e| anyhow::anyhow!(e))?;
    print!("{}", plan::render_text(&p));
    if config.database.path.exists() {
        let resolved = config.resolve()?;
        let db = crate::db::Db::open(&config.database.path)?;
        let now = chrono::Utc::now();
        let today = now.with_timezone(&resolved.timezone).date_naive();
        let day = today.to_string();
        let rows = db.read_blocking(|c| crate::db::number_admin::list(c, &day))?;
        let dialing: Vec<_> = rows.iter().filter(|n| n.rotation_enabled && n.status == "active").collect();
        let capacity: u32 = dialing
            .iter()
            .map(|n| {
                let first = n.first_used_day.as_deref().and_then(|d| d.parse().ok());
                let band = health::Band::of(n.spam_score);
                health::effective_cap(n.max_daily_calls, first, today, band, r.warmup(), &r.policy())
            })
            .sum();
        println!("\n{}", plan::shortfall(&p, capacity, dialing.len() as u32));
    }
    Ok(())
}
