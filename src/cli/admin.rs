//! `dialer admin create|reset-password` and `dialer token create|list|revoke`.
//! They work on the database directly (safe while `dialer serve` runs: SQLite
//! serialises the writes) and record `cli` as the actor in the audit log.

use std::io::{BufRead, IsTerminal};

use super::{AdminCommand, TokenCommand};
use crate::auth::ops;
use crate::config::Config;
use crate::db::{self, Db};

pub fn admin(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let db = Db::open(&config.database.path)?;
    let runtime = tokio::runtime::Runtime::new()?;
    match command {
        AdminCommand::Create { username } => {
            let password = read_password(&username)?;
            runtime.block_on(ops::create_user(&db, &username, &password, "cli"))?;
            eprintln!("user {username} created; log in at the dashboard");
        }
        AdminCommand::ResetPassword { username } => {
            let password = read_password(&username)?;
            runtime.block_on(ops::reset_password(&db, &username, &password, "cli"))?;
            eprintln!("password of {username} changed; all of their sessions ended");
        }
    }
    Ok(())
}

pub fn token(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    let db = Db::open(&config.database.path)?;
    let runtime = tokio::runtime::Runtime::new()?;
    match command {
        TokenCommand::Create { name, read_only } => {
            let (id, token) = runtime.block_on(ops::create_token(&db, &name, read_only, "cli"))?;
            let access = if read_only { "read-only" } else { "read-write" };
            // The token alone on stdout, so scripts can capture it; the rest on stderr.
            println!("{token}");
            eprintln!("token {id} ({name}, {access}) created. It is shown only now; store it safely.");
        }
        TokenCommand::List => {
            let tokens = db.read_blocking(crate::db::auth::tokens)?;
            println!("id\tname\tprefix\taccess\tcreated\tlast used\tstate");
            for t in tokens {
                let day = |ms: Option<i64>| ms.map_or("-".to_string(), |ms| db::from_ms(ms).to_rfc3339());
                println!(
                    "{}\t{}\t{}…\t{}\t{}\t{}\t{}",
                    t.id,
                    t.name,
                    t.prefix,
                    if t.read_only { "read-only" } else { "read-write" },
                    day(Some(t.created_at)),
                    day(t.last_used_at),
                    if t.revoked_at.is_some() { "revoked" } else { "live" }
                );
            }
        }
        TokenCommand::Revoke { token } => {
            let name = runtime.block_on(ops::revoke_token(&db, &token, "cli"))?;
            eprintln!("token {name} revoked");
        }
    }
    Ok(())
}

/// Asks twice on a terminal (no echo); otherwise reads one line from stdin, so
/// `echo "$PASS" | dialer admin create alice` works in provisioning scripts.
fn read_password(username: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {username}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
