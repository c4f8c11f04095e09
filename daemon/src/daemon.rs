//! The daemon as a whole: bus connection and name, object registration, the shared state every
//! object reads (configuration, sysroot snapshot, clients, transactions), reloads with
//! `PropertiesChanged`, client tracking and idle exit.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock, RwLock},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use futures_util::{StreamExt, future::BoxFuture};
use rpmostree_api::{
    Error, OSExperimentalInterface, OSInterface, SysrootInterface,
    names::{BASE_PATH, BUS_NAME, SYSROOT_PATH, os_path},
};
use zbus::Connection;

use crate::{
    authz::{Authority, Authorizer, Polkit},
    config::Config,
    object::{OsExperimentalObject, OsObject, SysrootObject},
    power,
    sysroot::{self, Fingerprint, Snapshot, ops::Op},
    txn::{Engine, Host, Outcome, Work, kinds::Kind, lock},
};

/// A registered client (`RegisterClient`).
#[derive(Debug, Clone)]
pub(crate) struct Client {
    /// The `id` it gave, if any.
    pub(crate) id: Option<String>,
    /// Its uid.
    pub(crate) uid: u32,
}

/// Shared state of the running daemon.
#[derive(Debug)]
pub(crate) struct Daemon {
    sysroot_path: PathBuf,
    config_path: PathBuf,
    config: RwLock<Config>,
    snapshot: RwLock<Arc<Snapshot>>,
    load_error: RwLock<Option<String>>,
    config_error: RwLock<Option<String>>,
    clients: Mutex<HashMap<String, Client>>,
    engine: Engine,
    bus: OnceLock<Connection>,
    authority: Arc<dyn Authority>,
    reload_lock: tokio::sync::Mutex<()>,
    /// Held for writing by a transaction's work and for reading by every load of the sysroot, so
    /// a load never overlaps the work's writes: a load that would is skipped (the transaction
    /// reloads when it ends), and work waits for a load under way to finish.
    work_gate: Arc<tokio::sync::RwLock<()>>,
    exported: Mutex<Vec<String>>,
    /// The reboot coordinator of automatic updates (`[Fleet]`).
    fleet: Arc<crate::fleet::Coordinator>,
    /// Itself, for the engine's callbacks (which get `&self`).
    me: std::sync::Weak<Daemon>,
}

fn read<T: Clone>(l: &RwLock<T>) -> T {
    l.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T>(l: &RwLock<T>, value: T) {
    *l.write().unwrap_or_else(|e| e.into_inner()) = value;
}

impl Daemon {
    /// The sysroot path.
    pub(crate) fn sysroot_path(&self) -> &Path {
        &self.sysroot_path
    }

    /// The current configuration.
    pub(crate) fn config(&self) -> Config {
        read(&self.config)
    }

    /// The current sysroot snapshot, or the error that keeps the daemon from loading it.
    pub(crate) fn snapshot(&self) -> Result<Arc<Snapshot>, Error> {
        if let Some(e) = read(&self.config_error) {
            return Err(Error::Failed(format!(
                "rpm-ostreed cannot use its configuration {}: {e} (fix it, then run `rpm-ostree reload`)",
                self.config_path.display()
            )));
        }
        if let Some(e) = read(&self.load_error) {
            return Err(Error::InvalidSysroot(format!(
                "rpm-ostreed cannot load the OSTree sysroot at {}: {e}",
                self.sysroot_path.display()
            )));
        }
        Ok(read(&self.snapshot))
    }

    /// The transaction engine.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The system bus connection.
    pub(crate) fn bus(&self) -> &Connection {
        self.bus
            .get()
            .expect("the bus connection is set before any object is served")
    }

    /// The authorizer of calls.
    pub(crate) fn authorizer(&self) -> Authorizer {
        Authorizer::new(Arc::clone(&self.authority))
    }

    /// Records a client; refused past [`MAX_CLIENTS`] (each client is a bus connection, so this
    /// only bounds what one misbehaving program can make the daemon hold).
    pub(crate) fn add_client(&self, name: &str, client: Client) -> Result<(), Error> {
        let mut clients = lock(&self.clients);
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(name) {
            return Err(Error::Failed(format!(
                "too many registered clients ({MAX_CLIENTS})"
            )));
        }
        clients.insert(name.to_owned(), client.clone());
        tracing::info!(
            "client {name} (id {:?}, uid {}) registered; {} client(s)",
            client.id,
            client.uid,
            clients.len()
        );
        Ok(())
    }

    /// Forgets a client.
    pub(crate) fn remove_client(&self, name: &str) {
        let mut clients = lock(&self.clients);
        if clients.remove(name).is_some() {
            tracing::info!("client {name} gone; {} client(s) remain", clients.len());
        }
    }

    /// How clients see the initiator of a call (`InitiatingClientDescription`).
    pub(crate) fn describe_client(&self, sender: &str, uid: u32) -> String {
        match lock(&self.clients).get(sender) {
            Some(c) => match &c.id {
                Some(id) => format!("client(id:{id} dbus:{sender} uid:{uid})"),
                None => format!("client(dbus:{sender} uid:{uid})"),
            },
            None => format!("caller {sender}"),
        }
    }

    /// Re-reads the configuration (`ReloadConfig`), updating `AutomaticUpdatePolicy`.
    pub(crate) async fn reload_config(&self) -> Result<()> {
        let config = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                write(&self.config_error, Some(format!("{e:#}")));
                return Err(e);
            }
        };
        write(&self.config_error, None);
        let changed = config.automatic_update_policy != self.config().automatic_update_policy;
        write(&self.config, config);
        if changed {
            let iface = self.sysroot_iface().await?;
            iface
                .get()
                .await
                .automatic_update_policy_changed(iface.signal_emitter())
                .await?;
        }
        Ok(())
    }

    /// Loads the sysroot again and publishes what changed: OS objects appear or disappear, and
    /// `PropertiesChanged` is emitted for the properties that changed, before this returns.
    pub(crate) async fn reload(self: &Arc<Self>) -> Result<()> {
        let _guard = self.reload_lock.lock().await;
        self.load_and_publish().await
    }

    /// `Reload()`: like [`Daemon::reload`], but a sysroot whose on-disk fingerprint has not
    /// changed since the last load is not read again (libostree's own `load_if_changed` rule),
    /// so the call clients use as a barrier stays cheap. While a transaction's work runs, the
    /// sysroot may be half-written: the last complete view stays (see `work_gate`), and the
    /// transaction reloads when its work ends.
    pub(crate) async fn reload_if_needed(self: &Arc<Self>) -> Result<()> {
        let _guard = self.reload_lock.lock().await;
        let unchanged = read(&self.load_error).is_none()
            && Fingerprint::read(&self.sysroot_path) == read(&self.snapshot).fingerprint;
        if unchanged {
            return Ok(());
        }
        self.load_and_publish().await
    }

    async fn load_and_publish(self: &Arc<Self>) -> Result<()> {
        let Ok(_reading) = Arc::clone(&self.work_gate).try_read_owned() else {
            // A transaction's work is writing; it reloads when it ends.
            return Ok(());
        };
        let path = self.sysroot_path.clone();
        let loaded = tokio::task::spawn_blocking(move || sysroot::load(&path))
            .await
            .context("the sysroot loader died")?;
        let old = read(&self.snapshot);
        let old_error = read(&self.load_error);
        let new = match loaded {
            Ok(s) => {
                write(&self.load_error, None);
                Arc::new(s)
            }
            Err(e) => {
                let message = format!("{e:#}");
                if old_error.as_deref() != Some(message.as_str()) {
                    tracing::error!("cannot load the sysroot: {message}");
                }
                write(&self.load_error, Some(message));
                return Ok(());
            }
        };
        write(&self.snapshot, Arc::clone(&new));
        let changed = old_error.is_some() || old.deployments != new.deployments;
        let cached_changed = old_error.is_some() || old.cached_updates != new.cached_updates;
        self.sync_os_objects(&new).await?;
        if changed {
            tracing::info!("sysroot changed: {} deployment(s)", new.deployments.len());
        }
        if changed || cached_changed {
            // A getter that fails (e.g. with a configuration error) cannot be announced; the
            // error reaches whoever reads the property instead.
            if let Err(e) = self.emit_properties_changed(changed, cached_changed).await {
                tracing::debug!("announcing changed properties: {e}");
            }
        }
        Ok(())
    }

    async fn sysroot_iface(
        &self,
    ) -> zbus::Result<zbus::object_server::InterfaceRef<SysrootInterface<SysrootObject>>> {
        self.bus()
            .object_server()
            .interface::<_, SysrootInterface<SysrootObject>>(SYSROOT_PATH)
            .await
    }

    /// Announces the deployment properties (`deployments`) and the cached-update ones
    /// (`cached`: `CachedUpdate`, which Cockpit waits for after "Check for updates", and
    /// `HasCachedUpdateRpmDiff`).
    async fn emit_properties_changed(&self, deployments: bool, cached: bool) -> zbus::Result<()> {
        if deployments {
            let iface = self.sysroot_iface().await?;
            let s = iface.get().await;
            s.deployments_changed(iface.signal_emitter()).await?;
            s.booted_changed(iface.signal_emitter()).await?;
        }
        let exported = lock(&self.exported).clone();
        for osname in exported {
            let Some(path) = os_path(&osname) else {
                continue;
            };
            let Ok(os) = self
                .bus()
                .object_server()
                .interface::<_, OSInterface<OsObject>>(path.as_str())
                .await
            else {
                continue;
            };
            let o = os.get().await;
            if deployments {
                o.booted_deployment_changed(os.signal_emitter()).await?;
                o.default_deployment_changed(os.signal_emitter()).await?;
                o.rollback_deployment_changed(os.signal_emitter()).await?;
            }
            if cached {
                o.cached_update_changed(os.signal_emitter()).await?;
                o.has_cached_update_rpm_diff_changed(os.signal_emitter())
                    .await?;
            }
        }
        Ok(())
    }

    /// Publishes `ActiveTransaction` and `ActiveTransactionPath` after the slot changed.
    pub(crate) async fn transaction_changed(&self) {
        let result = async {
            let iface = self.sysroot_iface().await?;
            let s = iface.get().await;
            s.active_transaction_changed(iface.signal_emitter()).await?;
            s.active_transaction_path_changed(iface.signal_emitter())
                .await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!("emitting the transaction properties: {e}");
        }
    }

    /// Exports one OS object per osname with deployments, and removes the others.
    async fn sync_os_objects(self: &Arc<Self>, snapshot: &Snapshot) -> Result<()> {
        let wanted = snapshot.osnames();
        let exported = lock(&self.exported).clone();
        let server = self.bus().object_server();
        for osname in exported.iter().filter(|o| !wanted.contains(o)) {
            if let Some(path) = os_path(osname) {
                server
                    .remove::<OSInterface<OsObject>, _>(path.as_str())
                    .await?;
                server
                    .remove::<OSExperimentalInterface<OsExperimentalObject>, _>(path.as_str())
                    .await?;
                tracing::info!("removed OS object {path}");
            }
        }
        for osname in wanted.iter().filter(|o| !exported.contains(o)) {
            let Some(path) = os_path(osname) else {
                continue;
            };
            server
                .at(
                    path.as_str(),
                    OSInterface(OsObject::new(Arc::clone(self), osname)),
                )
                .await?;
            server
                .at(
                    path.as_str(),
                    OSExperimentalInterface(OsExperimentalObject::new(Arc::clone(self), osname)),
                )
                .await?;
            tracing::info!("exported OS object {path}");
        }
        *lock(&self.exported) = wanted;
        Ok(())
    }

    /// Whether the daemon has nothing to do: no client, no transaction, no FleetLock exchange
    /// under way.
    fn is_idle(&self) -> bool {
        lock(&self.clients).is_empty() && self.engine.active().is_none() && !self.fleet.busy()
    }

    /// The reboot coordinator.
    pub(crate) fn fleet(&self) -> &crate::fleet::Coordinator {
        &self.fleet
    }
}

/// The most clients that may be registered at once.
const MAX_CLIENTS: usize = 1024;

/// How long a running transaction may take to end after SIGTERM cancelled it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

/// How long any call the daemon makes on the bus may take.
const BUS_CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Host for Daemon {
    fn run(&self, kind: &Kind, work: &Work) -> anyhow::Result<Outcome> {
        // Waits for a load under way, then keeps loads out until the work is done.
        let _writing = self.work_gate.blocking_write();
        let op = Op {
            path: &self.sysroot_path,
            cancellable: &work.cancellable,
            progress: Arc::clone(&work.progress),
            written: &work.written,
        };
        test_delay(&op)?;
        kind.run(&op)
    }

    fn work_done(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(me) = self.me.upgrade() else { return };
            if let Err(e) = me.reload().await {
                tracing::warn!("reloading after a transaction: {e:#}");
            }
        })
    }

    fn slot_changed(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.transaction_changed())
    }

    fn reboot_check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(power::check(self.bus()))
    }

    fn reboot(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(power::request(self.bus()))
    }

    fn gone(&self, sender: &str) -> BoxFuture<'static, ()> {
        Box::pin(name_gone(self.bus().clone(), sender.to_owned()))
    }
}

/// Resolves once `sender` has left the bus (at once if it already has).
async fn name_gone(bus: Connection, sender: String) {
    let Ok(dbus) = zbus::fdo::DBusProxy::new(&bus).await else {
        return std::future::pending().await;
    };
    let Ok(mut changes) = dbus
        .receive_name_owner_changed_with_args(&[(0, sender.as_str())])
        .await
    else {
        return std::future::pending().await;
    };
    // The name may have left before the subscription.
    if let Ok(name) = zbus::names::BusName::try_from(sender.as_str())
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
}

/// A test hook: `RPMOSTREED_TEST_TXN_DELAY_MS` makes every transaction wait (cancellably) before
/// its work, so tests can act on a running transaction. Only root sets the daemon's environment.
fn test_delay(op: &Op<'_>) -> anyhow::Result<()> {
    let Some(ms) = std::env::var("RPMOSTREED_TEST_TXN_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return Ok(());
    };
    op.progress.message("Waiting (test delay)");
    let end = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < end {
        op.check_cancelled()?;
        // Short enough that the benchmark of Cancel() measures the engine, not this poll.
        std::thread::sleep(Duration::from_millis(5));
    }
    op.check_cancelled()
}

/// Options of one daemon run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sysroot to manage.
    pub sysroot: PathBuf,
    /// The configuration file.
    pub config: PathBuf,
}

/// Serves the daemon's objects on `connection` (the system bus, or a peer-to-peer connection in
/// tests), for the sysroot and configuration of `options`, deciding calls with `authority`.
/// Loads the sysroot before returning, so the first caller sees real properties; a sysroot that
/// cannot be loaded, or a bad configuration, does not stop it: every call then explains why.
pub(crate) async fn serve(
    connection: &Connection,
    options: &Options,
    authority: Arc<dyn Authority>,
) -> Result<Arc<Daemon>> {
    let (config, config_error) = match Config::load(&options.config) {
        Ok(c) => (c, None),
        Err(e) => {
            tracing::error!("{e:#}");
            (Config::default(), Some(format!("{e:#}")))
        }
    };
    let daemon = Arc::new_cyclic(|me| Daemon {
        sysroot_path: options.sysroot.clone(),
        config_path: options.config.clone(),
        config: RwLock::new(config),
        snapshot: RwLock::new(Arc::new(Snapshot::default())),
        load_error: RwLock::new(Some("not loaded yet".into())),
        config_error: RwLock::new(config_error),
        clients: Mutex::new(HashMap::new()),
        engine: Engine::default(),
        bus: OnceLock::new(),
        authority,
        reload_lock: tokio::sync::Mutex::new(()),
        work_gate: Arc::new(tokio::sync::RwLock::new(())),
        exported: Mutex::new(Vec::new()),
        fleet: Arc::default(),
        me: me.clone(),
    });
    daemon
        .bus
        .set(connection.clone())
        .map_err(|_| anyhow::anyhow!("the bus connection was set twice"))?;
    let server = connection.object_server();
    server.at(BASE_PATH, zbus::fdo::ObjectManager).await?;
    server
        .at(
            SYSROOT_PATH,
            SysrootInterface(SysrootObject::new(Arc::clone(&daemon))),
        )
        .await?;
    daemon.reload().await?;
    Ok(daemon)
}

/// Runs the daemon until it idles out or is told to stop.
pub async fn run(options: Options) -> Result<()> {
    let started = Instant::now();
    let bus = zbus::connection::Builder::system()
        .method_timeout(BUS_CALL_TIMEOUT)
        .build()
        .await
        .context("connecting to the system bus")?;
    let daemon = serve(&bus, &options, Arc::new(Polkit::new(bus.clone()))).await?;
    bus.request_name(BUS_NAME)
        .await
        .with_context(|| format!("acquiring the name {BUS_NAME}"))?;
    tracing::info!(
        "serving {BUS_NAME} for sysroot {} (ready in {} ms)",
        options.sysroot.display(),
        started.elapsed().as_millis()
    );

    let fleet = daemon.config().fleet;
    if fleet.strategy == crate::fleet::Strategy::FleetLock {
        let node: Arc<dyn crate::fleet::Node> = Arc::new(FleetNode(Arc::clone(&daemon)));
        tokio::spawn(crate::fleet::run(Arc::clone(&daemon.fleet), fleet, node));
    }
    let (lost_tx, lost) = tokio::sync::oneshot::channel();
    tokio::spawn({
        let daemon = Arc::clone(&daemon);
        async move {
            track_clients(daemon).await;
            let _ = lost_tx.send(());
        }
    });
    let reason = watch(Arc::clone(&daemon), lost).await;
    tracing::info!("exiting: {reason}");
    // A transaction in the middle of its work is cancelled and allowed to end cleanly (its
    // peers get `Finished`), instead of being cut off halfway.
    daemon.engine().shutdown(SHUTDOWN_GRACE).await;
    if reason == BUS_LOST {
        // Nothing can reach this process any more; the next call on the bus activates a new one.
        anyhow::bail!("lost the connection to the system bus");
    }
    let _ = bus.release_name(BUS_NAME).await;
    Ok(())
}

/// What the fleet coordinator sees of the daemon.
struct FleetNode(Arc<Daemon>);

impl crate::fleet::Node for FleetNode {
    fn idle(&self) -> bool {
        self.0.engine.active().is_none()
    }

    fn staged_locked(&self) -> bool {
        Path::new(crate::sysroot::STAGED_DEPLOYMENT).exists()
            && Path::new(crate::sysroot::STAGED_LOCKED_MARKER).exists()
    }

    fn reboot(&self) -> futures_util::future::BoxFuture<'_, Result<(), String>> {
        Box::pin(crate::power::request(self.0.bus()))
    }
}

/// Why [`watch`] returns when the bus connection closed.
const BUS_LOST: &str = "the system bus connection was lost";

/// Forgets registered clients that leave the bus; returns when the bus connection is gone.
async fn track_clients(daemon: Arc<Daemon>) {
    let Ok(dbus) = zbus::fdo::DBusProxy::new(daemon.bus()).await else {
        return;
    };
    let Ok(mut changes) = dbus.receive_name_owner_changed().await else {
        return;
    };
    while let Some(change) = changes.next().await {
        if let Ok(args) = change.args()
            && args.new_owner().is_none()
        {
            daemon.remove_client(args.name().as_str());
        }
    }
}

/// Watches the sysroot for outside changes and the daemon for idleness; returns why it should
/// exit.
async fn watch(daemon: Arc<Daemon>, lost: tokio::sync::oneshot::Receiver<()>) -> &'static str {
    tokio::pin!(lost);
    let mut idle_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => return "interrupted",
            _ = &mut lost => return BUS_LOST,
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => return "terminated",
        }
        // Picks up changes made behind the daemon's back (e.g. `ostree admin` by hand); skipped
        // while a transaction writes, which reloads when it ends.
        if let Err(e) = daemon.reload_if_needed().await {
            tracing::warn!("reloading the sysroot: {e:#}");
        }
        let timeout = daemon.config().idle_exit_timeout;
        if timeout.is_zero() || !daemon.is_idle() {
            idle_since = None;
            continue;
        }
        let since = *idle_since.get_or_insert_with(|| {
            tracing::info!(
                "idle; exiting in {} s unless a client registers",
                timeout.as_secs()
            );
            Instant::now()
        });
        if since.elapsed() >= timeout {
            return "idle";
        }
    }
}
