//! Harness of the cross-crate system tests: a [`Sandbox`] with a private system bus, the real
//! polkitd, an OSTree sysroot and the daemon under test started by D-Bus activation.
//!
//! Tiers (see tests/README.md): unit and peer-to-peer tests need nothing; system tests need
//! root and a few Debian packages ([`ensure_packages`]). Without root a system test says
//! loudly that it is skipped ([`skip_unless_root!`]); under `CI=true` a skip is a failure.
//!
//! ```no_run
//! use rpmostree_tests::{Sandbox, SandboxOptions};
//! # fn main() -> Result<(), rpmostree_tests::HarnessError> {
//! let sandbox = Sandbox::start(SandboxOptions { fake_booted: true, ..Default::default() })?;
//! sandbox.grant(&["org.projectatomic.rpmostree1.upgrade"])?;
//! let out = sandbox.command_as_test_user("busctl").args(["--system", "list"]).output();
//! # let _ = out;
//! println!("{}", sandbox.admin_status()?);
//! # Ok(())
//! # }
//! ```

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

mod background;
pub mod bench_fixture;
mod bus;
pub mod data;
mod error;
pub mod etcd;
mod fixture;
mod http;
mod images;
mod logind;
mod polkit;
mod process;
pub mod rpms;
mod sandbox;
mod status;
pub mod truth;

pub use error::HarnessError;
pub use http::HttpServer;
pub use images::{Registry, ThrottledProxy, incompressible_bytes};
pub use logind::{Call, Inhibitor, RebootServices, StandInOptions};
pub use polkit::PolkitAnswer;
pub use sandbox::{Sandbox, SandboxOptions, TEST_USER};
pub use status::{AdminDeployment, parse_admin_status};

/// Where the interface XML lives, relative to this crate.
pub const INTERFACE_XML: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../interface/org.projectatomic.rpmostree1.xml"
);

/// The daemon's well-known bus name.
pub const DAEMON_BUS_NAME: &str = bus::DAEMON_NAME;
/// The stateroot of the OSTree fixture.
pub const OSNAME: &str = fixture::OSNAME;
/// The branch the fixture sysroot follows (remote history 1.0 -> 1.1 -> 2.0).
pub const STABLE_BRANCH: &str = fixture::STABLE;
/// The second branch of the fixture remote (10.0), for rebase tests.
pub const DEVEL_BRANCH: &str = fixture::DEVEL;
/// The security advisory that the fixture's rpm-md repository has for `libfoo` 2.0.
pub const FIXTURE_ADVISORY: &str = fixture::ADVISORY;
/// The CVE that [`FIXTURE_ADVISORY`] names.
pub const FIXTURE_ADVISORY_CVE: &str = fixture::ADVISORY_CVE;

/// The base packages of the fixture OS `version` (see the fixture's history: 1.0 and 1.1
/// share all but `testos-release`; 2.0 upgrades `libfoo`, downgrades `bar`, removes
/// `oldtool` and adds `newtool`).
pub fn fixture_packages(version: &str) -> Vec<rpms::RpmSpec> {
    fixture::packages_for(version)
}

/// One package change as the diff methods report it: (name, kind — 0 added, 1 removed,
/// 2 upgraded, 3 downgraded — previous NEVRA, new NEVRA).
pub type PackageChange = (String, u32, Option<String>, Option<String>);

/// The fixture's package changes from 1.1 to 2.0 (and any later stable version but for
/// `testos-release`), written out by hand as the ground truth, in upstream's order: by
/// kind, then name.
pub fn fixture_update_changes() -> Vec<PackageChange> {
    let nevra = |n: &str, evr: &str| Some(format!("{n}-{evr}.noarch"));
    let change = |n: &str, kind: u32, old: Option<&str>, new: Option<&str>| -> PackageChange {
        (
            n.to_owned(),
            kind,
            old.and_then(|e| nevra(n, e)),
            new.and_then(|e| nevra(n, e)),
        )
    };
    vec![
        change("newtool", 0, None, Some("1.0-1")),
        change("oldtool", 1, Some("1.0-1"), None),
        change("clock", 2, Some("1:2.0-1"), Some("2:1.0-1")),
        change("libfoo", 2, Some("1.0-1"), Some("2.0-1")),
        change("testos-release", 2, Some("1.1-1"), Some("2.0-1")),
        change("tilde", 2, Some("1.0~rc1-1"), Some("1.0-1")),
        change("bar", 3, Some("1.0-1"), Some("0.9-1")),
    ]
}

/// The packages of the fixture's rpm-md repository `testos`.
pub fn fixture_repo_packages() -> Vec<rpms::RpmSpec> {
    fixture::repo_packages()
}

/// The advisories of the fixture's rpm-md repository `testos`.
pub fn fixture_repo_advisories() -> Vec<rpms::UpdateAdvisory> {
    fixture::repo_advisories()
}

/// The kernel arguments of the fixture's deployments.
pub const FIXTURE_KARGS: [&str; 3] = fixture::KARGS;

/// The workspace root (the directory of the root Cargo.toml), as seen at build time.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// A binary of this workspace in the cargo target directory: `$RPMOSTREE_BIN_DIR/<name>` if
/// that variable is set, else next to the running executable — `target/<profile>/<name>`,
/// whether the executable is a test (`target/<profile>/deps/…`) or a binary such as xtask
/// (`target/<profile>/…`).
pub fn target_bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("RPMOSTREE_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    dir.join(name)
}

/// Live processes (other than this one) that still point into `dir`: by command line,
/// environment (e.g. a sandbox's bus address), root directory or executable. A dropped
/// [`Sandbox`] leaves none behind.
pub fn processes_using(dir: &Path) -> Vec<u32> {
    process::processes_of(dir)
}

/// Mount points at or below `dir` in this process's mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    process::mounts_under(dir)
}

/// The effective uid of this process (from /proc/self/status).
fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    euid() == Some(0)
}

/// Whether `CI` is set to `true` (or `1`): then a skipped system test is a failure.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// `Ok` when running as root; an error saying that system tests need root otherwise.
pub fn require_root() -> Result<(), HarnessError> {
    if is_root() {
        Ok(())
    } else {
        Err(HarnessError::new(
            "system tests need root (a private system bus, polkitd in a mount namespace, \
             an OSTree sysroot); run them as root",
        ))
    }
}

/// For a system test: `true` when running as root. Otherwise prints
/// `SKIPPED (needs root): <test>` loudly and returns `false` — unless `CI=true`, where it
/// panics, because a skip in CI is a failure. Use it through [`skip_unless_root!`].
pub fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if is_ci() {
        panic!("{test}: needs root, and under CI=true a skipped system test is a failure");
    }
    // Straight to the stderr handle, not eprintln!: the test runner captures (and, for a
    // passing test, hides) what the print macros write.
    let banner = "*".repeat(72);
    let _ = writeln!(
        std::io::stderr().lock(),
        "{banner}\n*** SKIPPED (needs root): {test}\n{banner}"
    );
    false
}

/// Returns from the enclosing test unless running as root (see [`root_or_skip`]):
/// `skip_unless_root!();` or `skip_unless_root!("test name");`.
#[macro_export]
macro_rules! skip_unless_root {
    () => {
        if !$crate::root_or_skip(concat!(module_path!(), ":", line!())) {
            return;
        }
    };
    ($name:expr) => {
        if !$crate::root_or_skip($name) {
            return;
        }
    };
}

/// The tools a [`Sandbox`] runs, with the Debian package of each.
const REQUIRED_TOOLS: &[(&str, &str)] = &[
    ("dbus-daemon", "dbus-daemon"),
    ("busctl", "systemd"),
    ("gdbus", "libglib2.0-bin"),
    ("pkcheck", "polkitd"),
    ("ostree", "ostree"),
    ("setpriv", "util-linux"),
    ("unshare", "util-linux"),
    ("mount", "mount"),
    ("umount", "mount"),
    ("chroot", "coreutils"),
    ("kill", "procps"),
    ("useradd", "passwd"),
    ("gpg", "gpg"),
    ("rpm", "rpm"),
    ("rpmbuild", "rpm"),
    ("createrepo_c", "createrepo-c"),
    ("modifyrepo_c", "createrepo-c"),
    ("bwrap", "bubblewrap"),
    ("rofiles-fuse", "ostree"),
    ("skopeo", "skopeo"),
    ("docker-registry", "docker-registry"),
    ("etcd", "etcd-server"),
    ("etcdctl", "etcd-client"),
    ("curl", "curl"),
];

/// Checks that every tool a [`Sandbox`] needs is installed (dbus-daemon, polkitd, ostree,
/// setpriv, unshare, busctl, gdbus, pkcheck, ...); the error names each missing one and its
/// Debian package. Installs nothing.
pub fn ensure_packages() -> Result<(), HarnessError> {
    let mut missing: Vec<String> = REQUIRED_TOOLS
        .iter()
        .filter(|(tool, _)| process::find_program(tool).is_none())
        .map(|(tool, package)| format!("{tool} (package {package})"))
        .collect();
    if !process::is_executable(Path::new(polkit::POLKITD)) {
        missing.push(format!("{} (package polkitd)", polkit::POLKITD));
    }
    for dir in [
        polkit::HOST_ACTIONS,
        polkit::HOST_ETC_RULES,
        polkit::HOST_SHARE_RULES,
    ] {
        if !Path::new(dir).is_dir() {
            missing.push(format!("directory {dir} (package polkitd)"));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(HarnessError::new(format!(
            "system tests need these, which are missing: {}",
            missing.join(", ")
        )))
    }
}

/// Quotes a string for a POSIX shell (single quotes).
pub(crate) fn shell_quote(s: impl AsRef<OsStr>) -> String {
    let s = s.as_ref().to_string_lossy();
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn target_bin_is_next_to_the_profile_dir() {
        let p = target_bin("rpm-ostreed");
        assert_eq!(p.file_name().unwrap(), "rpm-ostreed");
        assert_ne!(p.parent().unwrap().file_name().unwrap(), "deps");
    }

    #[test]
    fn workspace_root_has_the_interface() {
        assert!(workspace_root().join("interface").is_dir());
        assert!(Path::new(INTERFACE_XML).is_file());
    }
}
