//! Stand-ins for logind (`org.freedesktop.login1`) and systemd (`org.freedesktop.systemd1`)
//! on a sandbox bus, which record the reboot requests the daemon under test makes.
//!
//! ```no_run
//! use std::time::Duration;
//! use rpmostree_tests::{RebootServices, Sandbox, SandboxOptions, StandInOptions};
//! # fn main() -> Result<(), rpmostree_tests::HarnessError> {
//! let sandbox = Sandbox::start(SandboxOptions::default())?;
//! let services = RebootServices::start(
//!     sandbox.bus_address(),
//!     StandInOptions { logind: true, systemd: true, ..Default::default() },
//! )?;
//! // ... ask the daemon for an upgrade with reboot ...
//! let calls = services.wait_for_calls(1, Duration::from_secs(10));
//! assert_eq!(calls[0].method, "Reboot");
//! assert!(!calls.iter().any(|c| c.interface == "org.freedesktop.systemd1.Manager"
//!     && c.method == "Reboot"));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use zbus::OwnedObjectPath;

use crate::background::{Background, Ready, Stop, runtime};
use crate::error::HarnessError;

/// logind's bus name.
const LOGIND_NAME: &str = "org.freedesktop.login1";
/// logind's manager object.
const LOGIND_PATH: &str = "/org/freedesktop/login1";
/// logind's manager interface.
const LOGIND_INTERFACE: &str = "org.freedesktop.login1.Manager";
/// systemd's bus name.
const SYSTEMD_NAME: &str = "org.freedesktop.systemd1";
/// systemd's manager object.
const SYSTEMD_PATH: &str = "/org/freedesktop/systemd1";
/// systemd's manager interface.
const SYSTEMD_INTERFACE: &str = "org.freedesktop.systemd1.Manager";
/// The job `StartUnit` answers with.
const JOB_PATH: &str = "/org/freedesktop/systemd1/job/1";

/// How long connecting and requesting the names may take before `start` gives up.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long releasing the names and closing the connection may take on drop.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// One logind inhibitor lock, as `ListInhibitors` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inhibitor {
    /// What is inhibited, colon-separated (e.g. `"shutdown:sleep"`).
    pub what: String,
    /// Who holds the lock (a human-readable program name).
    pub who: String,
    /// Why the lock is held.
    pub why: String,
    /// `"block"` or `"delay"`.
    pub mode: String,
    /// The uid of the holder.
    pub uid: u32,
    /// The pid of the holder.
    pub pid: u32,
}

/// What the stand-ins serve and how they answer.
#[derive(Debug, Clone, Default)]
pub struct StandInOptions {
    /// Own `org.freedesktop.login1` and serve `org.freedesktop.login1.Manager`.
    pub logind: bool,
    /// Own `org.freedesktop.systemd1` and serve `org.freedesktop.systemd1.Manager`.
    pub systemd: bool,
    /// What logind's `ListInhibitors` returns.
    pub inhibitors: Vec<Inhibitor>,
    /// When set, logind's `Reboot` and `RebootWithFlags` fail with
    /// `org.freedesktop.DBus.Error.AccessDenied` and this message (the call is still
    /// recorded).
    pub refuse_reboot: Option<String>,
}

/// One method call a stand-in received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The interface called: `org.freedesktop.login1.Manager` or
    /// `org.freedesktop.systemd1.Manager` (both have a `Reboot`).
    pub interface: String,
    /// The D-Bus method name, e.g. `"Reboot"`, `"RebootWithFlags"`, `"StartUnit"`.
    pub method: String,
    /// The arguments rendered as strings, e.g. `["false"]` or
    /// `["reboot.target", "replace-irreversibly"]`.
    pub args: Vec<String>,
    /// When the call arrived.
    pub at: SystemTime,
}

/// The calls received so far, shared between the service thread and the test.
#[derive(Debug, Default)]
struct Log {
    /// The calls, in order of arrival.
    calls: Mutex<Vec<Call>>,
    /// Notified on each new call.
    changed: Condvar,
}

impl Log {
    /// The calls, even if a thread panicked while holding the lock.
    fn lock(&self) -> MutexGuard<'_, Vec<Call>> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one call.
    fn record(&self, interface: &str, method: &str, args: Vec<String>) {
        self.lock().push(Call {
            interface: interface.to_owned(),
            method: method.to_owned(),
            args,
            at: SystemTime::now(),
        });
        self.changed.notify_all();
    }
}

/// The `org.freedesktop.login1.Manager` stand-in.
#[derive(Debug)]
struct Logind {
    log: Arc<Log>,
    inhibitors: Vec<Inhibitor>,
    refuse_reboot: Option<String>,
}

impl Logind {
    /// The answer to a reboot request.
    fn reboot_answer(&self) -> zbus::fdo::Result<()> {
        match &self.refuse_reboot {
            Some(message) => Err(zbus::fdo::Error::AccessDenied(message.clone())),
            None => Ok(()),
        }
    }
}

#[zbus::interface(name = "org.freedesktop.login1.Manager", spawn = false)]
impl Logind {
    /// Records the request; fails if told to refuse reboots.
    #[zbus(name = "Reboot")]
    async fn reboot(&self, interactive: bool) -> zbus::fdo::Result<()> {
        self.log
            .record(LOGIND_INTERFACE, "Reboot", vec![interactive.to_string()]);
        self.reboot_answer()
    }

    /// Records the request; fails if told to refuse reboots.
    #[zbus(name = "RebootWithFlags")]
    async fn reboot_with_flags(&self, flags: u64) -> zbus::fdo::Result<()> {
        self.log
            .record(LOGIND_INTERFACE, "RebootWithFlags", vec![flags.to_string()]);
        self.reboot_answer()
    }

    /// The configured inhibitors: `a(ssssuu)` (what, who, why, mode, uid, pid).
    #[zbus(name = "ListInhibitors")]
    async fn list_inhibitors(&self) -> Vec<(String, String, String, String, u32, u32)> {
        self.log
            .record(LOGIND_INTERFACE, "ListInhibitors", Vec::new());
        self.inhibitors
            .iter()
            .map(|i| {
                (
                    i.what.clone(),
                    i.who.clone(),
                    i.why.clone(),
                    i.mode.clone(),
                    i.uid,
                    i.pid,
                )
            })
            .collect()
    }

    /// Always `"yes"`.
    #[zbus(name = "CanReboot")]
    async fn can_reboot(&self) -> String {
        self.log.record(LOGIND_INTERFACE, "CanReboot", Vec::new());
        "yes".to_owned()
    }
}

/// The `org.freedesktop.systemd1.Manager` stand-in.
#[derive(Debug)]
struct Systemd {
    log: Arc<Log>,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager", spawn = false)]
impl Systemd {
    /// Records the request and answers with job 1.
    #[zbus(name = "StartUnit")]
    async fn start_unit(&self, name: String, mode: String) -> zbus::fdo::Result<OwnedObjectPath> {
        self.log
            .record(SYSTEMD_INTERFACE, "StartUnit", vec![name, mode]);
        OwnedObjectPath::try_from(JOB_PATH).map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
    }

    /// Records the request (real systemd reboots at once, skipping the shutdown of units).
    #[zbus(name = "Reboot")]
    async fn reboot(&self) {
        self.log.record(SYSTEMD_INTERFACE, "Reboot", Vec::new());
    }
}

/// logind and/or systemd stand-ins on a bus, served from their own thread (with its own
/// current-thread tokio runtime, so sync and async tests can both use them), recording every
/// method call. Dropping it releases the names, closes the connection and stops the thread.
pub struct RebootServices {
    /// The calls received so far.
    log: Arc<Log>,
    /// The names owned.
    names: Vec<&'static str>,
    /// The thread it runs on.
    background: Background,
}

impl fmt::Debug for RebootServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RebootServices")
            .field("names", &self.names)
            .field("calls", &self.log.lock().len())
            .field("running", &self.background.running())
            .finish()
    }
}

impl RebootServices {
    /// Connects to the bus at `bus_address` (e.g. `unix:path=...`, see
    /// `Sandbox::bus_address`), serves the stand-ins `options` asks for and owns their names
    /// (without queueing and without allowing replacement: it fails if a name is taken).
    /// Returns once the names are owned.
    pub fn start(bus_address: &str, options: StandInOptions) -> Result<Self, HarnessError> {
        if !options.logind && !options.systemd {
            return Err(HarnessError::new(
                "RebootServices::start: neither logind nor systemd asked for",
            ));
        }
        let log = Arc::new(Log::default());
        let mut names = Vec::new();
        if options.logind {
            names.push(LOGIND_NAME);
        }
        if options.systemd {
            names.push(SYSTEMD_NAME);
        }
        let what = format!("standing in for {} on {bus_address}", names.join(" and "));

        let thread_log = Arc::clone(&log);
        let address = bus_address.to_owned();
        let background = Background::start("reboot-stand-ins", &what, move |ready, stop| {
            serve(address, options, thread_log, ready, stop)
        })?;

        let services = Self {
            log,
            names,
            background,
        };
        Ok(services)
    }

    /// The bus names owned.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// Every call received so far, in order of arrival.
    pub fn calls(&self) -> Vec<Call> {
        self.log.lock().clone()
    }

    /// Waits until at least `n` calls have arrived or `timeout` has passed, then returns the
    /// calls there are (possibly fewer than `n`).
    pub fn wait_for_calls(&self, n: usize, timeout: Duration) -> Vec<Call> {
        let guard = self.log.lock();
        let (guard, _) = self
            .log
            .changed
            .wait_timeout_while(guard, timeout, |calls| calls.len() < n)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.clone()
    }
}

/// The service thread: connects, reports readiness (or the error), serves until told to stop,
/// then releases the names and closes the connection.
fn serve(address: String, options: StandInOptions, log: Arc<Log>, ready: Ready, stop: Stop) {
    let Some(runtime) = runtime(&ready) else {
        return;
    };
    runtime.block_on(async move {
        let connection =
            match tokio::time::timeout(START_TIMEOUT, connect(&address, options, log)).await {
                Ok(Ok(connection)) => connection,
                Ok(Err(e)) => {
                    let _ = ready.send(Err(HarnessError::new(format!(
                        "connecting and owning the names: {e}"
                    ))));
                    return;
                }
                Err(_) => {
                    let _ = ready.send(Err(HarnessError::new(format!(
                        "connecting and owning the names took more than {START_TIMEOUT:?}"
                    ))));
                    return;
                }
            };
        if ready.send(Ok(())).is_err() {
            // Nobody is waiting any more.
            let _ = tokio::time::timeout(STOP_TIMEOUT, connection.close()).await;
            return;
        }
        // Ends on a stop message or when the sender is dropped.
        let _ = stop.await;
        let _ = tokio::time::timeout(STOP_TIMEOUT, async {
            for name in [LOGIND_NAME, SYSTEMD_NAME] {
                // Not owning one of them is fine: release_name then answers Ok(false).
                let _ = connection.release_name(name).await;
            }
            let _ = connection.close().await;
        })
        .await;
    });
}

/// Connects to `address`, serves the stand-ins and owns their names.
async fn connect(
    address: &str,
    options: StandInOptions,
    log: Arc<Log>,
) -> zbus::Result<zbus::Connection> {
    let mut builder = zbus::connection::Builder::address(address)
        .allow_name_replacements(false)
        .replace_existing_names(false);
    if options.logind {
        builder = builder.name(LOGIND_NAME).serve_at(
            LOGIND_PATH,
            Logind {
                log: Arc::clone(&log),
                inhibitors: options.inhibitors,
                refuse_reboot: options.refuse_reboot,
            },
        );
    }
    if options.systemd {
        builder = builder
            .name(SYSTEMD_NAME)
            .serve_at(SYSTEMD_PATH, Systemd { log });
    }
    builder.build().await
}
