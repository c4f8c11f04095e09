//! rpm-ostreed, the daemon that serves `org.projectatomic.rpmostree1` on the system bus.
//!
//! Layers, top to bottom (calls only go down): [`object`] implements the generated handler
//! traits and is the only place errors become D-Bus errors; [`authz`] decides with polkit;
//! [`txn`] runs one mutating transaction at a time on its own peer-to-peer server; [`sysroot`]
//! does the libostree work on blocking threads and knows nothing of D-Bus. [`daemon`] holds the
//! shared state and the service's lifetime; [`config`] reads `rpm-ostreed.conf`. [`rpm`] is
//! the package side (package lists, diffs, rpm-md repositories through libdnf on its own
//! thread); [`db`] answers the read-only `rpm-ostree db` queries without a daemon.

mod authz;
mod config;
mod daemon;
mod db;
mod fleet;
mod layering;
mod object;
mod power;
mod rpm;
mod sysroot;
mod txn;

pub use daemon::{Options, run};
pub use db::{DbQuery, run as run_db};
