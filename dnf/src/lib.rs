//! A small, fenced FFI over libdnf 0.x (and a few librpm functions) with a safe API that
//! returns plain Rust data: the rpmdb of a tree (reading, and writing layered packages into
//! it), `.repo` files, rpm-md refresh into a cache, the queries behind `ListRepos`,
//! `RefreshMd`, `ModifyYumRepo`, `GetPackages`, `WhatProvides`, `Search` and update
//! advisories, and the layering depsolve against a base rpmdb, with base overrides (removals
//! and local replacements) and the file lists of base packages.
//!
//! All unsafe code lives in `ffi` (declarations and owning handles) and the wrappers
//! `context`, `rpmdb` and `rpmdb_write`. libdnf, libsolv and rpm macros are process-global and not
//! thread-safe: [`Context`] is neither `Send` nor `Sync`, and every call into the C libraries
//! is serialised by a process-wide lock, so independent threads (e.g. parallel tests) are
//! safe, but the daemon should still drive all of this from one dedicated thread.
#![deny(unsafe_code)]

use std::fmt;

#[allow(unsafe_code)]
mod context;
#[allow(unsafe_code)]
mod ffi;
pub mod protocol;
#[allow(unsafe_code)]
mod rpmdb;
#[allow(unsafe_code)]
mod rpmdb_write;
mod text;
mod tmp;
mod version;

pub use context::{
    Advisory, CachePolicy, Context, ContextOptions, DepsolveOptions, Overrides, RepoInfo,
    RepoUpdate, Resolution, Resolved,
};
pub use rpmdb::{librpm_evr_cmp, librpm_vercmp, rpmdb_packages};
pub use rpmdb_write::{edit_rpmdb, file_triggers, package_files, write_rpmdb};
pub use tmp::sweep_orphaned_temp_dirs;
pub use version::{evr_cmp, vercmp};

/// A package as libdnf reports it.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Package {
    /// `Name`.
    pub name: String,
    /// `Epoch` (0 when the package has none).
    pub epoch: u64,
    /// `Version`.
    pub version: String,
    /// `Release`.
    pub release: String,
    /// `Arch`.
    pub arch: String,
    /// `Summary`, `""` if none.
    pub summary: String,
    /// The repo id, `@System` for rpmdb packages.
    pub reponame: String,
}

impl Package {
    /// `V-R`, or `E:V-R` when the epoch is not 0 (like `dnf_package_get_evr`).
    pub fn evr(&self) -> String {
        if self.epoch == 0 {
            format!("{}-{}", self.version, self.release)
        } else {
            format!("{}:{}-{}", self.epoch, self.version, self.release)
        }
    }

    /// `N-EVR.A` (like `dnf_package_get_nevra`).
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr(), self.arch)
    }
}

/// A `%transfiletriggerin` scriptlet of an installed package ([`file_triggers`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileTrigger {
    /// The package's `Name`.
    pub package: String,
    /// The package's `N-[E:]V-R.A` (the epoch only when not 0).
    pub nevra: String,
    /// The interpreter and its arguments (`-p`; `["/bin/sh"]` by default). librpm keeps only
    /// the program of a file trigger, so this is one element; `<lua>` for Lua scripts.
    pub interpreter: Vec<String>,
    /// The script body (macro-expanded when it was built with `-e`).
    pub script: String,
    /// The absolute path prefixes that trigger it, in the header's order (rpmbuild stores
    /// them sorted).
    pub patterns: Vec<String>,
}

/// Something libdnf, librpm or the file system refused; the message says what and, where a
/// repo or file is involved, names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The full message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
