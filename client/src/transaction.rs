//! Running a transaction from the command line: asking for it (and, with `--wait`, waiting
//! out a busy daemon), `Start()`, rendering its signals, Ctrl-C as `Cancel()`, and turning
//! `Finished(false, message)` into the command's error; after a deployment change, the
//! package diff and the "Changes queued" line.

use std::future::Future;

use anyhow::Result;
use futures_util::StreamExt;
use rpmostree_api::{Error as WireError, OSProxy, TransactionClient, TransactionEvent};
use tokio::signal::unix::{SignalKind, signal};

use crate::Exit;
use crate::commands::Context;
use crate::connection::Daemon;
use crate::diff::PackageDiff;
use crate::error::{CliError, daemon_error, wire_error};
use crate::progress;

/// Calls `call` (an OS method that starts a transaction, named `method` for messages) and
/// returns its result (usually the connected transaction). When the daemon is busy and `--wait` was given, waits
/// for the active transaction to end and asks again.
pub async fn request<T, F, Fut>(
    daemon: &Daemon,
    ctx: &Context,
    method: &str,
    mut call: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = zbus::Result<T>>,
{
    let mut announced = String::new();
    loop {
        let error = match call().await {
            Ok(txn) => return Ok(txn),
            Err(e) => e,
        };
        let error = match error {
            zbus::Error::MethodError(..) | zbus::Error::FDO(_) => WireError::from(error),
            other => return Err(daemon_error(method, other)),
        };
        if !(error.is_busy() && ctx.global.wait) {
            return Err(wire_error(method, error));
        }
        let active = daemon.active_transaction().await?;
        let address = active
            .as_ref()
            .map(|a| a.address.clone())
            .unwrap_or_default();
        if !ctx.global.quiet && announced != address {
            match &active {
                Some(a) => eprintln!(
                    "Waiting for the active transaction to finish: {}",
                    a.display_title()
                ),
                None => eprintln!("Waiting for the system to be free: {}", error.message()),
            }
            announced = address.clone();
        }
        daemon.wait_transaction_gone(&address).await?;
    }
}

/// Starts `txn`, shows its progress until `Finished`, and returns its result. The first
/// SIGINT cancels the transaction (and keeps waiting for its end); the command then fails
/// with the daemon's cancellation message.
pub async fn follow(mut txn: TransactionClient, quiet: bool) -> Result<()> {
    // Take SIGINT over before Start(), so that a Ctrl-C always reaches the transaction.
    let mut sigint = signal(SignalKind::interrupt())
        .map_err(|e| CliError::new(format!("cannot handle SIGINT: {e}")))?;
    let mut renderer = progress::renderer(quiet);
    let started = txn
        .proxy
        .start()
        .await
        .map_err(|e| daemon_error("Start", e))?;
    if !started {
        let title = txn.proxy.title().await.unwrap_or_default();
        renderer.note(&format!("Attaching to existing transaction: {title}"));
    }
    let mut cancelling = false;
    let result = loop {
        tokio::select! {
            event = txn.events.next() => match event {
                None => break Err(CliError::new(
                    "the transaction's connection closed before it finished (did rpm-ostreed exit?)",
                ).into()),
                Some(Err(e)) => break Err(daemon_error("Transaction", e)),
                Some(Ok(event)) => {
                    renderer.event(&event);
                    if let TransactionEvent::Finished { success, error_message } = event {
                        break if success {
                            Ok(())
                        } else {
                            Err(CliError::new(error_message).into())
                        };
                    }
                }
            },
            _ = sigint.recv() => {
                if cancelling {
                    renderer.note("Awaiting transaction cancellation...");
                } else {
                    cancelling = true;
                    renderer.note("Caught SIGINT, cancelling transaction");
                    if let Err(e) = txn.proxy.cancel().await {
                        renderer.note(&format!("Cancelling failed: {}", WireError::from(e).message()));
                    }
                }
            }
        }
    };
    renderer.finish();
    result
}

/// [`request`] then [`follow`].
pub async fn run<F, Fut>(daemon: &Daemon, ctx: &Context, method: &str, call: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = zbus::Result<TransactionClient>>,
{
    let txn = request(daemon, ctx, method, call).await?;
    follow(txn, ctx.global.quiet).await
}

/// The id of the OS's default deployment (`None` when it has none).
pub async fn default_deployment_id(os: &OSProxy<'_>) -> Result<Option<String>> {
    let deployment = os
        .default_deployment()
        .await
        .map_err(|e| daemon_error("DefaultDeployment", e))?;
    Ok(deployment.id.filter(|id| !id.is_empty()))
}

/// The default deployment of an OS before and after a transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultChange {
    /// The id of the default deployment before.
    pub before: Option<String>,
    /// The id of the default deployment after.
    pub after: Option<String>,
}

impl DefaultChange {
    /// Whether the default deployment changed.
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

/// Runs a transaction that may change the default deployment: after success, `Reload()` and
/// read the default deployment again. Returns it before and after.
pub async fn run_default_change<F, Fut>(
    daemon: &Daemon,
    ctx: &Context,
    os: &OSProxy<'_>,
    method: &str,
    call: F,
) -> Result<DefaultChange>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = zbus::Result<TransactionClient>>,
{
    let before = default_deployment_id(os).await?;
    run(daemon, ctx, method, call).await?;
    daemon.reload().await?;
    let after = default_deployment_id(os).await?;
    Ok(DefaultChange { before, after })
}

/// [`run_default_change`], returning only whether the default deployment changed.
pub async fn run_deployment_change<F, Fut>(
    daemon: &Daemon,
    ctx: &Context,
    os: &OSProxy<'_>,
    method: &str,
    call: F,
) -> Result<bool>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = zbus::Result<TransactionClient>>,
{
    Ok(run_default_change(daemon, ctx, os, method, call)
        .await?
        .changed())
}

/// The two deployments whose packages are compared after a change, as upstream: the booted
/// deployment and the new default. On a sysroot that is not booted, the previous default
/// stands in for the booted deployment. `None` when there is nothing to compare (no new
/// default, or it is the booted deployment itself).
pub fn diff_endpoints(booted: Option<&str>, change: &DefaultChange) -> Option<(String, String)> {
    let to = change.after.as_deref()?;
    let from = booted.or(change.before.as_deref())?;
    (from != to).then(|| (from.to_owned(), to.to_owned()))
}

/// The package changes from the booted deployment to the new default deployment, in
/// upstream's multi-line format (empty when no package changed). `GetDeploymentsRpmDiff`
/// failing is not the command failing: the reason goes to stderr as one line.
pub async fn package_changes(daemon: &Daemon, os: &OSProxy<'_>, change: &DefaultChange) -> String {
    let booted = match daemon.deployments().await {
        Ok(deployments) => deployments
            .into_iter()
            .find(|d| d.booted == Some(true))
            .and_then(|d| d.id),
        Err(_) => None,
    };
    let Some((from, to)) = diff_endpoints(booted.as_deref(), change) else {
        return String::new();
    };
    let changes = match os.get_deployments_rpm_diff(&from, &to).await {
        Ok(changes) => changes,
        Err(e) => {
            eprintln!(
                "note: cannot show the package changes: {}",
                WireError::from(e).message()
            );
            return String::new();
        }
    };
    match PackageDiff::from_changes(&changes) {
        Ok(diff) => diff.multiline(),
        Err(e) => {
            eprintln!("note: cannot show the package changes: {e}");
            String::new()
        }
    }
}

/// [`conclude`] for upgrade, deploy, rebase and rollback: when the next boot changed and
/// `announce`, the package changes (see [`package_changes`]) come before the "Changes queued"
/// line.
pub async fn conclude_change(
    daemon: &Daemon,
    ctx: &Context,
    os: &OSProxy<'_>,
    change: &DefaultChange,
    announce: bool,
    unchanged_exit_77: bool,
) -> Exit {
    if change.changed() && announce && !ctx.global.quiet {
        print!("{}", package_changes(daemon, os, change).await);
    }
    conclude(ctx, change.changed(), announce, unchanged_exit_77)
}

/// The line printed when a new default deployment waits for the next boot.
pub const QUEUED: &str = "Changes queued for next boot. Run \"systemctl reboot\" to start a reboot";

/// The end of a command that may change the next boot: when it changed, says so if `announce`
/// (not when rebooting now or only downloading); when it did not, exits 77 if asked to.
pub fn conclude(ctx: &Context, changed: bool, announce: bool, unchanged_exit_77: bool) -> Exit {
    if !changed {
        return if unchanged_exit_77 {
            Exit::Code77
        } else {
            Exit::Success
        };
    }
    if announce && !ctx.global.quiet {
        println!("{QUEUED}");
    }
    Exit::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(before: Option<&str>, after: Option<&str>) -> DefaultChange {
        DefaultChange {
            before: before.map(str::to_owned),
            after: after.map(str::to_owned),
        }
    }

    #[test]
    fn the_diff_goes_from_the_booted_deployment_to_the_new_default() {
        let c = change(Some("os-a.0"), Some("os-b.0"));
        assert!(c.changed());
        assert_eq!(
            diff_endpoints(Some("os-x.0"), &c),
            Some(("os-x.0".to_owned(), "os-b.0".to_owned()))
        );
        // Not booted: from the previous default.
        assert_eq!(
            diff_endpoints(None, &c),
            Some(("os-a.0".to_owned(), "os-b.0".to_owned()))
        );
        // Back to the booted deployment (a rollback undoing a pending one): nothing to show.
        assert_eq!(diff_endpoints(Some("os-b.0"), &c), None);
        assert_eq!(
            diff_endpoints(Some("os-x.0"), &change(Some("a"), None)),
            None
        );
        assert!(!change(Some("a"), Some("a")).changed());
    }
}
