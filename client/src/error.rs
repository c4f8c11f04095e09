//! Turning daemon and bus failures into messages a person can act on: which polkit action was
//! refused, which transaction is in the way and how to get past it, why the daemon could not
//! be reached. No Rust debug output ever reaches the user.

use std::fmt;

use rpmostree_api::Error as WireError;

/// An error the CLI reports and exits 1 for; its text is complete (no cause chain needed).
#[derive(Debug)]
pub struct CliError {
    message: String,
}

impl CliError {
    /// An error with this text.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// The polkit action the daemon checks for `method` (upstream's mapping), for messages when the
/// daemon's own text does not name it.
pub fn polkit_action_for(method: &str) -> Option<&'static str> {
    Some(match method {
        "Upgrade" | "AutomaticUpdateTrigger" => "org.projectatomic.rpmostree1.upgrade",
        "Deploy" | "UpdateDeployment" => "org.projectatomic.rpmostree1.deploy",
        "Rebase" => "org.projectatomic.rpmostree1.rebase",
        "Rollback" | "ClearRollbackTarget" => "org.projectatomic.rpmostree1.rollback",
        "Cleanup" => "org.projectatomic.rpmostree1.cleanup",
        "FinalizeDeployment" => "org.projectatomic.rpmostree1.finalize-deployment",
        "KernelArgs" => "org.projectatomic.rpmostree1.bootconfig",
        "RefreshMd"
        | "GetDeploymentsRpmDiff"
        | "GetCachedDeployRpmDiff"
        | "DownloadDeployRpmDiff"
        | "GetCachedUpdateRpmDiff"
        | "DownloadUpdateRpmDiff"
        | "GetCachedRebaseRpmDiff"
        | "DownloadRebaseRpmDiff" => "org.projectatomic.rpmostree1.repo-refresh",
        "ReloadConfig" => "org.projectatomic.rpmostree1.reload-daemon",
        "RegisterClient" | "UnregisterClient" => "org.projectatomic.rpmostree1.client-management",
        _ => return None,
    })
}

/// Finds a polkit action id (`org.projectatomic.rpmostree1.<name>`) in a message.
fn action_in(message: &str) -> Option<&str> {
    let start = message.find("org.projectatomic.rpmostree1.")?;
    let rest = &message[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'))
        .unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches('.'))
}

/// Whether an error name says the daemon itself could not be reached (not started, crashed,
/// activation failed, gone mid-call).
fn is_unreachable_name(name: &str) -> bool {
    name == "org.freedesktop.DBus.Error.ServiceUnknown"
        || name == "org.freedesktop.DBus.Error.NameHasNoOwner"
        || name == "org.freedesktop.DBus.Error.NoReply"
        || name == "org.freedesktop.DBus.Error.TimedOut"
        || name == "org.freedesktop.DBus.Error.Disconnected"
        || name.starts_with("org.freedesktop.DBus.Error.Spawn.")
}

/// Whether a zbus error (before conversion) is a transport failure rather than a reply.
fn is_transport(error: &zbus::Error) -> bool {
    matches!(
        error,
        zbus::Error::InputOutput(_) | zbus::Error::Handshake(_) | zbus::Error::Address(_)
    )
}

/// The error to show for a failed call of `method` (a D-Bus member name such as `Rollback`).
pub fn daemon_error(method: &str, error: zbus::Error) -> anyhow::Error {
    if is_transport(&error) {
        return unreachable_error(&error.to_string());
    }
    wire_error(method, WireError::from(error))
}

/// The error to show for a wire error returned by `method`.
pub fn wire_error(method: &str, error: WireError) -> anyhow::Error {
    let message = if error.message().is_empty() {
        error.dbus_name().to_owned()
    } else {
        error.message().to_owned()
    };
    let text = match &error {
        WireError::AccessDenied(_) | WireError::NotAuthorized(_) => {
            let action = action_in(&message)
                .map(str::to_owned)
                .or_else(|| polkit_action_for(method).map(str::to_owned));
            let hint = match action {
                Some(action) => format!(
                    "you are not authorised for the polkit action {action}; run the command as \
                     root (for example with sudo), or ask an administrator to grant that action"
                ),
                None => "run the command as root (for example with sudo)".to_owned(),
            };
            format!("{message}\nhint: {hint}")
        }
        WireError::Busy(_) | WireError::UpdateInProgress(_) => busy_text(&message),
        WireError::NotSupported(_) => format!(
            "{message}\nhint: this rpm-ostreed does not implement {method} yet; update the daemon"
        ),
        WireError::Other { name, .. } if is_unreachable_name(name) => {
            return unreachable_error(&message);
        }
        _ => message,
    };
    CliError::new(text).into()
}

/// The busy message: the daemon's text names the transaction and who started it; add how to
/// get past it.
fn busy_text(message: &str) -> String {
    let mut text = message.trim_end().to_owned();
    if !text.contains("rpm-ostree cancel") {
        text.push_str("\nrun `rpm-ostree cancel` to cancel it");
    }
    text.push_str("\nhint: or repeat the command with --wait to wait for it to finish first");
    text
}

/// The error for a daemon that cannot be reached on the system bus.
pub fn unreachable_error(why: &str) -> anyhow::Error {
    let address = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .unwrap_or_else(|_| "unix:path=/run/dbus/system_bus_socket".to_owned());
    CliError::new(format!(
        "rpm-ostreed could not be reached on the system bus ({address}): {why}\n\
         hint: check that the system bus runs and that rpm-ostreed can be started \
         (systemctl status rpm-ostreed)"
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_names_the_action() {
        let e = wire_error(
            "Rollback",
            WireError::AccessDenied(
                "rpmostreed OS operation Rollback not allowed for user: polkit action \
                 org.projectatomic.rpmostree1.rollback was not granted"
                    .into(),
            ),
        );
        let text = e.to_string();
        assert!(text.contains("polkit action org.projectatomic.rpmostree1.rollback;"));
        assert!(text.contains("as root"));
        // Upstream's wording has no action: the mapping supplies it.
        let e = wire_error(
            "Cleanup",
            WireError::AccessDenied("rpmostreed OS operation Cleanup not allowed for user".into()),
        );
        assert!(
            e.to_string()
                .contains("org.projectatomic.rpmostree1.cleanup")
        );
    }

    #[test]
    fn busy_says_how_to_get_past_it() {
        let e = wire_error(
            "Cleanup",
            WireError::Busy("Transaction in progress: rollback (started by x)".into()),
        );
        let text = e.to_string();
        assert!(text.contains("rollback (started by x)"));
        assert!(text.contains("`rpm-ostree cancel`"));
        assert!(text.contains("--wait"));
    }

    #[test]
    fn activation_failures_are_unreachable() {
        let e = wire_error(
            "RegisterClient",
            WireError::from_name("org.freedesktop.DBus.Error.ServiceUnknown", "not provided"),
        );
        assert!(e.to_string().contains("could not be reached"));
    }
}
