//! The per-transaction peer-to-peer D-Bus server.
//!
//! Each transaction listens on its own abstract unix socket whose name carries 128 random bits, so
//! it cannot be guessed. Every connecting peer's credentials are checked before any D-Bus traffic:
//! only root and the uid that started the transaction may connect (upstream lets anyone in). Each
//! admitted peer gets the Transaction object at `/`; signals go to every peer.

use std::{io::Read, sync::Arc, time::Duration};

use anyhow::{Context, Result};
use rpmostree_api::{
    CallContext, Error, TransactionEvent, TransactionHandler, TransactionInterface,
    TransactionSignals,
};
use tokio::{net::UnixListener, sync::watch};
use zbus::{Connection, object_server::SignalEmitter};

use super::Txn;

/// Where peers come from: the transaction socket, or a fake in tests of the accept loop.
pub(crate) trait Accept: Send + 'static {
    /// The next connection.
    fn accept(&self) -> impl Future<Output = std::io::Result<tokio::net::UnixStream>> + Send;
}

impl Accept for Listener {
    async fn accept(&self) -> std::io::Result<tokio::net::UnixStream> {
        self.listener.accept().await.map(|(stream, _)| stream)
    }
}

/// A bound, not yet serving, transaction socket.
pub(crate) struct Listener {
    listener: UnixListener,
    name: String,
}

impl Listener {
    /// Binds a fresh abstract socket with an unguessable name.
    pub(crate) fn bind() -> Result<Self> {
        let mut random = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut random))
            .context("reading /dev/urandom")?;
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("rpm-ostreed/txn/{hex}");
        let listener = UnixListener::bind(format!("\0{name}"))
            .with_context(|| format!("binding the abstract socket {name}"))?;
        Ok(Self { listener, name })
    }

    /// The D-Bus address of the socket.
    pub(crate) fn address(&self) -> String {
        format!("unix:abstract={}", self.name)
    }
}

/// Accepts peers until the transaction closes. An `accept()` error (e.g. out of file
/// descriptors) backs off instead of spinning.
pub(crate) async fn serve(
    txn: Arc<Txn>,
    listener: impl Accept,
    mut closed: watch::Receiver<bool>,
    handshake_timeout: Duration,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = closed.wait_for(|c| *c) => break,
        };
        let stream = match accepted {
            Ok(stream) => {
                backoff = Duration::from_millis(50);
                stream
            }
            Err(e) => {
                tracing::warn!(
                    "transaction socket: accept failed: {e}; retrying in {} ms",
                    backoff.as_millis()
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = closed.wait_for(|c| *c) => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let txn = Arc::clone(&txn);
        tokio::spawn(async move {
            if let Err(e) = admit(txn, stream, handshake_timeout).await {
                tracing::warn!("transaction peer refused: {e:#}");
            }
        });
    }
}

async fn admit(
    txn: Arc<Txn>,
    stream: tokio::net::UnixStream,
    handshake_timeout: Duration,
) -> Result<()> {
    let creds = stream
        .peer_cred()
        .context("reading the peer's credentials")?;
    let uid = creds.uid();
    if uid != 0 && uid != txn.request.uid {
        anyhow::bail!(
            "uid {uid} (pid {:?}) may not connect to transaction {}: only root and uid {} may",
            creds.pid(),
            txn.request.title,
            txn.request.uid
        );
    }
    let id = NEXT_PEER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let object = TxnObject {
        txn: Arc::clone(&txn),
        peer: id,
    };
    let build = zbus::connection::Builder::unix_stream(stream.into_std()?)
        .server(zbus::Guid::generate())
        .p2p()
        .serve_at(
            rpmostree_api::names::TRANSACTION_PATH,
            TransactionInterface(object),
        )
        .build();
    let connection = tokio::time::timeout(handshake_timeout, build)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the peer (pid {:?}) did not authenticate within {} s",
                creds.pid(),
                handshake_timeout.as_secs()
            )
        })?
        .context("setting up the peer connection")?;
    tracing::info!(
        "process (pid {:?}, uid {uid}) connected to transaction {}",
        creds.pid(),
        txn.request.title
    );
    // Subscribe before the peer is visible, so its leaving cannot be missed.
    let mut messages = zbus::MessageStream::from(&connection);
    txn.add_peer(id, connection);
    // Watch for the peer leaving: the message stream ends when the connection closes.
    use futures_util::StreamExt;
    while let Some(message) = messages.next().await {
        if message.is_err() {
            break;
        }
    }
    txn.remove_peer(id);
    tracing::debug!("a peer left transaction {}", txn.request.title);
    Ok(())
}

static NEXT_PEER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Emits one event as its signal on one peer connection.
pub(crate) async fn emit(peer: &Connection, event: &TransactionEvent) -> zbus::Result<()> {
    let e = SignalEmitter::new(peer, rpmostree_api::names::TRANSACTION_PATH)?;
    match event {
        TransactionEvent::Finished {
            success,
            error_message,
        } => e.finished(*success, error_message).await,
        TransactionEvent::Message { text } => e.message(text).await,
        TransactionEvent::TaskBegin { text } => e.task_begin(text).await,
        TransactionEvent::TaskEnd { text } => e.task_end(text).await,
        TransactionEvent::PercentProgress { text, percentage } => {
            e.percent_progress(text, *percentage).await
        }
        TransactionEvent::DownloadProgress {
            time,
            outstanding,
            metadata,
            delta,
            content,
            transfer,
        } => {
            e.download_progress(*time, *outstanding, *metadata, *delta, *content, *transfer)
                .await
        }
        TransactionEvent::SignatureProgress { signature, commit } => {
            e.signature_progress(signature, commit).await
        }
        TransactionEvent::ProgressEnd => e.progress_end().await,
    }
}

/// The Transaction object served to one peer.
struct TxnObject {
    txn: Arc<Txn>,
    /// The peer's id in the transaction's list.
    peer: u64,
}

impl TransactionHandler for TxnObject {
    async fn cancel(&self, _ctx: &CallContext<'_>) -> Result<(), Error> {
        self.txn.cancel();
        Ok(())
    }

    async fn start(&self, ctx: &CallContext<'_>) -> Result<bool, Error> {
        // The call can be served before the set-up code lists the peer: list it now, so it
        // cannot miss the signals the work is about to send.
        self.txn.add_peer(self.peer, ctx.connection().clone());
        self.txn.start(ctx.connection()).await
    }

    async fn title(&self) -> Result<String, Error> {
        Ok(self.txn.request.title.clone())
    }

    async fn initiating_client_description(&self) -> Result<String, Error> {
        Ok(self.txn.request.client_description.clone())
    }
}
