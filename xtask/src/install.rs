//! `cargo xtask install --destdir D [--prefix /usr] [--profile release|debug]`: lays out the
//! binaries and data files where a distribution package would put them.

use std::path::{Path, PathBuf};

/// Parsed arguments.
struct Args {
    destdir: PathBuf,
    prefix: String,
    profile: String,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let usage =
        "usage: cargo xtask install --destdir DIR [--prefix /usr] [--profile release|debug]";
    let mut out = Args {
        destdir: PathBuf::new(),
        prefix: "/usr".into(),
        profile: "release".into(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = it.next().ok_or(usage)?;
        match a.as_str() {
            "--destdir" => out.destdir = PathBuf::from(value),
            "--prefix" => out.prefix = value.clone(),
            "--profile" => out.profile = value.clone(),
            _ => return Err(usage.into()),
        }
    }
    if out.destdir.as_os_str().is_empty() || !out.prefix.starts_with('/') {
        return Err(usage.into());
    }
    if out.profile != "release" && out.profile != "debug" {
        return Err(usage.into());
    }
    Ok(out)
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::copy(from, to).map_err(|e| format!("{} -> {}: {e}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", to.display()))
}

fn write(to: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(to, text).map_err(|e| format!("{}: {e}", to.display()))
}

/// Runs the installed CLI to produce generated files (completions, man pages).
fn cli_output(cli: &Path, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(cli)
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", cli.display()))?;
    if !out.status.success() {
        return Err(format!(
            "rpm-ostree {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Installs into `destdir` + `prefix`; returns the files written, relative to `destdir`.
pub(crate) fn install_tree(root: &Path, args: &[String]) -> Result<Vec<String>, String> {
    let a = parse(args)?;
    if a.profile == "release" {
        crate::build_binaries(true)?;
    }
    let bin = root.join("target").join(&a.profile);
    let data = root.join("daemon/data");
    let dest = |p: &str| a.destdir.join(p.trim_start_matches('/'));
    let prefix = a.prefix.trim_end_matches('/');
    let libexec = format!("{prefix}/libexec/rpm-ostreed");

    let cli = dest(&format!("{prefix}/bin/rpm-ostree"));
    copy(&bin.join("rpm-ostree"), &cli, 0o755)?;
    copy(&bin.join("rpm-ostreed"), &dest(&libexec), 0o755)?;
    // The daemon's libdnf helper lives next to it.
    copy(
        &bin.join("rpm-ostreed-dnf"),
        &dest(&format!("{prefix}/libexec/rpm-ostreed-dnf")),
        0o755,
    )?;
    copy(
        &data.join("org.projectatomic.rpmostree1.conf"),
        &dest(&format!(
            "{prefix}/share/dbus-1/system.d/org.projectatomic.rpmostree1.conf"
        )),
        0o644,
    )?;
    copy(
        &data.join("org.projectatomic.rpmostree1.policy"),
        &dest(&format!(
            "{prefix}/share/polkit-1/actions/org.projectatomic.rpmostree1.policy"
        )),
        0o644,
    )?;
    copy(
        &data.join("rpm-ostreed.conf"),
        &dest("/etc/rpm-ostreed.conf"),
        0o644,
    )?;
    // The activation file and the unit name the daemon's installed path.
    let retarget = |file: &str| -> Result<String, String> {
        let text = std::fs::read_to_string(data.join(file)).map_err(|e| format!("{file}: {e}"))?;
        Ok(text.replace("/usr/libexec/rpm-ostreed", &libexec))
    };
    write(
        &dest(&format!(
            "{prefix}/share/dbus-1/system-services/org.projectatomic.rpmostree1.service"
        )),
        &retarget("org.projectatomic.rpmostree1.service")?,
    )?;
    write(
        &dest(&format!("{prefix}/lib/systemd/system/rpm-ostreed.service")),
        &retarget("rpm-ostreed.service")?,
    )?;
    for (shell, path) in [
        (
            "bash",
            format!("{prefix}/share/bash-completion/completions/rpm-ostree"),
        ),
        (
            "zsh",
            format!("{prefix}/share/zsh/site-functions/_rpm-ostree"),
        ),
        (
            "fish",
            format!("{prefix}/share/fish/vendor_completions.d/rpm-ostree.fish"),
        ),
    ] {
        write(&dest(&path), &cli_output(&cli, &["completions", shell])?)?;
    }
    let man = dest(&format!("{prefix}/share/man/man1"));
    std::fs::create_dir_all(&man).map_err(|e| e.to_string())?;
    cli_output(&cli, &["man", &man.display().to_string()])?;

    // Automatic updates: the timer that acts on AutomaticUpdatePolicy.
    for unit in [
        "rpm-ostreed-automatic.service",
        "rpm-ostreed-automatic.timer",
    ] {
        let text = std::fs::read_to_string(data.join(unit)).map_err(|e| format!("{unit}: {e}"))?;
        write(
            &dest(&format!("{prefix}/lib/systemd/system/{unit}")),
            &text.replace("/usr/bin/rpm-ostree", &format!("{prefix}/bin/rpm-ostree")),
        )?;
    }

    // The FleetLock server: binary, unit, configuration, man page.
    let fleet = root.join("fleetlock/data");
    let server = dest(&format!("{prefix}/bin/rpm-ostree-fleetlock"));
    copy(&bin.join("rpm-ostree-fleetlock"), &server, 0o755)?;
    let unit = std::fs::read_to_string(fleet.join("rpm-ostree-fleetlock.service"))
        .map_err(|e| format!("rpm-ostree-fleetlock.service: {e}"))?;
    write(
        &dest(&format!(
            "{prefix}/lib/systemd/system/rpm-ostree-fleetlock.service"
        )),
        &unit.replace(
            "/usr/bin/rpm-ostree-fleetlock",
            &format!("{prefix}/bin/rpm-ostree-fleetlock"),
        ),
    )?;
    copy(
        &fleet.join("config.toml"),
        &dest("/etc/airlock/config.toml"),
        0o644,
    )?;
    let out = std::process::Command::new(&server)
        .args(["man", &man.display().to_string()])
        .output()
        .map_err(|e| format!("{}: {e}", server.display()))?;
    if !out.status.success() {
        return Err(format!(
            "rpm-ostree-fleetlock man failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }

    let mut files = Vec::new();
    collect(&a.destdir, &a.destdir, &mut files)?;
    files.sort();
    Ok(files)
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect(base, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(base) {
            out.push(format!("/{}", rel.display()));
        }
    }
    Ok(())
}

/// `cargo xtask install`.
pub(crate) fn install(args: &[String]) -> Result<(), String> {
    let files = install_tree(&crate::root(), args)?;
    for f in &files {
        println!("{f}");
    }
    println!("installed {} files", files.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_tree_has_every_file_where_a_distribution_puts_it() {
        let root = crate::root();
        if !root.join("target/debug/rpm-ostree").exists()
            || !root.join("target/debug/rpm-ostreed").exists()
            || !root.join("target/debug/rpm-ostree-fleetlock").exists()
        {
            // `cargo test --workspace` builds both binaries before running tests.
            panic!("build rpm-ostree and rpm-ostreed first (cargo build --workspace)");
        }
        let dest =
            std::env::temp_dir().join(format!("rpmostree-install-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dest);
        let args: Vec<String> = [
            "--destdir",
            dest.to_str().unwrap(),
            "--prefix",
            "/usr",
            "--profile",
            "debug",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let files = install_tree(&root, &args).unwrap();
        for expected in [
            "/usr/bin/rpm-ostree",
            "/usr/libexec/rpm-ostreed",
            "/usr/libexec/rpm-ostreed-dnf",
            "/usr/share/dbus-1/system.d/org.projectatomic.rpmostree1.conf",
            "/usr/share/dbus-1/system-services/org.projectatomic.rpmostree1.service",
            "/usr/share/polkit-1/actions/org.projectatomic.rpmostree1.policy",
            "/usr/lib/systemd/system/rpm-ostreed.service",
            "/etc/rpm-ostreed.conf",
            "/usr/share/bash-completion/completions/rpm-ostree",
            "/usr/share/zsh/site-functions/_rpm-ostree",
            "/usr/share/fish/vendor_completions.d/rpm-ostree.fish",
            "/usr/share/man/man1/rpm-ostree.1",
            "/usr/share/man/man1/rpm-ostree-status.1",
            "/usr/lib/systemd/system/rpm-ostreed-automatic.service",
            "/usr/lib/systemd/system/rpm-ostreed-automatic.timer",
            "/usr/bin/rpm-ostree-fleetlock",
            "/usr/lib/systemd/system/rpm-ostree-fleetlock.service",
            "/etc/airlock/config.toml",
            "/usr/share/man/man1/rpm-ostree-fleetlock.1",
        ] {
            assert!(
                files.iter().any(|f| f == expected),
                "{expected} missing from {files:#?}"
            );
        }
        let unit = std::fs::read_to_string(dest.join("usr/lib/systemd/system/rpm-ostreed.service"))
            .unwrap();
        assert!(unit.contains("ExecStart=/usr/libexec/rpm-ostreed") && unit.contains("Type=dbus"));
        let activation = std::fs::read_to_string(
            dest.join("usr/share/dbus-1/system-services/org.projectatomic.rpmostree1.service"),
        )
        .unwrap();
        assert!(activation.contains("Name=org.projectatomic.rpmostree1"));
        assert!(activation.contains("SystemdService=rpm-ostreed.service"));
        let timer = std::fs::read_to_string(
            dest.join("usr/lib/systemd/system/rpm-ostreed-automatic.service"),
        )
        .unwrap();
        assert!(timer.contains(
            "ExecStart=/usr/bin/rpm-ostree upgrade --quiet --trigger-automatic-update-policy"
        ));
        // The shipped server configuration is one the server accepts.
        let server = dest.join("usr/bin/rpm-ostree-fleetlock");
        let out = std::process::Command::new(&server)
            .args(["slots", "-c"])
            .arg(dest.join("etc/airlock/config.toml"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("parsing the configuration") && !err.contains("is required"),
            "{err}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dest.join("usr/libexec/rpm-ostreed"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert!(
            std::fs::read_to_string(dest.join("usr/share/bash-completion/completions/rpm-ostree"))
                .unwrap()
                .contains("rpm-ostree")
        );
        std::fs::remove_dir_all(&dest).unwrap();
    }
}
