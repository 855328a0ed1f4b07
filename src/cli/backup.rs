//! `dialer backup FILE` and `dialer restore FILE`.

use std::path::Path;

use crate::config::Config;

/// Writes a consistent copy of the database to `file`.
pub fn backup(_config: &Config, _file: &Path) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

/// Replaces the database with the backup `file`.
pub fn restore(_config: &Config, _file: &Path, _force: bool) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
