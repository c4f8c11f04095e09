//! FleetLock, the protocol zincati and airlock use to keep a fleet from rebooting all at once:
//! a counting semaphore per group of nodes, taken before a reboot (`v1/pre-reboot`) and given
//! back once the node runs its new deployment (`v1/steady-state`).
//!
//! - [`protocol`]: the wire format, group names and the node id derived from `/etc/machine-id`;
//! - [`client`]: the node side (what rpm-ostreed and the tests' simulated nodes call), with
//!   fail-over between server replicas and backoff with jitter;
//! - [`semaphore`]: the semaphore in etcd v3 in airlock's key layout, changed only by
//!   optimistic transactions on the key's version;
//! - [`server`]: a stateless HTTP server over it, configured by airlock's own TOML file
//!   ([`config`]), with Prometheus metrics;
//! - [`cli`]: `rpm-ostree-fleetlock serve|slots|release`.

pub mod cli;
pub mod client;
pub mod config;
pub mod http;
pub mod protocol;
pub mod semaphore;
pub mod server;
