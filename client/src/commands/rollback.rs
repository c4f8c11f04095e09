//! `rpm-ostree rollback`: make the previous deployment the default for the next boot.

use anyhow::Result;
use rpmostree_api::RollbackOptions;

use super::Context;
use crate::Exit;
use crate::cli::RollbackArgs;
use crate::connection::Daemon;
use crate::transaction;

/// Runs a `Rollback` transaction and, when the boot order changed, shows the package changes
/// and says so.
pub async fn run(daemon: &Daemon, ctx: &Context, args: &RollbackArgs) -> Result<Exit> {
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    let options = RollbackOptions::new().reboot(args.reboot);
    let change = transaction::run_default_change(daemon, ctx, &os, "Rollback", || {
        os.rollback_transaction(&options)
    })
    .await?;
    Ok(transaction::conclude_change(daemon, ctx, &os, &change, !args.reboot, false).await)
}
