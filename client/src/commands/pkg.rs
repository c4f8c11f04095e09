//! `rpm-ostree install`, `uninstall`, `override remove|replace|reset` and `reset`: change the
//! layered packages and base overrides through `UpdateDeployment` (as upstream's CLI does),
//! keeping the current base, then show the package changes of the new deployment.

use anyhow::Result;
use rpmostree_api::{UpdateDeploymentModifiers, UpdateDeploymentOptions};

use super::Context;
use crate::Exit;
use crate::cli::{
    InstallArgs, OverrideArgs, OverrideCommand, PkgChangeArgs, ResetArgs, UninstallArgs,
};
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
        modifiers = modifiers.install_local_packages(open_rpms(&local)?.into());
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

/// Opens local RPM files to pass as descriptors.
fn open_rpms(paths: &[&String]) -> Result<Vec<std::os::fd::OwnedFd>> {
    let mut fds = Vec::new();
    for path in paths {
        let file =
            std::fs::File::open(path).map_err(|e| CliError::new(format!("Opening {path}: {e}")))?;
        if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
            return Err(CliError::new(format!("{path} is not a regular file")).into());
        }
        fds.push(file.into());
    }
    Ok(fds)
}

/// `rpm-ostree override remove|replace|reset`.
pub async fn override_(daemon: &Daemon, ctx: &Context, args: &OverrideArgs) -> Result<Exit> {
    let mut modifiers = UpdateDeploymentModifiers::new();
    let (change_args, no_overrides) = match &args.command {
        OverrideCommand::Remove(a) => {
            modifiers = modifiers.override_remove_packages(a.packages.clone());
            if !a.replace.is_empty() {
                let paths: Vec<&String> = a.replace.iter().collect();
                modifiers = modifiers.override_replace_local_packages(open_rpms(&paths)?.into());
            }
            if !a.install.is_empty() {
                modifiers = modifiers.install_packages(a.install.clone());
            }
            (&a.change, false)
        }
        OverrideCommand::Replace(a) => {
            if let Some(p) = a.packages.iter().find(|p| !p.ends_with(".rpm")) {
                return Err(CliError::new(format!(
                    "{p}: only local RPM files can replace base packages (replacing from repositories is not supported yet)"
                ))
                .into());
            }
            let paths: Vec<&String> = a.packages.iter().collect();
            modifiers = modifiers.override_replace_local_packages(open_rpms(&paths)?.into());
            if !a.remove.is_empty() {
                modifiers = modifiers.override_remove_packages(a.remove.clone());
            }
            (&a.change, false)
        }
        OverrideCommand::Reset(a) => {
            if !a.packages.is_empty() {
                modifiers = modifiers.override_reset_packages(a.packages.clone());
            }
            (&a.change, a.all)
        }
    };
    let mut options = options(change_args, false, &ctx.command_line);
    if no_overrides {
        options = options.no_overrides(true);
    }
    change(daemon, ctx, change_args, modifiers, options).await
}

/// `rpm-ostree reset`: without options, removes the layered packages, the overrides and the
/// initramfs settings, as upstream's does.
pub async fn reset(daemon: &Daemon, ctx: &Context, args: &ResetArgs) -> Result<Exit> {
    let all = !args.overlays && !args.overrides && !args.initramfs;
    let mut options = options(&args.change, false, &ctx.command_line);
    if all || args.overlays {
        options = options.no_layering(true);
    }
    if all || args.overrides {
        options = options.no_overrides(true);
    }
    if all || args.initramfs {
        options = options.no_initramfs(true);
    }
    change(
        daemon,
        ctx,
        &args.change,
        UpdateDeploymentModifiers::new(),
        options,
    )
    .await
}
