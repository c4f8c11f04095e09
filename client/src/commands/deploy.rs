//! `rpm-ostree deploy REVISION`: deploy a revision of the current origin; also how update
//! drivers such as zincati register (`deploy "" --register-driver NAME`), and with
//! `--preview` only show the package changes a revision would bring.

use anyhow::Result;
use rpmostree_api::DeployOptions;

use super::Context;
use crate::Exit;
use crate::cli::DeployArgs;
use crate::connection::Daemon;
use crate::diff::preview_lines;
use crate::error::daemon_error;
use crate::transaction;

/// What upstream prints when `--preview` starts.
pub const PREVIEW_NOTE: &str = "Note: The information output from --preview may be unreliable.  \
                                See https://github.com/coreos/rpm-ostree/issues/1579";

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

/// Runs a `Deploy` transaction and reports whether the next boot changes (with the package
/// changes when it does); with `--preview`, shows the package changes instead.
pub async fn run(daemon: &Daemon, ctx: &Context, args: &DeployArgs) -> Result<Exit> {
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    if args.preview {
        return preview(daemon, ctx, &os, args).await;
    }
    let options = options(args, &ctx.command_line);
    let change = transaction::run_default_change(daemon, ctx, &os, "Deploy", || {
        os.deploy_transaction(&args.revision, &options)
    })
    .await?;
    let announce = !args.reboot && !args.download_only;
    Ok(
        transaction::conclude_change(daemon, ctx, &os, &change, announce, args.unchanged_exit_77)
            .await,
    )
}

/// `deploy --preview REVISION`, as upstream: a `DownloadDeployRpmDiff` transaction fetches
/// the revision's package list, then `GetCachedDeployRpmDiff` compares it with the booted
/// deployment, printed as `!old`/`=new`, `-removed` and `+added` lines sorted by name.
/// Nothing changed: no output (exit 77 with `--unchanged-exit-77`).
async fn preview(
    daemon: &Daemon,
    ctx: &Context,
    os: &rpmostree_api::OSProxy<'_>,
    args: &DeployArgs,
) -> Result<Exit> {
    let txn = transaction::request(daemon, ctx, "DownloadDeployRpmDiff", || {
        os.download_deploy_rpm_diff_transaction(&args.revision, &[])
    })
    .await?;
    println!("{PREVIEW_NOTE}");
    transaction::follow(txn, ctx.global.quiet).await?;
    let (changes, _details) = os
        .get_cached_deploy_rpm_diff(&args.revision, &[])
        .await
        .map_err(|e| daemon_error("GetCachedDeployRpmDiff", e))?;
    if changes.is_empty() {
        return Ok(if args.unchanged_exit_77 {
            Exit::Code77
        } else {
            Exit::Success
        });
    }
    print!("{}", preview_lines(&changes)?);
    Ok(Exit::Success)
}
