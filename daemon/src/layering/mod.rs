//! Package layering: a new tree made of a base commit plus the packages an origin requests,
//! rebuilt from scratch on every change and every upgrade, as upstream builds it.
//!
//! 1. The base is checked out with hardlinks into a private directory of the repository.
//! 2. The requests are resolved by libdnf (in the helper process) against the configured
//!    repositories with every base package locked; requests the base already satisfies are
//!    inactive and not layered.
//! 3. Each resolved RPM is imported into the package cache ([`pkgcache`]) unless it is there
//!    from the same repository data, then checked out over the base (union-identical
//!    hardlinks: a conflicting file is an error).
//! 4. The scriptlets run in bubblewrap behind rofiles-fuse ([`scripts`]).
//! 5. The rpm database is copied to fresh inodes and the packages added by librpm (helper).
//! 6. The tree is committed with the base as parent and upstream's client-layer metadata.

pub(crate) mod pkgcache;
pub(crate) mod scripts;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use ostree::{gio, glib, prelude::*};
use rpmostree_dnf::Package;
use rpmostree_dnf::protocol::{Message, Reply, Request as HelperRequest};
use sha2::{Digest, Sha512};

use crate::rpm::{helper, repos::RepoSetup};
use crate::sysroot::ops::Op;
use crate::sysroot::packages;

/// `rpmostree.clientlayer_version` of the commits made here (upstream's current value).
const CLIENTLAYER_VERSION: u32 = 6;

/// Wall time per phase of one assembly, logged at the end (what docs/PERFORMANCE.md's
/// layering figures break down into).
#[derive(Debug)]
struct Phases {
    last: std::time::Instant,
    done: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    fn new() -> Self {
        Self {
            last: std::time::Instant::now(),
            done: Vec::new(),
        }
    }

    /// Ends the phase `name` now.
    fn end(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.done.push((name, now - self.last));
        self.last = now;
    }
}

impl Drop for Phases {
    fn drop(&mut self) {
        let text: Vec<String> = self
            .done
            .iter()
            .map(|(n, d)| format!("{n} {} ms", d.as_millis()))
            .collect();
        tracing::info!("layering phases: {}", text.join(", "));
    }
}

/// What to layer on which base.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The base commit.
    pub(crate) base: String,
    /// The package requests of the origin (as typed).
    pub(crate) packages: Vec<String>,
    /// The local packages of the origin: NEVRA -> sha256 of the header (in the cache).
    pub(crate) local: BTreeMap<String, String>,
    /// Base packages to remove (`[overrides] remove`), by name.
    pub(crate) remove: Vec<String>,
    /// Local packages replacing the base package of the same name (`[overrides]
    /// replace-local`): NEVRA -> sha256 of the header (in the cache).
    pub(crate) replace_local: BTreeMap<String, String>,
    /// The repositories (of the configuration merge deployment).
    pub(crate) repos: RepoSetup,
    /// Whether `Recommends` are installed (`rpm-ostreed.conf` `Recommends`).
    pub(crate) weak_deps: bool,
    /// Use only cached metadata and packages.
    pub(crate) cache_only: bool,
    /// Resolve only: import, assemble and commit nothing.
    pub(crate) resolve_only: bool,
    /// Requests new in this change: one the base already satisfies is an error unless
    /// `allow_inactive` (upstream refuses to add a request that is inactive at once).
    pub(crate) new_requests: Vec<String>,
    /// Accept new requests that the base already satisfies.
    pub(crate) allow_inactive: bool,
    /// Overrides new in this change (removed names, replacement NEVRAs): unlike those of the
    /// origin, which a new base may make moot, they must apply to this base.
    pub(crate) new_overrides: Vec<String>,
}

/// The outcome of layering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layered {
    /// The layered commit, `None` when nothing is left to layer (the base is deployed as is)
    /// or only a resolution was asked for.
    pub(crate) commit: Option<String>,
    /// Requests the base already satisfies: (request, providing base package).
    pub(crate) inactive: Vec<(String, String)>,
    /// The packages layered (NEVRAs), sorted.
    pub(crate) installed: Vec<String>,
}

/// A private scratch directory in the repository's `tmp/` (same file system, so checkouts
/// hardlink), mode 0700 so that world-writable directories of the tree stay unreachable;
/// removed on drop.
struct Workdir(PathBuf);

impl Workdir {
    fn new(repo_path: &Path) -> Result<Self> {
        static N: AtomicUsize = AtomicUsize::new(0);
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| sweep_stale(&repo_path.join("tmp")));
        let dir = repo_path.join("tmp").join(format!(
            "rpmostree-layer-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        if dir.exists() {
            remove_tree(&dir);
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        remove_tree(&self.0);
    }
}

/// Removes what a killed daemon left in the repository's `tmp/`: assembly directories (with
/// the rofiles-fuse mounts of their scriptlets, unmounted first) and copies of local RPMs,
/// named after a process that is gone.
fn sweep_stale(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix("rpmostree-layer-")
            .or_else(|| name.strip_prefix("rpmostree-local-"))
        else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || process_alive(pid) {
            continue;
        }
        let path = entry.path();
        let prefix = format!("{}/", path.display());
        for line in mounts.lines() {
            if let Some(point) = line.split(' ').nth(4)
                && point.starts_with(&prefix)
            {
                scripts::unmount(Path::new(point));
            }
        }
        if path.is_dir() {
            remove_tree(&path);
        } else {
            let _ = fs::remove_file(&path);
        }
        if fs::symlink_metadata(&path).is_ok() {
            tracing::warn!(
                "could not remove {} (left by process {pid})",
                path.display()
            );
        } else {
            tracing::info!("removed {} (left by process {pid})", path.display());
        }
    }
}

/// Whether process `pid` exists and is not a zombie (a killed daemon its parent has not
/// reaped yet is gone).
fn process_alive(pid: &str) -> bool {
    let Ok(stat) = fs::read_to_string(Path::new("/proc").join(pid).join("stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_default();
    !matches!(state, "Z" | "X" | "x")
}

/// Removes a tree that may hold read-only directories (package directories without u+w).
fn remove_tree(dir: &Path) {
    if fs::remove_dir_all(dir).is_err() {
        let _ = std::process::Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(dir)
            .status();
        let _ = fs::remove_dir_all(dir);
    }
}

/// Resolves `requests` against the repositories with the packages of `dbroot` (a tree with
/// the base's rpm database) locked.
fn depsolve(
    op: &Op<'_>,
    req: &Request,
    remove: &[String],
    dbroot: &Path,
    local: Vec<PathBuf>,
    replace_local: Vec<PathBuf>,
) -> Result<rpmostree_dnf::Resolution> {
    let request = HelperRequest::Depsolve {
        options: req.repos.options(),
        root: dbroot.to_owned(),
        requests: req.packages.clone(),
        local,
        weak_deps: req.weak_deps,
        cache_only: req.cache_only,
        remove: remove.to_vec(),
        replace_local,
    };
    let progress = op.progress.clone();
    let mut on_message = |m: &Message| match m {
        Message::Progress { repo, percent } => {
            progress.percent(&format!("Downloading from '{repo}'"), *percent);
        }
        Message::Warning(w) => progress.message(&format!("Warning: {w}")),
        _ => {}
    };
    let cancellable = op.cancellable.clone();
    match helper::call(&request, &mut on_message, &|| cancellable.is_cancelled())? {
        Reply::Resolved(r) => Ok(r),
        other => Err(helper::unexpected(other)),
    }
}

/// Copies every file under `dir` to a fresh inode (librpm rewrites its database in place, and
/// those files are hardlinks into the repository).
fn break_hardlinks(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            break_hardlinks(&path)?;
        } else if meta.is_file() {
            let tmp = path.with_extension("rpmostree-tmp");
            fs::copy(&path, &tmp).with_context(|| format!("copying {}", path.display()))?;
            fs::rename(&tmp, &path)?;
        }
    }
    Ok(())
}

/// Hardlink checkout of `commit` into `dir/name`, or over an existing tree with `union`.
fn checkout(
    repo: &ostree::Repo,
    commit: &str,
    dest: &Path,
    union: bool,
    devino: &ostree::RepoDevInoCache,
    cancellable: &gio::Cancellable,
) -> Result<()> {
    let opts = ostree::RepoCheckoutAtOptions {
        overwrite_mode: if union {
            ostree::RepoCheckoutOverwriteMode::UnionIdentical
        } else {
            ostree::RepoCheckoutOverwriteMode::None
        },
        devino_to_csum_cache: Some(devino.clone()),
        // Union-identical needs hardlinks (libostree refuses it otherwise), and the commit at
        // the end relies on them to skip unchanged files.
        no_copy_fallback: true,
        ..Default::default()
    };
    repo.checkout_at(Some(&opts), -100, dest, commit, Some(cancellable))
        .map_err(anyhow::Error::from)
}

/// Layers `req.packages` on `req.base`. Writes package commits and the layered commit into
/// the repository; changes no deployment.
pub(crate) fn assemble(op: &Op<'_>, repo: &ostree::Repo, req: &Request) -> Result<Layered> {
    // libostree may know the repository by a `/proc/self/fd` path, which the helper
    // processes cannot use: name it from the sysroot.
    let mut phases = Phases::new();
    let work = Workdir::new(&op.path.join("ostree/repo"))?;
    let cancellable = op.cancellable;

    // The base's rpm database, for the resolver.
    let dbroot = work.0.join("dbroot");
    fs::create_dir_all(dbroot.join("usr/share"))?;
    let devino = ostree::RepoDevInoCache::new();
    let base_rpmdb = ostree::RepoCheckoutAtOptions {
        subpath: Some(PathBuf::from("/usr/share/rpm")),
        force_copy: true,
        ..Default::default()
    };
    let has_rpmdb = repo
        .checkout_at(
            Some(&base_rpmdb),
            -100,
            dbroot.join("usr/share/rpm"),
            &req.base,
            Some(cancellable),
        )
        .is_ok();
    if !has_rpmdb {
        bail!(
            "The base commit {} has no package database (usr/share/rpm): packages cannot be layered on it",
            req.base
        );
    }
    // Local packages take part in the resolution by their headers, from the cache.
    let local_dir = work.0.join("local");
    fs::create_dir_all(&local_dir)?;
    let mut local_cached: BTreeMap<PathBuf, pkgcache::Cached> = BTreeMap::new();
    let mut header_files = |set: &BTreeMap<String, String>| -> Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for (nevra, sha256) in set {
            let cached = pkgcache::find_local(repo, nevra, sha256)?;
            let path = local_dir.join(format!("{}.rpm", local_cached.len()));
            fs::write(&path, &cached.header)?;
            paths.push(path.clone());
            local_cached.insert(path, cached);
        }
        Ok(paths)
    };
    // Overrides that no longer apply to this base (after an upgrade) are inactive, as
    // upstream says: a removal of a package the base no longer has, a replacement of one it
    // does not have or already has in that very version.
    let base_packages = packages::for_commit(repo, &req.base)?.unwrap_or_default();
    let in_base = |name: &str| base_packages.iter().any(|p| p.name == name);
    let (remove, inactive_removals): (Vec<String>, Vec<String>) =
        req.remove.iter().cloned().partition(|n| in_base(n));
    if let Some(name) = inactive_removals
        .iter()
        .find(|n| req.new_overrides.contains(n))
    {
        bail!("Package \"{name}\" not found");
    }
    if !inactive_removals.is_empty() {
        op.progress.message(&format!(
            "Inactive base removals:\n  {}",
            inactive_removals.join("\n  ")
        ));
    }
    let mut replace_local = BTreeMap::new();
    let mut inactive_replacements = Vec::new();
    for (nevra, sha256) in &req.replace_local {
        let name = pkgcache::split_nevra(nevra)
            .map(|(n, ..)| n)
            .unwrap_or_default();
        let already = base_packages.iter().any(|p| p.nevra() == *nevra);
        if in_base(&name) && !already {
            replace_local.insert(nevra.clone(), sha256.clone());
        } else if !req.new_overrides.contains(nevra) {
            inactive_replacements.push(nevra.clone());
        } else if already {
            bail!("Package '{nevra}' is already in the base");
        } else {
            bail!("Package '{name}' is not in the base; use install to layer it");
        }
    }
    if !inactive_replacements.is_empty() {
        op.progress.message(&format!(
            "Inactive base replacements:\n  {}",
            inactive_replacements.join("\n  ")
        ));
    }
    let local_paths = header_files(&req.local)?;
    let replace_paths = header_files(&replace_local)?;
    phases.end("prepare");
    op.progress.task_begin("Resolving dependencies");
    let resolution = depsolve(op, req, &remove, &dbroot, local_paths, replace_paths)?;
    op.progress.task_end("done");
    if !req.allow_inactive {
        for new in &req.new_requests {
            let providers: Vec<&str> = resolution
                .inactive
                .iter()
                .filter(|(r, _)| r == new)
                .map(|(_, p)| p.as_str())
                .collect();
            if !providers.is_empty() {
                bail!(
                    "\"{new}\" is already provided by: {}. Use --allow-inactive to explicitly require it.",
                    providers.join(" ")
                );
            }
        }
    }
    if !resolution.inactive.is_empty() {
        op.progress.message("Inactive requests:");
        for (request, provider) in &resolution.inactive {
            op.progress
                .message(&format!("  {request} (already provided by {provider})"));
        }
    }
    let installed: Vec<String> = resolution
        .packages
        .iter()
        .map(|p| p.package.nevra())
        .collect();
    let mut layered = Layered {
        commit: None,
        inactive: resolution.inactive.clone(),
        installed,
    };
    for p in &resolution.removed {
        op.progress
            .message(&format!("Removing base package {}", p.nevra()));
    }
    for (old, new) in &resolution.replaced {
        op.progress.message(&format!(
            "Replacing base package {} with {}",
            old.nevra(),
            new.package.nevra()
        ));
    }
    let nothing = resolution.packages.is_empty()
        && resolution.removed.is_empty()
        && resolution.replaced.is_empty();
    if nothing || req.resolve_only {
        return Ok(layered);
    }
    op.check_cancelled()?;

    // Import.
    phases.end("resolve");
    op.progress.task_begin(&format!(
        "Importing packages ({})",
        resolution.packages.len()
    ));
    let mut cached = Vec::new();
    for (i, p) in resolution.packages.iter().enumerate() {
        if let Some(c) = local_cached.get(&p.path) {
            cached.push(c.clone());
            continue;
        }
        if let Some(c) = pkgcache::cached_from_repo(repo, &p.package, &p.repo, &p.checksum)? {
            cached.push(c);
            continue;
        }
        let staging = work.0.join(format!("import-{i}"));
        fs::create_dir_all(&staging)?;
        let from_repo = Some((p.repo.as_str(), p.checksum.as_str()));
        let c = pkgcache::import(repo, &p.path, from_repo, &staging, Some(cancellable))?;
        remove_tree(&staging);
        cached.push(c);
        op.check_cancelled()?;
    }
    let mut replacements = Vec::new();
    for (_, new) in &resolution.replaced {
        let c = local_cached.get(&new.path).ok_or_else(|| {
            anyhow!(
                "the replacement {} is not a cached local package",
                new.package.nevra()
            )
        })?;
        replacements.push(c.clone());
    }
    op.progress.task_end("done");

    // Assembly.
    phases.end("import");
    op.progress.task_begin("Checking out tree");
    let root = work.0.join("root");
    checkout(repo, &req.base, &root, false, &devino, cancellable)
        .with_context(|| format!("checking out the base commit {}", req.base))?;
    op.progress.task_end("done");
    // The files of removed and replaced base packages go first.
    let gone = gone_nevras(&resolution);
    if !gone.is_empty() {
        let kept: Vec<String> = base_packages
            .iter()
            .map(Package::nevra)
            .filter(|n| !gone.contains(n))
            .collect();
        delete_package_files(&dbroot, &root, &gone, &kept)?;
    }
    phases.end("base checkout");
    op.progress.task_begin("Checking out packages");
    for c in cached.iter().chain(&replacements) {
        checkout(repo, &c.commit, &root, true, &devino, cancellable)
            .with_context(|| format!("checking out {} over the base", c.nevra))?;
    }
    op.progress.task_end("done");
    op.check_cancelled()?;

    // Scripts, with /etc in place for their duration.
    let mut all_scripts = Vec::new();
    for c in &cached {
        all_scripts.extend(scripts::of_package(&c.header, &c.nevra, &c.name, 1)?);
    }
    for c in &replacements {
        all_scripts.extend(scripts::of_package(&c.header, &c.nevra, &c.name, 2)?);
    }
    // File triggers, when packages were added: the base's (except those of removed or
    // replaced packages), then the new packages'.
    if !cached.is_empty() || !replacements.is_empty() {
        match helper::call_simple(&HelperRequest::FileTriggers {
            root: dbroot.clone(),
        })? {
            Reply::FileTriggers(triggers) => all_scripts.extend(
                triggers
                    .into_iter()
                    .filter(|t| !gone.contains(&t.nevra))
                    .map(scripts::from_base_trigger),
            ),
            other => return Err(helper::unexpected(other)),
        }
        for c in cached.iter().chain(&replacements) {
            all_scripts.extend(scripts::file_triggers_of_package(
                &c.header, &c.nevra, &c.name,
            )?);
        }
    }
    let added = !cached.is_empty() || !replacements.is_empty();
    if added || !all_scripts.is_empty() {
        // /etc in place (upstream's "tempetc"), holding the running system's accounts too.
        let usr_etc = root.join("usr/etc");
        let etc = root.join("etc");
        fs::rename(&usr_etc, &etc).context("moving usr/etc to etc for the scripts")?;
        let merged = merge_accounts(&etc, &req.repos.root.join("etc"));
        let ran = merged.and_then(|merged| {
            let ran = (|| -> Result<()> {
                if added {
                    run_sysusers(op, &root)?;
                    // Files owned by other users than root get their owners (the package
                    // cache holds them as root), from the tree's accounts (the running
                    // system's merged in, sysusers' added), else the fixed ids of sysusers.d.
                    let mut accounts = Accounts::read(&[etc.clone(), root.join("usr/lib")]);
                    accounts.add_sysusers(&root.join("usr/lib/sysusers.d"));
                    for c in cached.iter().chain(&replacements) {
                        apply_owners(&root, c, &accounts)?;
                    }
                }
                if !all_scripts.is_empty() {
                    op.progress
                        .task_begin("Running pre scripts and post scripts");
                    scripts::run(&root, &work.0, &all_scripts, &|| cancellable.is_cancelled())?;
                    op.progress.task_end(&format!("{} done", all_scripts.len()));
                }
                Ok(())
            })();
            let unmerged = unmerge_accounts(&etc, &merged);
            ran.and(unmerged)
        });
        fs::rename(&etc, &usr_etc).context("moving etc back to usr/etc")?;
        ran?;
    }
    op.check_cancelled()?;

    // The rpm database.
    phases.end("packages and scripts");
    op.progress.task_begin("Writing rpmdb");
    let rpmdb = root.join("usr/share/rpm");
    break_hardlinks(&rpmdb)?;
    let metarpm = work.0.join("metarpm");
    fs::create_dir_all(&metarpm)?;
    let write = |set: &[pkgcache::Cached]| -> Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for c in set {
            let path = metarpm.join(format!("{}.rpm", c.nevra));
            fs::write(&path, &c.header)?;
            paths.push(path);
        }
        Ok(paths)
    };
    match helper::call_simple(&HelperRequest::WriteRpmdb {
        root: root.clone(),
        packages: write(&cached)?,
        upgrades: write(&replacements)?,
        erase: resolution.removed.iter().map(Package::nevra).collect(),
    })? {
        Reply::Done => {}
        other => return Err(helper::unexpected(other)),
    }
    op.progress.task_end("done");

    // The commit.
    phases.end("rpmdb");
    op.progress.task_begin("Writing OSTree commit");
    let metadata = commit_metadata(repo, req, &resolution, &base_packages, &root)?;
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let spec = pkgcache::CommitSpec {
        parent: Some(&req.base),
        metadata: &metadata,
        time,
        refname: None,
        devino: Some(&devino),
    };
    let commit = pkgcache::commit_dir(repo, &root, &spec, Some(cancellable))
        .context("committing the layered tree")?;
    op.progress.task_end("done");
    phases.end("commit");
    layered.commit = Some(commit);
    drop(work);
    phases.end("cleanup");
    Ok(layered)
}

/// The metadata of the layered commit (upstream's client-layer keys).
fn commit_metadata(
    repo: &ostree::Repo,
    req: &Request,
    resolution: &rpmostree_dnf::Resolution,
    base_packages: &[Package],
    root: &Path,
) -> Result<glib::Variant> {
    let (base, _) = repo.load_commit(&req.base)?;
    let base_meta = glib::VariantDict::new(Some(&base.child_value(0)));
    let dict = glib::VariantDict::new(None);
    if let Some(v) = base_meta.lookup_value("version", None) {
        dict.insert_value("version", &v);
    }
    dict.insert_value("rpmostree.clientlayer", &true.to_variant());
    dict.insert_value(
        "rpmostree.clientlayer_version",
        &CLIENTLAYER_VERSION.to_variant(),
    );
    let inactive: Vec<&String> = resolution.inactive.iter().map(|(r, _)| r).collect();
    let mut active: Vec<String> = req
        .packages
        .iter()
        .filter(|p| !inactive.contains(p))
        .cloned()
        .collect();
    active.sort();
    dict.insert_value("rpmostree.packages", &active.to_variant());
    dict.insert_value("rpmostree.modules", &Vec::<String>::new().to_variant());
    let removed: Vec<glib::Variant> = resolution
        .removed
        .iter()
        .map(|p| glib::Variant::from_variant(&nevra_tuple(p)))
        .collect();
    dict.insert_value(
        "rpmostree.removed-base-packages",
        &glib::Variant::array_from_iter_with_type(glib::VariantTy::VARIANT, removed),
    );
    let replaced: Vec<glib::Variant> = resolution
        .replaced
        .iter()
        .map(|(old, new)| {
            glib::Variant::tuple_from_iter([
                glib::Variant::from_variant(&nevra_tuple(&new.package)),
                glib::Variant::from_variant(&nevra_tuple(old)),
            ])
        })
        .collect();
    dict.insert_value(
        "rpmostree.replaced-base-packages",
        &glib::Variant::array_from_iter_with_type(
            glib::VariantTy::new("(vv)").map_err(|e| anyhow!("{e}"))?,
            replaced,
        ),
    );
    let mut repos: Vec<String> = resolution
        .packages
        .iter()
        .map(|p| p.repo.clone())
        .filter(|r| r != "@commandline")
        .collect();
    repos.sort();
    repos.dedup();
    let repo_dicts: Vec<glib::Variant> = repos
        .iter()
        .map(|id| {
            let d = glib::VariantDict::new(None);
            d.insert_value("id", &id.to_variant());
            d.insert_value("timestamp", &0u64.to_variant());
            d.end()
        })
        .collect();
    dict.insert_value(
        "rpmostree.rpmmd-repos",
        &glib::Variant::array_from_iter_with_type(glib::VariantTy::VARDICT, repo_dicts),
    );
    // The package list of the whole tree: the base's and the layered ones.
    let gone = gone_nevras(resolution);
    let mut list: Vec<Package> = base_packages
        .iter()
        .filter(|p| !gone.contains(&p.nevra()))
        .cloned()
        .collect();
    list.extend(resolution.packages.iter().map(|p| p.package.clone()));
    list.extend(
        resolution
            .replaced
            .iter()
            .map(|(_, new)| new.package.clone()),
    );
    let mut entries: Vec<(String, String, String, String, String)> = list
        .into_iter()
        .map(|p| (p.name, p.epoch.to_string(), p.version, p.release, p.arch))
        .collect();
    entries.sort();
    entries.dedup();
    dict.insert_value(packages::PKGLIST_KEY, &entries.to_variant());
    // What decides "no change" between two layered commits of the same base.
    let mut state = Sha512::new();
    state.update(req.base.as_bytes());
    for p in resolution
        .packages
        .iter()
        .chain(resolution.replaced.iter().map(|(_, new)| new))
    {
        state.update(p.package.nevra().as_bytes());
        state.update(p.checksum.as_bytes());
    }
    for p in &resolution.removed {
        state.update(b"-");
        state.update(p.nevra().as_bytes());
    }
    dict.insert_value(
        "rpmostree.state-sha512",
        &pkgcache::hex(&state.finalize()).to_variant(),
    );
    let release = kernel_release(root).context("reading the kernel of the layered tree")?;
    dict.insert_value("ostree.bootable", &true.to_variant());
    dict.insert_value("ostree.linux", &release.to_variant());
    Ok(dict.end())
}

/// The kernel release of a tree: the one directory of `usr/lib/modules` that holds a `vmlinuz`
/// (libostree's rule for bootable commits, whose `ostree.linux` key it becomes).
fn kernel_release(root: &Path) -> Result<String> {
    let modules = root.join("usr/lib/modules");
    let entries =
        fs::read_dir(&modules).with_context(|| format!("opening {}", modules.display()))?;
    let mut found: Option<String> = None;
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_dir() || !entry.path().join("vmlinuz").exists() {
            continue;
        }
        if found.is_some() {
            bail!("Multiple kernels found in /usr/lib/modules");
        }
        found = Some(entry.file_name().to_string_lossy().into_owned());
    }
    found.ok_or_else(|| anyhow!("No kernel found in /usr/lib/modules"))
}

/// Creates the accounts the tree's `sysusers.d` declares (what `systemd-sysusers` would do at
/// boot), so that packages can own files as them and scriptlets see them: the system's
/// `systemd-sysusers --root` on the tree, whose `/etc` is in place. Without `systemd-sysusers`
/// on the system, a message says the accounts are created at boot.
fn run_sysusers(op: &Op<'_>, root: &Path) -> Result<()> {
    let has_config = fs::read_dir(root.join("usr/lib/sysusers.d")).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "conf")))
    });
    if !has_config {
        return Ok(());
    }
    let Some(program) = ["/usr/bin/systemd-sysusers", "/bin/systemd-sysusers"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
    else {
        op.progress.message(
            "systemd-sysusers is not installed: the accounts of sysusers.d are created at boot",
        );
        return Ok(());
    };
    op.progress.task_begin("Running systemd-sysusers");
    let out = std::process::Command::new(program)
        .arg(format!("--root={}", root.display()))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("SYSTEMD_OFFLINE", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .context("running systemd-sysusers")?;
    if !out.status.success() {
        bail!(
            "Running systemd-sysusers: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    op.progress.task_end("done");
    Ok(())
}

/// The account databases merged for the scriptlets.
const ACCOUNT_FILES: [&str; 2] = ["passwd", "group"];

/// Lets the scriptlets see the accounts of the running system: the entries of the
/// configuration deployment's `passwd` and `group` (in `config_etc`) whose names the tree's
/// files (in `etc`, copied to new inodes first) lack are appended to them. Returns, per file,
/// the names added, which [`unmerge_accounts`] takes out again: the machine's accounts stay in
/// its own `/etc`, not in the commit.
fn merge_accounts(etc: &Path, config_etc: &Path) -> Result<Vec<Vec<String>>> {
    let name = |line: &str| line.split(':').next().unwrap_or_default().to_owned();
    let mut added = Vec::new();
    for file in ACCOUNT_FILES {
        let path = etc.join(file);
        let mut names = Vec::new();
        let Ok(tree) = fs::read_to_string(&path) else {
            added.push(names);
            continue;
        };
        let known: std::collections::HashSet<String> = tree.lines().map(name).collect();
        let machine = fs::read_to_string(config_etc.join(file)).unwrap_or_default();
        let mut text = tree.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for line in machine.lines().filter(|l| l.contains(':')) {
            let n = name(line);
            if !known.contains(&n) && !names.contains(&n) {
                text.push_str(line);
                text.push('\n');
                names.push(n);
            }
        }
        // A new inode: the file is a hardlink into the repository.
        let tmp = path.with_extension("rpmostree-merge");
        fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        let mode = fs::metadata(&path)?.permissions();
        fs::set_permissions(&tmp, mode)?;
        fs::rename(&tmp, &path)?;
        added.push(names);
    }
    Ok(added)
}

/// Takes the machine's accounts that [`merge_accounts`] added out of the tree's files again,
/// keeping whatever the scriptlets added.
fn unmerge_accounts(etc: &Path, added: &[Vec<String>]) -> Result<()> {
    for (file, names) in ACCOUNT_FILES.iter().zip(added) {
        if names.is_empty() {
            continue;
        }
        let path = etc.join(file);
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let kept: String = text
            .lines()
            .filter(|l| {
                !names
                    .iter()
                    .any(|n| l.split(':').next() == Some(n.as_str()))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&path, kept).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// User and group ids by name, from `passwd` and `group` files.
#[derive(Debug, Default)]
struct Accounts {
    users: BTreeMap<String, u32>,
    groups: BTreeMap<String, u32>,
}

impl Accounts {
    /// Reads `passwd` and `group` in each directory; the first file naming an account wins.
    fn read(dirs: &[PathBuf]) -> Self {
        let mut out = Self::default();
        let parse = |text: &str, map: &mut BTreeMap<String, u32>| {
            for line in text.lines() {
                let mut fields = line.split(':');
                if let (Some(name), Some(_), Some(id)) =
                    (fields.next(), fields.next(), fields.next())
                    && let Ok(id) = id.parse()
                {
                    map.entry(name.to_owned()).or_insert(id);
                }
            }
        };
        for dir in dirs {
            if let Ok(text) = fs::read_to_string(dir.join("passwd")) {
                parse(&text, &mut out.users);
            }
            if let Ok(text) = fs::read_to_string(dir.join("group")) {
                parse(&text, &mut out.groups);
            }
        }
        out
    }

    /// Adds the accounts that `sysusers.d` fragments in `dir` declare with fixed ids
    /// (`u NAME ID[:GID] …`, `g NAME GID`), which `systemd-sysusers` creates at boot: a package
    /// may own files as them. Accounts already known keep their ids.
    fn add_sysusers(&mut self, dir: &Path) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        files.sort();
        for file in files {
            let Ok(text) = fs::read_to_string(&file) else {
                continue;
            };
            for line in text.lines() {
                let mut fields = line.split_whitespace();
                let (Some(kind), Some(name), Some(id)) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    continue;
                };
                let (uid, gid) = match id.split_once(':') {
                    Some((u, g)) => (u, Some(g)),
                    None => (id, None),
                };
                match kind {
                    "u" => {
                        if let Ok(uid) = uid.parse::<u32>() {
                            self.users.entry(name.to_owned()).or_insert(uid);
                            let gid = gid.and_then(|g| g.parse().ok()).unwrap_or(uid);
                            self.groups.entry(name.to_owned()).or_insert(gid);
                        }
                    }
                    "g" => {
                        if let Ok(gid) = uid.parse::<u32>() {
                            self.groups.entry(name.to_owned()).or_insert(gid);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Gives the files of package `c` that belong to someone else than root their owner and group
/// (and their mode again, which a change of owner clears of setuid bits). A regular file is a
/// hardlink into the repository after the checkout: it is copied to a new inode first.
fn apply_owners(root: &Path, c: &pkgcache::Cached, accounts: &Accounts) -> Result<()> {
    use std::os::unix::fs::{PermissionsExt, lchown};
    let meta = rpm::PackageMetadata::parse(&mut std::io::Cursor::new(&c.header))
        .map_err(|e| anyhow!("{}: reading the package header: {e}", c.nevra))?;
    let entries = meta
        .get_file_entries()
        .map_err(|e| anyhow!("{}: reading the file list: {e}", c.nevra))?;
    for entry in entries {
        let (user, group) = (entry.user(), entry.group());
        if (user == "root" && group == "root") || entry.flags().contains(rpm::FileFlags::GHOST) {
            continue;
        }
        let path = entry.path();
        let Ok(pkgcache::Dest::Tree(rel)) = pkgcache::translate(&path.to_string_lossy()) else {
            continue;
        };
        let uid = *accounts.users.get(user).ok_or_else(|| {
            anyhow!(
                "While applying overrides for pkg {}: Could not find user '{user}' in passwd file",
                c.name
            )
        })?;
        let gid = *accounts.groups.get(group).ok_or_else(|| {
            anyhow!(
                "While applying overrides for pkg {}: Could not find group '{group}' in group file",
                c.name
            )
        })?;
        // /etc is in place (at `etc`) while owners are applied.
        let rel = match rel.strip_prefix("usr/etc") {
            Ok(rest) => Path::new("etc").join(rest),
            Err(_) => rel,
        };
        // Never through a symlink of the tree.
        if pkgcache::check_parents(root, &rel).is_err() {
            continue;
        }
        let target = root.join(&rel);
        let Ok(info) = fs::symlink_metadata(&target) else {
            continue;
        };
        let mode = u32::from(entry.permissions());
        let chown = |p: &Path| {
            lchown(p, Some(uid), Some(gid))
                .with_context(|| format!("changing the owner of {}", p.display()))
        };
        if info.is_file() {
            let tmp = target.with_extension("rpmostree-owner");
            fs::copy(&target, &tmp).with_context(|| format!("copying {}", target.display()))?;
            fs::rename(&tmp, &target)?;
            chown(&target)?;
            fs::set_permissions(
                &target,
                fs::Permissions::from_mode(pkgcache::file_mode(mode)),
            )?;
        } else if info.is_dir() {
            chown(&target)?;
            fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o200))?;
        } else {
            chown(&target)?;
        }
    }
    Ok(())
}

/// The NEVRAs of the base packages a resolution removes or replaces.
fn gone_nevras(resolution: &rpmostree_dnf::Resolution) -> Vec<String> {
    resolution
        .removed
        .iter()
        .chain(resolution.replaced.iter().map(|(old, _)| old))
        .map(Package::nevra)
        .collect()
}

/// Upstream's package tuple of the override metadata: `(nevra, name, epoch, version,
/// release, arch)`, `(sstsss)`.
fn nevra_tuple(p: &Package) -> glib::Variant {
    (
        p.nevra(),
        p.name.clone(),
        p.epoch,
        p.version.clone(),
        p.release.clone(),
        p.arch.clone(),
    )
        .to_variant()
}

/// Deletes from the tree `root` the files the base packages `nevras` own according to the rpm
/// database in `dbroot` (their paths translated as the package cache translates them; content
/// under `/var` and `/run` is not in the tree), except those a package of `kept` owns too.
/// Only files and symlinks are deleted, then the directories this left empty; a path whose
/// parent is a symlink in the tree is left alone, so nothing outside `root` is reached.
fn delete_package_files(
    dbroot: &Path,
    root: &Path,
    nevras: &[String],
    kept: &[String],
) -> Result<()> {
    let files_of = |list: &[String]| -> Result<Vec<(String, Vec<String>)>> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        match helper::call_simple(&HelperRequest::PackageFiles {
            root: dbroot.to_owned(),
            nevras: list.to_vec(),
        })? {
            Reply::Files(f) => Ok(f),
            other => Err(helper::unexpected(other)),
        }
    };
    let shared: std::collections::HashSet<String> = files_of(kept)?
        .into_iter()
        .flat_map(|(_, paths)| paths)
        .collect();
    let mut dirs = Vec::new();
    for (_, paths) in files_of(nevras)? {
        for path in paths.into_iter().filter(|p| !shared.contains(p)) {
            let Ok(pkgcache::Dest::Tree(rel)) = pkgcache::translate(&path) else {
                continue;
            };
            let target = root.join(&rel);
            if pkgcache::check_parents(root, &rel).is_err() {
                continue;
            }
            match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => dirs.push(target),
                Ok(_) => fs::remove_file(&target)
                    .with_context(|| format!("removing {}", target.display()))?,
                Err(_) => {}
            }
        }
    }
    // Deepest first; a directory another package still uses is not empty and stays.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let _ = fs::remove_dir(d);
    }
    Ok(())
}

/// Drops the package-cache refs that no deployment needs any more (upstream does this after
/// every deploy and in `cleanup -b`): a ref stays when a layered deployment's commit lists the
/// package in its `rpmostree.rpmdb.pkglist`, or a deployment's origin requests it as a local
/// package or replacement. libostree's prune then frees the objects. Returns how many refs went.
pub(crate) fn prune_cache(sysroot: &ostree::Sysroot) -> Result<usize> {
    let repo = sysroot.repo();
    let mut keep = std::collections::HashSet::new();
    for d in sysroot.deployments() {
        let csum = d.csum();
        let (commit, _) = repo.load_commit(&csum)?;
        let meta = glib::VariantDict::new(Some(&commit.child_value(0)));
        let layered: bool = meta
            .lookup("rpmostree.clientlayer")
            .ok()
            .flatten()
            .unwrap_or(false);
        if layered
            && let Ok(Some(list)) =
                meta.lookup::<Vec<(String, String, String, String, String)>>(packages::PKGLIST_KEY)
        {
            for (name, epoch, version, release, arch) in list {
                let epoch = epoch.parse().unwrap_or(0);
                keep.insert(pkgcache::cache_ref(&name, epoch, &version, &release, &arch));
            }
        }
        if let Some(origin) = d.origin()
            && let Ok(o) = crate::sysroot::origin::Origin::from_keyfile(&origin)
        {
            for nevra in o
                .requested_local
                .keys()
                .chain(o.override_replace_local.keys())
            {
                if let Some((name, epoch, version, release, arch)) = pkgcache::split_nevra(nevra) {
                    keep.insert(pkgcache::cache_ref(&name, epoch, &version, &release, &arch));
                }
            }
        }
    }
    let refs = repo.list_refs_ext(
        Some("rpmostree/pkg"),
        ostree::RepoListRefsExtFlags::NONE,
        gio::Cancellable::NONE,
    )?;
    let mut dropped = 0;
    for name in refs.keys().filter(|r| !keep.contains(*r)) {
        repo.set_ref_immediate(None, name, None, gio::Cancellable::NONE)?;
        dropped += 1;
    }
    Ok(dropped)
}

/// The base commit of a deployed commit: its parent when it is a client-layer commit, else
/// itself.
pub(crate) fn base_of(repo: &ostree::Repo, commit: &str) -> Result<String> {
    let (variant, _) = repo.load_commit(commit)?;
    let meta = glib::VariantDict::new(Some(&variant.child_value(0)));
    let layered: bool = meta
        .lookup("rpmostree.clientlayer")
        .ok()
        .flatten()
        .unwrap_or(false);
    if layered && let Some(parent) = ostree::commit_get_parent(&variant) {
        return Ok(parent.to_string());
    }
    Ok(commit.to_owned())
}
