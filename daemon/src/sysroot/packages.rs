//! Package lists of commits and what changed between two of them, as upstream computes them:
//! from the `rpmostree.rpmdb.pkglist` metadata a compose writes (so a commit pulled without
//! its content still has a list), else from the rpm database in the commit's tree. Also the
//! `CachedUpdate` package data (`rpm-diff`, `advisories`) built from such a diff.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use ostree::{gio, glib, prelude::*};
use rpmostree_dnf::protocol::{Reply, Request};

use super::ops::cache_dir;
use crate::rpm::{
    self,
    diff::{self, Diff, Package},
    repos::RepoSetup,
};

/// The commit metadata key of the package list: `a(sssss)` of (name, epoch, version, release,
/// arch), sorted.
pub(crate) const PKGLIST_KEY: &str = "rpmostree.rpmdb.pkglist";

/// Where the rpm database lives in an rpm-ostree tree, and where newer trees may keep it.
const RPMDB_DIRS: [&str; 2] = ["usr/share/rpm", "usr/lib/sysimage/rpm"];

/// The `rpmostree.rpmdb.pkglist` of a commit, if it has one.
fn pkglist_meta(repo: &ostree::Repo, checksum: &str) -> Result<Option<Vec<Package>>> {
    let (commit, _) = repo
        .load_commit(checksum)
        .with_context(|| format!("loading commit {checksum}"))?;
    let meta = glib::VariantDict::new(Some(&commit.child_value(0)));
    let Ok(Some(list)) = meta.lookup::<Vec<(String, String, String, String, String)>>(PKGLIST_KEY)
    else {
        return Ok(None);
    };
    Ok(Some(
        list.into_iter().map(diff::from_pkglist_entry).collect(),
    ))
}

/// Whether commit `checksum` carries the package-list metadata (its list needs no content).
pub(crate) fn has_pkglist(repo: &ostree::Repo, checksum: &str) -> Result<bool> {
    Ok(pkglist_meta(repo, checksum)?.is_some())
}

/// A private directory (mode 0700, in the system's temporary directory) for one rpmdb copy;
/// removed on drop. Not in the repository: `rpm-ostreed db` runs as any user and must not
/// write there, and the sysroot may be read-only outside the daemon.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new() -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        static N: AtomicUsize = AtomicUsize::new(0);
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| rpmostree_dnf::sweep_orphaned_temp_dirs("rpmostree-rpmdb-"));
        let dir = std::env::temp_dir().join(format!(
            "rpmostree-rpmdb-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::create_dir_all(dir.join("usr/share/rpm"))
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the rpm database of commit `checksum` into `dest/usr/share/rpm`; `false` when the
/// tree has none.
fn copy_rpmdb(repo: &ostree::Repo, checksum: &str, dest: &Path) -> Result<bool> {
    let not_here = || {
        anyhow!(
            "The package database of commit {checksum} is not in the repository (only its metadata was downloaded)"
        )
    };
    let (root, _) = repo
        .read_commit(checksum, gio::Cancellable::NONE)
        .with_context(|| format!("reading commit {checksum}"))?;
    let no_follow = gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS;
    let Some(dir) = RPMDB_DIRS
        .iter()
        .map(|p| root.resolve_relative_path(p))
        .find(|d| d.query_file_type(no_follow, gio::Cancellable::NONE) == gio::FileType::Directory)
    else {
        // A directory whose objects were never pulled also reads as missing: a commit pulled
        // without its content is not a commit without a database.
        let (_, state) = repo.load_commit(checksum)?;
        return match state.contains(ostree::RepoCommitState::PARTIAL) {
            true => Err(not_here()),
            false => Ok(false),
        };
    };
    let children = dir
        .enumerate_children(
            "standard::name,standard::type",
            no_follow,
            gio::Cancellable::NONE,
        )
        .map_err(|_| not_here())?;
    for info in children {
        let info = info.map_err(|_| not_here())?;
        if info.file_type() != gio::FileType::Regular {
            continue;
        }
        let name = info.name();
        // Read the object itself: a repository file's stream is not the GFileInputStream
        // that `g_file_read` and `g_file_load_contents` promise.
        let checksum = dir
            .child(&name)
            .downcast::<ostree::RepoFile>()
            .map_err(|_| anyhow!("{} is not a repository file", name.display()))?
            .checksum();
        let (stream, _, _) = repo
            .load_file(&checksum, gio::Cancellable::NONE)
            .map_err(|_| not_here())?;
        let mut stream = stream
            .ok_or_else(|| anyhow!("{} has no content", name.display()))?
            .into_read();
        let target = dest.join("usr/share/rpm").join(&name);
        let mut out = std::fs::File::create(&target)
            .with_context(|| format!("creating {}", target.display()))?;
        std::io::copy(&mut stream, &mut out)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(true)
}

/// The packages of commit `checksum`, sorted for [`diff::diff`]: from its package-list
/// metadata, else from the rpm database in its tree; `None` for a commit with neither.
pub(crate) fn for_commit(repo: &ostree::Repo, checksum: &str) -> Result<Option<Vec<Package>>> {
    let mut list = match pkglist_meta(repo, checksum)? {
        Some(list) => list,
        None => {
            let tmp = TempRoot::new()?;
            if !copy_rpmdb(repo, checksum, &tmp.0)? {
                return Ok(None);
            }
            let request = Request::RpmdbPackages {
                root: tmp.0.clone(),
            };
            match rpm::helper::call_simple(&request)
                .with_context(|| format!("reading the package database of commit {checksum}"))?
            {
                Reply::Packages(list) => list,
                other => return Err(rpm::helper::unexpected(other)),
            }
        }
    };
    diff::sort(&mut list);
    Ok(Some(list))
}

/// The package changes from commit `from` to commit `to`; `None` when either has no package
/// data (a diff against nothing would call every package added or removed).
pub(crate) fn try_diff_commits(repo: &ostree::Repo, from: &str, to: &str) -> Result<Option<Diff>> {
    let (Some(old), Some(new)) = (for_commit(repo, from)?, for_commit(repo, to)?) else {
        return Ok(None);
    };
    Ok(Some(diff::diff(&old, &new)))
}

/// The package changes from commit `from` to commit `to`; an error naming the commit that
/// has no package data, as upstream's "No package database found".
pub(crate) fn diff_commits(repo: &ostree::Repo, from: &str, to: &str) -> Result<Diff> {
    let list = |c: &str| -> Result<Vec<Package>> {
        for_commit(repo, c)?.ok_or_else(|| anyhow!("No package database found in commit {c}"))
    };
    Ok(diff::diff(&list(from)?, &list(to)?))
}

/// [`diff_commits`] in the repository of the sysroot at `path`, opened on its own (no sysroot
/// load): `GetDeploymentsRpmDiff` after the deployment ids were resolved from the snapshot.
pub(crate) fn commits_diff(path: &Path, from: &str, to: &str) -> Result<Diff> {
    let repo = ostree::Repo::new(&gio::File::for_path(path.join("ostree/repo")));
    repo.open(gio::Cancellable::NONE)
        .with_context(|| format!("opening the repository of {}", path.display()))?;
    diff_commits(&repo, from, to)
}

/// The directory of a deployment under the sysroot at `sysroot`.
pub(crate) fn deployment_dir(sysroot: &Path, osname: &str, checksum: &str, serial: i32) -> PathBuf {
    sysroot.join(format!("ostree/deploy/{osname}/deploy/{checksum}.{serial}"))
}

/// The rpm-md setup of `osname` with the repositories of the deployment in `root`.
pub(crate) fn repo_setup(sysroot: &Path, osname: &str, root: PathBuf) -> RepoSetup {
    let cache = cache_dir(sysroot, osname);
    let lock_dir = if sysroot == Path::new("/") {
        PathBuf::from("/run/rpm-ostree/lock")
    } else {
        cache.join("lock")
    };
    RepoSetup {
        root,
        cache,
        lock_dir,
    }
}

/// The `rpm-diff` dictionary of `CachedUpdate` for `diff` (all packages counted as base
/// packages, as upstream counts them), or `None` when nothing changed.
pub(crate) fn rpm_diff_variant(diff: &Diff) -> Option<glib::Variant> {
    if diff.is_empty() {
        return None;
    }
    type Modified = Vec<(u32, String, (String, String), (String, String))>;
    let modified = |it: &mut dyn Iterator<Item = &(Package, Package)>| -> Modified {
        it.map(|(o, n)| {
            (
                0u32,
                o.name.clone(),
                (o.evr(), o.arch.clone()),
                (n.evr(), n.arch.clone()),
            )
        })
        .collect()
    };
    let single = |list: &[Package]| -> Vec<(u32, String, String, String)> {
        list.iter()
            .map(|p| (0u32, p.name.clone(), p.evr(), p.arch.clone()))
            .collect()
    };
    let dict = glib::VariantDict::new(None);
    dict.insert_value("upgraded", &modified(&mut diff.upgraded()).to_variant());
    dict.insert_value("downgraded", &modified(&mut diff.downgraded()).to_variant());
    dict.insert_value("removed", &single(&diff.removed).to_variant());
    dict.insert_value("added", &single(&diff.added).to_variant());
    Some(dict.end())
}

/// The `advisories` value (`a(suuasa{sv})`) of `CachedUpdate`, or `None` without any.
pub(crate) fn advisories_variant(advisories: &[rpmostree_dnf::Advisory]) -> Option<glib::Variant> {
    if advisories.is_empty() {
        return None;
    }
    type Entry = (
        String,
        u32,
        u32,
        Vec<String>,
        HashMap<String, glib::Variant>,
    );
    let list: Vec<Entry> = advisories
        .iter()
        .map(|a| {
            let mut extra = HashMap::new();
            extra.insert(
                "cve_references".to_owned(),
                a.cve_references.clone().to_variant(),
            );
            (a.id.clone(), a.kind, a.severity, a.nevras.clone(), extra)
        })
        .collect();
    Some(list.to_variant())
}

/// What an update changes in packages: `rpm-diff` and `advisories` of `CachedUpdate`.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpdatePackages {
    /// `rpm-diff`, when anything changed.
    pub(crate) rpm_diff: Option<glib::Variant>,
    /// `advisories`, when the changed packages have security advisories.
    pub(crate) advisories: Option<glib::Variant>,
}

/// The package side of an update from `from` to `to`: their diff, and the security advisories
/// the rpm-md metadata of `setup` has for the new versions of changed packages (refreshed first
/// when `refresh`; `cancelled` stops that). Problems with the metadata, or a commit without
/// package data, are reported through `warn`, never fatal.
pub(crate) fn update_packages(
    repo: &ostree::Repo,
    from: &str,
    to: &str,
    setup: Option<RepoSetup>,
    refresh: bool,
    warn: &dyn Fn(&str),
    cancelled: &dyn Fn() -> bool,
) -> Result<UpdatePackages> {
    let Some(diff) = try_diff_commits(repo, from, to)? else {
        warn("No package diff: a commit has no package data");
        return Ok(UpdatePackages::default());
    };
    let new: Vec<Package> = diff.modified.iter().map(|(_, n)| n.clone()).collect();
    let advisories = match setup {
        Some(setup) if !new.is_empty() => {
            match rpm::repos::advisories(&setup, &new, refresh, &mut |w| warn(w), cancelled) {
                Ok(found) => advisories_variant(&found),
                Err(e) => {
                    warn(&format!("No advisories: {e:#}"));
                    None
                }
            }
        }
        _ => None,
    };
    Ok(UpdatePackages {
        rpm_diff: rpm_diff_variant(&diff),
        advisories,
    })
}

/// What an update, deploy or rebase would bring, for the `details` of the cached diffs
/// (`UpdateDetails`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CommitDetails {
    /// Stateroot.
    pub(crate) osname: String,
    /// The commit.
    pub(crate) checksum: String,
    /// Its version.
    pub(crate) version: Option<String>,
    /// Its timestamp.
    pub(crate) timestamp: u64,
    /// The refspec it is on.
    pub(crate) origin: String,
    /// Whether the refspec's remote verifies signatures (`None`: a local ref).
    pub(crate) gpg_enabled: Option<bool>,
    /// The commit's verified signatures.
    pub(crate) signatures: Option<Vec<glib::Variant>>,
}

/// What a cached diff compares the base deployment with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DiffTarget {
    /// `GetCachedUpdateRpmDiff`: the local head of the origin's ref; the base is deployment
    /// `deployid`, or the merge deployment when it is empty.
    Update(String),
    /// `GetCachedRebaseRpmDiff`: the local head of this (partial) refspec.
    Rebase(String),
    /// `GetCachedDeployRpmDiff`: this revision of the origin's ref.
    Deploy(super::refspec::Revision),
}

fn deployment_for_id(sysroot: &ostree::Sysroot, id: &str) -> Result<ostree::Deployment> {
    if id.is_empty() {
        return Err(anyhow!("empty deployment ID"));
    }
    sysroot
        .deployments()
        .into_iter()
        .find(|d| format!("{}-{}.{}", d.osname(), d.csum(), d.deployserial()) == id)
        .ok_or_else(|| anyhow!("Deployment with id '{id}' not found"))
}

/// The cached diffs: the package changes from the base deployment of `osname` to `target`,
/// from what is already in the repository (never the network), and the target's details.
pub(crate) fn cached_diff(
    path: &Path,
    osname: &str,
    target: &DiffTarget,
) -> Result<(Diff, CommitDetails)> {
    use super::deploy::Source;
    use super::refspec::Revision;
    let sysroot = super::open(path, None)?;
    let repo = sysroot.repo();
    let base = match target {
        DiffTarget::Update(id) if !id.is_empty() => deployment_for_id(&sysroot, id)?,
        _ => sysroot
            .merge_deployment(Some(osname))
            .ok_or_else(|| anyhow!("No deployments found for os '{osname}'"))?,
    };
    let origin = base.origin();
    let current = origin.as_ref().and_then(super::deploy::origin_refspec);
    let image = origin.as_ref().and_then(super::deploy::origin_image);
    let rebase = match target {
        DiffTarget::Rebase(r) => Some(r.as_str()),
        _ => None,
    };
    let source = super::deploy::source_for(current.as_deref(), image.as_deref(), rebase)?;
    // A layered deployment is compared through its base commit (its own packages are not
    // part of an update, a rebase or a deploy).
    let from = crate::layering::base_of(&repo, &base.csum())?;
    let refspec = match source {
        Source::Ostree(r) => r,
        Source::Image(image) => {
            if let DiffTarget::Deploy(_) = target {
                bail!("Package diffs of an image digest need the image: deploy it instead");
            }
            // Only a pulled image has packages to compare.
            let state = super::container::stored(&repo, &image)?
                .ok_or_else(|| anyhow!("Image {image} is not in the repository"))?;
            let diff = diff_commits(&repo, &from, &state.commit)?;
            let (_, timestamp, _) = super::commit_info(&repo, &state.commit)?;
            return Ok((
                diff,
                CommitDetails {
                    osname: osname.to_owned(),
                    checksum: state.commit,
                    version: state.version,
                    timestamp,
                    origin: image.to_string(),
                    gpg_enabled: None,
                    signatures: None,
                },
            ));
        }
    };
    let checksum = match target {
        DiffTarget::Deploy(Revision::Checksum(c)) => c.clone(),
        DiffTarget::Deploy(Revision::Version(v)) => {
            super::deploy::local_version(&repo, &refspec, v)?
        }
        _ => repo
            .resolve_rev(&refspec.to_string(), false)?
            .ok_or_else(|| anyhow!("Ref {refspec} not found"))?
            .to_string(),
    };
    let diff = diff_commits(&repo, &from, &checksum)?;
    let (version, timestamp, _) = super::commit_info(&repo, &checksum)?;
    let (gpg_enabled, signatures) = match &refspec.remote {
        Some(remote) => {
            let (enabled, sigs) = super::gpg_state(&repo, remote, &checksum).unwrap_or_default();
            (Some(enabled), sigs)
        }
        None => (None, None),
    };
    Ok((
        diff,
        CommitDetails {
            osname: osname.to_owned(),
            checksum,
            version,
            timestamp,
            origin: refspec.to_string(),
            gpg_enabled,
            signatures,
        },
    ))
}
