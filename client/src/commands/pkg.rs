//! `rpm-ostree install` and `uninstall`: change the layered package requests through
//! `UpdateDeployment` (as upstream's CLI does), keeping the current base, then show the
//! package changes of the new deployment.

use anyhow::Result;
use rpmostree_api::{UpdateDeploymentModifiers, UpdateDeploymentOptions};

use super::Context;
use crate::Exit;
use crate::cli::{InstallArgs, PkgChangeArgs, UninstallArgs};
use crate::connection::Daemon;
use crate::error::CliError;
use crate::transaction;

/// The options upstream's CLI sends for a package change.
pub fn options(
    args: &PkgChangeArgs,
    allow_inactive: bool,
    command_line: &str,
) -> UpdateDeploymentOptions {
    UpdateDeploymentOptions::new()
        .reboot(args.reboot)
        .dry_run(args.dry_run)
        .cache_only(args.cache_only)
        .download_only(args.download_only)
        .no_pull_base(true)
        .allow_inactive(allow_inactive)
        .idempotent_layering(args.idempotent)
        .lock_finalization(args.lock_finalization)
        .initiating_command_line(command_line.to_owned())
}

async fn change(
    daemon: &Daemon,
    ctx: &Context,
    args: &PkgChangeArgs,
    modifiers: UpdateDeploymentModifiers,
    options: UpdateDeploymentOptions,
) -> Result<Exit> {
    if args.apply_live {
        return Err(CliError::new(
            "--apply-live is not supported by this rpm-ostree yet; run without it and reboot to apply the change",
        )
        .into());
    }
    let os = daemon.os(ctx.global.stateroot.as_deref()).await?;
    let change = transaction::run_default_change(daemon, ctx, &os, "UpdateDeployment", || {
        os.update_deployment_transaction(&modifiers, &options)
    })
    .await?;
    let announce = !args.reboot && !args.download_only && !args.dry_run;
    Ok(
        transaction::conclude_change(daemon, ctx, &os, &change, announce, args.unchanged_exit_77)
            .await,
    )
}

/// `rpm-ostree install PACKAGE...`.
pub async fn install(daemon: &Daemon, ctx: &Context, args: &InstallArgs) -> Result<Exit> {
    // As upstream: an argument ending in `.rpm` is a local file, passed as a descriptor.
    let (local, names): (Vec<&String>, Vec<&String>) =
        args.packages.iter().partition(|p| p.ends_with(".rpm"));
    let mut modifiers = UpdateDeploymentModifiers::new();
    if !names.is_empty() {
        modifiers = modifiers.install_packages(names.into_iter().cloned().collect());
    }
    if !local.is_empty() {
        let mut fds: Vec<std::os::fd::OwnedFd> = Vec::new();
        for path in local {
            let file = std::fs::File::open(path)
                .map_err(|e| CliError::new(format!("Opening {path}: {e}")))?;
            if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
                return Err(CliError::new(format!("{path} is not a regular file")).into());
            }
            fds.push(file.into());
        }
        modifiers = modifiers.install_local_packages(fds.into());
    }
    if !args.uninstall.is_empty() {
        modifiers = modifiers.uninstall_packages(args.uninstall.clone());
    }
    let options = options(&args.change, args.allow_inactive, &ctx.command_line);
    change(daemon, ctx, &args.change, modifiers, options).await
}

/// `rpm-ostree uninstall PACKAGE...` (or `--all`).
pub async fn uninstall(daemon: &Daemon, ctx: &Context, args: &UninstallArgs) -> Result<Exit> {
    let mut modifiers = UpdateDeploymentModifiers::new();
    if !args.packages.is_empty() {
        modifiers = modifiers.uninstall_packages(args.packages.clone());
    }
    if !args.install.is_empty() {
        modifiers = modifiers.install_packages(args.install.clone());
    }
    let mut options = options(&args.change, false, &ctx.command_line);
    if args.all {
        options = options.no_layering(true);
    }
    change(daemon, ctx, &args.change, modifiers, options).await
}
