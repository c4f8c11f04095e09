//! `rpm-ostree deploy REVISION`: deploy a revision of the current origin; also how update
//! drivers such as zincati register (`deploy "" --register-driver NAME`).

use anyhow::Result;
use rpmostree_api::DeployOptions;

use super::Context;
use crate::Exit;
use crate::cli::DeployArgs;
use crate::connection::Daemon;
use crate::transaction;

/// The options upstream's CLI sends for these arguments.
pub fn options(args: &DeployArgs, command_line: &str) -> DeployOptions {
    let mut options = DeployOptions::new()
        .reboot(args.reboot)
        .allow_downgrade(!args.disallow_downgrade)
        .cache_only(args.cache_only)
        .download_only(args.download_only)
        .skip_branch_check(args.skip_branch_check)
        .lock_finalization(args.lock_finalization)
        .initiating_command_line(command_line.to_owned());
    if let Some(driver) = &args.register_driver {
        options = options.register_driver(driver.clone());
    }
    if args.revision.is_empty() {
        options = options.no_pull_base(true);
    }
    options
}

/// Runs a `Deploy` transaction and reports whether the next boot changes.
pub async fn run(daemon: &Daemon, ctx: &Context, args: &DeployArgs) -> Result<Exit> {
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    let options = options(args, &ctx.command_line);
    let changed = transaction::run_deployment_change(daemon, ctx, &os, "Deploy", || {
        os.deploy_transaction(&args.revision, &options)
    })
    .await?;
    let announce = !args.reboot && !args.download_only;
    Ok(transaction::conclude(
        ctx,
        changed,
        announce,
        args.unchanged_exit_77,
    ))
}
