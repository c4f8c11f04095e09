//! RPM: the package side of the daemon. Package lists and their diffs ([`diff`]), and rpm-md
//! repositories, metadata and queries through libdnf ([`repos`]).
//!
//! libdnf and librpm keep process-global state (rpm macros, the rpm signal handlers, libsolv
//! pools) and are not thread-safe, so every call into them runs on one dedicated thread,
//! [`run_blocking`]; nothing libdnf makes leaves that thread, only plain data does. This module
//! knows nothing of D-Bus or libostree: [`crate::sysroot`] uses it to read an rpm database it
//! checked out, and the objects use it for queries.

pub(crate) mod diff;
pub(crate) mod repos;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, OnceLock, mpsc};

use anyhow::{Result, anyhow};

type Job = Box<dyn FnOnce() + Send>;

/// The queue of the libdnf thread, started on first use.
fn worker() -> Result<&'static Mutex<mpsc::Sender<Job>>> {
    static WORKER: OnceLock<Option<Mutex<mpsc::Sender<Job>>>> = OnceLock::new();
    WORKER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("rpm-worker".into())
                .spawn(move || {
                    for job in rx {
                        job();
                    }
                })
                .map_err(|e| tracing::error!("cannot start the rpm worker thread: {e}"))
                .ok()
                .map(|_| Mutex::new(tx))
        })
        .as_ref()
        .ok_or_else(|| anyhow!("the rpm worker thread could not be started"))
}

/// Runs `f` on the libdnf thread and waits for its result. Blocks: call it from a blocking
/// thread (sysroot work) or through [`run`]. A panic in `f` becomes an error.
pub(crate) fn run_blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R> + Send + 'static,
) -> Result<R> {
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let result = catch_unwind(AssertUnwindSafe(f))
            .unwrap_or_else(|_| Err(anyhow!("the package backend panicked")));
        let _ = tx.send(result);
    });
    worker()?
        .lock()
        .map_err(|_| anyhow!("the rpm worker queue is poisoned"))?
        .send(job)
        .map_err(|_| anyhow!("the rpm worker thread is gone"))?;
    rx.recv()
        .map_err(|_| anyhow!("the rpm worker thread dropped a job"))?
}

/// [`run_blocking`] from async code.
pub(crate) async fn run<R: Send + 'static>(
    f: impl FnOnce() -> Result<R> + Send + 'static,
) -> Result<R> {
    tokio::task::spawn_blocking(move || run_blocking(f))
        .await
        .map_err(|e| anyhow!("the package job failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_one_thread_in_order() {
        let first = run_blocking(|| Ok(std::thread::current().id())).unwrap_or_else(|e| {
            panic!("{e}");
        });
        let threads: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(|| run_blocking(|| Ok(std::thread::current().id()))))
            .collect();
        for t in threads {
            let id = t.join().ok().and_then(|r| r.ok());
            assert_eq!(id, Some(first));
        }
        assert_ne!(first, std::thread::current().id());
    }

    #[test]
    fn a_panic_is_an_error_and_the_worker_survives() {
        let err = run_blocking::<()>(|| panic!("boom")).err();
        assert!(err.is_some_and(|e| e.to_string().contains("panicked")));
        assert_eq!(run_blocking(|| Ok(41 + 1)).ok(), Some(42));
    }
}
