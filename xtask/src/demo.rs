//! `cargo xtask demo` and `cargo xtask sandbox [stop]`: install what the sandbox needs, build,
//! and run `rpmostree-sandbox` (tests/src/bin), which holds the demo itself. xtask does not link
//! the harness, so that `cargo xtask codegen` works even while the API crate does not build.

use std::process::Command;

/// Debian packages the sandbox needs at run time (a fresh Debian 12 lacks only some of them).
const PACKAGES: &[&str] = &[
    "ostree",
    "libostree-dev",
    "pkg-config",
    "dbus",
    "polkitd",
    "libglib2.0-bin",
    "systemd",
    "util-linux",
    "cockpit-bridge",
    "rpm",
    "createrepo-c",
    "libdnf-dev",
    "librpm-dev",
    "bubblewrap",
    "fuse3",
    "libssl-dev",
    "libzstd-dev",
    "skopeo",
    "docker-registry",
    "protobuf-compiler",
    "libprotobuf-dev",
];

/// Whether this process runs as root (effective uid 0).
pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        })
        .as_deref()
        == Some("0")
}

fn require_root() -> Result<(), String> {
    if is_root() {
        Ok(())
    } else {
        Err("the demo needs root: it starts a private system bus, polkitd in a private mount \
             namespace and a fake-booted OSTree sysroot (run it as root, e.g. `sudo -E cargo xtask demo`)"
            .into())
    }
}

/// Installs the missing Debian packages (apt-get update first), as .ci/run does.
fn install_packages() -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("Installing {} ...", missing.join(" "));
    crate::run("apt-get", &["update", "-qq"], &[])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    crate::run("apt-get", &args, &[("DEBIAN_FRONTEND", "noninteractive")])
}

/// Builds the daemon, the CLI and the sandbox driver, then runs the driver with `args`.
fn run_sandbox(args: &[&str]) -> Result<(), String> {
    crate::build_binaries(false)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut all = vec![
        "run",
        "--quiet",
        "--locked",
        "-p",
        "rpmostree-tests",
        "--bin",
        "rpmostree-sandbox",
        "--",
    ];
    all.extend(args);
    let status = Command::new(cargo)
        .args(&all)
        .status()
        .map_err(|e| format!("running the sandbox driver: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the sandbox driver failed ({status})"))
    }
}

/// `cargo xtask demo`.
pub(crate) fn demo(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("usage: cargo xtask demo".into());
    }
    require_root()?;
    install_packages()?;
    run_sandbox(&["demo"])
}

/// `cargo xtask sandbox [stop]`.
pub(crate) fn sandbox(args: &[String]) -> Result<(), String> {
    match args {
        [] => {
            require_root()?;
            install_packages()?;
            run_sandbox(&["start"])
        }
        [stop] if stop == "stop" => run_sandbox(&["stop"]),
        _ => Err("usage: cargo xtask sandbox [stop]".into()),
    }
}
