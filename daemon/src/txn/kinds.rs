//! The transaction kinds: one variant per D-Bus method that starts a transaction, and how each
//! runs on the sysroot.

use anyhow::Result;

use crate::sysroot::ops::{self, CleanupElement, Op};

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `OS.Rollback`.
    Rollback {
        /// Stateroot.
        osname: String,
    },
    /// `OS.Cleanup` and `OS.ClearRollbackTarget`.
    Cleanup {
        /// Stateroot.
        osname: String,
        /// What to remove.
        elements: Vec<CleanupElement>,
    },
}

impl Kind {
    /// Runs the transaction; returns a summary for the log.
    pub(crate) fn run(&self, op: &Op<'_>) -> Result<String> {
        match self {
            Kind::Rollback { osname } => ops::rollback(op, osname),
            Kind::Cleanup { osname, elements } => ops::cleanup(op, osname, elements),
        }
    }
}
