//! `rpm-ostree upgrade`: upgrade to the newest commit of the origin (then show the package
//! changes), or with `--check` / `--preview` only look for one (an automatic-update check)
//! and show it as the `AvailableUpdate:` block, with `--preview` including the package lists.

use anyhow::Result;
use rpmostree_api::{AutomaticUpdateTriggerOptions, UpgradeOptions};

use super::Context;
use super::status::{cached_update_block, is_present};
use crate::Exit;
use crate::cli::UpgradeArgs;
use crate::connection::Daemon;
use crate::error::daemon_error;
use crate::output::Style;
use crate::transaction;

/// What upstream says on stderr after `--check` and `--preview`.
pub const CHECK_NOTE: &str = "Note: --check and --preview may be unreliable.  \
                              See https://github.com/coreos/rpm-ostree/issues/1579";

/// Runs the upgrade (or the check) and reports whether the next boot changes.
pub async fn run(daemon: &Daemon, ctx: &Context, args: &UpgradeArgs) -> Result<Exit> {
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    if args.check || args.preview || args.trigger_automatic_update_policy {
        let mode = if args.trigger_automatic_update_policy {
            "auto"
        } else {
            "check"
        };
        let options = AutomaticUpdateTriggerOptions::new()
            .mode(mode)
            .output_to_self(false)
            .initiating_command_line(ctx.command_line.clone());
        let (enabled, txn) = transaction::request(daemon, ctx, "AutomaticUpdateTrigger", || {
            os.automatic_update_trigger_transaction(&options)
        })
        .await?;
        let Some(txn) = txn.filter(|_| enabled) else {
            println!("Automatic updates are not enabled; exiting...");
            return Ok(Exit::Success);
        };
        transaction::follow(txn, ctx.global.quiet).await?;
        daemon.reload().await?;
        if args.trigger_automatic_update_policy {
            return Ok(Exit::Success);
        }
        eprintln!("{CHECK_NOTE}");
        let update = os
            .cached_update()
            .await
            .map_err(|e| daemon_error("CachedUpdate", e))?;
        if is_present(&update) {
            // --preview is the verbose form: the package lists instead of the summary.
            print!(
                "{}",
                cached_update_block(&update, args.preview, false, Style::detect())?
            );
            return Ok(Exit::Success);
        }
        // As upstream (and its documentation): 77 means no update is available.
        println!("No updates available.");
        return Ok(Exit::Code77);
    }
    let options = UpgradeOptions::new()
        .reboot(args.reboot)
        .allow_downgrade(args.allow_downgrade)
        .cache_only(args.cache_only)
        .download_only(args.download_only)
        .lock_finalization(args.lock_finalization)
        .initiating_command_line(ctx.command_line.clone());
    let change = transaction::run_default_change(daemon, ctx, &os, "Upgrade", || {
        os.upgrade_transaction(&options)
    })
    .await?;
    Ok(transaction::conclude_change(
        daemon,
        ctx,
        &os,
        &change,
        !args.reboot,
        args.unchanged_exit_77,
    )
    .await)
}
