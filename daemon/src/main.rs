//! The `rpm-ostreed` binary: a thin shim over the `rpmostreed` library.

use std::process::ExitCode;

fn main() -> ExitCode {
    match rpmostreed::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
