//! Typed Rust API for the rpm-ostree daemon's D-Bus interface, `org.projectatomic.rpmostree1`.
//!
//! Everything D-Bus-facing is generated from `interface/org.projectatomic.rpmostree1.xml`, the
//! single definition of the contract, which is wire-identical to upstream rpm-ostree:
//!
//! - client proxies: [`SysrootProxy`], [`OSProxy`], [`OSExperimentalProxy`] and, on the
//!   peer-to-peer transaction connection, [`TransactionProxy`], with blocking wrappers
//!   ([`SysrootProxyBlocking`], ...) for simple programs;
//! - server handler traits ([`SysrootHandler`], ...) with generic `#[zbus::interface]` adapters
//!   ([`SysrootInterface`], ...) whose introspection is the XML's;
//! - typed dictionaries for every options `a{sv}` and every dictionary the daemon returns
//!   ([`UpgradeOptions`], [`Deployment`], [`CachedUpdate`], ...), in [`dicts`];
//! - for each method that starts a transaction, a `<method>_transaction` helper that returns a
//!   [`TransactionClient`]: the transaction proxy and an ordered stream of [`TransactionEvent`]s.
//!
//! The hand-written part is small: the wire [`Error`], the well-known [`names`], the
//! [`CallContext`] handed to server handlers, dictionary runtime support in [`dict`], and
//! conveniences for following a transaction to its end in [`transaction`].
//!
//! ```no_run
//! use rpmostree_api::{SysrootProxy, names};
//! # async fn run() -> zbus::Result<()> {
//! let bus = zbus::Connection::system().await?;
//! let sysroot = SysrootProxy::new(&bus).await?;
//! for deployment in sysroot.deployments().await? {
//!     println!("{} {}", deployment.id.unwrap_or_default(), deployment.checksum.unwrap_or_default());
//! }
//! # Ok(()) }
//! ```

extern crate self as rpmostree_api;

mod context;
pub mod dict;
mod error;
pub mod names;
pub mod transaction;

#[path = "../generated/mod.rs"]
#[allow(
    clippy::too_many_arguments,
    clippy::type_complexity,
    clippy::needless_lifetimes,
    clippy::manual_async_fn
)]
#[rustfmt::skip]
mod generated;

pub use context::CallContext;
pub use error::{
    BUSY_ERROR_NAME, ERROR_PREFIX, Error, GIO_FAILED_ERROR_NAME, NOT_FOUND_ERROR_NAME, Result,
};
pub use generated::dicts;
pub use generated::dicts::*;
pub use generated::os::{
    INTERFACE as OS_INTERFACE, OSHandler, OSInterface, OSMethod, OSProxy, OSProxyBlocking,
};
pub use generated::os_experimental::{
    INTERFACE as OS_EXPERIMENTAL_INTERFACE, OSExperimentalHandler, OSExperimentalInterface,
    OSExperimentalMethod, OSExperimentalProxy, OSExperimentalProxyBlocking,
};
pub use generated::sysroot::{
    INTERFACE as SYSROOT_INTERFACE, SysrootHandler, SysrootInterface, SysrootMethod, SysrootProxy,
    SysrootProxyBlocking,
};
pub use generated::transaction::{
    INTERFACE as TRANSACTION_INTERFACE, TransactionClient, TransactionEvent, TransactionEvents,
    TransactionHandler, TransactionInterface, TransactionProxy, TransactionProxyBlocking,
    TransactionSignals,
};

/// The generated modules, one per interface, for code that wants every item of one interface.
pub mod interfaces {
    pub use crate::generated::{os, os_experimental, sysroot, transaction};
}

#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use zbus;
}
