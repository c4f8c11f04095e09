//! `rpm-ostree finalize-deployment [CHECKSUM]`: unlock the staged deployment and reboot into
//! it (the daemon always reboots on success).

use anyhow::Result;
use rpmostree_api::FinalizeDeploymentOptions;

use super::Context;
use crate::Exit;
use crate::cli::FinalizeDeploymentArgs;
use crate::connection::Daemon;
use crate::transaction;

/// Runs a `FinalizeDeployment` transaction.
pub async fn run(daemon: &Daemon, ctx: &Context, args: &FinalizeDeploymentArgs) -> Result<Exit> {
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    let mut options = FinalizeDeploymentOptions::new()
        .allow_missing_checksum(args.allow_missing_checksum)
        .allow_unlocked(args.allow_unlocked)
        .initiating_command_line(ctx.command_line.clone());
    if let Some(checksum) = &args.checksum {
        options = options.checksum(checksum.clone());
    }
    transaction::run(daemon, ctx, "FinalizeDeployment", || {
        os.finalize_deployment_transaction(&options)
    })
    .await?;
    Ok(Exit::Success)
}
