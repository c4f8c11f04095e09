//! rpm-ostreed, the daemon that serves `org.projectatomic.rpmostree1` on the system bus.
//!
//! Not implemented yet: the bus service, transactions and polkit authorisation land with the
//! daemon issue, on top of the generated handler traits of `rpmostree-api`.

/// The bus name the daemon will own.
pub const BUS_NAME: &str = rpmostree_api::names::BUS_NAME;

/// Runs the daemon. Today it only reports that it is not implemented.
pub fn run() -> Result<(), String> {
    Err(format!(
        "rpm-ostreed: the daemon for {BUS_NAME} is not implemented yet in this build"
    ))
}
