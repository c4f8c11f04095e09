//! A test service that runs on its own thread with its own tokio runtime (the logind stand-in,
//! the HTTP server), so sync and async tests alike can use it: started once it reports ready,
//! stopped and joined on drop.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::error::HarnessError;

/// Where the service thread reports that it is ready, or why it could not start.
pub(crate) type Ready = mpsc::Sender<Result<(), HarnessError>>;
/// Resolves when the service must stop.
pub(crate) type Stop = tokio::sync::oneshot::Receiver<()>;

/// A running service thread.
#[derive(Debug)]
pub(crate) struct Background {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Runs `body` on a thread named `name` and waits until it reports on `Ready`. `what` says
    /// what is started, in errors.
    pub(crate) fn start(
        name: &str,
        what: &str,
        body: impl FnOnce(Ready, Stop) + Send + 'static,
    ) -> Result<Self, HarnessError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || body(ready_tx, stop_rx))
            .map_err(|e| HarnessError::new(format!("{what}: spawning a thread: {e}")))?;
        let mut background = Self {
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(background),
            Ok(Err(e)) => {
                background.stop();
                Err(e.context(what))
            }
            Err(_) => {
                background.stop();
                Err(HarnessError::new(format!(
                    "{what}: the thread ended without reporting (did it panic?)"
                )))
            }
        }
    }

    /// Whether the thread still runs.
    pub(crate) fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Tells the thread to stop and joins it; harmless if it already ended.
    pub(crate) fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // An error means the thread has already ended.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic of the thread is not re-raised here: this runs in drop.
            let _ = thread.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A current-thread runtime for a service thread, or `None` after reporting why not on `ready`.
pub(crate) fn runtime(ready: &Ready) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            let _ = ready.send(Err(HarnessError::new(format!(
                "building a tokio runtime: {e}"
            ))));
            None
        }
    }
}
