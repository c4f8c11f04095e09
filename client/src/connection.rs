//! The session with rpm-ostreed: the system bus connection, client registration, the
//! `Reload()` barrier, the Sysroot proxy and the OS proxy of the stateroot a command acts on,
//! and the active transaction as seen from outside.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use rpmostree_api::{
    Deployment, Error as WireError, OSProxy, RegisterClientOptions, SysrootProxy, TransactionProxy,
    names,
};
use zbus::proxy::CacheProperties;

use crate::error::{CliError, daemon_error, unreachable_error};

/// How long one D-Bus call may take (upstream's client uses five minutes too).
const METHOD_TIMEOUT: Duration = Duration::from_secs(300);
/// How often the active transaction is polled while waiting for it to end.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A registered connection to rpm-ostreed.
#[derive(Debug)]
pub struct Daemon {
    /// The system bus connection.
    pub bus: zbus::Connection,
    /// The Sysroot object (properties are read fresh on every access).
    pub sysroot: SysrootProxy<'static>,
}

/// The running transaction, as far as the caller may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveTransaction {
    /// The D-Bus method that started it (`Rollback`, ...).
    pub method: String,
    /// The unique bus name of the client that started it.
    pub sender: String,
    /// The OS object it acts on.
    pub path: String,
    /// Its peer-to-peer address (`ActiveTransactionPath`).
    pub address: String,
    /// Its title, when the transaction let us connect.
    pub title: Option<String>,
    /// Who started it, when the transaction let us connect.
    pub initiator: Option<String>,
}

impl ActiveTransaction {
    /// The title, or the method name when the title could not be read.
    pub fn display_title(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.method)
    }
}

impl Daemon {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` or the standard socket), registers
    /// as a client (which starts the daemon by activation if needed) and waits for the daemon
    /// to reload its view of the sysroot.
    ///
    /// Registration needs polkit's `client-management` action for non-root callers; when it
    /// is refused the session goes on unregistered, so `status` works for everyone.
    pub async fn connect() -> Result<Self> {
        let bus = zbus::connection::Builder::system()
            .method_timeout(METHOD_TIMEOUT)
            .build()
            .await
            .map_err(|e| unreachable_error(&format!("cannot connect to the system bus: {e}")))?;
        let sysroot = SysrootProxy::builder(&bus)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| daemon_error("Sysroot", e))?;
        let daemon = Self { bus, sysroot };
        daemon.register().await?;
        daemon.reload().await?;
        Ok(daemon)
    }

    async fn register(&self) -> Result<()> {
        let id = std::env::var("RPMOSTREE_CLIENT_ID")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "cli".to_owned());
        let options = RegisterClientOptions::new().id(id);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.sysroot.register_client(&options).await {
                Ok(()) => return Ok(()),
                Err(e) => match WireError::from(e) {
                    // Not allowed to register (a non-root user without the polkit grant):
                    // reading state works without it.
                    WireError::AccessDenied(_) | WireError::NotAuthorized(_) => return Ok(()),
                    // Caught the daemon while it was exiting: activation starts a new one.
                    WireError::Other { name, .. }
                        if name == "org.freedesktop.DBus.Error.NoReply" && attempt < 3 =>
                    {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    other => return Err(crate::error::wire_error("RegisterClient", other)),
                },
            }
        }
    }

    /// `Reload()`: a barrier after which the properties reflect the sysroot on disk.
    pub async fn reload(&self) -> Result<()> {
        self.sysroot
            .reload()
            .await
            .map_err(|e| daemon_error("Reload", e))
    }

    /// Every deployment, in boot order (index 0 is the default).
    pub async fn deployments(&self) -> Result<Vec<Deployment>> {
        self.sysroot
            .deployments()
            .await
            .map_err(|e| daemon_error("Deployments", e))
    }

    /// The OS proxy for `stateroot`, or for the booted stateroot; on a system that is not
    /// booted into a deployment (the daemon manages a sysroot given by path), the stateroot of
    /// the first deployment.
    pub async fn os(&self, stateroot: Option<&str>) -> Result<OSProxy<'static>> {
        let path = match stateroot {
            Some(name) => self
                .sysroot
                .get_os(name)
                .await
                .map_err(|e| daemon_error("GetOS", e))?,
            None => {
                let booted = self
                    .sysroot
                    .booted()
                    .await
                    .map_err(|e| daemon_error("Booted", e))?;
                if booted.as_str() != "/" {
                    booted
                } else {
                    let deployments = self.deployments().await?;
                    let Some(osname) = deployments.first().and_then(|d| d.osname.clone()) else {
                        return Err(self.not_ostree_error().await);
                    };
                    self.sysroot
                        .get_os(&osname)
                        .await
                        .map_err(|e| daemon_error("GetOS", e))?
                }
            }
        };
        OSProxy::builder(&self.bus)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| daemon_error("OS", e))
    }

    /// The error for a daemon that manages no deployment at all.
    pub async fn not_ostree_error(&self) -> anyhow::Error {
        let sysroot = self.sysroot.path().await.unwrap_or_else(|_| "/".to_owned());
        let booted = if Path::new("/run/ostree-booted").exists() {
            "this system was booted via libostree, but"
        } else {
            "this system was not booted via libostree (/run/ostree-booted is missing), and"
        };
        CliError::new(format!(
            "not an OSTree system: {booted} rpm-ostreed finds no deployment in the sysroot {sysroot}"
        ))
        .into()
    }

    /// The active transaction, or `None` when the daemon is idle. Title and initiator are
    /// read from the transaction itself when it lets us connect (root or its initiator).
    pub async fn active_transaction(&self) -> Result<Option<ActiveTransaction>> {
        let (method, sender, path) = self
            .sysroot
            .active_transaction()
            .await
            .map_err(|e| daemon_error("ActiveTransaction", e))?;
        let address = self
            .sysroot
            .active_transaction_path()
            .await
            .map_err(|e| daemon_error("ActiveTransactionPath", e))?;
        if method.is_empty() && address.is_empty() {
            return Ok(None);
        }
        let mut active = ActiveTransaction {
            method,
            sender,
            path,
            address,
            title: None,
            initiator: None,
        };
        if !active.address.is_empty()
            && let Ok(Ok(proxy)) =
                tokio::time::timeout(Duration::from_secs(5), peer_proxy(&active.address)).await
        {
            active.title = proxy.title().await.ok();
            active.initiator = proxy.initiating_client_description().await.ok();
        }
        Ok(Some(active))
    }

    /// Waits until the transaction at `address` is no longer the active one. With an empty
    /// address (busy for another reason, such as the sysroot lock), waits a little.
    pub async fn wait_transaction_gone(&self, address: &str) -> Result<()> {
        if address.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            return Ok(());
        }
        loop {
            let current = self
                .sysroot
                .active_transaction_path()
                .await
                .map_err(|e| daemon_error("ActiveTransactionPath", e))?;
            if current != address {
                return Ok(());
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// A Transaction proxy on a fresh peer-to-peer connection to `address` (no signals needed).
pub async fn peer_proxy(address: &str) -> zbus::Result<TransactionProxy<'static>> {
    let connection = zbus::connection::Builder::address(address)
        .p2p()
        .method_timeout(METHOD_TIMEOUT)
        .build()
        .await?;
    TransactionProxy::builder(&connection)
        .path(names::TRANSACTION_PATH)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}
