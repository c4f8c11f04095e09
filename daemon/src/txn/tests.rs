//! The engine as a unit: a fake host, real peer-to-peer connections on abstract sockets, no
//! root and no bus.

#![allow(clippy::unwrap_used)]

use std::{
    io::{Read, Write},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{StreamExt, future::BoxFuture};
use ostree::prelude::*;
use rpmostree_api::{TransactionClient, TransactionEvent};
use tokio::sync::watch;

use super::{BeginError, Engine, Host, Limits, Outcome, Request, Work, kinds::Kind, lock};
use crate::sysroot::ops::{CANCELLED, Report};

type RunFn = dyn Fn(&Work) -> anyhow::Result<Outcome> + Send + Sync;

/// A host whose work, reboot check and reboot answers are set by the test, and which records
/// what the engine asked of it.
struct FakeHost {
    work: Box<RunFn>,
    reboot_check: Result<(), String>,
    reboot: Result<(), String>,
    reboots: Mutex<Vec<(Instant, bool)>>,
    work_done: AtomicUsize,
    gone: watch::Sender<bool>,
    engine: Mutex<Option<std::sync::Weak<Engine>>>,
}

impl FakeHost {
    fn new(work: impl Fn(&Work) -> anyhow::Result<Outcome> + Send + Sync + 'static) -> Self {
        Self {
            work: Box::new(work),
            reboot_check: Ok(()),
            reboot: Ok(()),
            reboots: Mutex::new(Vec::new()),
            work_done: AtomicUsize::new(0),
            gone: watch::channel(false).0,
            engine: Mutex::new(None),
        }
    }
}

impl Host for FakeHost {
    fn run(&self, _kind: &Kind, work: &Work) -> anyhow::Result<Outcome> {
        (self.work)(work)
    }
    fn work_done(&self) -> BoxFuture<'_, ()> {
        self.work_done.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {})
    }
    fn slot_changed(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    fn reboot_check(&self) -> BoxFuture<'_, Result<(), String>> {
        let answer = self.reboot_check.clone();
        Box::pin(async move { answer })
    }
    fn reboot(&self) -> BoxFuture<'_, Result<(), String>> {
        // Whether the transaction had finished when the reboot was asked for.
        let finished = lock(&self.engine)
            .as_ref()
            .and_then(std::sync::Weak::upgrade)
            .and_then(|e| e.active())
            .is_none_or(|t| t.is_over());
        lock(&self.reboots).push((Instant::now(), finished));
        let answer = self.reboot.clone();
        Box::pin(async move { answer })
    }
    fn gone(&self, _sender: &str) -> BoxFuture<'static, ()> {
        let mut gone = self.gone.subscribe();
        Box::pin(async move {
            let _ = gone.wait_for(|g| *g).await;
        })
    }
}

/// Blocks the work until the transaction is cancelled (at most 10 s).
fn until_cancelled(w: &Work) {
    let start = Instant::now();
    while !w.cancellable.is_cancelled() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn limits() -> Limits {
    Limits {
        start_timeout: Duration::from_secs(30),
        close_timeout: Duration::from_secs(5),
        flush_timeout: Duration::from_secs(2),
        emit_timeout: Duration::from_secs(2),
        peer_queue: 4096,
        handshake_timeout: Duration::from_millis(300),
    }
}

fn uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(0)
}

fn request(method: &str, arguments: &str, reboot: bool) -> Request {
    Request {
        method: method.into(),
        arguments: arguments.into(),
        object_path: "/org/projectatomic/rpmostree1/test".into(),
        sender: ":1.42".into(),
        uid: uid(),
        title: format!("{method} {arguments}"),
        client_description: "client(id:secret dbus::1.42 uid:1234)".into(),
        kind: Kind::RefreshMd {
            osname: "test".into(),
            force: false,
        },
        reboot,
    }
}

/// An engine and its host, wired together.
fn setup(host: FakeHost, limits: Limits) -> (Arc<Engine>, Arc<FakeHost>) {
    let engine = Arc::new(Engine::with_limits(limits));
    let host = Arc::new(host);
    *lock(&host.engine) = Some(Arc::downgrade(&engine));
    (engine, host)
}

async fn begin(engine: &Engine, host: &Arc<FakeHost>, req: Request) -> Result<String, BeginError> {
    let host: Arc<dyn Host> = Arc::clone(host) as _;
    engine.begin(host, req).await
}

/// Runs a transaction as a client does; returns its events (the last is `Finished`).
async fn run_client(address: &str) -> Vec<TransactionEvent> {
    let mut client = TransactionClient::connect(address).await.unwrap();
    let mut events = Vec::new();
    let run = client.run(|e| events.push(e.clone()));
    // Bounded: a missed `Finished` fails the test instead of hanging it.
    let _ = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the transaction finished within 20 s");
    events
}

fn finished(events: &[TransactionEvent]) -> (bool, String) {
    match events.last() {
        Some(TransactionEvent::Finished {
            success,
            error_message,
        }) => (*success, error_message.clone()),
        other => panic!("the last event is not Finished: {other:?}"),
    }
}

fn messages(events: &[TransactionEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            TransactionEvent::Message { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_join_and_others_get_busy_with_the_title_only() {
    let (engine, host) = setup(
        FakeHost::new(|_| Ok(Report::unchanged("ok").into())),
        limits(),
    );
    let a = begin(&engine, &host, request("Upgrade", "x", false))
        .await
        .unwrap();
    let joined = begin(&engine, &host, request("Upgrade", "x", false))
        .await
        .unwrap();
    assert_eq!(a, joined);
    let busy = begin(&engine, &host, request("Rollback", "", false))
        .await
        .unwrap_err();
    assert_eq!(busy, BeginError::Busy("Upgrade x".into()));
    let text = rpmostree_api::Error::from(busy).to_string();
    assert!(
        text.contains("Transaction in progress: Upgrade x"),
        "{text}"
    );
    assert!(!text.contains(":1.42") && !text.contains("1234"), "{text}");
    let events = run_client(&a).await;
    assert_eq!(finished(&events), (true, String::new()));
    wait_until("the slot to be freed", || engine.active().is_none()).await;
    assert!(
        begin(&engine, &host, request("Rollback", "", false))
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_start_finishes_at_once_without_running_the_work() {
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let (engine, host) = setup(
        FakeHost::new(move |_| {
            flag.store(true, Ordering::SeqCst);
            Ok(Report::changed("ran").into())
        }),
        limits(),
    );
    let address = begin(&engine, &host, request("Upgrade", "", false))
        .await
        .unwrap();
    let client = TransactionClient::connect(&address).await.unwrap();
    let mut events = client.events;
    client.proxy.cancel().await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        event,
        TransactionEvent::Finished {
            success: false,
            error_message: CANCELLED.into()
        }
    );
    drop(client.proxy);
    drop(events);
    wait_until("the slot to be freed", || engine.active().is_none()).await;
    assert!(!ran.load(Ordering::SeqCst), "the work never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unstarted_transaction_is_dropped_on_timeout_or_when_its_initiator_leaves() {
    let (engine, host) = setup(
        FakeHost::new(|_| Ok(Report::unchanged("ok").into())),
        Limits {
            start_timeout: Duration::from_millis(200),
            ..limits()
        },
    );
    begin(&engine, &host, request("Upgrade", "", false))
        .await
        .unwrap();
    wait_until("the start timeout", || engine.active().is_none()).await;

    let (engine, host) = setup(
        FakeHost::new(|_| Ok(Report::unchanged("ok").into())),
        limits(),
    );
    begin(&engine, &host, request("Upgrade", "", false))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(engine.active().is_some());
    host.gone.send_replace(true);
    wait_until("the initiator's leaving", || engine.active().is_none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_the_transaction_and_frees_the_slot() {
    let (engine, host) = setup(FakeHost::new(|_| panic!("boom in the worker")), limits());
    let address = begin(&engine, &host, request("Upgrade", "", false))
        .await
        .unwrap();
    let (success, message) = finished(&run_client(&address).await);
    assert!(!success);
    assert!(message.contains("internal error"), "{message}");
    assert!(message.contains("boom in the worker"), "{message}");
    assert_eq!(host.work_done.load(Ordering::SeqCst), 1, "state reloaded");
    wait_until("the slot to be freed", || engine.active().is_none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_follows_only_a_written_change_and_only_after_finished() {
    // Nothing changed: no reboot.
    let (engine, host) = setup(
        FakeHost::new(|_| Ok(Report::unchanged("no upgrade").into())),
        limits(),
    );
    let address = begin(&engine, &host, request("Upgrade", "", true))
        .await
        .unwrap();
    let events = run_client(&address).await;
    assert_eq!(finished(&events), (true, String::new()));
    assert!(
        messages(&events).iter().any(|m| m.contains("no reboot")),
        "{events:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(lock(&host.reboots).is_empty());
    assert!(!engine.is_rebooting());

    // A change: Finished first, then the reboot; then nothing may start any more.
    let (engine, host) = setup(
        FakeHost::new(|w| {
            w.written.store(true, Ordering::SeqCst);
            Ok(Report::changed("deployed").into())
        }),
        limits(),
    );
    let address = begin(&engine, &host, request("Upgrade", "", true))
        .await
        .unwrap();
    let events = run_client(&address).await;
    assert_eq!(finished(&events), (true, String::new()));
    wait_until("the reboot request", || !lock(&host.reboots).is_empty()).await;
    assert_eq!(lock(&host.reboots).len(), 1);
    assert!(
        lock(&host.reboots)[0].1,
        "Finished was sent before the reboot"
    );
    assert!(engine.is_rebooting());
    let refused = begin(&engine, &host, request("Rollback", "", false))
        .await
        .unwrap_err();
    assert_eq!(refused, BeginError::Rebooting);
    assert!(
        rpmostree_api::Error::from(refused)
            .to_string()
            .contains("Reboot initiated, cannot start new transaction")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_that_cannot_happen_leaves_the_change_queued_and_says_so() {
    let mut fake = FakeHost::new(|_| Ok(Report::changed("deployed").into()));
    fake.reboot_check = Err("Reboot blocked by a systemd inhibitor lock in `block` mode".into());
    let (engine, host) = setup(fake, limits());
    let address = begin(&engine, &host, request("Upgrade", "", true))
        .await
        .unwrap();
    let (success, message) = finished(&run_client(&address).await);
    assert!(!success);
    assert!(message.contains("queued for the next boot"), "{message}");
    assert!(message.contains("inhibitor"), "{message}");
    assert!(lock(&host.reboots).is_empty());
    assert!(!engine.is_rebooting());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_step_of_finalize_runs_only_once_the_reboot_was_accepted() {
    for accepted in [false, true] {
        let unlocked = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&unlocked);
        let mut fake = FakeHost::new(move |_| {
            let flag = Arc::clone(&flag);
            Ok(Outcome {
                report: Report::changed("finalizing"),
                after_reboot_accepted: Some(Box::new(move || {
                    flag.store(true, Ordering::SeqCst);
                    Ok(())
                })),
            })
        });
        if !accepted {
            fake.reboot = Err("logind refused the reboot: inhibited".into());
        }
        let (engine, host) = setup(fake, limits());
        let address = begin(&engine, &host, request("FinalizeDeployment", "", true))
            .await
            .unwrap();
        let (success, message) = finished(&run_client(&address).await);
        assert_eq!(lock(&host.reboots).len(), 1);
        assert_eq!(success, accepted, "{message}");
        assert_eq!(unlocked.load(Ordering::SeqCst), accepted);
        assert_eq!(engine.is_rebooting(), accepted);
        if !accepted {
            assert!(message.contains("refused"), "{message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_after_the_change_was_written_reports_success() {
    let (engine, host) = setup(
        FakeHost::new(|w| {
            w.written.store(true, Ordering::SeqCst);
            until_cancelled(w);
            Ok(Report::changed("deployed").into())
        }),
        limits(),
    );
    let address = begin(&engine, &host, request("Upgrade", "", false))
        .await
        .unwrap();
    let mut client = TransactionClient::connect(&address).await.unwrap();
    let proxy = client.proxy.clone();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.cancel().await.unwrap();
    });
    let mut events = Vec::new();
    client.run(|e| events.push(e.clone())).await.unwrap();
    canceller.await.unwrap();
    assert!(
        messages(&events)
            .iter()
            .any(|m| m.contains("Too late to cancel")),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_the_running_transaction_and_waits_for_its_end() {
    let started = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&started);
    let (engine, host) = setup(
        FakeHost::new(move |w| {
            flag.store(true, Ordering::SeqCst);
            until_cancelled(w);
            anyhow::bail!("interrupted")
        }),
        limits(),
    );
    let address = begin(&engine, &host, request("Upgrade", "", false))
        .await
        .unwrap();
    let client = tokio::spawn(async move { run_client(&address).await });
    wait_until("the work to start", || started.load(Ordering::SeqCst)).await;
    engine.shutdown(Duration::from_secs(10)).await;
    assert!(engine.active().is_none_or(|t| t.is_over()));
    let events = client.await.unwrap();
    assert_eq!(finished(&events), (false, CANCELLED.to_owned()));
}

/// Connects to a transaction socket and authenticates by hand, then never reads again.
fn stalled_peer(address: &str) -> std::os::unix::net::UnixStream {
    use std::os::linux::net::SocketAddrExt;
    let name = address.trim_start_matches("unix:abstract=");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
    let mut stream = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
    let hex: String = uid()
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    stream
        .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
        .unwrap();
    let mut reply = [0u8; 64];
    let n = stream.read(&mut reply).unwrap();
    assert!(reply[..n].starts_with(b"OK "), "{:?}", &reply[..n]);
    stream.write_all(b"BEGIN\r\n").unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_is_dropped_and_stalls_nobody() {
    let (engine, host) = setup(
        FakeHost::new(|w| {
            // Far more than a socket buffer holds: a peer that does not read falls behind.
            let line = "x".repeat(2000);
            for _ in 0..3000 {
                w.progress.message(&line);
            }
            Ok(Report::unchanged("chatty").into())
        }),
        limits(),
    );
    let address = begin(&engine, &host, request("Upgrade", "", false))
        .await
        .unwrap();
    let stalled = stalled_peer(&address);
    let txn = engine.active().unwrap();
    wait_until("the stalled peer to be admitted", || txn.peer_count() == 1).await;
    let events = run_client(&address).await;
    assert_eq!(finished(&events), (true, String::new()));
    assert_eq!(
        messages(&events).len(),
        3000,
        "the reading peer got everything"
    );
    wait_until("the stalled peer to be dropped", || txn.peer_count() == 0).await;
    wait_until("the slot to be freed", || engine.active().is_none()).await;
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_authenticates_is_disconnected() {
    use std::os::linux::net::SocketAddrExt;
    let (engine, host) = setup(
        FakeHost::new(|_| Ok(Report::unchanged("ok").into())),
        limits(),
    );
    let address = begin(&engine, &host, request("Upgrade", "", false))
        .await
        .unwrap();
    let name = address.trim_start_matches("unix:abstract=").to_owned();
    let closed = tokio::task::spawn_blocking(move || {
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
        let mut stream = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 16];
        // Sends nothing: the server must hang up after its handshake timeout.
        stream.read(&mut buf).map(|n| n == 0).unwrap_or(false)
    })
    .await
    .unwrap();
    assert!(closed, "the server closed the silent connection");
    // The transaction itself still works.
    let events = run_client(&address).await;
    assert_eq!(finished(&events), (true, String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_transaction_closes_when_its_peers_leave_or_after_the_grace_period() {
    // A peer that stays connected: the slot is freed after the grace period anyway.
    let (engine, host) = setup(
        FakeHost::new(|_| Ok(Report::unchanged("ok").into())),
        Limits {
            close_timeout: Duration::from_millis(300),
            ..limits()
        },
    );
    let address = begin(&engine, &host, request("Upgrade", "", false))
        .await
        .unwrap();
    let mut client = TransactionClient::connect(&address).await.unwrap();
    client.run(|_| {}).await.unwrap();
    let txn = engine.active().unwrap();
    assert!(txn.is_over());
    assert_eq!(txn.peer_count(), 1, "the client is still connected");
    wait_until("the grace period to end", || engine.active().is_none()).await;
    assert_eq!(txn.peer_count(), 0, "the lingering peer was dropped");

    // A peer that leaves: closed at once, long before a (long) grace period.
    let (engine, host) = setup(
        FakeHost::new(|_| Ok(Report::unchanged("ok").into())),
        Limits {
            close_timeout: Duration::from_secs(3600),
            ..limits()
        },
    );
    let address = begin(&engine, &host, request("Upgrade", "", false))
        .await
        .unwrap();
    let events = run_client(&address).await;
    assert_eq!(finished(&events), (true, String::new()));
    wait_until("the slot to be freed once the peer left", || {
        engine.active().is_none()
    })
    .await;
}

/// An accept that always fails, as with no file descriptors left, counting the attempts.
struct FailingAccept(Arc<AtomicUsize>);

impl super::server::Accept for FailingAccept {
    async fn accept(&self) -> std::io::Result<tokio::net::UnixStream> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(std::io::Error::other("Too many open files"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_errors_back_off_instead_of_spinning() {
    let (engine, host) = setup(
        FakeHost::new(|_| Ok(Report::unchanged("ok").into())),
        limits(),
    );
    begin(&engine, &host, request("Upgrade", "", false))
        .await
        .unwrap();
    let txn = engine.active().unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let accept_loop = tokio::spawn(super::server::serve(
        Arc::clone(&txn),
        FailingAccept(Arc::clone(&attempts)),
        txn.closed.subscribe(),
        Duration::from_secs(1),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // 50, 100, 200, 400 ms waits: a handful of attempts, where a spinning loop makes millions.
    let n = attempts.load(Ordering::SeqCst);
    assert!((2..20).contains(&n), "{n} accept attempts in a second");
    // Closing the transaction ends the loop even while it waits.
    txn.close().await;
    tokio::time::timeout(Duration::from_secs(5), accept_loop)
        .await
        .expect("the accept loop ended")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_does_not_join_but_gets_busy() {
    let (engine, host) = setup(
        FakeHost::new(|_| Ok(Report::unchanged("ok").into())),
        limits(),
    );
    let address = begin(&engine, &host, request("Upgrade", "x", false))
        .await
        .unwrap();
    let mut other = request("Upgrade", "x", false);
    other.uid = uid() + 1;
    // The address would be useless to them: only root and the initiating uid may connect.
    assert_eq!(
        begin(&engine, &host, other).await.unwrap_err(),
        BeginError::Busy("Upgrade x".into())
    );
    let mut root = request("Upgrade", "x", false);
    root.uid = 0;
    assert_eq!(begin(&engine, &host, root).await.unwrap(), address);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transaction_does_not_reboot_even_after_writing() {
    let (engine, host) = setup(
        FakeHost::new(|w| {
            w.written.store(true, Ordering::SeqCst);
            until_cancelled(w);
            Ok(Report::changed("deployed").into())
        }),
        limits(),
    );
    let address = begin(&engine, &host, request("Upgrade", "", true))
        .await
        .unwrap();
    let mut client = TransactionClient::connect(&address).await.unwrap();
    let proxy = client.proxy.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.cancel().await.unwrap();
    });
    let mut events = Vec::new();
    client.run(|e| events.push(e.clone())).await.unwrap();
    let said = messages(&events);
    assert!(
        said.iter().any(|m| m.contains("Too late to cancel")),
        "{said:?}"
    );
    assert!(said.iter().any(|m| m.contains("no reboot")), "{said:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(lock(&host.reboots).is_empty());
    assert!(!engine.is_rebooting());
}
