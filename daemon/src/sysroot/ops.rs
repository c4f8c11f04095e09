//! Operations that change the sysroot, run by transactions on a blocking thread. Each takes the
//! sysroot's path, opens its own libostree handle, holds the sysroot lock for its whole run and
//! reports through [`Progress`]. Cancellation is checked between steps and passed to libostree.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::{Context, Result, anyhow, bail};
use ostree::{gio, prelude::*};

/// Where an operation reports what it is doing. Implemented by the transaction engine.
pub(crate) trait Progress: Send + Sync {
    /// A line of output.
    fn message(&self, text: &str);
    /// A named step starts.
    fn task_begin(&self, text: &str);
    /// The current step ends.
    fn task_end(&self, text: &str);
    /// Download counters of a pull.
    fn download(&self, stats: DownloadStats);
    /// A measurable step: its description and completion (0 to 100).
    fn percent(&self, text: &str, percentage: u32);
    /// A pull (or other progress) ended.
    fn progress_end(&self);
}

/// The counters libostree reports during a pull, in the shape of the `DownloadProgress` signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DownloadStats {
    /// (start time in s, elapsed s).
    pub(crate) time: (u64, u64),
    /// (outstanding fetches, outstanding writes).
    pub(crate) outstanding: (u32, u32),
    /// (scanned, fetched, outstanding) metadata.
    pub(crate) metadata: (u32, u32, u32),
    /// (total parts, fetched parts, total superblocks, total size) of deltas.
    pub(crate) delta: (u32, u32, u32, u64),
    /// (fetched, requested) objects.
    pub(crate) content: (u32, u32),
    /// (bytes transferred, bytes per second).
    pub(crate) transfer: (u64, u64),
}

/// The error every operation returns when it was cancelled.
pub(crate) const CANCELLED: &str = "Transaction was cancelled";

/// The context of one operation.
pub(crate) struct Op<'a> {
    /// The sysroot path.
    pub(crate) path: &'a Path,
    /// Cancelled by `Transaction.Cancel()`.
    pub(crate) cancellable: &'a gio::Cancellable,
    /// Output.
    pub(crate) progress: std::sync::Arc<dyn Progress>,
    /// Set once the operation's change is on disk (see [`Op::mark_written`]).
    pub(crate) written: &'a AtomicBool,
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    /// One line for the log.
    pub(crate) summary: String,
    /// Whether the system changed (deployments or boot configuration written).
    pub(crate) changed: bool,
}

impl Report {
    /// The system changed.
    pub(crate) fn changed(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            changed: true,
        }
    }

    /// Nothing changed.
    pub(crate) fn unchanged(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            changed: false,
        }
    }
}

impl Op<'_> {
    /// Fails with [`CANCELLED`] if the transaction was cancelled before its change was written.
    pub(crate) fn check_cancelled(&self) -> Result<()> {
        if self.cancellable.is_cancelled() && !self.written.load(Ordering::SeqCst) {
            bail!(CANCELLED);
        }
        Ok(())
    }

    /// Records that the change is on disk: from here on the operation ignores cancellation and
    /// treats later failures (cleanup) as warnings, so its ending tells the truth.
    pub(crate) fn mark_written(&self) {
        self.written.store(true, Ordering::SeqCst);
    }

    /// The cancellable for steps before the change is written; `None` after.
    pub(crate) fn cancellable(&self) -> Option<&gio::Cancellable> {
        (!self.written.load(Ordering::SeqCst)).then_some(self.cancellable)
    }

    /// Opens and locks the sysroot; the lock is released when the guard drops.
    pub(crate) fn lock(&self) -> Result<Locked> {
        self.check_cancelled()?;
        let sysroot = super::open(self.path, Some(self.cancellable))?;
        if !sysroot.try_lock().context("locking the sysroot")? {
            bail!(
                "System transaction in progress: another program (such as `ostree admin`) holds the sysroot lock"
            );
        }
        Ok(Locked(sysroot))
    }
}

/// A locked sysroot, unlocked on drop.
pub(crate) struct Locked(pub(crate) ostree::Sysroot);

impl Drop for Locked {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

/// Writes a new deployment list without libostree's clean-up pass, marks the change written,
/// then cleans up: a cancel or a clean-up failure after the new boot configuration is in place
/// must not report the change as undone.
fn write_then_clean(
    op: &Op<'_>,
    sysroot: &ostree::Sysroot,
    deployments: &[ostree::Deployment],
) -> Result<()> {
    let opts = ostree::SysrootWriteDeploymentsOpts {
        do_postclean: false,
    };
    sysroot.write_deployments_with_options(deployments, &opts, Some(op.cancellable))?;
    op.mark_written();
    if let Err(e) = sysroot.cleanup(None::<&gio::Cancellable>) {
        op.progress.message(&format!(
            "Warning: cleaning up after the change failed: {e}"
        ));
    }
    Ok(())
}

fn name(d: &ostree::Deployment) -> String {
    format!("{}.{}", d.csum(), d.deployserial())
}

/// Makes the rollback deployment of `osname` the default one (upstream's semantics: with a
/// pending deployment and no rollback one, the booted deployment comes back to the front).
/// Returns what changed, for the log.
pub(crate) fn rollback(op: &Op<'_>, osname: &str) -> Result<Report> {
    let locked = op.lock()?;
    let sysroot = &locked.0;
    op.progress.task_begin("Finding the rollback deployment");
    let deployments = sysroot.deployments();
    let ours: Vec<&ostree::Deployment> = deployments
        .iter()
        .filter(|d| d.osname() == osname)
        .collect();
    let target = match sysroot.booted_deployment() {
        Some(booted) if booted.osname() == osname => {
            let (pending, rollback) = sysroot.query_deployments_for(Some(osname));
            if let Some(p) = &pending
                && p.is_staged()
            {
                bail!("A deployment is staged; remove it first with `rpm-ostree cleanup -p`");
            }
            match (pending, rollback) {
                (_, Some(r)) => r,
                (Some(_), None) => booted,
                (None, None) => bail!("No rollback deployment found"),
            }
        }
        _ => Clone::clone(
            *ours
                .get(1)
                .ok_or_else(|| anyhow!("No rollback deployment found"))?,
        ),
    };
    op.progress.task_end("done");
    op.check_cancelled()?;

    // `Clone::clone` takes a reference to the same object. The inherent `Deployment::clone`
    // makes a copy, which libostree no longer recognises as the booted deployment.
    let mut order = vec![Clone::clone(&target)];
    order.extend(deployments.iter().filter(|d| !d.equal(&target)).cloned());
    let message = format!("Moving '{}' to be first deployment", name(&target));
    op.progress.message(&message);
    if deployments.first().is_some_and(|d| d.equal(&target)) {
        return Ok(Report::unchanged(message));
    }
    op.progress
        .task_begin("Writing the boot loader configuration");
    write_then_clean(op, sysroot, &order).context("writing the new deployment order")?;
    op.progress.task_end("done");
    Ok(Report::changed(message))
}

/// One element of a cleanup request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CleanupElement {
    /// Remove unused objects and temporary data.
    Base,
    /// Remove the pending (or staged) deployment.
    PendingDeploy,
    /// Remove the rollback deployment.
    RollbackDeploy,
    /// Remove cached package metadata.
    Repomd,
}

impl CleanupElement {
    /// Parses upstream's element names.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "base" => Some(Self::Base),
            "pending-deploy" => Some(Self::PendingDeploy),
            "rollback-deploy" => Some(Self::RollbackDeploy),
            "repomd" => Some(Self::Repomd),
            _ => None,
        }
    }
}

/// Removes what `elements` name, for `osname`. Booted, pinned and other osnames' deployments are
/// always kept.
pub(crate) fn cleanup(op: &Op<'_>, osname: &str, elements: &[CleanupElement]) -> Result<Report> {
    let locked = op.lock()?;
    let sysroot = &locked.0;
    let base = elements.contains(&CleanupElement::Base);
    let mut said = Vec::new();
    let mut changed = false;
    let pending = elements.contains(&CleanupElement::PendingDeploy);
    let rollback = elements.contains(&CleanupElement::RollbackDeploy);
    if pending || rollback {
        let deployments = sysroot.deployments();
        let booted = sysroot.booted_deployment();
        // On a sysroot that is not booted, the first deployment of the osname stands in for the
        // booted one: it is what would boot.
        let anchor = booted
            .clone()
            .filter(|b| b.osname() == osname)
            .or_else(|| deployments.iter().find(|d| d.osname() == osname).cloned());
        let anchor_index = anchor
            .as_ref()
            .and_then(|a| deployments.iter().position(|d| d.equal(a)));
        let keep: Vec<ostree::Deployment> = deployments
            .iter()
            .enumerate()
            .filter(|(i, d)| {
                if d.osname() != osname || d.is_pinned() {
                    return true;
                }
                if booted.as_ref().is_some_and(|b| b.equal(d)) {
                    return true;
                }
                match anchor_index {
                    Some(a) if *i == a => true,
                    Some(a) if *i < a => !pending,
                    Some(_) => !rollback,
                    None => true,
                }
            })
            .map(|(_, d)| Clone::clone(d))
            .collect();
        if keep.len() == deployments.len() {
            op.progress.message("Deployments unchanged.");
        } else {
            let removed = deployments.len() - keep.len();
            op.progress.task_begin("Removing deployments");
            op.check_cancelled()?;
            write_then_clean(op, sysroot, &keep).context("writing the remaining deployments")?;
            changed = true;
            op.progress.task_end("done");
            said.push(format!("Removed {removed} deployment(s)"));
        }
    }
    if base {
        op.check_cancelled()?;
        op.progress.task_begin("Removing unused objects");
        let dropped = crate::layering::prune_cache(sysroot).context("pruning the package cache")?;
        if dropped > 0 {
            said.push(format!("Removed {dropped} unused package cache ref(s)"));
        }
        let (images, layers) = super::container::prune(sysroot)?;
        if images > 0 || layers > 0 {
            op.progress
                .message(&format!("Pruned images: {images} (layers: {layers})"));
            said.push(format!("Pruned {images} unused image(s)"));
        }
        sysroot
            .cleanup(op.cancellable())
            .context("cleaning up the sysroot")?;
        op.progress.task_end("done");
        said.push("cleaned up unused objects".to_owned());
    }
    if elements.contains(&CleanupElement::Repomd) {
        let dir = cache_dir(op.path, osname);
        let removed = empty_dir(&dir)?;
        op.progress.message(&format!(
            "Removed {removed} cached metadata item(s) from {}",
            dir.display()
        ));
        said.push("cleared cached metadata".to_owned());
    }
    for line in &said {
        op.progress.message(line);
    }
    Ok(Report {
        summary: said.join("; "),
        changed,
    })
}

/// Where the daemon keeps cached data for `osname` (`/var/cache/rpm-ostree` of the system).
pub(crate) fn cache_dir(sysroot: &Path, osname: &str) -> PathBuf {
    if sysroot == Path::new("/") {
        PathBuf::from("/var/cache/rpm-ostree")
    } else {
        sysroot.join(format!("ostree/deploy/{osname}/var/cache/rpm-ostree"))
    }
}

fn empty_dir(dir: &Path) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut n = 0;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("removing {}", path.display()))?;
        n += 1;
    }
    Ok(n)
}
