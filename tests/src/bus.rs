//! The sandbox's private system-type bus: its configuration, the `dbus-daemon` child, and
//! small `busctl` calls to the bus driver.

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::error::{Context, HarnessError};
use crate::process;

/// The bus name of the daemon under test.
pub(crate) const DAEMON_NAME: &str = "org.projectatomic.rpmostree1";
/// The bus name of polkit's authority.
pub(crate) const POLKIT_NAME: &str = "org.freedesktop.PolicyKit1";

/// Paths of the bus inside a sandbox directory.
#[derive(Debug, Clone)]
pub(crate) struct BusPaths {
    /// `DIR/bus`.
    pub(crate) root: PathBuf,
    /// The listening socket.
    pub(crate) socket: PathBuf,
    /// The activation directory (`<servicedir>`).
    pub(crate) services: PathBuf,
    /// Extra policy files (`<includedir>`).
    pub(crate) policy_dir: PathBuf,
    /// The bus configuration file.
    pub(crate) config: PathBuf,
    /// dbus-daemon's stdout and stderr.
    pub(crate) log: PathBuf,
}

impl BusPaths {
    pub(crate) fn new(dir: &Path) -> Self {
        let root = dir.join("bus");
        Self {
            socket: root.join("system_bus_socket"),
            services: root.join("services"),
            policy_dir: root.join("system.d"),
            config: root.join("system.conf"),
            log: root.join("dbus-daemon.log"),
            root,
        }
    }

    /// `unix:path=...`.
    pub(crate) fn address(&self) -> String {
        format!("unix:path={}", self.socket.display())
    }
}

/// The bus configuration. The rules for `org.projectatomic.rpmostree1` are deliberately not
/// here: they come from the project's own policy file in `policy_dir`, so tests exercise it.
fn config_text(paths: &BusPaths) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- Private system-type bus of one rpm-ostree test sandbox. No <user>: it stays root.
     No <servicehelper>: activation runs Exec= directly, as root. -->
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{services}</servicedir>

  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <!-- The bus driver. -->
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Peer"/>
    <!-- Bus monitors, for tests that check the order of messages (dbus-daemon lets only root
         and the bus's own user become one). -->
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
    <!-- polkit's authority (pkcheck as the test user, the daemon's CheckAuthorization). -->
    <allow send_destination="{polkit}"/>
  </policy>

  <!-- The distribution's policies: among them the one that lets user polkitd own its name. -->
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <!-- The project's own bus policy (daemon/data/org.projectatomic.rpmostree1.conf). -->
  <includedir>{policy_dir}</includedir>
</busconfig>
"#,
        socket = paths.socket.display(),
        services = paths.services.display(),
        policy_dir = paths.policy_dir.display(),
        polkit = POLKIT_NAME,
    )
}

/// Writes the configuration and the project's bus policy, starts `dbus-daemon` and waits
/// until its socket accepts connections.
pub(crate) fn start(paths: &BusPaths, project_policy: &str) -> Result<Child, HarnessError> {
    for d in [&paths.root, &paths.services, &paths.policy_dir] {
        fs::create_dir_all(d).map_err(|e| HarnessError::io("creating", d, e))?;
    }
    fs::write(&paths.config, config_text(paths))
        .map_err(|e| HarnessError::io("writing", &paths.config, e))?;
    let policy = paths.policy_dir.join(format!("{DAEMON_NAME}.conf"));
    fs::write(&policy, project_policy).map_err(|e| HarnessError::io("writing", &policy, e))?;
    let log =
        fs::File::create(&paths.log).map_err(|e| HarnessError::io("creating", &paths.log, e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| HarnessError::io("duplicating", &paths.log, e))?;
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", paths.config.display()))
        .args(["--nofork", "--nopidfile", "--nosyslog", "--print-address=1"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| HarnessError::new(format!("cannot start dbus-daemon: {e}")))?;
    let waited = process::wait_for(
        "the bus socket to accept connections",
        Duration::from_secs(15),
        || {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(HarnessError::new(format!("dbus-daemon exited ({status})")));
            }
            Ok(UnixStream::connect(&paths.socket).is_ok())
        },
    );
    if let Err(e) = waited {
        let _ = child.kill();
        let _ = child.wait();
        let log = fs::read_to_string(&paths.log).unwrap_or_default();
        return Err(HarnessError::new(format!(
            "starting the private system bus: {e}\ndbus-daemon log:\n{log}"
        )));
    }
    Ok(child)
}

/// `busctl --system call <dest> <path> <iface> <method> [signature args...]` on the bus at
/// `address`; returns busctl's text (e.g. `u 1234`).
pub(crate) fn call(
    address: &str,
    dest: &str,
    path: &str,
    iface: &str,
    method: &str,
    args: &[&str],
) -> Result<String, HarnessError> {
    process::run_ok(
        Command::new("busctl")
            .env("DBUS_SYSTEM_BUS_ADDRESS", address)
            .args([
                "--system",
                "--timeout=15",
                "call",
                dest,
                path,
                iface,
                method,
            ])
            .args(args),
        Duration::from_secs(20),
    )
}

/// A call to the bus driver itself.
pub(crate) fn driver(address: &str, method: &str, args: &[&str]) -> Result<String, HarnessError> {
    call(
        address,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        method,
        args,
    )
    .context(format!("org.freedesktop.DBus.{method}"))
}

/// The pid of the owner of `name`, or `None` if nobody owns it (or the bus is gone).
pub(crate) fn owner_pid(address: &str, name: &str) -> Option<u32> {
    let out = driver(address, "GetConnectionUnixProcessID", &["s", name]).ok()?;
    out.trim().strip_prefix("u ")?.trim().parse().ok()
}

/// Whether someone owns `name`.
pub(crate) fn has_owner(address: &str, name: &str) -> Result<bool, HarnessError> {
    let out = driver(address, "NameHasOwner", &["s", name])?;
    Ok(out.trim() == "b true")
}

/// The names the bus can activate.
pub(crate) fn activatable(address: &str) -> Result<Vec<String>, HarnessError> {
    let out = driver(address, "ListActivatableNames", &[])?;
    // `as N "a" "b" ...`: the quoted parts are the names.
    Ok(out
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect())
}
