//! `rpm-ostree rebase REFSPEC [REVISION]`: switch the origin to another tree and deploy it.

use anyhow::Result;
use rpmostree_api::RebaseOptions;

use super::Context;
use crate::Exit;
use crate::cli::RebaseArgs;
use crate::connection::Daemon;
use crate::error::CliError;
use crate::transaction;

/// The refspec to send: the argument, or one built from `--remote`/`--branch`
/// (`remote:branch`, `remote:` for the same branch elsewhere, a bare branch for the same
/// remote).
pub fn refspec(args: &RebaseArgs) -> Result<String> {
    if let Some(r) = &args.refspec {
        if args.branch.is_some() || args.remote.is_some() {
            return Err(
                CliError::new("give either a REFSPEC or --branch/--remote, not both").into(),
            );
        }
        return Ok(r.clone());
    }
    Ok(match (&args.remote, &args.branch) {
        (Some(remote), Some(branch)) => format!("{remote}:{branch}"),
        (Some(remote), None) => format!("{remote}:"),
        (None, Some(branch)) => branch.clone(),
        (None, None) => return Err(CliError::new("a REFSPEC is required").into()),
    })
}

/// The options upstream's CLI sends for these arguments.
pub fn options(args: &RebaseArgs, command_line: &str) -> RebaseOptions {
    let mut options = RebaseOptions::new()
        .reboot(args.reboot)
        .allow_downgrade(!args.disallow_downgrade)
        .cache_only(args.cache_only)
        .download_only(args.download_only)
        .skip_purge(args.skip_purge)
        .skip_branch_check(args.skip_branch_check)
        .lock_finalization(args.lock_finalization)
        .initiating_command_line(command_line.to_owned());
    if let Some(revision) = &args.revision {
        options = options.revision(revision.clone());
    }
    if let (Some(url), Some(description)) =
        (&args.custom_origin_url, &args.custom_origin_description)
    {
        options = options.custom_origin((url.clone(), description.clone()));
    }
    options
}

/// Runs a `Rebase` transaction and reports whether the next boot changes (with the package
/// changes when it does).
pub async fn run(daemon: &Daemon, ctx: &Context, args: &RebaseArgs) -> Result<Exit> {
    let refspec = refspec(args)?;
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    let options = options(args, &ctx.command_line);
    let change = transaction::run_default_change(daemon, ctx, &os, "Rebase", || {
        os.rebase_transaction(&options, &refspec, &[])
    })
    .await?;
    let announce = !args.reboot && !args.download_only;
    Ok(transaction::conclude_change(daemon, ctx, &os, &change, announce, false).await)
}
