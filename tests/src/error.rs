//! The harness's error type: one message that says what failed, and why.

use std::fmt;

/// Anything the harness could not do: a tool missing, a command failing, a wait timing out.
///
/// The message is meant for a human reading a failed test: it names the step, the command
/// and, where there is one, the command's stderr or the relevant log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessError {
    message: String,
}

impl HarnessError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The full message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with what the caller was doing (`"{what}: {message}"`).
    pub fn context(self, what: impl fmt::Display) -> Self {
        Self {
            message: format!("{what}: {}", self.message),
        }
    }

    /// An I/O error on `path` while doing `what`.
    pub(crate) fn io(what: &str, path: &std::path::Path, err: std::io::Error) -> Self {
        Self::new(format!("{what} {}: {err}", path.display()))
    }
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HarnessError {}

/// Adds context to the error of a `Result`.
pub(crate) trait Context<T> {
    /// Prefixes an error with what was being done.
    fn context(self, what: impl fmt::Display) -> Result<T, HarnessError>;
}

impl<T> Context<T> for Result<T, HarnessError> {
    fn context(self, what: impl fmt::Display) -> Result<T, HarnessError> {
        self.map_err(|e| e.context(what))
    }
}
