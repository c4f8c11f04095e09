//! The transaction kinds: one variant per kind of work a D-Bus method starts, and how each runs
//! on the sysroot.

use anyhow::Result;

use super::Outcome;
use crate::sysroot::{
    cached_update,
    deploy::{self, DeployRequest},
    ops::{self, CleanupElement, Op, Report},
};

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `OS.Rollback`.
    Rollback {
        /// Stateroot.
        osname: String,
    },
    /// `OS.Cleanup` and `OS.ClearRollbackTarget`.
    Cleanup {
        /// Stateroot.
        osname: String,
        /// What to remove.
        elements: Vec<CleanupElement>,
    },
    /// `Upgrade`, `Deploy`, `Rebase`, `KernelArgs`, `UpdateDeployment`, and the stage policy of
    /// `AutomaticUpdateTrigger`.
    Deploy(Box<DeployRequest>),
    /// `FinalizeDeployment`.
    Finalize {
        /// Stateroot.
        osname: String,
        /// The expected checksum of the staged deployment.
        checksum: Option<String>,
        /// Accept no checksum.
        allow_missing_checksum: bool,
        /// Accept a staged deployment that is not locked.
        allow_unlocked: bool,
    },
    /// The check policy of `AutomaticUpdateTrigger` (`upgrade --check`): fills `CachedUpdate`.
    CheckUpdate {
        /// Stateroot.
        osname: String,
    },
    /// `RefreshMd`: downloads the rpm-md metadata of the enabled repositories.
    RefreshMd {
        /// Stateroot.
        osname: String,
        /// Download even when the cache is fresh.
        force: bool,
    },
    /// `ModifyYumRepo`: turns a repository on or off in its `.repo` file.
    ModifyYumRepo {
        /// Stateroot.
        osname: String,
        /// The repository id.
        repo: String,
        /// The new `enabled` value; `None` changes nothing (an empty settings dict).
        enabled: Option<bool>,
    },
    /// `DownloadRebaseRpmDiff` and `DownloadDeployRpmDiff`: fetches what the package diff with
    /// another refspec or revision needs (commit metadata, or the rpmdb of a commit without
    /// it), nothing else.
    PackageDiff {
        /// Stateroot.
        osname: String,
        /// The refspec a rebase would go to.
        rebase: Option<String>,
        /// The revision a deploy would go to.
        revision: Option<crate::sysroot::refspec::Revision>,
    },
}

impl From<DeployRequest> for Kind {
    fn from(request: DeployRequest) -> Self {
        Kind::Deploy(Box::new(request))
    }
}

impl Kind {
    /// Runs the transaction on `op`; says what it did.
    pub(crate) fn run(&self, op: &Op<'_>) -> Result<Outcome> {
        let report = match self {
            Kind::Rollback { osname } => ops::rollback(op, osname)?,
            Kind::Cleanup { osname, elements } => ops::cleanup(op, osname, elements)?,
            Kind::Deploy(request) => deploy::deploy(op, request)?,
            Kind::Finalize {
                osname,
                checksum,
                allow_missing_checksum,
                allow_unlocked,
            } => {
                let report = deploy::finalize_check(
                    op,
                    osname,
                    checksum.as_deref(),
                    *allow_missing_checksum,
                    *allow_unlocked,
                )?;
                return Ok(Outcome {
                    report,
                    after_reboot_accepted: Some(Box::new(deploy::unlock_staged)),
                });
            }
            Kind::CheckUpdate { osname } => {
                let found = deploy::check_update(op, osname)?;
                cached_update::write(op.path, osname, found.as_ref())?;
                Report::unchanged(match found {
                    Some(u) => format!("update available: {}", u.checksum),
                    None => "no update".into(),
                })
            }
            Kind::RefreshMd { osname, force } => deploy::refresh_md(op, osname, *force)?,
            Kind::ModifyYumRepo {
                osname,
                repo,
                enabled,
            } => deploy::modify_yum_repo(op, osname, repo, *enabled)?,
            Kind::PackageDiff {
                osname,
                rebase,
                revision,
            } => deploy::download_diff(op, osname, rebase.as_deref(), revision.as_ref())?,
        };
        Ok(report.into())
    }
}
