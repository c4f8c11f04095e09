//! The one error type that crosses the wire.
//!
//! Server handlers return [`Error`]; the adapters send it as a D-Bus error reply whose name is
//! the one shown on each variant. The names are upstream's, so existing clients match them
//! unchanged: the `org.projectatomic.rpmostreed.Error.*` family, GIO's "busy" error that GNOME
//! Software retries on, and the freedesktop errors for authorisation and bad arguments. Clients
//! get the same enum back from a failed call with [`Error::from`] on the `zbus::Error`.

use std::fmt;

use zbus::{
    DBusError,
    message::{Header, Message},
    names::ErrorName,
};

/// The error-name prefix of the daemon's own errors.
pub const ERROR_PREFIX: &str = "org.projectatomic.rpmostreed.Error.";
/// The D-Bus name of GIO's `G_IO_ERROR_BUSY` as GDBus sends it; clients retry on exactly this.
pub const BUSY_ERROR_NAME: &str =
    "org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code26";
/// The D-Bus name of GIO's `G_IO_ERROR_NOT_FOUND` as GDBus sends it.
pub const NOT_FOUND_ERROR_NAME: &str =
    "org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code1";
/// The D-Bus name of GIO's `G_IO_ERROR_FAILED` as GDBus sends it.
pub const GIO_FAILED_ERROR_NAME: &str =
    "org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code0";
const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
const NOT_SUPPORTED: &str = "org.freedesktop.DBus.Error.NotSupported";
const DBUS_FAILED: &str = "org.freedesktop.DBus.Error.Failed";

/// A D-Bus error returned by the daemon. Each variant carries the human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `org.projectatomic.rpmostreed.Error.Failed`: the operation failed.
    Failed(String),
    /// `org.projectatomic.rpmostreed.Error.InvalidSysroot`: the sysroot cannot be used.
    InvalidSysroot(String),
    /// `org.projectatomic.rpmostreed.Error.NotAuthorized`: the caller may not do this.
    NotAuthorized(String),
    /// `org.projectatomic.rpmostreed.Error.UpdateInProgress`: an update is already running.
    UpdateInProgress(String),
    /// `org.projectatomic.rpmostreed.Error.InvalidRefspec`: the refspec is malformed.
    InvalidRefspec(String),
    /// GIO's busy error ([`BUSY_ERROR_NAME`]): another transaction is running.
    Busy(String),
    /// `org.freedesktop.DBus.Error.AccessDenied`: polkit (or the peer check) refused the caller.
    AccessDenied(String),
    /// `org.freedesktop.DBus.Error.InvalidArgs`: an argument or option is malformed.
    InvalidArgs(String),
    /// `org.freedesktop.DBus.Error.NotSupported`: this daemon does not implement the member.
    NotSupported(String),
    /// Any other error name.
    Other {
        /// The D-Bus error name.
        name: String,
        /// The message.
        message: String,
    },
}

impl Error {
    /// The error for a D-Bus error name and message, using the typed variant when there is one.
    pub fn from_name(name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        match name {
            BUSY_ERROR_NAME => return Error::Busy(message),
            ACCESS_DENIED => return Error::AccessDenied(message),
            INVALID_ARGS => return Error::InvalidArgs(message),
            NOT_SUPPORTED => return Error::NotSupported(message),
            _ => {}
        }
        match name.strip_prefix(ERROR_PREFIX) {
            Some("Failed") => Error::Failed(message),
            Some("InvalidSysroot") => Error::InvalidSysroot(message),
            Some("NotAuthorized") => Error::NotAuthorized(message),
            Some("UpdateInProgress") => Error::UpdateInProgress(message),
            Some("InvalidRefspec") => Error::InvalidRefspec(message),
            _ => Error::Other {
                name: name.to_owned(),
                message,
            },
        }
    }

    /// The D-Bus error name this error is sent as.
    pub fn dbus_name(&self) -> &str {
        match self {
            Error::Failed(_) => "org.projectatomic.rpmostreed.Error.Failed",
            Error::InvalidSysroot(_) => "org.projectatomic.rpmostreed.Error.InvalidSysroot",
            Error::NotAuthorized(_) => "org.projectatomic.rpmostreed.Error.NotAuthorized",
            Error::UpdateInProgress(_) => "org.projectatomic.rpmostreed.Error.UpdateInProgress",
            Error::InvalidRefspec(_) => "org.projectatomic.rpmostreed.Error.InvalidRefspec",
            Error::Busy(_) => BUSY_ERROR_NAME,
            Error::AccessDenied(_) => ACCESS_DENIED,
            Error::InvalidArgs(_) => INVALID_ARGS,
            Error::NotSupported(_) => NOT_SUPPORTED,
            Error::Other { name, .. } => name,
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        match self {
            Error::Failed(m)
            | Error::InvalidSysroot(m)
            | Error::NotAuthorized(m)
            | Error::UpdateInProgress(m)
            | Error::InvalidRefspec(m)
            | Error::Busy(m)
            | Error::AccessDenied(m)
            | Error::InvalidArgs(m)
            | Error::NotSupported(m) => m,
            Error::Other { message, .. } => message,
        }
    }

    /// The error for a member this daemon does not implement; `member` is `Interface.Member`.
    pub fn not_supported(member: &str) -> Self {
        Error::NotSupported(format!("{member} is not supported by this rpm-ostreed"))
    }

    /// GIO's generic failure ([`GIO_FAILED_ERROR_NAME`]), the name upstream's daemon gives most
    /// of its errors.
    pub fn gio_failed(message: impl Into<String>) -> Self {
        Error::from_name(GIO_FAILED_ERROR_NAME, message)
    }

    /// GIO's not-found error ([`NOT_FOUND_ERROR_NAME`]), e.g. for an unknown OS name.
    pub fn gio_not_found(message: impl Into<String>) -> Self {
        Error::from_name(NOT_FOUND_ERROR_NAME, message)
    }

    /// Whether this says another transaction is running.
    pub fn is_busy(&self) -> bool {
        matches!(self, Error::Busy(_) | Error::UpdateInProgress(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.dbus_name())
    }
}

impl std::error::Error for Error {}

impl DBusError for Error {
    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<Message> {
        Message::error(call, self.name()).build(&(self.message(),))
    }

    fn name(&self) -> ErrorName<'_> {
        ErrorName::try_from(self.dbus_name())
            .unwrap_or_else(|_| ErrorName::from_static_str_unchecked(DBUS_FAILED))
    }

    fn description(&self) -> Option<&str> {
        Some(self.message())
    }
}

impl From<zbus::Error> for Error {
    /// Recovers the typed error from a failed call. Errors that are not D-Bus error replies
    /// (a broken connection, say) become `org.freedesktop.DBus.Error.Failed`.
    fn from(error: zbus::Error) -> Self {
        match error {
            zbus::Error::MethodError(name, message, _) => {
                Error::from_name(name.as_str(), message.unwrap_or_default())
            }
            zbus::Error::FDO(e) => Error::from(*e),
            zbus::Error::DBus(e) => {
                Error::from_name(e.name().as_str(), e.description().unwrap_or_default())
            }
            other => Error::from_name(DBUS_FAILED, other.to_string()),
        }
    }
}

impl From<zbus::fdo::Error> for Error {
    fn from(error: zbus::fdo::Error) -> Self {
        match error {
            zbus::fdo::Error::ZBus(e) => Error::from(e),
            other => Error::from_name(
                DBusError::name(&other).as_str(),
                DBusError::description(&other).unwrap_or_default(),
            ),
        }
    }
}

impl From<crate::dict::DictError> for Error {
    fn from(e: crate::dict::DictError) -> Self {
        Error::InvalidArgs(e.to_string())
    }
}

/// `Result` with the wire error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in [
            Error::Failed("a".into()),
            Error::InvalidSysroot("b".into()),
            Error::NotAuthorized("c".into()),
            Error::UpdateInProgress("d".into()),
            Error::InvalidRefspec("e".into()),
            Error::Busy("f".into()),
            Error::AccessDenied("g".into()),
            Error::InvalidArgs("h".into()),
            Error::not_supported("OS.Search"),
            Error::Other {
                name: "org.example.Error.Odd".into(),
                message: "i".into(),
            },
        ] {
            assert_eq!(Error::from_name(e.dbus_name(), e.message()), e);
        }
        assert!(Error::from_name(BUSY_ERROR_NAME, "x").is_busy());
        assert_eq!(
            Error::Busy(String::new()).dbus_name(),
            "org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code26"
        );
    }
}
