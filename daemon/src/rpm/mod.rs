//! RPM: the package side of the daemon. Package lists and their diffs ([`diff`]), and rpm-md
//! repositories, metadata and queries ([`repos`]).
//!
//! libdnf and librpm never run in the daemon: every call goes to `rpm-ostreed-dnf`, a helper
//! process started per request ([`helper`]). That keeps their libraries out of the daemon's
//! start-up and memory, lets a cancel stop a download at once (the helper is killed), makes
//! their process-global state a non-issue, and turns a crash in them into an error. This module
//! knows nothing of D-Bus or libostree: [`crate::sysroot`] uses it to read an rpm database it
//! copied out of a commit, and the objects use it for queries.

pub(crate) mod diff;
pub(crate) mod helper;
pub(crate) mod repos;

use anyhow::{Result, anyhow};

/// Runs blocking package work (helper calls) off the async executor, one job at a time: the
/// queries need no authorization, as upstream's, so any local user could otherwise start
/// hundreds of helpers at once (upstream answers them one by one as well).
pub(crate) async fn run<R: Send + 'static>(
    f: impl FnOnce() -> Result<R> + Send + 'static,
) -> Result<R> {
    static ONE_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    let _permit = ONE_AT_A_TIME
        .acquire()
        .await
        .map_err(|e| anyhow!("the package queue is closed: {e}"))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("the package job failed: {e}"))?
}
