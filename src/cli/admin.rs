//! `dialer admin create|reset-password` and `dialer token create|list|revoke`.

use super::{AdminCommand, TokenCommand};
use crate::config::Config;

pub fn admin(_config: &Config, _command: AdminCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

pub fn token(_config: &Config, _command: TokenCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
