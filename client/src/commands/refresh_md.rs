//! `rpm-ostree refresh-md`: refresh the metadata of the configured remotes.

use anyhow::Result;
use rpmostree_api::RefreshMdOptions;

use super::Context;
use crate::Exit;
use crate::cli::RefreshMdArgs;
use crate::connection::Daemon;
use crate::transaction;

/// Runs a `RefreshMd` transaction (`force` with `-f`).
pub async fn run(daemon: &Daemon, ctx: &Context, args: &RefreshMdArgs) -> Result<Exit> {
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    let options = RefreshMdOptions::new().force(args.force);
    transaction::run(daemon, ctx, "RefreshMd", || {
        os.refresh_md_transaction(&options)
    })
    .await?;
    Ok(Exit::Success)
}
