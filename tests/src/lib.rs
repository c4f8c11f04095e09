//! Shared harness of the cross-crate tests. The system-test harness (private system bus, real
//! polkitd, OSTree sysroot fixture) lands with the daemon.

/// Where the interface XML lives, relative to this crate.
pub const INTERFACE_XML: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../interface/org.projectatomic.rpmostree1.xml"
);
