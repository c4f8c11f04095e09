//! TRANSACTION ENGINE: the single active-transaction slot and each transaction's life.
//!
//! A mutating method asks [`Engine::begin`] for a transaction. If one with the same method and
//! arguments is active, the caller joins it; if another one is, the caller gets the busy error.
//! A new transaction gets a fresh peer-to-peer server on an unguessable abstract socket
//! ([`server`]). The first `Start()` runs its [`kinds::Kind`] on a blocking thread; progress flows
//! back as [`TransactionEvent`]s, forwarded in order to every connected peer. When the work ends,
//! the daemon reloads the sysroot (so `PropertiesChanged` goes out first), then `Finished` is sent.
//! The transaction is closed once its peers have left (or after a grace period); one that nobody
//! starts is dropped after a timeout or when its initiator leaves the bus.

pub(crate) mod kinds;
pub(crate) mod server;

use std::{
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use ostree::{gio, prelude::*};
use rpmostree_api::{Error, TransactionEvent, TransactionSignals};
use tokio::sync::{mpsc, watch};
use zbus::Connection;

use crate::{daemon::Daemon, sysroot::ops};

/// How long a transaction may wait for its first `Start()`.
fn start_timeout() -> Duration {
    env_secs("RPMOSTREED_TXN_START_TIMEOUT_SECS", 120)
}

/// How long a finished transaction is kept for peers that have not left yet.
fn close_timeout() -> Duration {
    env_secs("RPMOSTREED_TXN_CLOSE_TIMEOUT_SECS", 30)
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// What a caller asks for.
#[derive(Debug)]
pub(crate) struct Request {
    /// The D-Bus method.
    pub(crate) method: String,
    /// The arguments, canonically written: identical requests have identical text.
    pub(crate) arguments: String,
    /// The object path called.
    pub(crate) object_path: String,
    /// The caller's unique name.
    pub(crate) sender: String,
    /// The caller's uid: only it and root may connect to the transaction.
    pub(crate) uid: u32,
    /// Title shown by clients.
    pub(crate) title: String,
    /// Who started it, for `InitiatingClientDescription`.
    pub(crate) client_description: String,
    /// The work.
    pub(crate) kind: kinds::Kind,
    /// Reboot after success.
    pub(crate) reboot: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Created,
    Running,
    Finished { success: bool, message: String },
    Closed,
}

/// One transaction.
#[derive(Debug)]
pub(crate) struct Txn {
    pub(crate) request: Request,
    /// The peer-to-peer address clients connect to.
    pub(crate) address: String,
    state: Mutex<State>,
    peers: Mutex<Vec<(u64, Connection)>>,
    cancellable: gio::Cancellable,
    events: mpsc::UnboundedSender<TransactionEvent>,
    /// Becomes true when the transaction is closed; stops the listener.
    closed: watch::Sender<bool>,
    daemon: Weak<Daemon>,
}

impl Txn {
    /// Whether it has finished (successfully or not) or been closed.
    pub(crate) fn is_over(&self) -> bool {
        matches!(*lock(&self.state), State::Finished { .. } | State::Closed)
    }

    /// Queues one event for every peer.
    fn send(&self, event: TransactionEvent) {
        let _ = self.events.send(event);
    }

    /// `Start()`: the first call runs the transaction and returns true.
    pub(crate) async fn start(self: &Arc<Self>, peer: &Connection) -> Result<bool, Error> {
        let previous = {
            let mut state = lock(&self.state);
            let previous = state.clone();
            if previous == State::Created {
                *state = State::Running;
            }
            previous
        };
        match previous {
            State::Created => {
                tracing::info!("transaction {} started", self.request.title);
                let txn = Arc::clone(self);
                tokio::spawn(async move { txn.execute().await });
                Ok(true)
            }
            State::Running => Ok(false),
            State::Finished { success, message } => {
                // A late peer still learns how it ended.
                let emitter = zbus::object_server::SignalEmitter::new(peer, "/")?;
                emitter.finished(success, &message).await?;
                Ok(false)
            }
            State::Closed => Err(Error::Failed("the transaction is closed".into())),
        }
    }

    /// `Cancel()`: stops the work at its next check point; a transaction that was never started
    /// finishes at once.
    pub(crate) fn cancel(self: &Arc<Self>) {
        tracing::info!("transaction {} cancelled by a peer", self.request.title);
        self.cancellable.cancel();
        let not_started = {
            let mut state = lock(&self.state);
            let was = *state == State::Created;
            if was {
                *state = State::Running;
            }
            was
        };
        if not_started {
            let txn = Arc::clone(self);
            tokio::spawn(async move {
                txn.finish(false, ops::CANCELLED.to_owned()).await;
            });
        }
    }

    async fn execute(self: Arc<Self>) {
        let txn = Arc::clone(&self);
        let result = tokio::task::spawn_blocking(move || txn.run_blocking()).await;
        let (mut success, mut message) = match result {
            Ok(Ok(summary)) => {
                tracing::info!("transaction {} succeeded: {summary}", self.request.title);
                (true, String::new())
            }
            Ok(Err(e)) => {
                let message = if self.cancellable.is_cancelled() {
                    ops::CANCELLED.to_owned()
                } else {
                    format!("{e:#}")
                };
                tracing::warn!("transaction {} failed: {message}", self.request.title);
                (false, message)
            }
            Err(e) => (false, format!("the transaction's worker died: {e}")),
        };
        if success
            && self.request.reboot
            && let Err(e) = crate::daemon::request_reboot().await
        {
            success = false;
            message = format!("The change was written, but a reboot could not be requested: {e:#}");
        }
        self.finish(success, message).await;
    }

    fn run_blocking(&self) -> anyhow::Result<String> {
        let daemon = self
            .daemon
            .upgrade()
            .ok_or_else(|| anyhow::anyhow!("the daemon is shutting down"))?;
        let op = ops::Op {
            path: daemon.sysroot_path(),
            cancellable: &self.cancellable,
            progress: Arc::new(Forward(self.events.clone())),
        };
        test_delay(&op)?;
        self.request.kind.run(&op)
    }

    /// Reloads the daemon's view (emitting `PropertiesChanged`), then sends `Finished`.
    async fn finish(self: &Arc<Self>, success: bool, message: String) {
        if let Some(daemon) = self.daemon.upgrade()
            && let Err(e) = daemon.reload().await
        {
            tracing::warn!("reloading after transaction {}: {e:#}", self.request.title);
        }
        *lock(&self.state) = State::Finished {
            success,
            message: message.clone(),
        };
        self.send(TransactionEvent::Finished {
            success,
            error_message: message,
        });
        if let Some(daemon) = self.daemon.upgrade() {
            daemon.transaction_changed().await;
        }
        let txn = Arc::clone(self);
        tokio::spawn(async move { txn.close_when_idle().await });
    }

    /// Closes once every peer has left, or after the grace period.
    async fn close_when_idle(self: Arc<Self>) {
        let deadline = tokio::time::Instant::now() + close_timeout();
        loop {
            if lock(&self.peers).is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.close().await;
    }

    /// Stops the server, drops the peers and frees the slot.
    pub(crate) async fn close(self: &Arc<Self>) {
        {
            let mut state = lock(&self.state);
            if *state == State::Closed {
                return;
            }
            if !matches!(*state, State::Finished { .. }) {
                tracing::info!(
                    "dropping transaction {} before it finished",
                    self.request.title
                );
                self.cancellable.cancel();
            }
            *state = State::Closed;
        }
        let _ = self.closed.send(true);
        let peers: Vec<(u64, Connection)> = std::mem::take(&mut *lock(&self.peers));
        for (_, peer) in peers {
            let _ = peer.close().await;
        }
        if let Some(daemon) = self.daemon.upgrade() {
            daemon.engine().release(self);
            daemon.transaction_changed().await;
        }
    }
}

/// Progress from the worker thread, as events.
struct Forward(mpsc::UnboundedSender<TransactionEvent>);

impl ops::Progress for Forward {
    fn message(&self, text: &str) {
        let _ = self.0.send(TransactionEvent::Message { text: text.into() });
    }
    fn task_begin(&self, text: &str) {
        let _ = self
            .0
            .send(TransactionEvent::TaskBegin { text: text.into() });
    }
    fn task_end(&self, text: &str) {
        let _ = self.0.send(TransactionEvent::TaskEnd { text: text.into() });
    }
    fn download(&self, s: ops::DownloadStats) {
        let _ = self.0.send(TransactionEvent::DownloadProgress {
            time: s.time,
            outstanding: s.outstanding,
            metadata: s.metadata,
            delta: s.delta,
            content: s.content,
            transfer: s.transfer,
        });
    }
    fn progress_end(&self) {
        let _ = self.0.send(TransactionEvent::ProgressEnd);
    }
    fn percent(&self, text: &str, percentage: u32) {
        let _ = self.0.send(TransactionEvent::PercentProgress {
            text: text.into(),
            percentage,
        });
    }
}

/// A test hook: `RPMOSTREED_TEST_TXN_DELAY_MS` makes every transaction wait (cancellably) before
/// its work, so tests can act on a running transaction.
fn test_delay(op: &ops::Op<'_>) -> anyhow::Result<()> {
    let Some(ms) = std::env::var("RPMOSTREED_TEST_TXN_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return Ok(());
    };
    op.progress.message("Waiting (test delay)");
    let end = std::time::Instant::now() + Duration::from_millis(ms);
    while std::time::Instant::now() < end {
        op.check_cancelled()?;
        std::thread::sleep(Duration::from_millis(20));
    }
    op.check_cancelled()
}

/// The active-transaction slot.
#[derive(Debug, Default)]
pub(crate) struct Engine {
    active: Mutex<Option<Arc<Txn>>>,
}

impl Engine {
    /// The active transaction, if any (finished ones stay until closed but do not block).
    pub(crate) fn active(&self) -> Option<Arc<Txn>> {
        lock(&self.active).clone()
    }

    /// Starts a transaction for `request`, or joins the identical active one.
    pub(crate) async fn begin(
        &self,
        daemon: &Arc<Daemon>,
        request: Request,
    ) -> Result<String, Error> {
        let txn = {
            let mut slot = lock(&self.active);
            if let Some(active) = slot.as_ref()
                && !active.is_over()
            {
                let same = active.request.method == request.method
                    && active.request.arguments == request.arguments
                    && active.request.object_path == request.object_path;
                if same {
                    tracing::info!(
                        "{} joins transaction {}",
                        request.sender,
                        active.request.title
                    );
                    return Ok(active.address.clone());
                }
                return Err(Error::Busy(format!(
                    "Transaction in progress: {} (started by {})\n You can cancel the current transaction with `rpm-ostree cancel`",
                    active.request.title, active.request.client_description
                )));
            }
            let (events, receiver) = mpsc::unbounded_channel();
            let (closed, closed_rx) = watch::channel(false);
            let listener = server::Listener::bind().map_err(|e| {
                Error::Failed(format!("cannot create the transaction socket: {e:#}"))
            })?;
            let txn = Arc::new(Txn {
                address: listener.address(),
                request,
                state: Mutex::new(State::Created),
                peers: Mutex::new(Vec::new()),
                cancellable: gio::Cancellable::new(),
                events,
                closed,
                daemon: Arc::downgrade(daemon),
            });
            tokio::spawn(server::serve(Arc::clone(&txn), listener, closed_rx));
            tokio::spawn(forward(Arc::clone(&txn), receiver));
            *slot = Some(Arc::clone(&txn));
            txn
        };
        tracing::info!(
            "initiated transaction {} for {} (uid {}) at {}",
            txn.request.title,
            txn.request.sender,
            txn.request.uid,
            txn.address
        );
        let watched = Arc::clone(&txn);
        let bus = daemon.bus().clone();
        tokio::spawn(async move { drop_if_never_started(watched, bus).await });
        daemon.transaction_changed().await;
        Ok(txn.address.clone())
    }

    /// Frees the slot if `txn` holds it.
    fn release(&self, txn: &Arc<Txn>) {
        let mut slot = lock(&self.active);
        if slot.as_ref().is_some_and(|a| Arc::ptr_eq(a, txn)) {
            *slot = None;
        }
    }
}

/// Sends each event to every peer, in order, until the transaction closes (the task holds the
/// transaction, so it must end on its own for the transaction to be freed).
async fn forward(txn: Arc<Txn>, mut receiver: mpsc::UnboundedReceiver<TransactionEvent>) {
    let mut closed = txn.closed.subscribe();
    loop {
        let event = tokio::select! {
            e = receiver.recv() => e,
            _ = closed.wait_for(|c| *c) => None,
        };
        let Some(event) = event else { break };
        let peers: Vec<Connection> = lock(&txn.peers).iter().map(|(_, c)| c.clone()).collect();
        for peer in peers {
            if let Err(e) = server::emit(&peer, &event).await {
                tracing::debug!("a transaction peer missed an event: {e}");
            }
        }
    }
}

/// Drops a transaction that is not started in time, or whose initiator leaves before starting it.
async fn drop_if_never_started(txn: Arc<Txn>, bus: Connection) {
    use futures_util::StreamExt;
    let started = || *lock(&txn.state) != State::Created;
    let vanished = async {
        let Ok(dbus) = zbus::fdo::DBusProxy::new(&bus).await else {
            return std::future::pending().await;
        };
        let Ok(mut changes) = dbus
            .receive_name_owner_changed_with_args(&[(0, txn.request.sender.as_str())])
            .await
        else {
            return std::future::pending().await;
        };
        // The initiator may have left before we subscribed.
        let name = zbus::names::BusName::try_from(txn.request.sender.as_str()).ok();
        if let Some(name) = name
            && !dbus.name_has_owner(name).await.unwrap_or(true)
        {
            return;
        }
        while let Some(change) = changes.next().await {
            if let Ok(args) = change.args()
                && args.new_owner().is_none()
            {
                return;
            }
        }
        std::future::pending().await
    };
    tokio::pin!(vanished);
    let deadline = tokio::time::Instant::now() + start_timeout();
    loop {
        tokio::select! {
            _ = &mut vanished => {
                if !started() {
                    tracing::warn!("client disconnected before calling Start; cancelling transaction {}", txn.request.title);
                    txn.close().await;
                }
                return;
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                if started() {
                    return;
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!("transaction {} was not started in time; dropping it", txn.request.title);
                    txn.close().await;
                    return;
                }
            }
        }
    }
}

/// Locks a mutex, recovering from poisoning (a panicked holder leaves plain data behind).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
