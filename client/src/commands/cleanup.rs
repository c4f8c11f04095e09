//! `rpm-ostree cleanup -b|-p|-r|-m`: remove deployments and cached data (at least one flag;
//! clap rejects the command line otherwise).

use anyhow::Result;

use super::Context;
use crate::Exit;
use crate::cli::CleanupArgs;
use crate::connection::Daemon;
use crate::transaction;

/// The `Cleanup` elements for the flags, in upstream's order.
pub fn elements(args: &CleanupArgs) -> Vec<&'static str> {
    let mut out = Vec::new();
    if args.base {
        out.push("base");
    }
    if args.pending {
        out.push("pending-deploy");
    }
    if args.rollback {
        out.push("rollback-deploy");
    }
    if args.repomd {
        out.push("repomd");
    }
    out
}

/// Runs a `Cleanup` transaction.
pub async fn run(daemon: &Daemon, ctx: &Context, args: &CleanupArgs) -> Result<Exit> {
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    let elements = elements(args);
    transaction::run(daemon, ctx, "Cleanup", || os.cleanup_transaction(&elements)).await?;
    Ok(Exit::Success)
}
