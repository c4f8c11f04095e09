//! System tests of rpm-ostreed: the real daemon, started by D-Bus activation on a private system
//! bus, with the real polkitd and a real OSTree sysroot (see the `rpmostree-tests` harness).
//! They need root; without it they say loudly that they are skipped, and under `CI=true` that
//! is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod authorization; // every mutating method is denied, then granted, through the real polkitd
mod faults; // SIGKILL during pull and staging, cancel during staging, a restarted bus
mod images; // UpdateDeployment to an image, FinalizeDeployment by digest, cancel and SIGKILL mid-pull
mod lifetime; // activation, RegisterClient, idle exit, SIGKILL recovery, config errors
mod objects; // introspection, GetAll, ObjectManager, properties from the sysroot, outside changes
mod operations; // upgrade, deploy, rebase, kargs, update checks, staging and finalization
mod packages; // package diffs, CachedUpdate rpm-diff and advisories, rpm-md repositories and queries
mod reboots; // reboots only after written changes, inhibitors, finalize order, quoted kargs, crash after staging
mod signatures; // gpg-enabled and signatures from libostree's verification
mod transactions; // Rollback/Cleanup, busy/join, Cancel, disconnects, peer credentials
