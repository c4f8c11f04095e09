//! OBJECT LAYER: the D-Bus objects, implementing the generated handler traits on top of the
//! daemon's state. This is the only place where internal errors become D-Bus errors: every
//! `anyhow` error from below is turned into the API's wire error here.

mod convert;
mod os;
mod os_experimental;
mod sysroot;

pub(crate) use os::OsObject;
pub(crate) use os_experimental::OsExperimentalObject;
pub(crate) use sysroot::SysrootObject;

use rpmostree_api::dict::Dict;

/// A canonical text of typed options: identical requests give identical text.
pub(crate) fn canonical<T: Dict>(options: &T) -> String {
    match options.to_variants() {
        Ok(mut entries) => {
            entries.sort_by(|a, b| a.0.cmp(b.0));
            entries
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(";")
        }
        Err(e) => format!("<unprintable: {e}>"),
    }
}
