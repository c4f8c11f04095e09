//! `rpm-ostree kargs`: print the kernel arguments, or change them with `--append`,
//! `--replace`, `--delete`, `--append-if-missing` and `--delete-if-present`.

use anyhow::Result;
use rpmostree_api::KernelArgsOptions;

use super::Context;
use crate::Exit;
use crate::cli::KargsArgs;
use crate::connection::Daemon;
use crate::error::{CliError, daemon_error};
use crate::transaction;

/// The options upstream's CLI sends for these arguments.
pub fn options(args: &KargsArgs, command_line: &str) -> KernelArgsOptions {
    let mut options = KernelArgsOptions::new()
        .reboot(args.reboot)
        .initiating_command_line(command_line.to_owned())
        .lock_finalization(args.lock_finalization);
    if !args.append_if_missing.is_empty() {
        options = options.append_if_missing(args.append_if_missing.clone());
    }
    if !args.delete_if_present.is_empty() {
        options = options.delete_if_present(args.delete_if_present.clone());
    }
    options
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Prints the arguments, or changes them and says whether that needs a reboot.
///
/// As upstream, both read the arguments of the pending deployment when there is one (so
/// successive changes build on each other), of a given `--deploy-index`, or with
/// `--import-proc-cmdline` of the booted one; the daemon applies the changes to that string.
pub async fn run(daemon: &Daemon, ctx: &Context, args: &KargsArgs) -> Result<Exit> {
    if args.reboot && !args.modifies() {
        return Err(CliError::new("Cannot reboot when kernel arguments not changed").into());
    }
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    let index = args.deploy_index.as_deref().unwrap_or("");
    let is_pending = !args.import_proc_cmdline;
    let config = os
        .get_deployment_boot_config(index, is_pending)
        .await
        .map_err(|e| daemon_error("GetDeploymentBootConfig", e))?;
    let existing = config.options.unwrap_or_default();
    if !args.modifies() {
        println!("{existing}");
        return Ok(Exit::Success);
    }
    let options = options(args, &ctx.command_line);
    let (append, replace, delete) = (strs(&args.append), strs(&args.replace), strs(&args.delete));
    let changed = transaction::run_deployment_change(daemon, ctx, &os, "KernelArgs", || {
        os.kernel_args_transaction(&existing, &append, &replace, &delete, &options)
    })
    .await?;
    if changed {
        if !ctx.global.quiet {
            println!("Kernel arguments updated.");
            if !args.reboot {
                println!("{}", transaction::QUEUED);
            }
        }
    } else if args.unchanged_exit_77 {
        return Ok(Exit::Code77);
    }
    Ok(Exit::Success)
}
