//! The rpm-ostree command-line client: it never changes the system itself, it asks rpm-ostreed.
//!
//! Not implemented yet: the commands land with the CLI issue, on the generated proxies of
//! `rpmostree-api` only.

/// Runs the client with the given arguments. Today it only reports that it is not implemented.
pub fn run(args: &[String]) -> Result<(), String> {
    Err(format!(
        "rpm-ostree {}: the client is not implemented yet in this build (daemon: {})",
        args.join(" "),
        rpmostree_api::names::BUS_NAME
    ))
}
