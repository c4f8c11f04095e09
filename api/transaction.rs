//! Following a transaction to its end.
//!
//! The generated `<method>_transaction` helpers return a [`TransactionClient`] already
//! subscribed to the transaction's signals. This module adds the step every client repeats:
//! call `Start()`, then read events until `Finished`, turning `Finished(false, message)` into an
//! error.

use futures_util::StreamExt;

use crate::{Error, TransactionClient, TransactionEvent};

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Whether `Start()` started it (`false`: another client had started it already).
    pub started_here: bool,
}

impl TransactionClient {
    /// Calls `Start()`, passes each event to `on_event` as it arrives, and returns once
    /// `Finished` arrives: `Ok` on success, [`Error::Failed`] with the daemon's message otherwise.
    ///
    /// If the connection closes before `Finished`, that is an error too.
    pub async fn run<F>(&mut self, mut on_event: F) -> Result<Outcome, Error>
    where
        F: FnMut(&TransactionEvent),
    {
        let started_here = self.proxy.start().await.map_err(Error::from)?;
        while let Some(event) = self.events.next().await {
            let event = event.map_err(Error::from)?;
            on_event(&event);
            if let TransactionEvent::Finished {
                success,
                error_message,
            } = event
            {
                return if success {
                    Ok(Outcome { started_here })
                } else {
                    Err(Error::Failed(error_message))
                };
            }
        }
        Err(Error::Failed(format!(
            "the transaction at {} closed its connection before it finished",
            self.address
        )))
    }

    /// Blocking [`TransactionClient::run`], for programs without an async runtime.
    pub fn run_blocking<F>(&mut self, on_event: F) -> Result<Outcome, Error>
    where
        F: FnMut(&TransactionEvent),
    {
        zbus::block_on(self.run(on_event))
    }
}
