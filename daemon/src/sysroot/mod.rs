//! SYSROOT: everything that touches libostree. Loading a snapshot of the deployments and the
//! operations transactions run ([`ops`]). All functions here block and must run off the async
//! executor (`spawn_blocking`); libostree objects never leave the thread that made them, only
//! plain data ([`Snapshot`]) does. This module knows nothing about D-Bus.

pub(crate) mod cached_update;
pub(crate) mod container;
pub(crate) mod deploy;
pub(crate) mod kargs;
pub(crate) mod ops;
pub(crate) mod origin;
pub(crate) mod packages;
#[cfg(test)]
mod proptests;
pub(crate) mod refspec;

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::{Context, Result};
use ostree::{gio, glib};

/// Where libostree leaves the marker of a staged deployment locked against finalization.
pub(crate) const STAGED_LOCKED_MARKER: &str = "/run/ostree/staged-deployment-locked";

/// Where libostree records the staged deployment of the running system.
pub(crate) const STAGED_DEPLOYMENT: &str = "/run/ostree/staged-deployment";

/// Whether `remote` verifies GPG signatures and, when it does, the signatures of `checksum`
/// verified against its keys: one `ostree_gpg_verify_result_get_all` tuple each, `None` when the
/// commit has none that verify. A commit's signatures and a remote's keys rarely change, so
/// results are kept per (remote, commit) for the daemon's life, as upstream keeps them in /run.
pub(crate) fn gpg_state(
    repo: &ostree::Repo,
    remote: &str,
    checksum: &str,
) -> Result<(bool, Option<Vec<glib::Variant>>), glib::Error> {
    type Cache = std::sync::Mutex<std::collections::HashMap<(String, String), Vec<glib::Variant>>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    if !repo.remote_get_gpg_verify(remote)? {
        return Ok((false, None));
    }
    // Loads run one at a time, so the lock is held across the verification.
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let found = cache
        .entry((remote.to_owned(), checksum.to_owned()))
        .or_insert_with(|| {
            match repo.verify_commit_for_remote(checksum, remote, gio::Cancellable::NONE) {
                Ok(result) => (0..result.count_all()).map(|i| result.all(i)).collect(),
                Err(e) => {
                    tracing::debug!("no verified signatures on {checksum} for {remote}: {e}");
                    Vec::new()
                }
            }
        });
    Ok((true, (!found.is_empty()).then(|| found.clone())))
}

/// Writes a file atomically: a temporary file in the same directory (created if needed), its
/// data synced, then renamed over `path` and the directory synced. A crash leaves either the old
/// file or the new one, never a torn one.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What the daemon knows about the sysroot at one moment: plain data, cheap to share.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// Whether the running system is booted from this sysroot.
    pub(crate) is_booted: bool,
    /// Every deployment, in sysroot (boot) order.
    pub(crate) deployments: Vec<DeploymentInfo>,
    /// What the sysroot looked like on disk when loaded, to notice changes.
    pub(crate) fingerprint: Fingerprint,
    /// The cached update of each osname that has a current one.
    pub(crate) cached_updates: Vec<(String, cached_update::CachedUpdateInfo)>,
}

impl Snapshot {
    /// The booted deployment.
    pub(crate) fn booted(&self) -> Option<&DeploymentInfo> {
        self.deployments.iter().find(|d| d.booted)
    }

    /// The cached update of `osname`, if a current one exists.
    pub(crate) fn cached_update(&self, osname: &str) -> Option<&cached_update::CachedUpdateInfo> {
        self.cached_updates
            .iter()
            .find(|(o, _)| o == osname)
            .map(|(_, u)| u)
    }

    /// The osnames that have deployments, in order of first appearance.
    pub(crate) fn osnames(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for d in &self.deployments {
            if !names.contains(&d.osname) {
                names.push(d.osname.clone());
            }
        }
        names
    }

    /// The deployments of one osname, in order.
    pub(crate) fn of_os<'a>(
        &'a self,
        osname: &str,
    ) -> impl Iterator<Item = &'a DeploymentInfo> + use<'a> {
        let osname = osname.to_owned();
        self.deployments.iter().filter(move |d| d.osname == osname)
    }

    /// The deployment that boots next for `osname` (a staged or pending one, else the first).
    pub(crate) fn default_for(&self, osname: &str) -> Option<&DeploymentInfo> {
        self.of_os(osname).next()
    }

    /// The deployment a rollback of `osname` would go back to: the first one after the booted
    /// deployment, or on a sysroot that is not booted, the second one.
    pub(crate) fn rollback_for(&self, osname: &str) -> Option<&DeploymentInfo> {
        if self.is_booted {
            let booted = self.booted()?;
            if booted.osname != osname {
                return self.of_os(osname).nth(1);
            }
            self.of_os(osname).find(|d| d.index > booted.index)
        } else {
            self.of_os(osname).nth(1)
        }
    }
}

/// One deployment, as plain data.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DeploymentInfo {
    /// Position in the sysroot's list.
    pub(crate) index: usize,
    /// Stateroot.
    pub(crate) osname: String,
    /// Commit checksum.
    pub(crate) checksum: String,
    /// Deployment serial.
    pub(crate) serial: i32,
    /// The running deployment.
    pub(crate) booted: bool,
    /// Staged, to be finalized at shutdown.
    pub(crate) staged: bool,
    /// Protected from garbage collection.
    pub(crate) pinned: bool,
    /// `none`, `development`, `hotfix` or `transient`.
    pub(crate) unlocked: String,
    /// Staged and locked against automatic finalization.
    pub(crate) finalization_locked: bool,
    /// The commit's `version` metadata.
    pub(crate) version: Option<String>,
    /// The commit's timestamp (seconds since the epoch).
    pub(crate) timestamp: u64,
    /// The commit's metadata (`a{sv}`).
    pub(crate) commit_meta: Option<glib::Variant>,
    /// The origin's refspec (`remote:ref`, `ref` or a checksum).
    pub(crate) refspec: Option<String>,
    /// The container image reference the origin follows, instead of a refspec.
    pub(crate) container_image_reference: Option<String>,
    /// The manifest digest of the deployed image (of the base, for a layered deployment).
    pub(crate) container_image_digest: Option<String>,
    /// `override-commit` of the origin: a pinned revision.
    pub(crate) override_commit: Option<String>,
    /// `custom-url` and `custom-description` of the origin.
    pub(crate) custom_origin: Option<(String, String)>,
    /// Whether the origin's remote verifies GPG signatures.
    pub(crate) gpg_enabled: Option<bool>,
    /// The commit's GPG signatures as libostree verified them against the origin's remote
    /// (`ostree_gpg_verify_result_get_all`, one tuple per signature), when the remote verifies
    /// signatures and the commit has any.
    pub(crate) signatures: Option<Vec<glib::Variant>>,
    /// Why the origin's remote cannot be used, if it cannot.
    pub(crate) remote_error: Option<String>,
    /// The commit the origin's ref points to locally, when it differs from `checksum`:
    /// (checksum, version, timestamp).
    pub(crate) pending_base: Option<(String, Option<String>, u64)>,
    /// `ostree.endoflife` of the commit.
    pub(crate) endoflife: Option<String>,
    /// The boot entry: title, linux, initrd, options, version.
    pub(crate) boot: BootEntry,
    /// Whether an origin file exists.
    pub(crate) has_origin: bool,
    /// The origin, parsed (package requests and overrides), when it parses.
    pub(crate) origin: Option<origin::Origin>,
    /// `rpmostree.packages` of the commit: the active layered requests.
    pub(crate) packages: Vec<String>,
    /// For a layered commit (`rpmostree.clientlayer`): its base commit's checksum, version,
    /// timestamp and metadata.
    pub(crate) base: Option<(String, Option<String>, u64, glib::Variant)>,
}

impl DeploymentInfo {
    /// Upstream's deployment id: `<osname>-<checksum>.<serial>`.
    pub(crate) fn id(&self) -> String {
        format!("{}-{}.{}", self.osname, self.checksum, self.serial)
    }
}

/// The keys of a deployment's boot loader entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BootEntry {
    /// `title`.
    pub(crate) title: Option<String>,
    /// `linux`.
    pub(crate) linux: Option<String>,
    /// `initrd`.
    pub(crate) initrd: Option<String>,
    /// `options` (the kernel arguments).
    pub(crate) options: Option<String>,
    /// `version`.
    pub(crate) version: Option<String>,
}

/// Modification times of the places libostree changes when deployments change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fingerprint(Vec<Option<SystemTime>>);

impl Fingerprint {
    /// Reads the fingerprint of the sysroot at `path` (cheap: a few `stat` calls).
    pub(crate) fn read(path: &Path) -> Self {
        let mut places = vec![
            path.join("ostree/deploy"),
            path.join("ostree/repo"),
            path.join("ostree/repo/refs/heads"),
            path.join("ostree/repo/refs/remotes"),
            path.join("boot/loader"),
        ];
        // The running system's state: staging and the cached update live there only when the
        // sysroot is the system's own (a sysroot elsewhere is never booted).
        if path == Path::new("/") {
            places.extend(
                [
                    STAGED_DEPLOYMENT,
                    STAGED_LOCKED_MARKER,
                    "/var/cache/rpm-ostree",
                ]
                .map(PathBuf::from),
            );
        }
        Self(
            places
                .iter()
                .map(|p| std::fs::symlink_metadata(p).and_then(|m| m.modified()).ok())
                .collect(),
        )
    }
}

/// Opens the sysroot at `path` the way every daemon operation does.
pub(crate) fn open(path: &Path, cancellable: Option<&gio::Cancellable>) -> Result<ostree::Sysroot> {
    let sysroot = ostree::Sysroot::new(Some(&gio::File::for_path(path)));
    // The daemon runs in its own mount namespace (as upstream's does); telling libostree so
    // avoids its check of /proc/1/ns/mnt, which fails in containers.
    sysroot.set_mount_namespace_in_use();
    sysroot
        .load(cancellable)
        .with_context(|| format!("loading the OSTree sysroot at {}", path.display()))?;
    Ok(sysroot)
}

/// Loads a snapshot of the sysroot at `path`.
pub(crate) fn load(path: &Path) -> Result<Snapshot> {
    let fingerprint = Fingerprint::read(path);
    let sysroot = open(path, None)?;
    let repo = sysroot.repo();
    let booted = sysroot.booted_deployment();
    let staged_locked = Path::new(STAGED_LOCKED_MARKER).exists();
    let deployments = sysroot
        .deployments()
        .iter()
        .enumerate()
        .map(|(index, d)| describe(&repo, d, index, booted.as_ref(), staged_locked))
        .collect::<Result<Vec<_>>>()?;
    let mut snapshot = Snapshot {
        is_booted: booted.is_some(),
        deployments,
        fingerprint,
        cached_updates: Vec::new(),
    };
    for osname in snapshot.osnames() {
        let base = snapshot
            .booted()
            .filter(|b| b.osname == osname)
            .or_else(|| snapshot.default_for(&osname))
            // A layered deployment's updates are those of its base commit.
            .map(|d| {
                d.base
                    .as_ref()
                    .map_or_else(|| d.checksum.clone(), |(c, ..)| c.clone())
            });
        if let Some(base) = base
            && let Some(mut update) = cached_update::read(path, &osname, &base)
        {
            if let Ok((Some(remote), _)) = ostree::parse_refspec(&update.origin) {
                let (enabled, signatures) =
                    gpg_state(&repo, &remote, &update.checksum).unwrap_or_default();
                update.gpg_enabled = Some(enabled);
                update.signatures = signatures;
            }
            snapshot.cached_updates.push((osname, update));
        }
    }
    Ok(snapshot)
}

/// A commit's version, timestamp and metadata.
pub(crate) fn commit_info(
    repo: &ostree::Repo,
    checksum: &str,
) -> Result<(Option<String>, u64, glib::Variant)> {
    let (commit, _) = repo
        .load_commit(checksum)
        .with_context(|| format!("loading commit {checksum}"))?;
    let meta = commit.child_value(0);
    let dict = glib::VariantDict::new(Some(&meta));
    let version = dict.lookup::<String>("version").ok().flatten();
    Ok((version, ostree::commit_get_timestamp(&commit), meta))
}

fn describe(
    repo: &ostree::Repo,
    d: &ostree::Deployment,
    index: usize,
    booted: Option<&ostree::Deployment>,
    staged_locked: bool,
) -> Result<DeploymentInfo> {
    let checksum = d.csum().to_string();
    let (version, timestamp, meta) = commit_info(repo, &checksum)?;
    let endoflife = glib::VariantDict::new(Some(&meta))
        .lookup::<String>("ostree.endoflife")
        .ok()
        .flatten();
    let mut info = DeploymentInfo {
        index,
        osname: d.osname().to_string(),
        serial: d.deployserial(),
        booted: booted.is_some_and(|b| b.equal(d)),
        staged: d.is_staged(),
        pinned: d.is_pinned(),
        unlocked: ostree::Deployment::unlocked_state_to_string(d.unlocked()).to_string(),
        finalization_locked: d.is_staged() && staged_locked,
        version,
        timestamp,
        commit_meta: Some(meta),
        endoflife,
        checksum,
        ..Default::default()
    };
    if let Some(bootconfig) = d.bootconfig() {
        let get = |k: &str| bootconfig.get(k).map(|v| v.to_string());
        info.boot = BootEntry {
            title: get("title"),
            linux: get("linux"),
            initrd: get("initrd"),
            options: get("options"),
            version: get("version"),
        };
    }
    let meta_dict = glib::VariantDict::new(info.commit_meta.as_ref());
    info.packages = meta_dict
        .lookup::<Vec<String>>("rpmostree.packages")
        .ok()
        .flatten()
        .unwrap_or_default();
    let layered = meta_dict
        .lookup::<bool>("rpmostree.clientlayer")
        .ok()
        .flatten()
        .unwrap_or(false);
    if layered
        && let Ok((commit, _)) = repo.load_commit(&info.checksum)
        && let Some(parent) = ostree::commit_get_parent(&commit)
        && let Ok((version, timestamp, meta)) = commit_info(repo, &parent)
    {
        info.base = Some((parent.to_string(), version, timestamp, meta));
    }
    if let Some(origin) = d.origin() {
        info.has_origin = true;
        match origin::Origin::from_keyfile(&origin) {
            Ok(o) => info.origin = Some(o),
            Err(e) => tracing::warn!("the origin of deployment {}: {e:#}", info.checksum),
        }
        let string = |g: &str, k: &str| origin.string(g, k).ok().map(|s| s.to_string());
        info.refspec = string("origin", "refspec").or_else(|| string("origin", "baserefspec"));
        info.container_image_reference = string("origin", "container-image-reference");
        info.override_commit = string("origin", "override-commit");
        if let Some(url) = string("origin", "custom-url") {
            info.custom_origin = Some((
                url,
                string("origin", "custom-description").unwrap_or_default(),
            ));
        }
    }
    if info.container_image_reference.is_some() {
        // The image's digest and version are on its commit (the base of a layered one).
        let meta = info
            .base
            .as_ref()
            .map(|(.., m)| m)
            .or(info.commit_meta.as_ref());
        if let Some((digest, version)) = meta.and_then(container::image_of_commit) {
            info.container_image_digest = Some(digest);
            if version.is_some() {
                info.version = version;
            }
        }
    }
    if let Some(refspec) = info.refspec.clone()
        && let Ok((remote, _branch)) = ostree::parse_refspec(&refspec)
    {
        if let Some(remote) = remote {
            match gpg_state(repo, &remote, &info.checksum) {
                Ok((enabled, signatures)) => {
                    info.gpg_enabled = Some(enabled);
                    info.signatures = signatures;
                }
                Err(e) => info.remote_error = Some(e.message().to_owned()),
            }
        }
        if let Ok(Some(head)) = repo.resolve_rev(&refspec, true)
            && head.as_str() != info.checksum
            && let Ok((v, t, _)) = commit_info(repo, &head)
        {
            info.pending_base = Some((head.to_string(), v, t));
        }
    }
    Ok(info)
}
