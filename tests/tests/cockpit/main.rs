//! End-to-end tests of Cockpit over D-Bus: the real `cockpit-bridge` (Debian 12's C bridge,
//! package `cockpit-bridge`), driven over its stdin/stdout protocol against the real daemon in
//! a sandbox (private system bus, real polkitd, OSTree sysroot), doing what cockpit-ostree's
//! "Software updates" page does. They need root and the `cockpit-bridge` package; without root
//! they say loudly that they are skipped, and under `CI=true` that is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bridge; // the stdin/stdout driver, the property cache, the transcript
mod common; // sandbox and bridge start-up, the transaction dance, deployment checks
mod images; // Rebase to a container image, an upgrade that follows its tag, Rebase back

mod negative; // no daemon -> not-found, unauthorised -> AccessDenied, concurrent -> busy
mod packages; // "Check for updates" and the package tabs: update, pending deployment, rebase
mod session; // cockpit-ostree's session: watches, RegisterClient, Rollback and Deploy
