//! The deploy family on libostree: upgrade, deploy a revision, rebase, new kernel arguments,
//! finalization of a staged deployment, and update checks. Deployments chain on the first
//! deployment of the osname (a pending one included); on a booted system the new deployment is
//! staged, on a sysroot that is not booted it is written directly.

use std::{
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, anyhow, bail};
use ostree::glib;
use ostree_ext::container::{OstreeImageReference, SignatureSource};

use super::{
    STAGED_LOCKED_MARKER, container,
    kargs::{self, KargsChange},
    ops::{DownloadStats, Op, Progress, Report},
    origin::Origin,
    packages::{self, UpdatePackages},
    refspec::{Refspec, Revision, rebase_target},
    write_atomic,
};

/// Where the tree of a deployment comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// An ostree branch.
    Ostree(Refspec),
    /// A container image.
    Image(OstreeImageReference),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ostree(r) => r.fmt(f),
            Self::Image(i) => i.fmt(f),
        }
    }
}

/// The container image reference an origin follows, if it follows one.
pub(crate) fn origin_image(origin: &glib::KeyFile) -> Option<String> {
    origin
        .string("origin", "container-image-reference")
        .ok()
        .map(|s| s.to_string())
}

/// What an origin follows (`current` refspec or `image`), and where a request moves it
/// (`rebase`, in upstream's forms: an image reference, or a full or partial refspec).
pub(crate) fn source_for(
    current: Option<&str>,
    image: Option<&str>,
    rebase: Option<&str>,
) -> Result<Source> {
    match rebase {
        Some(r) if container::is_image_reference(r) => {
            let target = container::parse(r)?;
            if image.is_some_and(|i| i == r || container::parse(i).is_ok_and(|i| i == target)) {
                bail!("Old and new refs are equal: {r}");
            }
            Ok(Source::Image(target))
        }
        // From an image, a partial refspec has nothing to complete it.
        Some(r) => Ok(Source::Ostree(rebase_target(current, r)?)),
        None => match (image, current) {
            (Some(i), _) => Ok(Source::Image(container::parse(i)?)),
            (None, Some(c)) => Ok(Source::Ostree(Refspec::parse(c)?)),
            (None, None) => bail!("The origin of the current deployment has no refspec"),
        },
    }
}

/// The manifest digest a revision names for an image: `sha256:<hex>`, or a bare 64-hex
/// checksum taken as one; image references have no version history.
fn image_digest(revision: &Revision) -> Result<String> {
    let digest = match revision {
        Revision::Checksum(c) => format!("sha256:{c}"),
        Revision::Version(v) if v.starts_with("sha256:") => v.clone(),
        Revision::Version(v) => bail!(
            "Container images have no version history: deploy an image digest (sha256:...) instead of version '{v}'"
        ),
    };
    container::check_digest(&digest)?;
    Ok(digest)
}

/// The image `image` (at `digest` when given) in the repository: pulled, or with `cache_only`
/// the one already there; says which digest and version it is.
fn image_state(
    op: &Op<'_>,
    repo: &ostree::Repo,
    image: &OstreeImageReference,
    digest: Option<&str>,
    cache_only: bool,
) -> Result<container::ImageState> {
    let state = if cache_only {
        container::stored(repo, image)?
            .filter(|s| digest.is_none_or(|d| d == s.digest))
            .ok_or_else(|| anyhow!("Image {image} is not in the repository"))?
    } else {
        let pull_ref = match digest {
            Some(d) => container::with_digest(image, d)?,
            None => image.clone(),
        };
        container::pull(op, repo, &pull_ref, image)?
    };
    op.progress.message(&format!(
        "Image {image}: digest {}{}",
        state.digest,
        state
            .version
            .as_deref()
            .map(|v| format!(", version {v}"))
            .unwrap_or_default()
    ));
    Ok(state)
}

/// What a deploy-family transaction asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DeployRequest {
    /// Stateroot.
    pub(crate) osname: String,
    /// Move to this refspec (upstream's partial forms allowed).
    pub(crate) rebase: Option<String>,
    /// Deploy this revision instead of the branch head.
    pub(crate) revision: Option<Revision>,
    /// Accept an older commit.
    pub(crate) allow_downgrade: bool,
    /// Keep the old ref after a rebase.
    pub(crate) skip_purge: bool,
    /// Only download.
    pub(crate) download_only: bool,
    /// Use only what is on the machine.
    pub(crate) cache_only: bool,
    /// Stop before deploying.
    pub(crate) dry_run: bool,
    /// Stage locked: only `FinalizeDeployment` applies it.
    pub(crate) lock_finalization: bool,
    /// Redeploy the current commit (kernel arguments only).
    pub(crate) no_pull_base: bool,
    /// New kernel arguments: the client's view of the current ones, and the change.
    pub(crate) kargs: Option<(String, KargsChange)>,
    /// Register the caller as the update driver: (name, systemd unit, possibly empty).
    pub(crate) register_driver: Option<(String, String)>,
    /// Only register the driver; deploy nothing.
    pub(crate) register_only: bool,
    /// Changes to the layered packages.
    pub(crate) packages: PackageChanges,
    /// Install weak dependencies (`rpm-ostreed.conf` `Recommends`).
    pub(crate) recommends: bool,
    /// Refuse package layering (`rpm-ostreed.conf` `LockLayering`).
    pub(crate) lock_layering: bool,
}

/// Changes to the package requests of the origin (`PkgChange`, `UpdateDeployment`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PackageChanges {
    /// Requests to add (names, NEVRAs, globs, provides, file paths).
    pub(crate) install: Vec<String>,
    /// Requests to remove.
    pub(crate) uninstall: Vec<String>,
    /// Remove every request.
    pub(crate) uninstall_all: bool,
    /// Adding a request that exists, or removing one that does not, is not an error.
    pub(crate) idempotent: bool,
    /// Accept new requests that the base already satisfies.
    pub(crate) allow_inactive: bool,
    /// Local RPM files to layer (private copies the daemon made of the caller's files;
    /// removed once imported).
    pub(crate) install_local: Vec<PathBuf>,
    /// Base packages to remove, by name.
    pub(crate) override_remove: Vec<String>,
    /// Local RPM files replacing base packages of the same name (private copies, as
    /// `install_local`).
    pub(crate) override_replace_local: Vec<PathBuf>,
    /// Overrides to drop, by package name or NEVRA.
    pub(crate) override_reset: Vec<String>,
    /// Drop every override.
    pub(crate) no_overrides: bool,
    /// Drop the initramfs settings of the origin (`regenerate-initramfs`, `initramfs-args`,
    /// `initramfs-etc`).
    pub(crate) no_initramfs: bool,
}

/// The name of a NEVRA (the NEVRA itself when it does not parse).
fn name_of(nevra: &str) -> String {
    crate::layering::pkgcache::split_nevra(nevra).map_or_else(|| nevra.to_owned(), |(n, ..)| n)
}

impl PackageChanges {
    /// Whether anything is asked.
    pub(crate) fn is_empty(&self) -> bool {
        self.install.is_empty()
            && self.uninstall.is_empty()
            && self.install_local.is_empty()
            && !self.uninstall_all
            && self.override_remove.is_empty()
            && self.override_replace_local.is_empty()
            && self.override_reset.is_empty()
            && !self.no_overrides
            && !self.no_initramfs
    }

    /// Applies the override changes, in upstream's order (drop all, reset, then remove and
    /// replace); `replace` are the local replacements just imported (NEVRA, header sha256).
    fn apply_overrides(&self, origin: &mut Origin, replace: &[(String, String)]) -> Result<()> {
        if self.no_overrides {
            origin.override_remove.clear();
            origin.override_replace_local.clear();
        }
        for p in &self.override_reset {
            if origin.override_remove.remove(p) {
                continue;
            }
            let matching: Vec<String> = origin
                .override_replace_local
                .keys()
                .filter(|nevra| *nevra == p || name_of(nevra) == *p)
                .cloned()
                .collect();
            if matching.is_empty() {
                bail!("No overrides for package '{p}'");
            }
            for nevra in matching {
                origin.override_replace_local.remove(&nevra);
            }
        }
        let replaced = |origin: &Origin, name: &str| {
            origin.override_remove.contains(name)
                || origin
                    .override_replace_local
                    .keys()
                    .any(|n| name_of(n) == name)
        };
        for p in &self.override_remove {
            if replaced(origin, p) {
                bail!("Override already exists for package '{p}'");
            }
            origin.override_remove.insert(p.clone());
        }
        for (nevra, sha256) in replace {
            let name = name_of(nevra);
            if replaced(origin, &name) {
                bail!("Override already exists for package '{name}'");
            }
            origin
                .override_replace_local
                .insert(nevra.clone(), sha256.clone());
        }
        Ok(())
    }

    /// Applies the changes to the origin's requests, with `local` the local packages just
    /// imported (NEVRA, header sha256); returns whether they changed. Errors (as upstream's)
    /// name a request that is already there or is not. A local package is uninstalled by its
    /// NEVRA or its name.
    fn apply(
        &self,
        origin: &mut Origin,
        local: &[(String, String)],
        replace: &[(String, String)],
    ) -> Result<bool> {
        let before = origin.clone();
        self.apply_overrides(origin, replace)?;
        if self.uninstall_all {
            origin.requested.clear();
            origin.requested_local.clear();
        }
        for p in &self.uninstall {
            if origin.requested.remove(p) {
                continue;
            }
            let locals: Vec<String> = origin
                .requested_local
                .keys()
                .filter(|nevra| *nevra == p || name_of(nevra) == *p)
                .cloned()
                .collect();
            if locals.is_empty() && !self.idempotent && !self.uninstall_all {
                bail!("Package/capability '{p}' is not currently requested");
            }
            for nevra in locals {
                origin.requested_local.remove(&nevra);
            }
        }
        for p in &self.install {
            if !origin.requested.insert(p.clone()) && !self.idempotent {
                bail!("Package/capability '{p}' is already requested");
            }
        }
        for (nevra, sha256) in local {
            if origin
                .requested_local
                .insert(nevra.clone(), sha256.clone())
                .is_some()
                && !self.idempotent
            {
                bail!("Package '{nevra}' is already requested");
            }
        }
        Ok(*origin != before)
    }
}

/// Imports the local RPM files of a change into the package cache (and removes the daemon's
/// copies); returns their (NEVRA, header sha256).
fn import_local(
    op: &Op<'_>,
    repo: &ostree::Repo,
    files: &[PathBuf],
) -> Result<Vec<(String, String)>> {
    struct Remove<'a>(&'a [PathBuf]);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            for f in self.0 {
                let _ = std::fs::remove_file(f);
            }
        }
    }
    let _remove = Remove(files);
    let mut out = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let staging = op
            .path
            .join("ostree/repo/tmp")
            .join(format!("rpmostree-local-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)
            .with_context(|| format!("creating {}", staging.display()))?;
        let imported =
            crate::layering::pkgcache::import(repo, file, None, &staging, Some(op.cancellable));
        let _ = std::fs::remove_dir_all(&staging);
        let cached = imported.with_context(|| format!("importing local package {}", i + 1))?;
        op.progress
            .message(&format!("Imported local package {}", cached.nevra));
        out.push((cached.nevra, cached.header_sha256));
    }
    Ok(out)
}

/// Where the registered update driver is recorded (in the running system's `/run`), read by
/// `rpm-ostree status` and its update-driver guard.
pub(crate) const UPDATE_DRIVER_FILE: &str = "/run/rpm-ostree/update-driver";

fn register_driver(op: &Op<'_>, name: &str, unit: &str) -> Result<()> {
    let kf = glib::KeyFile::new();
    kf.set_string("update-driver", "driver-name", name);
    kf.set_string("update-driver", "driver-sd-unit", unit);
    let path = Path::new(UPDATE_DRIVER_FILE);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_atomic(path, kf.to_data().as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    op.progress.message(&format!(
        "Registered {name}{} as the driver of updates",
        if unit.is_empty() {
            String::new()
        } else {
            format!(" ({unit})")
        }
    ));
    Ok(())
}

/// A clone of a key file (libostree keeps a deployment's origin; it must not be edited in place).
fn copy_keyfile(kf: &glib::KeyFile) -> Result<glib::KeyFile> {
    parse_keyfile(&kf.to_data()).context("copying the origin")
}

/// Parses key-file text (an origin). A NUL byte is refused with an error: glib's parser takes
/// C strings and would abort the daemon on one.
pub(crate) fn parse_keyfile(text: &str) -> Result<glib::KeyFile> {
    if let Some(at) = text.find('\0') {
        bail!("the key file has a NUL byte at offset {at}");
    }
    let out = glib::KeyFile::new();
    out.load_from_data(text, glib::KeyFileFlags::KEEP_COMMENTS)
        .context("parsing the key file")?;
    Ok(out)
}

/// The refspec an origin file names (`refspec`, else `baserefspec`).
pub(crate) fn origin_refspec(origin: &glib::KeyFile) -> Option<String> {
    origin
        .string("origin", "refspec")
        .or_else(|_| origin.string("origin", "baserefspec"))
        .ok()
        .map(|s| s.to_string())
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Reports a pull's counters as download progress and a percentage of objects received.
fn report(sink: &dyn Progress, p: &ostree::AsyncProgress, started: u64) {
    let (fetched, requested) = (p.uint("fetched"), p.uint("requested"));
    if requested > 0 {
        let percentage = (u64::from(fetched) * 100 / u64::from(requested)).min(100) as u32;
        sink.percent(
            &format!("Receiving objects ({fetched}/{requested})"),
            percentage,
        );
    }
    let elapsed = (now_us().saturating_sub(started) / 1_000_000).max(1);
    let bytes = p.uint64("bytes-transferred");
    sink.download(DownloadStats {
        time: (started / 1_000_000, elapsed),
        outstanding: (p.uint("outstanding-fetches"), p.uint("outstanding-writes")),
        metadata: (
            p.uint("scanned-metadata"),
            p.uint("metadata-fetched"),
            p.uint("outstanding-metadata-fetches"),
        ),
        delta: (
            p.uint("total-delta-parts"),
            p.uint("fetched-delta-parts"),
            p.uint("total-delta-superblocks"),
            p.uint64("total-delta-part-size"),
        ),
        content: (fetched, requested),
        transfer: (bytes, bytes / elapsed),
    });
}

/// How much of a commit a pull fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fetch<'a> {
    /// The commit object only (its metadata).
    CommitOnly,
    /// The commit and the content of one directory of its tree.
    Subdir(&'a str),
    /// Everything.
    Full,
}

/// Pulls `refs` from `remote`, reporting download progress.
pub(crate) fn pull(
    op: &Op<'_>,
    repo: &ostree::Repo,
    remote: &str,
    refs: &[&str],
    what: Fetch<'_>,
    depth: i32,
) -> Result<()> {
    op.check_cancelled()?;
    op.progress.message(&format!(
        "Receiving from remote '{remote}': {}",
        refs.join(", ")
    ));
    let context = glib::MainContext::new();
    let started = now_us();
    let result = context
        .with_thread_default(|| {
            let progress = ostree::AsyncProgress::new();
            let sink = op.progress.clone();
            progress.connect_changed(move |p| {
                if let Some(status) = p.status().filter(|s| !s.is_empty()) {
                    sink.message(&status);
                    return;
                }
                report(&*sink, p, started);
            });
            let options = glib::VariantDict::new(None);
            let refs: Vec<String> = refs.iter().map(|s| s.to_string()).collect();
            options.insert("refs", &refs);
            let flags = match what {
                Fetch::CommitOnly => ostree::RepoPullFlags::COMMIT_ONLY,
                Fetch::Subdir(dir) => {
                    options.insert("subdirs", vec![dir.to_owned()]);
                    ostree::RepoPullFlags::NONE
                }
                Fetch::Full => ostree::RepoPullFlags::NONE,
            };
            options.insert("flags", flags.bits() as i32);
            if depth != 0 {
                options.insert("depth", depth);
            }
            let r = repo.pull_with_options(
                remote,
                &options.end(),
                Some(&progress),
                Some(op.cancellable),
            );
            progress.finish();
            // The final counters, also for pulls too short for libostree's periodic updates.
            if r.is_ok() {
                report(&*op.progress, &progress, started);
            }
            r
        })
        .map_err(|e| anyhow!("cannot run the pull: {e}"))?;
    op.progress.progress_end();
    op.check_cancelled()?;
    result.with_context(|| format!("pulling {} from remote '{remote}'", refs.join(", ")))
}

/// Finds the commit with `version` in the history of `refspec`.
fn find_version(
    op: &Op<'_>,
    repo: &ostree::Repo,
    refspec: &Refspec,
    version: &str,
    cache_only: bool,
) -> Result<String> {
    if let (Some(remote), false) = (&refspec.remote, cache_only) {
        pull(op, repo, remote, &[&refspec.branch], Fetch::CommitOnly, -1)?;
    }
    local_version(repo, refspec, version)
}

/// Finds the commit with `version` in the history of `refspec` that is in the repository.
pub(crate) fn local_version(
    repo: &ostree::Repo,
    refspec: &Refspec,
    version: &str,
) -> Result<String> {
    let mut checksum = repo
        .resolve_rev(&refspec.to_string(), false)?
        .ok_or_else(|| anyhow!("Ref {refspec} not found"))?
        .to_string();
    loop {
        let (commit, _) = repo
            .load_commit(&checksum)
            .map_err(|_| anyhow!("Version {version} not found in the history of {refspec}"))?;
        let meta = glib::VariantDict::new(Some(&commit.child_value(0)));
        if meta.lookup::<String>("version").ok().flatten().as_deref() == Some(version) {
            return Ok(checksum);
        }
        match ostree::commit_get_parent(&commit) {
            Some(parent) => checksum = parent.to_string(),
            None => bail!("Version {version} not found in the history of {refspec}"),
        }
    }
}

fn timestamp(repo: &ostree::Repo, checksum: &str) -> Result<u64> {
    let (commit, _) = repo
        .load_commit(checksum)
        .with_context(|| format!("loading commit {checksum}"))?;
    Ok(ostree::commit_get_timestamp(&commit))
}

fn booted_in(sysroot: &ostree::Sysroot, osname: &str) -> bool {
    sysroot
        .booted_deployment()
        .is_some_and(|b| b.osname() == osname)
}

/// Runs a deploy-family request. Returns a summary.
pub(crate) fn deploy(op: &Op<'_>, req: &DeployRequest) -> Result<Report> {
    let locked = op.lock()?;
    let sysroot = &locked.0;
    if let Some((name, unit)) = &req.register_driver {
        register_driver(op, name, unit)?;
        if req.register_only {
            return Ok(Report::unchanged(format!(
                "registered update driver {name}"
            )));
        }
    }
    let repo = sysroot.repo();
    let osname = req.osname.as_str();
    let deployments = sysroot.deployments();
    let base = deployments
        .iter()
        .find(|d| d.osname() == osname)
        .cloned()
        .ok_or_else(|| anyhow!("No previous deployment for OS '{osname}'"))?;
    let merge = sysroot.merge_deployment(Some(osname));
    let origin = copy_keyfile(
        &base
            .origin()
            .ok_or_else(|| anyhow!("The deployment {} has no origin file", base.csum()))?,
    )?;
    let current = origin_refspec(&origin);
    let current_image = origin_image(&origin);
    // The base of the current deployment: the parent of a layered commit.
    let base_commit = crate::layering::base_of(&repo, &base.csum())?;
    let mut requests = Origin::from_keyfile(&origin).unwrap_or_default();
    if !requests.override_replace.is_empty() {
        bail!(
            "The origin replaces base packages from repositories ([overrides] replace), which this rpm-ostreed does not support yet"
        );
    }
    let new_local = import_local(op, &repo, &req.packages.install_local)?;
    let new_replace = import_local(op, &repo, &req.packages.override_replace_local)?;
    let mut requests_changed = req
        .packages
        .apply(&mut requests, &new_local, &new_replace)?;
    if req.packages.no_initramfs {
        for key in ["regenerate-initramfs", "initramfs-args", "initramfs-etc"] {
            if origin.remove_key("rpmostree", key).is_ok() {
                requests_changed = true;
            }
        }
        requests.regenerate_initramfs = false;
        requests.initramfs_args.clear();
        requests.initramfs_etc.clear();
    }
    let pinned = origin
        .string("origin", "override-commit")
        .ok()
        .map(|s| s.to_string());

    let source = source_for(
        current.as_deref(),
        current_image.as_deref(),
        req.rebase.as_deref(),
    )?;
    let remote = match &source {
        Source::Ostree(r) => r.remote.clone(),
        Source::Image(i) => match &i.sigverify {
            SignatureSource::OstreeRemote(r) => Some(r.clone()),
            _ => None,
        },
    };
    if let Some(remote) = &remote {
        let remotes: Vec<String> = repo.remote_list().iter().map(|r| r.to_string()).collect();
        if !remotes.contains(remote) {
            bail!(
                "Remote \"{remote}\" not found (configured remotes: {})",
                if remotes.is_empty() {
                    "none".to_owned()
                } else {
                    remotes.join(", ")
                }
            );
        }
    }

    // The commit to deploy, and the value `override-commit` pins (an image's digest).
    let is_kargs = req.kargs.is_some();
    let mut pin = None;
    let target = if is_kargs {
        base.csum().to_string()
    } else if req.no_pull_base {
        base_commit.clone()
    } else {
        match &source {
            Source::Image(image) => {
                let digest = req.revision.as_ref().map(image_digest).transpose()?;
                if let (None, Some(p), None) = (&digest, &pinned, &req.rebase) {
                    op.progress
                        .message(&format!("Pinned to image {p}; no upgrade available"));
                    return Ok(Report::unchanged(format!("pinned to {p}")));
                }
                let state = image_state(op, &repo, image, digest.as_deref(), req.cache_only)?;
                pin = digest;
                state.commit
            }
            Source::Ostree(refspec) => match &req.revision {
                Some(Revision::Checksum(c)) => {
                    if let (Some(remote), false) = (&refspec.remote, req.cache_only) {
                        pull(op, &repo, remote, &[c], Fetch::Full, 0)?;
                    }
                    repo.load_commit(c).map_err(|_| {
                        anyhow!(
                            "Commit {c} not found in the repository or on remote {}",
                            refspec.remote.as_deref().unwrap_or("(local)")
                        )
                    })?;
                    c.clone()
                }
                Some(Revision::Version(v)) => {
                    let c = find_version(op, &repo, refspec, v, req.cache_only)?;
                    if let (Some(remote), false) = (&refspec.remote, req.cache_only) {
                        pull(op, &repo, remote, &[&c], Fetch::Full, 0)?;
                    }
                    op.progress.message(&format!("Resolved version {v} to {c}"));
                    c
                }
                None => {
                    if let (Some(p), None) = (&pinned, &req.rebase) {
                        op.progress
                            .message(&format!("Pinned to commit {p}; no upgrade available"));
                        return Ok(Report::unchanged(format!("pinned to {p}")));
                    }
                    if let (Some(remote), false) = (&refspec.remote, req.cache_only) {
                        pull(op, &repo, remote, &[&refspec.branch], Fetch::Full, 0)?;
                    }
                    repo.resolve_rev(&refspec.to_string(), false)?
                        .ok_or_else(|| anyhow!("Ref {refspec} not found"))?
                        .to_string()
                }
            },
        }
    };
    op.check_cancelled()?;
    let is_image = matches!(source, Source::Image(_));
    let pin = pin.unwrap_or_else(|| target.clone());

    // Images have no timestamp order to keep (as upstream: a tag may move anywhere).
    if target != base.csum().as_str() && target != base_commit && !req.allow_downgrade && !is_image
    {
        let (old, new) = (timestamp(&repo, &base_commit)?, timestamp(&repo, &target)?);
        if new < old {
            bail!(
                "The target commit {target} (timestamp {new}) is older than the current one {} (timestamp {old}); allow a downgrade to deploy it",
                base.csum()
            );
        }
    }

    let current_kargs: Vec<String> = base
        .bootconfig()
        .and_then(|b| b.get("options"))
        .map(|o| kargs::split(&o))
        .unwrap_or_default();
    let kargs = match &req.kargs {
        Some((existing, change)) => {
            let new = change.apply(existing)?;
            if new == kargs::split(existing) {
                op.progress.message("No changes.");
                return Ok(Report::unchanged("kernel arguments unchanged"));
            }
            new
        }
        None => current_kargs,
    };
    let revision_changes = match &req.revision {
        Some(_) => pinned.as_deref() != Some(pin.as_str()),
        None => pinned.is_some() && req.rebase.is_some(),
    };
    // A deployment made outside the daemon may not have what its origin asks for (requests
    // but a plain commit, or a layered commit and no requests): then it is built now.
    let layered_now = base.csum().as_str() != base_commit;
    let layering_pending = !is_kargs && layered_now != requests.has_requests();
    if (target == base.csum().as_str() || target == base_commit)
        && req.rebase.is_none()
        && !revision_changes
        && !is_kargs
        && !requests_changed
        && !layering_pending
    {
        if !req.packages.is_empty() {
            op.progress.message("No change.");
            return Ok(Report::unchanged("no change"));
        }
        // `no-pull-base` alone changes nothing either: the same commit is not deployed twice.
        op.progress.message(if req.no_pull_base {
            "No changes."
        } else {
            "No upgrade available."
        });
        return Ok(Report::unchanged("no upgrade available"));
    }
    if req.download_only && (!requests.has_requests() || is_kargs) {
        op.progress.message("Update downloaded.");
        return Ok(Report::unchanged(format!("downloaded {target}")));
    }
    if requests_changed {
        requests.write_requests(&origin);
    }
    // Layering: a new tree of the target base plus the requested packages (the layered
    // commit of the current deployment is kept as is for a change of kernel arguments).
    let mut deploy_commit = target.clone();
    if !is_kargs && requests.has_requests() {
        if req.lock_layering {
            bail!("LockLayering=true in the daemon configuration: package layering is disabled");
        }
        let layer = crate::layering::Request {
            base: if target == base.csum().as_str() {
                base_commit.clone()
            } else {
                target.clone()
            },
            packages: requests.requested.iter().cloned().collect(),
            local: requests.requested_local.clone(),
            remove: requests.override_remove.iter().cloned().collect(),
            replace_local: requests.override_replace_local.clone(),
            repos: repo_setup_for(op.path, sysroot, osname)?,
            weak_deps: req.recommends,
            cache_only: req.cache_only,
            resolve_only: req.dry_run || req.download_only,
            new_requests: req
                .packages
                .install
                .iter()
                .filter(|p| requests.requested.contains(*p))
                .cloned()
                .collect(),
            allow_inactive: req.packages.allow_inactive,
            new_overrides: req
                .packages
                .override_remove
                .iter()
                .cloned()
                .chain(new_replace.iter().map(|(nevra, _)| nevra.clone()))
                .collect(),
        };
        let layered = crate::layering::assemble(op, &repo, &layer)?;
        if req.download_only {
            op.progress.message("Update downloaded.");
            return Ok(Report::unchanged(format!("downloaded {target}")));
        }
        if req.dry_run {
            if layered.installed.is_empty() {
                op.progress.message("Dry run: no packages to layer");
            } else {
                op.progress.message(&format!(
                    "Dry run: would layer {}",
                    layered.installed.join(" ")
                ));
            }
            return Ok(Report::unchanged("dry run"));
        }
        deploy_commit = layered.commit.unwrap_or_else(|| layer.base.clone());
        if deploy_commit == base.csum().as_str() && !requests_changed && req.rebase.is_none() {
            op.progress.message("No change.");
            return Ok(Report::unchanged("no change"));
        }
    }
    if req.dry_run {
        op.progress
            .message(&format!("Dry run: would deploy {target} ({source})"));
        return Ok(Report::unchanged("dry run"));
    }

    // An origin with package requests or overrides keeps its refspec as `baserefspec`, as
    // upstream writes it; any other as `refspec`.
    let (key, other) = if requests.may_require_local_assembly() {
        ("baserefspec", "refspec")
    } else {
        ("refspec", "baserefspec")
    };
    match &source {
        Source::Ostree(refspec) => {
            origin.set_string("origin", key, &refspec.to_string());
            let _ = origin.remove_key("origin", other);
            let _ = origin.remove_key("origin", "container-image-reference");
        }
        Source::Image(image) => {
            origin.set_string("origin", "container-image-reference", &image.to_string());
            let _ = origin.remove_key("origin", "refspec");
            let _ = origin.remove_key("origin", "baserefspec");
        }
    }
    if req.revision.is_some() {
        origin.set_string("origin", "override-commit", &pin);
    } else {
        let _ = origin.remove_key("origin", "override-commit");
    }

    op.check_cancelled()?;
    let kargs_refs: Vec<&str> = kargs.iter().map(String::as_str).collect();
    let opts = ostree::SysrootDeployTreeOpts {
        override_kernel_argv: Some(&kargs_refs),
        ..Default::default()
    };
    let mut staged_id = None;
    let summary = if booted_in(sysroot, osname) {
        let marker = Path::new(STAGED_LOCKED_MARKER);
        let was_locked = marker.exists();
        if req.lock_finalization {
            // Lock first: a crash between staging and locking must never leave an unlocked
            // staged deployment behind (libostree 2022.7 has no atomic option for it).
            write_atomic(marker, b"")
                .with_context(|| format!("locking the staged deployment ({})", marker.display()))?;
        }
        op.progress.task_begin("Staging deployment");
        let staged = sysroot.stage_tree_with_options(
            Some(osname),
            &deploy_commit,
            Some(&origin),
            merge.as_ref(),
            &opts,
            Some(op.cancellable),
        );
        let staged = match staged {
            Ok(d) => d,
            Err(e) => {
                if req.lock_finalization && !was_locked {
                    let _ = std::fs::remove_file(marker);
                }
                return Err(e).context("staging the new deployment");
            }
        };
        op.mark_written();
        staged_id = Some(format!(
            "{osname}-{deploy_commit}.{}",
            staged.deployserial()
        ));
        fault_point("after-stage");
        op.progress.task_end("done");
        if req.lock_finalization {
            op.progress.message(
                "The staged deployment is locked: it is applied only by finalize-deployment.",
            );
        } else if was_locked {
            // The new staged deployment replaces the locked one and is not locked itself.
            std::fs::remove_file(marker).with_context(|| {
                format!("unlocking the staged deployment ({})", marker.display())
            })?;
        }
        format!("staged {deploy_commit}")
    } else {
        op.progress.task_begin("Writing deployment");
        let started = std::time::Instant::now();
        let new = sysroot
            .deploy_tree_with_options(
                Some(osname),
                &deploy_commit,
                Some(&origin),
                merge.as_ref(),
                Some(&opts),
                Some(op.cancellable),
            )
            .context("deploying the new tree")?;
        sysroot
            .simple_write_deployment(
                Some(osname),
                &new,
                merge.as_ref(),
                ostree::SysrootSimpleWriteDeploymentFlags::NO_CLEAN,
                Some(op.cancellable),
            )
            .context("writing the new deployment list")?;
        op.mark_written();
        fault_point("after-deploy");
        op.progress.task_end("done");
        tracing::info!("deployment written in {} ms", started.elapsed().as_millis());
        let started = std::time::Instant::now();
        let cleaned = sysroot.cleanup(None::<&ostree::gio::Cancellable>);
        tracing::info!("sysroot cleaned up in {} ms", started.elapsed().as_millis());
        if let Err(e) = cleaned {
            op.progress.message(&format!(
                "Warning: cleaning up after the deployment failed: {e}"
            ));
        }
        format!("deployed {deploy_commit}")
    };

    if req.rebase.is_some()
        && !req.skip_purge
        && let Some(old) = current.as_deref().and_then(|c| Refspec::parse(c).ok())
        && source != Source::Ostree(old.clone())
    {
        match repo.set_ref_immediate(
            old.remote.as_deref(),
            &old.branch,
            None,
            None::<&ostree::gio::Cancellable>,
        ) {
            Ok(()) => op.progress.message(&format!("Removed the old ref {old}")),
            Err(e) => op
                .progress
                .message(&format!("Warning: the old ref {old} was not removed: {e}")),
        }
    }
    // The package cache and the image store keep only what deployments use.
    match crate::layering::prune_cache(sysroot) {
        Ok(0) => {}
        Ok(n) => tracing::info!("dropped {n} unused package cache ref(s)"),
        Err(e) => op
            .progress
            .message(&format!("Warning: the package cache was not pruned: {e:#}")),
    }
    match container::prune(sysroot) {
        Ok((0, 0)) => {}
        Ok((images, layers)) => {
            tracing::info!("dropped {images} unused image(s) and {layers} layer ref(s)")
        }
        Err(e) => op
            .progress
            .message(&format!("Warning: unused images were not pruned: {e:#}")),
    }
    op.progress
        .message(&format!("Deployment ready: {source} {deploy_commit}"));
    // A plain upgrade of the booted OS leaves what it staged as the cached update, with its
    // package changes (as upstream's `rpm-ostree upgrade` does).
    if let (Some(id), None, None, false) = (&staged_id, &req.rebase, &req.revision, is_kargs)
        && let Some(booted) = sysroot.booted_deployment()
        && let Err(e) = cache_staged_update(op, sysroot, &booted, &target, &source, id)
    {
        op.progress.message(&format!(
            "Warning: the cached update was not written: {e:#}"
        ));
    }
    Ok(Report::changed(summary))
}

/// Records the update just staged (`target`, deployment `id`) as the cached update of the
/// booted deployment's OS.
fn cache_staged_update(
    op: &Op<'_>,
    sysroot: &ostree::Sysroot,
    booted: &ostree::Deployment,
    target: &str,
    source: &Source,
    id: &str,
) -> Result<()> {
    let osname = booted.osname();
    let repo = sysroot.repo();
    // Package changes are those of the base (a layered deployment's own packages are not
    // part of an update).
    let base = crate::layering::base_of(&repo, &booted.csum())?;
    if base == target {
        return super::cached_update::write(op.path, &osname, None);
    }
    let (version, timestamp, meta) = super::commit_info(&repo, target)?;
    let setup = repo_setup_for(op.path, sysroot, &osname)?;
    let warn = |w: &str| tracing::info!("{w}");
    let packages =
        packages::update_packages(&repo, &base, target, Some(setup), false, &warn, &|| false)?;
    let mut check = UpdateCheck {
        checksum: target.to_owned(),
        version,
        timestamp,
        origin: source.to_string(),
        base: base.to_string(),
        packages,
        deployment: Some(id.to_owned()),
        manifest_diff: None,
    };
    if let Source::Image(_) = source {
        if let Some((digest, version)) = container::image_of_commit(&meta) {
            check.checksum = digest;
            check.version = version;
        }
        let base_meta = super::commit_info(&repo, &base)?.2;
        check.manifest_diff = container::layer_diff(&base_meta, &meta)?;
    }
    super::cached_update::write(op.path, &osname, Some(&check))
}

/// `ModifyYumRepo`: sets `enabled` of repository `repo` of `osname`'s configuration.
pub(crate) fn modify_yum_repo(
    op: &Op<'_>,
    osname: &str,
    repo: &str,
    enabled: Option<bool>,
) -> Result<Report> {
    let setup = {
        let sysroot = super::open(op.path, Some(op.cancellable))?;
        repo_setup_for(op.path, &sysroot, osname)?
    };
    op.check_cancelled()?;
    let Some(enabled) = enabled else {
        op.progress.message("No changes.");
        return Ok(Report::unchanged(format!("repository {repo} unchanged")));
    };
    crate::rpm::repos::set_enabled(&setup, repo, enabled)?;
    let state = if enabled { "enabled" } else { "disabled" };
    op.progress
        .message(&format!("Repository '{repo}' is now {state}."));
    Ok(Report::unchanged(format!("repository {repo} {state}")))
}

/// `DownloadRebaseRpmDiff` / `DownloadDeployRpmDiff`: fetches what a package diff between the
/// current deployment and another refspec or revision needs, and no more: the commit's
/// metadata, plus its `/usr/share/rpm` when it has no package-list metadata.
pub(crate) fn download_diff(
    op: &Op<'_>,
    osname: &str,
    rebase: Option<&str>,
    revision: Option<&Revision>,
) -> Result<Report> {
    let locked = op.lock()?;
    let sysroot = &locked.0;
    let repo = sysroot.repo();
    let base = current_base(sysroot, osname)?;
    let current = base.origin().as_ref().and_then(origin_refspec);
    let image = base.origin().as_ref().and_then(origin_image);
    let refspec = match source_for(current.as_deref(), image.as_deref(), rebase)? {
        Source::Ostree(r) => r,
        Source::Image(image) => {
            // An image's update data is its manifest and configuration: no layer is fetched.
            if revision.is_some() {
                bail!("Package diffs of an image digest need the image: deploy it instead");
            }
            let base_commit = crate::layering::base_of(&repo, &base.csum())?;
            let found = check_image_update(op, &repo, &image, &base_commit)?;
            if rebase.is_none() {
                super::cached_update::write(op.path, osname, found.as_ref())?;
            }
            return Ok(Report::unchanged(format!("manifest of {image} ready")));
        }
    };
    if rebase.is_some() {
        op.progress.message(&format!("Updating from: {refspec}"));
    }
    let remote = refspec.remote.as_deref();
    let (target, fetch_ref) = match revision {
        Some(Revision::Checksum(c)) => {
            if let Some(remote) = remote {
                pull(op, &repo, remote, &[c], Fetch::CommitOnly, 0)?;
            }
            (c.clone(), c.clone())
        }
        Some(Revision::Version(v)) => {
            let c = find_version(op, &repo, &refspec, v, false)?;
            (c.clone(), c)
        }
        None => {
            if let Some(remote) = remote {
                pull(op, &repo, remote, &[&refspec.branch], Fetch::CommitOnly, 0)?;
            }
            let head = repo
                .resolve_rev(&refspec.to_string(), false)?
                .ok_or_else(|| anyhow!("Ref {refspec} not found"))?
                .to_string();
            // The rpmdb is fetched by checksum: the branch may move meanwhile.
            (head.clone(), head)
        }
    };
    op.check_cancelled()?;
    if let Some(remote) = remote
        && !packages::has_pkglist(&repo, &target)?
    {
        pull(
            op,
            &repo,
            remote,
            &[&fetch_ref],
            Fetch::Subdir(RPMDB_SUBDIR),
            0,
        )?;
    }
    if target == base.csum().as_str() {
        op.progress
            .message(if rebase.is_none() && revision.is_none() {
                "No upgrade available."
            } else {
                "No change."
            });
    }
    Ok(Report::unchanged(format!("package data of {target} ready")))
}

/// `FinalizeDeployment`, first half: checks that the staged deployment of `osname` is the one
/// the caller expects and may be finalized. The unlock itself ([`unlock_staged`]) runs only once
/// the reboot was requested and accepted.
pub(crate) fn finalize_check(
    op: &Op<'_>,
    osname: &str,
    checksum: Option<&str>,
    allow_missing_checksum: bool,
    allow_unlocked: bool,
) -> Result<Report> {
    let locked = op.lock()?;
    let sysroot = &locked.0;
    let staged = sysroot
        .staged_deployment()
        .ok_or_else(|| anyhow!("No staged deployment to finalize"))?;
    if staged.osname() != osname {
        bail!(
            "The staged deployment belongs to '{}', not '{osname}'",
            staged.osname()
        );
    }
    // For an image, the caller may name the image's digest instead of the commit.
    let digest = sysroot
        .repo()
        .load_commit(&crate::layering::base_of(&sysroot.repo(), &staged.csum())?)
        .ok()
        .and_then(|(c, _)| container::image_of_commit(&c.child_value(0)))
        .map(|(d, _)| d);
    match checksum {
        Some(c) if c != staged.csum().as_str() && digest.as_deref() != Some(c) => {
            bail!(
                "Expected staged base checksum {c}, but found {}",
                staged.csum()
            )
        }
        None if !allow_missing_checksum => bail!(
            "No checksum given: pass the checksum of the staged deployment you expect ({}), or allow a missing checksum",
            staged.csum()
        ),
        _ => {}
    }
    if !Path::new(STAGED_LOCKED_MARKER).exists() && !allow_unlocked {
        bail!("Staged deployment already unlocked");
    }
    op.progress.message(&format!(
        "Staged deployment {} is applied at the next shutdown, once the reboot is accepted",
        staged.csum()
    ));
    Ok(Report::changed(format!("finalizing {}", staged.csum())))
}

/// `FinalizeDeployment`, second half: unlocks the staged deployment, so the shutdown that
/// follows applies it.
pub(crate) fn unlock_staged() -> Result<()> {
    let marker = PathBuf::from(STAGED_LOCKED_MARKER);
    match std::fs::remove_file(&marker) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", marker.display())),
    }
}

/// A test hook that simulates a crash at a named point: when `RPMOSTREED_TEST_FAULT` names
/// it, the process aborts there, as a SIGKILL would stop it (no unwinding, no cleanup). Only
/// root sets the daemon's environment.
fn fault_point(name: &str) {
    if std::env::var("RPMOSTREED_TEST_FAULT").is_ok_and(|v| v == name) {
        tracing::error!("test fault point {name}: aborting");
        std::process::abort();
    }
}

/// The result of an update check.
#[derive(Debug, Clone)]
pub(crate) struct UpdateCheck {
    /// The new commit.
    pub(crate) checksum: String,
    /// Its version.
    pub(crate) version: Option<String>,
    /// Its timestamp.
    pub(crate) timestamp: u64,
    /// The refspec it is on.
    pub(crate) origin: String,
    /// The base it was compared with.
    pub(crate) base: String,
    /// What changes in packages.
    pub(crate) packages: UpdatePackages,
    /// The staged deployment the update was computed against, if it was.
    pub(crate) deployment: Option<String>,
    /// For an image: the layer statistics against the deployed image.
    pub(crate) manifest_diff: Option<container::LayerDiff>,
}

/// Fetches the newest commit's metadata of `osname`'s refspec (no content) and compares it with
/// the current base. `Ok(None)`: no update.
pub(crate) fn check_update(op: &Op<'_>, osname: &str) -> Result<Option<UpdateCheck>> {
    let locked = op.lock()?;
    let sysroot = &locked.0;
    let repo = sysroot.repo();
    let base = current_base(sysroot, osname)?;
    let origin = base
        .origin()
        .ok_or_else(|| anyhow!("The deployment has no origin"))?;
    let refspec = match source_for(
        origin_refspec(&origin).as_deref(),
        origin_image(&origin).as_deref(),
        None,
    )? {
        Source::Ostree(r) => r,
        Source::Image(image) => {
            let base_commit = crate::layering::base_of(&repo, &base.csum())?;
            return check_image_update(op, &repo, &image, &base_commit);
        }
    };
    if let Some(remote) = &refspec.remote {
        pull(op, &repo, remote, &[&refspec.branch], Fetch::CommitOnly, 0)?;
    }
    let head = repo
        .resolve_rev(&refspec.to_string(), false)?
        .ok_or_else(|| anyhow!("Ref {refspec} not found"))?
        .to_string();
    // A layered deployment is compared through its base commit.
    let base_commit = crate::layering::base_of(&repo, &base.csum())?;
    if head == base_commit {
        op.progress.message("No update available.");
        return Ok(None);
    }
    let (version, timestamp, _) = super::commit_info(&repo, &head)?;
    op.progress.message(&format!(
        "Update available: {} ({head})",
        version.as_deref().unwrap_or("no version")
    ));
    // The package diff needs the new commit's package list: its metadata, else its rpmdb.
    if let Some(remote) = &refspec.remote
        && !packages::has_pkglist(&repo, &head)?
    {
        // By checksum: the branch may have moved since the metadata pull.
        pull(op, &repo, remote, &[&head], Fetch::Subdir(RPMDB_SUBDIR), 0)?;
    }
    let setup = packages::repo_setup(
        op.path,
        osname,
        op.path.join(sysroot.deployment_dirpath(&base)),
    );
    let warn = |w: &str| op.progress.message(w);
    let cancelled = || ostree::prelude::CancellableExt::is_cancelled(op.cancellable);
    // Advisories come from the metadata already cached (RefreshMd): a check never waits on a
    // metadata download (upstream's checks consult rpm-md only when packages are layered).
    let packages = packages::update_packages(
        &repo,
        &base_commit,
        &head,
        Some(setup),
        false,
        &warn,
        &cancelled,
    )?;
    op.check_cancelled()?;
    Ok(Some(UpdateCheck {
        checksum: head,
        version,
        timestamp,
        origin: refspec.to_string(),
        base: base_commit,
        packages,
        deployment: None,
        manifest_diff: None,
    }))
}

/// The update check of an image: its manifest and configuration only (the package diff needs
/// its layers, which a check does not fetch).
fn check_image_update(
    op: &Op<'_>,
    repo: &ostree::Repo,
    image: &OstreeImageReference,
    base_commit: &str,
) -> Result<Option<UpdateCheck>> {
    let Some(update) = container::check(op, repo, image, base_commit)? else {
        op.progress.message("No update available.");
        return Ok(None);
    };
    op.progress.message(&format!(
        "Update available: {} ({})",
        update.version.as_deref().unwrap_or("no version"),
        update.digest
    ));
    let d = update.diff;
    op.progress.message(&format!(
        "Total new layers: {}  Size: {}; removed layers: {}  Size: {}; added layers: {}  Size: {}",
        d.total,
        glib::format_size(d.total_size),
        d.n_removed,
        glib::format_size(d.removed_size),
        d.n_added,
        glib::format_size(d.added_size)
    ));
    Ok(Some(UpdateCheck {
        checksum: update.digest,
        version: update.version,
        timestamp: update.timestamp,
        origin: image.to_string(),
        base: base_commit.to_owned(),
        packages: UpdatePackages::default(),
        deployment: None,
        manifest_diff: Some(update.diff),
    }))
}

/// The directory a package diff needs of a commit without package-list metadata.
pub(crate) const RPMDB_SUBDIR: &str = "/usr/share/rpm";

/// The rpm-md setup of `osname`: the repositories of the booted deployment when it is of
/// `osname`, else of the merge deployment (the configuration the next deployment gets).
pub(crate) fn repo_setup_for(
    path: &Path,
    sysroot: &ostree::Sysroot,
    osname: &str,
) -> Result<crate::rpm::repos::RepoSetup> {
    let deployment = current_base(sysroot, osname)?;
    let root = path.join(sysroot.deployment_dirpath(&deployment));
    Ok(packages::repo_setup(path, osname, root))
}

/// What updates and package diffs of `osname` compare with: libostree's merge deployment,
/// i.e. the booted deployment when it is of `osname`, else the first deployment of `osname`.
fn current_base(sysroot: &ostree::Sysroot, osname: &str) -> Result<ostree::Deployment> {
    sysroot
        .merge_deployment(Some(osname))
        .ok_or_else(|| anyhow!("No deployments found for os '{osname}'"))
}

/// `RefreshMd`: downloads the rpm-md metadata of `osname`'s enabled repositories whose cache
/// is stale (all of them with `force`) into the cache. Writes no deployment.
pub(crate) fn refresh_md(op: &Op<'_>, osname: &str, force: bool) -> Result<Report> {
    let setup = {
        let sysroot = super::open(op.path, Some(op.cancellable))?;
        repo_setup_for(op.path, &sysroot, osname)?
    };
    op.check_cancelled()?;
    let updates = crate::rpm::repos::refresh(
        &setup,
        force,
        &mut |repo, percent| {
            op.progress
                .percent(&format!("Updating metadata for '{repo}'"), percent)
        },
        &|| ostree::prelude::CancellableExt::is_cancelled(op.cancellable),
    );
    op.progress.progress_end();
    // A cancel kills the helper: report it as every operation reports a cancel.
    op.check_cancelled()?;
    let updates = updates?;
    if updates.is_empty() {
        op.progress.message("No enabled rpm-md repositories.");
        return Ok(Report::unchanged("no enabled rpm-md repositories"));
    }
    for u in &updates {
        op.progress.message(&format!(
            "rpm-md repo '{}'{}; generated: {}",
            u.id,
            if u.updated { "" } else { " (cached)" },
            format_timestamp(u.timestamp)
        ));
    }
    let updated = updates.iter().filter(|u| u.updated).count();
    Ok(Report::unchanged(format!(
        "{updated} of {} rpm-md repositories updated",
        updates.len()
    )))
}

/// A UTC timestamp as `YYYY-MM-DDTHH:MM:SSZ`.
fn format_timestamp(secs: u64) -> String {
    glib::DateTime::from_unix_utc(secs as i64)
        .and_then(|d| d.format("%Y-%m-%dT%H:%M:%SZ"))
        .map(|s| s.to_string())
        .unwrap_or_else(|_| secs.to_string())
}
