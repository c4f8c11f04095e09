//! Plain sysroot data → the API's typed dictionaries, including GVariant commit metadata →
//! D-Bus variants.

use std::collections::HashMap;

use ostree::glib::{self, VariantClass};
use rpmostree_api::{BootConfig, CachedUpdate, Deployment};
use zbus::{OwnedVariant, Signature, Variant};

use crate::sysroot::{BootEntry, DeploymentInfo, cached_update::CachedUpdateInfo};

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
        .base_commit_meta(meta(d.commit_meta.as_ref()))
        .packages(Vec::new())
        .base_removals(Vec::new())
        .base_local_replacements(Vec::new())
        .base_remote_replacements(HashMap::new());
    if d.timestamp > 0 {
        out = out.timestamp(d.timestamp);
    }
    if let Some(v) = &d.version {
        out = out.version(v.clone());
    }
    if d.has_origin {
        out = out
            .requested_packages(Vec::new())
            .requested_local_packages(Vec::new())
            .requested_local_fileoverride_packages(Vec::new())
            .requested_base_removals(Vec::new())
            .requested_base_local_replacements(Vec::new());
    }
    if let Some(r) = &d.refspec {
        out = out.origin(r.clone());
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
    out
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
