//! Plain sysroot data → the API's typed dictionaries, including GVariant commit metadata →
//! D-Bus variants.

use std::collections::HashMap;

use ostree::glib::{self, VariantClass};
use rpmostree_api::{BootConfig, CachedUpdate, Deployment, PackageInfo, RepoInfo, UpdateDetails};
use zbus::{OwnedVariant, Signature, Variant};

use crate::rpm::diff::{Diff, Package};
use crate::sysroot::{
    BootEntry, DeploymentInfo, cached_update::CachedUpdateInfo, packages::CommitDetails,
};

/// Commit metadata keys upstream leaves out of `base-commit-meta` (large, layering-internal).
const HIDDEN_META: &[&str] = &[
    "rpmostree.rpmdb.pkglist",
    "rpmostree.advisories",
    "rpmostree.packages",
    "rpmostree.modules",
    "rpmostree.spec",
    "rpmostree.removed-base-packages",
    "rpmostree.replaced-base-packages",
    "rpmostree.replaced-base-remote-packages",
];

/// The deployment dictionary clients read.
pub(crate) fn deployment(d: &DeploymentInfo) -> Deployment {
    let mut out = Deployment::new()
        .id(d.id())
        .osname(d.osname.clone())
        .serial(d.serial)
        .checksum(d.checksum.clone())
        .booted(d.booted)
        .staged(d.staged)
        .pinned(d.pinned)
        .unlocked(d.unlocked.clone())
        .regenerate_initramfs(false)
        .base_commit_meta(meta(
            d.base
                .as_ref()
                .map(|(_, _, _, m)| m)
                .or(d.commit_meta.as_ref()),
        ))
        .packages(d.packages.clone())
        .base_removals(base_removals(d.commit_meta.as_ref()))
        .base_local_replacements(base_local_replacements(d.commit_meta.as_ref()))
        .base_remote_replacements(HashMap::new());
    if d.timestamp > 0 {
        out = out.timestamp(d.timestamp);
    }
    if let Some(v) = &d.version {
        out = out.version(v.clone());
    }
    if d.has_origin {
        let o = d.origin.clone().unwrap_or_default();
        out = out
            .requested_packages(o.requested.into_iter().collect())
            .requested_local_packages(o.requested_local.into_keys().collect())
            .requested_local_fileoverride_packages(
                o.requested_local_fileoverride.into_keys().collect(),
            )
            .requested_base_removals(o.override_remove.into_iter().collect())
            .requested_base_local_replacements(o.override_replace_local.into_keys().collect());
    }
    if let Some((checksum, version, timestamp, _)) = &d.base {
        out = out
            .base_checksum(checksum.clone())
            .base_timestamp(*timestamp)
            .layered_commit_meta(meta(d.commit_meta.as_ref()));
        if let Some(v) = version {
            out = out.base_version(v.clone());
        }
    }
    if let Some(r) = &d.refspec {
        out = out.origin(r.clone());
    }
    if let Some(image) = &d.container_image_reference {
        out = out.container_image_reference(image.clone());
        if let Some(digest) = &d.container_image_digest {
            out = out.container_image_reference_digest(digest.clone());
        }
    }
    if d.staged {
        out = out.finalization_locked(d.finalization_locked);
    }
    if let Some(g) = d.gpg_enabled {
        out = out.gpg_enabled(g);
    }
    if let Some(sigs) = &d.signatures {
        out = out.signatures(signatures(sigs));
    }
    if let Some(e) = &d.remote_error {
        out = out.remote_error(e.clone());
    }
    if let Some((csum, version, timestamp)) = &d.pending_base {
        out = out.pending_base_checksum(csum.clone());
        if let Some(v) = version {
            out = out.pending_base_version(v.clone());
        }
        out = out.pending_base_timestamp(*timestamp);
    }
    if let Some(e) = &d.endoflife {
        out = out.endoflife(e.clone());
    }
    if let Some(c) = &d.custom_origin {
        out = out.custom_origin(c.clone());
    }
    out
}

/// The `CachedUpdate` dictionary.
pub(crate) fn cached_update(osname: &str, u: &CachedUpdateInfo) -> CachedUpdate {
    let mut out = CachedUpdate::new()
        .osname(osname)
        .checksum(u.checksum.clone())
        .timestamp(u.timestamp)
        .origin(u.origin.clone())
        .ref_has_new_commit(u.ref_has_new_commit)
        .gpg_enabled(u.gpg_enabled.unwrap_or(false));
    if let Some(v) = &u.version {
        out = out.version(v.clone());
    }
    if let Some(sigs) = &u.signatures {
        out = out.signatures(signatures(sigs));
    }
    if let Some(diff) = u.rpm_diff.as_ref().and_then(owned_dict) {
        out = out.rpm_diff(diff);
    }
    if let Some(advisories) = u.advisories.as_ref().and_then(advisories) {
        out = out.advisories(advisories);
    }
    if let Some(d) = &u.deployment {
        out = out.deployment(d.clone());
    }
    if let Some(diff) = &u.manifest_diff {
        out = out.manifest_diff(
            diff.entries()
                .map(|(k, v)| (k.to_owned(), OwnedVariant::from(v)))
                .collect(),
        );
    }
    out.update_sha256(u.base.clone())
}

/// An `a{sv}` GVariant as a D-Bus dictionary.
fn owned_dict(v: &glib::Variant) -> Option<HashMap<String, OwnedVariant>> {
    let mut out = HashMap::new();
    for i in 0..v.n_children() {
        let entry = v.child_value(i);
        let key = entry.child_value(0).str()?.to_owned();
        let value = entry.child_value(1);
        let inner = value.as_variant().unwrap_or(value);
        out.insert(key, to_zbus(&inner)?.try_into_owned().ok()?);
    }
    Some(out)
}

/// The advisories of `CachedUpdate` (`a(suuasa{sv})`).
type Advisories = Vec<(String, u32, u32, Vec<String>, HashMap<String, OwnedVariant>)>;

fn advisories(v: &glib::Variant) -> Option<Advisories> {
    (0..v.n_children())
        .map(|i| {
            let a = v.child_value(i);
            Some((
                a.child_value(0).str()?.to_owned(),
                a.child_value(1).get::<u32>()?,
                a.child_value(2).get::<u32>()?,
                a.child_value(3).get::<Vec<String>>()?,
                owned_dict(&a.child_value(4))?,
            ))
        })
        .collect()
}

/// One `a(sua{sv})` package diff, as `GetDeploymentsRpmDiff` and the cached diffs return it:
/// (name, kind, {`PreviousPackage`, `NewPackage`: (name, evr, arch)}), sorted by kind, then
/// name.
pub(crate) fn rpm_diff(diff: &Diff) -> Vec<(String, u32, HashMap<String, OwnedVariant>)> {
    let package = |p: &Package| -> Option<OwnedVariant> {
        Variant::from((p.name.clone(), p.evr(), p.arch.clone()))
            .try_into_owned()
            .ok()
    };
    diff.entries()
        .into_iter()
        .map(|(name, kind, old, new)| {
            let mut details = HashMap::new();
            if let Some(v) = old.and_then(package) {
                details.insert("PreviousPackage".to_owned(), v);
            }
            if let Some(v) = new.and_then(package) {
                details.insert("NewPackage".to_owned(), v);
            }
            (name, kind as u32, details)
        })
        .collect()
}

/// The `details` of the cached diffs.
pub(crate) fn update_details(d: &CommitDetails) -> UpdateDetails {
    let mut out = UpdateDetails::new()
        .osname(d.osname.clone())
        .checksum(d.checksum.clone())
        .timestamp(d.timestamp)
        .origin(d.origin.clone());
    if let Some(v) = &d.version {
        out = out.version(v.clone());
    }
    if let Some(g) = d.gpg_enabled {
        out = out.gpg_enabled(g);
    }
    if let Some(sigs) = &d.signatures {
        out = out.signatures(signatures(sigs));
    }
    out
}

/// A package of a query answer (`GetPackages`, `WhatProvides`, `Search`).
pub(crate) fn package_info(key: Option<String>, p: &Package) -> PackageInfo {
    let mut out = PackageInfo::new()
        .name(p.name.clone())
        .epoch(p.epoch)
        .version(p.version.clone())
        .arch(p.arch.clone())
        .nevra(p.nevra())
        .evr(p.evr())
        .summary(p.summary.clone())
        .reponame(p.reponame.clone());
    out.key = key;
    out
}

/// A repository of `ListRepos`.
pub(crate) fn repo_info(r: &rpmostree_dnf::RepoInfo) -> RepoInfo {
    RepoInfo::new()
        .id(r.id.clone())
        .description(r.description.clone())
        .is_devel(r.devel)
        .is_source(r.source)
        .is_enabled(r.enabled)
}

/// The boot configuration of a deployment (`GetDeploymentBootConfig`). A staged deployment has
/// only its options.
pub(crate) fn boot_config(d: &DeploymentInfo) -> BootConfig {
    let BootEntry {
        title,
        linux,
        initrd,
        options,
        version,
    } = d.boot.clone();
    let mut out = BootConfig::new().staged(d.staged);
    out.options = options;
    if !d.staged {
        out.title = title;
        out.linux = linux;
        out.initrd = initrd;
        out.version = version;
    }
    out
}

/// The `signatures` value (`av`): each verified signature's tuple, as a variant.
pub(crate) fn signatures(sigs: &[glib::Variant]) -> Vec<OwnedVariant> {
    sigs.iter()
        .filter_map(|s| to_zbus(s).and_then(|z| z.try_into_owned().ok()))
        .collect()
}

/// A value of the commit metadata `meta`, unboxed.
fn meta_value(meta: Option<&glib::Variant>, key: &str) -> Option<glib::Variant> {
    let dict = glib::VariantDict::new(meta);
    dict.lookup_value(key, None)
}

/// `base-removals`: `rpmostree.removed-base-packages` (`av` of package tuples) of a layered
/// commit.
fn base_removals(meta: Option<&glib::Variant>) -> Vec<OwnedVariant> {
    let Some(list) = meta_value(meta, "rpmostree.removed-base-packages") else {
        return Vec::new();
    };
    (0..list.n_children())
        .filter_map(|i| {
            let v = list.child_value(i);
            let inner = v.as_variant().unwrap_or(v);
            to_zbus(&inner)?.try_into_owned().ok()
        })
        .collect()
}

/// `base-local-replacements`: `rpmostree.replaced-base-packages` (`a(vv)` of (new, old)
/// package tuples) of a layered commit.
fn base_local_replacements(meta: Option<&glib::Variant>) -> Vec<(OwnedVariant, OwnedVariant)> {
    let Some(list) = meta_value(meta, "rpmostree.replaced-base-packages") else {
        return Vec::new();
    };
    let side = |v: glib::Variant| -> Option<OwnedVariant> {
        let inner = v.as_variant().unwrap_or(v);
        to_zbus(&inner)?.try_into_owned().ok()
    };
    (0..list.n_children())
        .filter_map(|i| {
            let pair = list.child_value(i);
            Some((side(pair.child_value(0))?, side(pair.child_value(1))?))
        })
        .collect()
}

fn meta(v: Option<&glib::Variant>) -> HashMap<String, OwnedVariant> {
    let mut out = HashMap::new();
    let Some(v) = v else { return out };
    for i in 0..v.n_children() {
        let entry = v.child_value(i);
        let Some(key) = entry.child_value(0).str().map(str::to_owned) else {
            continue;
        };
        if HIDDEN_META.contains(&key.as_str()) {
            continue;
        }
        let value = entry.child_value(1);
        let inner = value.as_variant().unwrap_or(value);
        if let Some(converted) = to_zbus(&inner).and_then(|z| z.try_into_owned().ok()) {
            out.insert(key, converted);
        }
    }
    out
}

/// Converts a GVariant to a D-Bus variant; `None` for types D-Bus cannot carry (maybe types).
pub(crate) fn to_zbus(v: &glib::Variant) -> Option<Variant<'static>> {
    Some(match v.classify() {
        VariantClass::Boolean => Variant::Bool(v.get::<bool>()?),
        VariantClass::Byte => Variant::U8(v.get::<u8>()?),
        VariantClass::Int16 => Variant::I16(v.get::<i16>()?),
        VariantClass::Uint16 => Variant::U16(v.get::<u16>()?),
        VariantClass::Int32 => Variant::I32(v.get::<i32>()?),
        VariantClass::Uint32 => Variant::U32(v.get::<u32>()?),
        VariantClass::Int64 => Variant::I64(v.get::<i64>()?),
        VariantClass::Uint64 => Variant::U64(v.get::<u64>()?),
        VariantClass::Double => Variant::F64(v.get::<f64>()?),
        VariantClass::String | VariantClass::ObjectPath | VariantClass::Signature => {
            Variant::from(v.str()?.to_owned())
        }
        VariantClass::Variant => Variant::new(to_zbus(&v.as_variant()?)?),
        VariantClass::Tuple => {
            let mut b = zbus::wire::StructureBuilder::new();
            for i in 0..v.n_children() {
                b = b.append_field(to_zbus(&v.child_value(i))?);
            }
            Variant::Structure(b.build().ok()?)
        }
        VariantClass::Array => {
            let ty = v.type_().element().as_str().to_owned();
            if ty.starts_with('{') {
                let entry = v.type_().element();
                let key_sig = Signature::try_from(entry.key().as_str()).ok()?;
                let value_sig = Signature::try_from(entry.value().as_str()).ok()?;
                let mut dict = zbus::wire::Dict::new(&key_sig, &value_sig);
                for i in 0..v.n_children() {
                    let e = v.child_value(i);
                    dict.append(to_zbus(&e.child_value(0))?, to_zbus(&e.child_value(1))?)
                        .ok()?;
                }
                Variant::Dict(dict)
            } else {
                let sig = Signature::try_from(ty.as_str()).ok()?;
                let mut array = zbus::wire::Array::new(&sig);
                for i in 0..v.n_children() {
                    array.append(to_zbus(&v.child_value(i))?).ok()?;
                }
                Variant::Array(array)
            }
        }
        _ => return None,
    })
}
