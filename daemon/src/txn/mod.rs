//! TRANSACTION ENGINE: the single active-transaction slot and each transaction's life.
//!
//! A mutating method asks [`Engine::begin`] for a transaction. If one with the same method and
//! arguments is active, the caller joins it; if another one is, the caller gets the busy error.
//! A new transaction gets a fresh peer-to-peer server on an unguessable abstract socket
//! ([`server`]). The first `Start()` runs its [`kinds::Kind`] through the [`Host`] on a blocking
//! thread; progress flows back as [`TransactionEvent`]s, fanned out to one bounded queue per peer,
//! so a peer that stops reading is dropped instead of stalling the others. When the work ends,
//! the host reloads (so `PropertiesChanged` goes out first), then `Finished` is sent and flushed
//! to the peers; only then, and only if the work wrote a change, is a requested reboot asked for.
//! The transaction is closed once its peers have left (or after a grace period); one that nobody
//! starts is dropped after a timeout or when its initiator leaves the bus.
//!
//! The engine knows the daemon only through [`Host`], so its rules (join, busy, cancel before
//! start, start timeout, close grace, panics, reboots) are unit-tested with a fake host.

pub(crate) mod kinds;
pub(crate) mod server;

use std::{
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures_util::future::BoxFuture;
use ostree::{gio, prelude::*};
use rpmostree_api::{Error, TransactionEvent, TransactionSignals};
use tokio::sync::{mpsc, oneshot, watch};
use zbus::Connection;

use crate::sysroot::ops;

/// What a transaction's work reports when it succeeds: the operation's [`ops::Report`] (a
/// requested reboot follows only a report that says the system changed), and maybe a last step.
pub(crate) struct Outcome {
    /// What the operation did.
    pub(crate) report: ops::Report,
    /// A last step that runs only once a reboot was requested and accepted
    /// (`FinalizeDeployment` unlocks the staged deployment there, never before).
    pub(crate) after_reboot_accepted: Option<Box<dyn FnOnce() -> anyhow::Result<()> + Send>>,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("report", &self.report)
            .field(
                "after_reboot_accepted",
                &self.after_reboot_accepted.is_some(),
            )
            .finish()
    }
}

impl From<ops::Report> for Outcome {
    fn from(report: ops::Report) -> Self {
        Self {
            report,
            after_reboot_accepted: None,
        }
    }
}

/// What a transaction's work gets from the engine.
pub(crate) struct Work {
    /// Cancelled by `Transaction.Cancel()` and by the daemon's shutdown.
    pub(crate) cancellable: gio::Cancellable,
    /// Progress, forwarded to the peers.
    pub(crate) progress: Arc<dyn ops::Progress>,
    /// Set by the work once its change is on disk: a later cancel is too late.
    pub(crate) written: Arc<AtomicBool>,
}

/// The engine's narrow view of the daemon.
pub(crate) trait Host: Send + Sync + 'static {
    /// Runs a transaction's work; called on a blocking thread.
    fn run(&self, kind: &kinds::Kind, work: &Work) -> anyhow::Result<Outcome>;
    /// The work ended: publish the new state (before `Finished` is sent).
    fn work_done(&self) -> BoxFuture<'_, ()>;
    /// The slot changed (a transaction appeared, finished or was closed).
    fn slot_changed(&self) -> BoxFuture<'_, ()>;
    /// Whether a reboot could be asked for now; `Err` says why not (no reboot service, a
    /// blocking inhibitor).
    fn reboot_check(&self) -> BoxFuture<'_, Result<(), String>>;
    /// Asks the system to reboot; `Err` says what refused.
    fn reboot(&self) -> BoxFuture<'_, Result<(), String>>;
    /// Resolves once the bus name `sender` has left the bus (at once if it is not there).
    fn gone(&self, sender: &str) -> BoxFuture<'static, ()>;
}

/// Timeouts and limits of the engine.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// How long a transaction may wait for its first `Start()`.
    pub(crate) start_timeout: Duration,
    /// How long a finished transaction is kept for peers that have not left yet.
    pub(crate) close_timeout: Duration,
    /// How long `Finished` may take to reach the peers before a reboot is requested anyway.
    pub(crate) flush_timeout: Duration,
    /// How long one signal may take to reach one peer before that peer is dropped.
    pub(crate) emit_timeout: Duration,
    /// How many signals may wait for one peer before that peer is dropped.
    pub(crate) peer_queue: usize,
    /// How long a new peer may take to authenticate (SASL) before it is dropped.
    pub(crate) handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            start_timeout: env_secs("RPMOSTREED_TXN_START_TIMEOUT_SECS", 120),
            close_timeout: env_secs("RPMOSTREED_TXN_CLOSE_TIMEOUT_SECS", 30),
            flush_timeout: Duration::from_secs(2),
            emit_timeout: Duration::from_secs(5),
            peer_queue: 4096,
            handshake_timeout: Duration::from_secs(10),
        }
    }
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
    /// Reboot after a successful change.
    pub(crate) reboot: bool,
}

/// Why [`Engine::begin`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BeginError {
    /// Another transaction runs; its title.
    Busy(String),
    /// A reboot was requested: nothing may change any more.
    Rebooting,
    /// The transaction socket could not be made.
    Socket(String),
}

impl From<BeginError> for Error {
    fn from(e: BeginError) -> Self {
        match e {
            // Only the title: the bus name and uid of another user are not the caller's business.
            BeginError::Busy(title) => Error::Busy(format!(
                "Transaction in progress: {title}\n You can cancel the current transaction with `rpm-ostree cancel`"
            )),
            BeginError::Rebooting => {
                Error::Failed("Reboot initiated, cannot start new transaction".into())
            }
            BeginError::Socket(e) => {
                Error::Failed(format!("cannot create the transaction socket: {e}"))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Created,
    Running,
    Finished { success: bool, message: String },
    Closed,
}

/// What flows to the peers: signals, and flush marks acknowledged once every earlier signal
/// was handed to the peer's socket.
#[derive(Debug)]
pub(crate) enum Item {
    /// A signal.
    Event(TransactionEvent),
    /// Acknowledge when everything before was sent.
    Flush(oneshot::Sender<()>),
}

/// One connected peer.
#[derive(Debug)]
struct Peer {
    id: u64,
    connection: Connection,
    queue: mpsc::Sender<Item>,
    sender_task: tokio::task::AbortHandle,
}

/// One transaction.
pub(crate) struct Txn {
    pub(crate) request: Request,
    /// The peer-to-peer address clients connect to.
    pub(crate) address: String,
    state: Mutex<State>,
    peers: Mutex<Vec<Peer>>,
    /// Peers that left (their ids), so a late `add_peer` does not bring one back.
    departed: Mutex<Vec<u64>>,
    cancellable: gio::Cancellable,
    written: Arc<AtomicBool>,
    items: mpsc::UnboundedSender<Item>,
    /// Becomes true when the transaction is closed; stops the listener.
    closed: watch::Sender<bool>,
    /// Becomes true when its ending is complete: `Finished` flushed, any reboot asked for.
    done: watch::Sender<bool>,
    host: Weak<dyn Host>,
    slot: Weak<Slot>,
}

impl std::fmt::Debug for Txn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn")
            .field("request", &self.request)
            .field("address", &self.address)
            .field("state", &*lock(&self.state))
            .finish_non_exhaustive()
    }
}

impl Txn {
    /// Whether it has finished (successfully or not) or been closed.
    pub(crate) fn is_over(&self) -> bool {
        matches!(*lock(&self.state), State::Finished { .. } | State::Closed)
    }

    fn limits(&self) -> Limits {
        self.slot
            .upgrade()
            .map(|s| s.limits.clone())
            .unwrap_or_default()
    }

    /// Queues one event for every peer.
    fn send(&self, event: TransactionEvent) {
        let _ = self.items.send(Item::Event(event));
    }

    /// Waits until every peer was handed every event queued so far (bounded).
    async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.items.send(Item::Flush(ack)).is_ok() {
            let _ = tokio::time::timeout(self.limits().flush_timeout * 2, done).await;
        }
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
    /// finishes at once. A cancel that comes after the change was written changes nothing.
    pub(crate) fn cancel(self: &Arc<Self>) {
        if self.written.load(Ordering::SeqCst) {
            tracing::info!(
                "transaction {}: cancel requested after the change was written",
                self.request.title
            );
        } else {
            tracing::info!("transaction {} cancelled by a peer", self.request.title);
        }
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
                let _ = txn.done.send(true);
            });
        }
    }

    async fn execute(self: Arc<Self>) {
        let Some(host) = self.host.upgrade() else {
            self.finish(false, "the daemon is shutting down".into())
                .await;
            let _ = self.done.send(true);
            return;
        };
        let work = Work {
            cancellable: self.cancellable.clone(),
            progress: Arc::new(Forward(self.items.clone())),
            written: Arc::clone(&self.written),
        };
        let worker_host = Arc::clone(&host);
        let txn = Arc::clone(&self);
        let result =
            tokio::task::spawn_blocking(move || worker_host.run(&txn.request.kind, &work)).await;
        let written = self.written.load(Ordering::SeqCst);
        let (outcome, mut success, mut message) = match result {
            Ok(Ok(outcome)) => {
                tracing::info!(
                    "transaction {} succeeded: {}",
                    self.request.title,
                    outcome.report.summary
                );
                if self.cancellable.is_cancelled() && written {
                    self.send(TransactionEvent::Message {
                        text: "Too late to cancel: the change had already been written.".into(),
                    });
                }
                (Some(outcome), true, String::new())
            }
            Ok(Err(e)) => {
                let message = if self.cancellable.is_cancelled() && !written {
                    ops::CANCELLED.to_owned()
                } else {
                    format!("{e:#}")
                };
                tracing::warn!("transaction {} failed: {message}", self.request.title);
                (None, false, message)
            }
            Err(e) => {
                let message = format!(
                    "rpm-ostreed hit an internal error running this transaction ({}); nothing more was done",
                    panic_text(e)
                );
                tracing::error!("transaction {}: {message}", self.request.title);
                (None, false, message)
            }
        };

        let mut reboot_after_finished = false;
        if let Some(outcome) = outcome
            && self.request.reboot
        {
            if !outcome.report.changed {
                self.send(TransactionEvent::Message {
                    text: "Nothing changed, so no reboot.".into(),
                });
            } else if self.cancellable.is_cancelled() {
                // Cancelled after the change was written: the change stays, the reboot is off.
                self.send(TransactionEvent::Message {
                    text: "The change is queued for the next boot; no reboot, since the transaction was cancelled.".into(),
                });
            } else if let Err(why) = host.reboot_check().await {
                success = false;
                message = if outcome.after_reboot_accepted.is_some() {
                    format!("No reboot could be requested, so nothing was changed: {why}")
                } else {
                    format!(
                        "The change is queued for the next boot, but no reboot was requested: {why}"
                    )
                };
            } else if let Some(last_step) = outcome.after_reboot_accepted {
                // The reboot must be accepted before the last step makes the change effective.
                self.set_rebooting(true);
                match host.reboot().await {
                    Ok(()) => {
                        let step = tokio::task::spawn_blocking(last_step).await;
                        match step {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                success = false;
                                message = format!("{e:#}");
                            }
                            Err(e) => {
                                success = false;
                                message = format!("internal error: {}", panic_text(e));
                            }
                        }
                    }
                    Err(e) => {
                        self.set_rebooting(false);
                        success = false;
                        message = format!("The reboot was refused, so nothing was changed: {e}");
                    }
                }
            } else {
                self.set_rebooting(true);
                reboot_after_finished = true;
            }
        }
        self.finish(success, message).await;
        if reboot_after_finished {
            // Checked again: an inhibitor may have been taken while `Finished` went out.
            let asked = match host.reboot_check().await {
                Ok(()) => host.reboot().await,
                Err(why) => Err(why),
            };
            match asked {
                Ok(()) => tracing::info!("reboot requested after {}", self.request.title),
                Err(e) => {
                    self.set_rebooting(false);
                    tracing::error!(
                        "the reboot after {} was refused: {e}; the change stays queued for the next boot",
                        self.request.title
                    );
                }
            }
        }
        let _ = self.done.send(true);
    }

    fn set_rebooting(&self, on: bool) {
        if let Some(slot) = self.slot.upgrade() {
            slot.rebooting.store(on, Ordering::SeqCst);
        }
    }

    /// Publishes the new state, sends `Finished` and waits (bounded) until the peers have it.
    async fn finish(self: &Arc<Self>, success: bool, message: String) {
        let host = self.host.upgrade();
        if let Some(host) = &host {
            host.work_done().await;
        }
        {
            let mut state = lock(&self.state);
            if *state == State::Closed {
                return;
            }
            *state = State::Finished {
                success,
                message: message.clone(),
            };
        }
        self.send(TransactionEvent::Finished {
            success,
            error_message: message,
        });
        if let Some(host) = &host {
            host.slot_changed().await;
        }
        self.flush().await;
        let txn = Arc::clone(self);
        tokio::spawn(async move { txn.close_when_idle().await });
    }

    /// Closes once every peer has left, or after the grace period.
    async fn close_when_idle(self: Arc<Self>) {
        let deadline = tokio::time::Instant::now() + self.limits().close_timeout;
        loop {
            if lock(&self.peers).is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.close().await;
    }

    /// Closes the transaction only if nobody started it, in one step with the check, so a
    /// `Start()` that comes at the same moment either runs it or finds it closed.
    async fn close_if_unstarted(self: &Arc<Self>) -> bool {
        {
            let mut state = lock(&self.state);
            if *state != State::Created {
                return false;
            }
            *state = State::Closed;
            self.cancellable.cancel();
        }
        self.close_down().await;
        true
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
        self.close_down().await;
    }

    /// What closing does once the state says closed: stop the listener, drop the peers, free
    /// the slot.
    async fn close_down(self: &Arc<Self>) {
        let _ = self.closed.send(true);
        let _ = self.done.send(true);
        let peers: Vec<Peer> = std::mem::take(&mut *lock(&self.peers));
        for peer in peers {
            disconnect(peer);
        }
        if let Some(slot) = self.slot.upgrade() {
            slot.release(self);
        }
        if let Some(host) = self.host.upgrade() {
            host.slot_changed().await;
        }
    }

    /// Adds an admitted peer, once: its own bounded queue and sender task. Called when its
    /// connection is set up and again by its `Start()`, which may be served first: the peer must
    /// be in the list before the work can emit anything, or it would miss `Finished`.
    pub(crate) fn add_peer(self: &Arc<Self>, id: u64, connection: Connection) {
        let mut peers = lock(&self.peers);
        if peers.iter().any(|p| p.id == id) || self.closed_or_gone(id) {
            return;
        }
        let limits = self.limits();
        let (queue, items) = mpsc::channel(limits.peer_queue);
        let task = tokio::spawn(send_to_peer(connection.clone(), items, limits.emit_timeout));
        peers.push(Peer {
            id,
            connection,
            queue,
            sender_task: task.abort_handle(),
        });
    }

    /// Whether peer `id` left, or the transaction is closed (no peer is added then).
    fn closed_or_gone(&self, id: u64) -> bool {
        *lock(&self.state) == State::Closed || lock(&self.departed).contains(&id)
    }

    /// Forgets a peer that left; it is not added again.
    pub(crate) fn remove_peer(&self, id: u64) {
        for peer in self.take_peers(&[id]) {
            peer.sender_task.abort();
        }
    }

    /// Takes peers out of the list, for good (a late `add_peer` does not bring them back).
    fn take_peers(&self, ids: &[u64]) -> Vec<Peer> {
        lock(&self.departed).extend_from_slice(ids);
        let mut peers = lock(&self.peers);
        let (taken, kept) = std::mem::take(&mut *peers)
            .into_iter()
            .partition(|p| ids.contains(&p.id));
        *peers = kept;
        taken
    }

    /// How many peers are connected.
    #[cfg(test)]
    fn peer_count(&self) -> usize {
        lock(&self.peers).len()
    }
}

/// Drops a peer: stops its sender and closes its connection without waiting on it.
fn disconnect(peer: Peer) {
    peer.sender_task.abort();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(1), peer.connection.close()).await;
    });
}

/// The text of a worker's panic.
fn panic_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return "its worker was stopped".into();
    }
    let payload = e.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into());
    format!("panic: {text}")
}

/// Sends one peer its signals in order; ends (dropping the peer's queue) when a signal cannot
/// be delivered in time.
async fn send_to_peer(peer: Connection, mut items: mpsc::Receiver<Item>, timeout: Duration) {
    while let Some(item) = items.recv().await {
        match item {
            Item::Event(event) => {
                match tokio::time::timeout(timeout, server::emit(&peer, &event)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!("a transaction peer missed an event: {e}"),
                    Err(_) => {
                        tracing::warn!("dropping a transaction peer that stopped reading");
                        let _ = tokio::time::timeout(Duration::from_secs(1), peer.close()).await;
                        return;
                    }
                }
            }
            Item::Flush(ack) => {
                let _ = ack.send(());
            }
        }
    }
}

/// Progress from the worker thread, as events.
struct Forward(mpsc::UnboundedSender<Item>);

impl Forward {
    fn event(&self, event: TransactionEvent) {
        let _ = self.0.send(Item::Event(event));
    }
}

impl ops::Progress for Forward {
    fn message(&self, text: &str) {
        self.event(TransactionEvent::Message { text: text.into() });
    }
    fn task_begin(&self, text: &str) {
        self.event(TransactionEvent::TaskBegin { text: text.into() });
    }
    fn task_end(&self, text: &str) {
        self.event(TransactionEvent::TaskEnd { text: text.into() });
    }
    fn download(&self, s: ops::DownloadStats) {
        self.event(TransactionEvent::DownloadProgress {
            time: s.time,
            outstanding: s.outstanding,
            metadata: s.metadata,
            delta: s.delta,
            content: s.content,
            transfer: s.transfer,
        });
    }
    fn progress_end(&self) {
        self.event(TransactionEvent::ProgressEnd);
    }
    fn percent(&self, text: &str, percentage: u32) {
        self.event(TransactionEvent::PercentProgress {
            text: text.into(),
            percentage,
        });
    }
}

/// The slot and the engine-wide flags, shared with the transactions.
#[derive(Debug, Default)]
struct Slot {
    active: Mutex<Option<Arc<Txn>>>,
    rebooting: AtomicBool,
    limits: Limits,
}

impl Slot {
    /// Frees the slot if `txn` holds it.
    fn release(&self, txn: &Arc<Txn>) {
        let mut slot = lock(&self.active);
        if slot.as_ref().is_some_and(|a| Arc::ptr_eq(a, txn)) {
            *slot = None;
        }
    }
}

/// The active-transaction slot.
#[derive(Debug, Default)]
pub(crate) struct Engine {
    slot: Arc<Slot>,
}

impl Engine {
    /// An engine with these limits.
    #[cfg(test)]
    fn with_limits(limits: Limits) -> Self {
        Self {
            slot: Arc::new(Slot {
                limits,
                ..Default::default()
            }),
        }
    }

    /// The active transaction, if any (finished ones stay until closed but do not block).
    pub(crate) fn active(&self) -> Option<Arc<Txn>> {
        lock(&self.slot.active).clone()
    }

    /// Whether a reboot was requested.
    pub(crate) fn is_rebooting(&self) -> bool {
        self.slot.rebooting.load(Ordering::SeqCst)
    }

    /// Starts a transaction for `request`, or joins the identical active one; returns its
    /// address.
    pub(crate) async fn begin(
        &self,
        host: Arc<dyn Host>,
        request: Request,
    ) -> Result<String, BeginError> {
        let txn = {
            let mut slot = lock(&self.slot.active);
            // Read under the slot's lock: a reboot is requested only by the transaction that
            // holds the slot, so nothing can slip in between.
            if self.is_rebooting() {
                return Err(BeginError::Rebooting);
            }
            if let Some(active) = slot.as_ref()
                && !active.is_over()
            {
                // Joining hands out the address, which only root and the initiating uid may
                // connect to: another user gets the busy error instead.
                let same = active.request.method == request.method
                    && active.request.arguments == request.arguments
                    && active.request.object_path == request.object_path
                    && (request.uid == active.request.uid || request.uid == 0);
                if same {
                    tracing::info!(
                        "{} joins transaction {}",
                        request.sender,
                        active.request.title
                    );
                    return Ok(active.address.clone());
                }
                return Err(BeginError::Busy(active.request.title.clone()));
            }
            let (items, receiver) = mpsc::unbounded_channel();
            let (closed, closed_rx) = watch::channel(false);
            let listener =
                server::Listener::bind().map_err(|e| BeginError::Socket(format!("{e:#}")))?;
            let txn = Arc::new(Txn {
                address: listener.address(),
                request,
                state: Mutex::new(State::Created),
                peers: Mutex::new(Vec::new()),
                departed: Mutex::new(Vec::new()),
                cancellable: gio::Cancellable::new(),
                written: Arc::new(AtomicBool::new(false)),
                items,
                closed,
                done: watch::channel(false).0,
                host: Arc::downgrade(&host),
                slot: Arc::downgrade(&self.slot),
            });
            tokio::spawn(server::serve(
                Arc::clone(&txn),
                listener,
                closed_rx,
                self.slot.limits.handshake_timeout,
            ));
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
        let gone = host.gone(&txn.request.sender);
        tokio::spawn(drop_if_never_started(
            Arc::clone(&txn),
            gone,
            self.slot.limits.start_timeout,
        ));
        host.slot_changed().await;
        Ok(txn.address.clone())
    }

    /// Cancels the running transaction, if any, and waits (at most `timeout`) until it has
    /// finished: the daemon's clean exit on SIGTERM.
    pub(crate) async fn shutdown(&self, timeout: Duration) {
        let Some(txn) = self.active().filter(|t| !*t.done.borrow()) else {
            return;
        };
        if !txn.is_over() {
            tracing::info!("cancelling transaction {} to exit", txn.request.title);
            txn.cancel();
        }
        let mut done = txn.done.subscribe();
        let ended = tokio::time::timeout(timeout, done.wait_for(|d| *d)).await;
        if !matches!(ended, Ok(Ok(_))) {
            tracing::warn!(
                "transaction {} did not end within {timeout:?}; exiting anyway",
                txn.request.title
            );
        }
    }
}

/// Fans each item out to every peer's own queue, in order, until the transaction closes. A peer
/// whose queue is full (it stopped reading) is dropped; nobody waits for it.
async fn forward(txn: Arc<Txn>, mut receiver: mpsc::UnboundedReceiver<Item>) {
    let mut closed = txn.closed.subscribe();
    loop {
        let item = tokio::select! {
            i = receiver.recv() => i,
            _ = closed.wait_for(|c| *c) => None,
        };
        let Some(item) = item else { break };
        match item {
            Item::Event(event) => {
                let mut stalled = Vec::new();
                for peer in lock(&txn.peers).iter() {
                    if peer.queue.try_send(Item::Event(event.clone())).is_err() {
                        stalled.push(peer.id);
                    }
                }
                drop_peers(&txn, &stalled);
            }
            Item::Flush(ack) => {
                let mut waits = Vec::new();
                for peer in lock(&txn.peers).iter() {
                    let (tx, rx) = oneshot::channel();
                    if peer.queue.try_send(Item::Flush(tx)).is_ok() {
                        waits.push(rx);
                    }
                }
                let limit = txn.limits().flush_timeout;
                let _ = tokio::time::timeout(limit, futures_util::future::join_all(waits)).await;
                let _ = ack.send(());
            }
        }
    }
}

fn drop_peers(txn: &Txn, ids: &[u64]) {
    if ids.is_empty() {
        return;
    }
    for peer in txn.take_peers(ids) {
        tracing::warn!(
            "dropping a peer of transaction {}: it stopped reading its signals",
            txn.request.title
        );
        disconnect(peer);
    }
}

/// Drops a transaction that is not started in time, or whose initiator leaves before starting it.
async fn drop_if_never_started(txn: Arc<Txn>, gone: BoxFuture<'static, ()>, timeout: Duration) {
    let started = || *lock(&txn.state) != State::Created;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut gone = gone;
    loop {
        tokio::select! {
            _ = &mut gone => {
                if txn.close_if_unstarted().await {
                    tracing::warn!("client disconnected before calling Start; dropped transaction {}", txn.request.title);
                }
                return;
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if started() {
                    return;
                }
                if tokio::time::Instant::now() >= deadline {
                    if txn.close_if_unstarted().await {
                        tracing::warn!("transaction {} was not started in time; dropped it", txn.request.title);
                    }
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

#[cfg(test)]
mod tests;
