//! System tests of the `rpm-ostree` CLI: the real binary against the real daemon (started by
//! D-Bus activation on a private system bus), the real polkitd and a real OSTree sysroot,
//! with `ostree admin status` and the boot entries as the ground truth. They need root;
//! without it they say loudly that they are skipped, and under `CI=true` that is a failure.
//! The tests in `local` need neither root nor a daemon.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod images; // rebase/upgrade/deploy from OCI images (oci: and a loopback registry), bad images
mod layering; // install, uninstall, overrides, file triggers, refused requests, upgrades
mod local; // completions, man pages, usage errors, unreachable daemon
mod operations; // rollback, cleanup, kargs, cancel, busy/--wait, polkit refusal
mod packages; // upgrade --check/--preview, the diff after upgrade, status Diff:, refresh-md, search, db
mod scenario; // upgrade -> finalize -> rollback -> kargs -> cleanup -> rebase
mod status; // golden files, -b, -v, --json, non-root
