//! The `rpm-ostree` binary: a thin shim over [`rpmostree_client::run`].

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(rpmostree_client::run(std::env::args_os()))
}
