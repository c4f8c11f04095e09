//! `rpm-ostree reload`: make the daemon re-read its configuration and the sysroot.

use anyhow::Result;

use super::Context;
use crate::Exit;
use crate::connection::Daemon;
use crate::error::daemon_error;

/// Calls `ReloadConfig()`.
pub async fn run(daemon: &Daemon, _ctx: &Context) -> Result<Exit> {
    daemon
        .sysroot
        .reload_config()
        .await
        .map_err(|e| daemon_error("ReloadConfig", e))?;
    Ok(Exit::Success)
}
