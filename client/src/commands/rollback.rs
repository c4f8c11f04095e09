//! `rpm-ostree rollback`: make the previous deployment the default for the next boot.

use anyhow::Result;
use rpmostree_api::RollbackOptions;

use super::Context;
use crate::Exit;
use crate::cli::RollbackArgs;
use crate::connection::Daemon;
use crate::transaction;

/// Runs a `Rollback` transaction and says when the boot order changed.
pub async fn run(daemon: &Daemon, ctx: &Context, args: &RollbackArgs) -> Result<Exit> {
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    let options = RollbackOptions::new().reboot(args.reboot);
    let changed = transaction::run_deployment_change(daemon, ctx, &os, "Rollback", || {
        os.rollback_transaction(&options)
    })
    .await?;
    Ok(transaction::conclude(ctx, changed, !args.reboot, false))
}
