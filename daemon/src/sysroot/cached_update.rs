//! The cached update: what an update check found, kept on disk (in the system's
//! `/var/cache/rpm-ostree`) so it survives daemon restarts, and dropped when the deployment it
//! was computed against is no longer the base.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ostree::glib;

use super::{container::LayerDiff, deploy::UpdateCheck, ops::cache_dir};

const GROUP: &str = "cached-update";

/// A cached update, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CachedUpdateInfo {
    /// The new commit.
    pub(crate) checksum: String,
    /// Its version.
    pub(crate) version: Option<String>,
    /// Its timestamp.
    pub(crate) timestamp: u64,
    /// The refspec.
    pub(crate) origin: String,
    /// Whether the ref has a commit newer than the base.
    pub(crate) ref_has_new_commit: bool,
    /// Whether the refspec's remote verifies GPG signatures (`None`: no remote).
    pub(crate) gpg_enabled: Option<bool>,
    /// The new commit's verified signatures (see [`super::gpg_state`]).
    pub(crate) signatures: Option<Vec<glib::Variant>>,
    /// `rpm-diff` (`a{sv}`), when packages change.
    pub(crate) rpm_diff: Option<glib::Variant>,
    /// `advisories` (`a(suuasa{sv})`), when the changed packages have security advisories.
    pub(crate) advisories: Option<glib::Variant>,
    /// The staged deployment the update was computed against, if it was.
    pub(crate) deployment: Option<String>,
    /// The booted deployment's checksum the update was computed against (`update-sha256`).
    pub(crate) base: String,
    /// For an image: the layer statistics against the deployed image.
    pub(crate) manifest_diff: Option<LayerDiff>,
}

/// The keys of a stored `manifest-diff`.
const MANIFEST_DIFF_KEYS: [&str; 6] = [
    "total",
    "total-size",
    "n-removed",
    "removed-size",
    "n-added",
    "added-size",
];

impl LayerDiff {
    fn values(&self) -> [u64; 6] {
        [
            self.total,
            self.total_size,
            self.n_removed,
            self.removed_size,
            self.n_added,
            self.added_size,
        ]
    }

    /// `manifest-diff` as upstream's `a{sv}` of `t` values.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'static str, u64)> {
        MANIFEST_DIFF_KEYS.into_iter().zip(self.values())
    }
}

/// Stores an optional variant as GVariant text.
fn set_variant(kf: &glib::KeyFile, key: &str, v: Option<&glib::Variant>) {
    if let Some(v) = v {
        kf.set_string(GROUP, key, &v.print(true));
    }
}

/// Reads back a variant of type `ty` stored by [`set_variant`]; anything else is ignored.
fn get_variant(kf: &glib::KeyFile, key: &str, ty: &str) -> Option<glib::Variant> {
    let text = kf.string(GROUP, key).ok()?;
    glib::Variant::parse(Some(glib::VariantTy::new(ty).ok()?), &text).ok()
}

fn file(sysroot: &Path, osname: &str) -> PathBuf {
    cache_dir(sysroot, osname).join(format!("cached-update-{osname}.ini"))
}

/// Records a check's result; `None` removes the cache.
pub(crate) fn write(sysroot: &Path, osname: &str, check: Option<&UpdateCheck>) -> Result<()> {
    let path = file(sysroot, osname);
    let Some(check) = check else {
        match std::fs::remove_file(&path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
    };
    let kf = glib::KeyFile::new();
    kf.set_string(GROUP, "osname", osname);
    kf.set_string(GROUP, "checksum", &check.checksum);
    if let Some(v) = &check.version {
        kf.set_string(GROUP, "version", v);
    }
    kf.set_uint64(GROUP, "timestamp", check.timestamp);
    kf.set_string(GROUP, "origin", &check.origin);
    kf.set_string(GROUP, "base", &check.base);
    set_variant(&kf, "rpm-diff", check.packages.rpm_diff.as_ref());
    set_variant(&kf, "advisories", check.packages.advisories.as_ref());
    if let Some(d) = &check.deployment {
        kf.set_string(GROUP, "deployment", d);
    }
    if let Some(diff) = &check.manifest_diff {
        for (key, value) in diff.entries() {
            kf.set_uint64(GROUP, &format!("manifest-diff-{key}"), value);
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    super::write_atomic(&path, kf.to_data().as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads the cached update of `osname` if it was computed against `base`; a stale one is
/// removed.
pub(crate) fn read(sysroot: &Path, osname: &str, base: &str) -> Option<CachedUpdateInfo> {
    let path = file(sysroot, osname);
    let kf = glib::KeyFile::new();
    kf.load_from_file(&path, glib::KeyFileFlags::NONE).ok()?;
    let get = |k: &str| kf.string(GROUP, k).ok().map(|s| s.to_string());
    if get("base").as_deref() != Some(base) {
        let _ = std::fs::remove_file(&path);
        return None;
    }
    let checksum = get("checksum")?;
    Some(CachedUpdateInfo {
        ref_has_new_commit: checksum != base,
        checksum,
        version: get("version"),
        timestamp: kf.uint64(GROUP, "timestamp").unwrap_or(0),
        origin: get("origin").unwrap_or_default(),
        gpg_enabled: None,
        signatures: None,
        rpm_diff: get_variant(&kf, "rpm-diff", "a{sv}"),
        advisories: get_variant(&kf, "advisories", "a(suuasa{sv})"),
        deployment: get("deployment"),
        base: base.to_owned(),
        manifest_diff: read_manifest_diff(&kf),
    })
}

fn read_manifest_diff(kf: &glib::KeyFile) -> Option<LayerDiff> {
    let get = |key: &str| kf.uint64(GROUP, &format!("manifest-diff-{key}")).ok();
    Some(LayerDiff {
        total: get("total")?,
        total_size: get("total-size")?,
        n_removed: get("n-removed")?,
        removed_size: get("removed-size")?,
        n_added: get("n-added")?,
        added_size: get("added-size")?,
    })
}
