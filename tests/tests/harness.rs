//! Smoke tests of the system-test harness itself: bus, polkit grants, OSTree fixture,
//! activation plumbing and fake boot, without the real daemon. Root only.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rpmostree_tests::{
    AdminDeployment, DEVEL_BRANCH, PolkitAnswer, STABLE_BRANCH, Sandbox, SandboxOptions,
    parse_admin_status, skip_unless_root,
};

const UPGRADE: &str = "org.projectatomic.rpmostree1.upgrade";
const DEPLOY: &str = "org.projectatomic.rpmostree1.deploy";
const ROLLBACK: &str = "org.projectatomic.rpmostree1.rollback";

/// A stand-in "daemon": reports how it was started on stderr (the daemon log) and exits
/// without taking the bus name.
const PROBE: &str = r#"#!/bin/sh
echo "probe-args: $*" >&2
echo "probe-uid: $(id -u)" >&2
echo "probe-ostree-debug: $OSTREE_SYSROOT_DEBUG" >&2
echo "probe-bus: $DBUS_SYSTEM_BUS_ADDRESS" >&2
if [ -e /run/ostree-booted ]; then echo "probe-booted: yes" >&2; else echo "probe-booted: no" >&2; fi
exit 1
"#;

/// Writes the probe script somewhere the sandbox can copy it from.
fn write_probe(tag: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "rpmostree-harness-probe-{}-{tag}.sh",
        std::process::id()
    ));
    std::fs::write(&path, PROBE).expect("writing the probe");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("chmod the probe");
    path
}

/// `pkcheck` run directly as the test user (independent of the harness's own check).
fn pkcheck(sandbox: &Sandbox, action: &str) -> Option<i32> {
    sandbox
        .command_as_test_user("sh")
        .args([
            "-c",
            "exec pkcheck --action-id \"$1\" --process $$",
            "sh",
            action,
        ])
        .output()
        .expect("running pkcheck")
        .status
        .code()
}

fn versions(deployments: &[AdminDeployment]) -> Vec<&str> {
    deployments
        .iter()
        .map(|d| d.version.as_deref().unwrap_or("?"))
        .collect()
}

/// Everything of a dropped sandbox is gone: directory, processes, mounts.
fn assert_gone(dir: &Path, pids: &[u32]) {
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert_eq!(rpmostree_tests::processes_using(dir), Vec::<u32>::new());
    assert_eq!(rpmostree_tests::mounts_under(dir), Vec::<String>::new());
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().chars().next());
        assert!(
            stat.is_empty() || matches!(state, Some(Some('Z'))),
            "pid {pid} still alive: {stat}"
        );
    }
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn sandbox_bus_polkit_fixture_and_cleanup() {
    skip_unless_root!("sandbox_bus_polkit_fixture_and_cleanup");
    let t0 = Instant::now();
    let probe = write_probe("plain");
    let sandbox = Sandbox::start(SandboxOptions {
        daemon_bin: Some(probe.clone()),
        ..Default::default()
    })
    .unwrap();
    std::fs::remove_file(&probe).unwrap();
    eprintln!("sandbox up in {:?}", t0.elapsed());
    let dir = sandbox.dir().to_path_buf();
    assert!(dir.starts_with("/tmp"));
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        sandbox.bus_address(),
        format!("unix:path={}/bus/system_bus_socket", dir.display())
    );

    // The bus answers through command(), as root and as the test user.
    let out = sandbox
        .command("busctl")
        .args(["--system", "list", "--no-pager"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("org.freedesktop.DBus"));
    let (uid, name) = sandbox.test_user();
    assert_eq!(name, "rpmostree-test");
    assert_ne!(uid, 0);
    let out = sandbox
        .command_as_test_user("id")
        .arg("-u")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), uid.to_string());

    // A binary installed into the sandbox runs as the test user.
    let id = sandbox.install_binary(Path::new("/usr/bin/id")).unwrap();
    assert!(id.starts_with(&dir));
    let out = sandbox
        .command_as_test_user(id.to_str().unwrap())
        .arg("-un")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "rpmostree-test"
    );

    // The project's bus policy is in force: a non-root caller may not set properties...
    let set = sandbox
        .command_as_test_user("busctl")
        .args([
            "--system",
            "call",
            "org.projectatomic.rpmostree1",
            "/org/projectatomic/rpmostree1/Sysroot",
            "org.freedesktop.DBus.Properties",
            "Set",
            "ssv",
            "org.projectatomic.rpmostree1.Sysroot",
            "Path",
            "s",
            "/",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&set.stderr);
    assert!(!set.status.success());
    assert!(err.contains("denied") || err.contains("Access"), "{err}");
    // ...nor own the name.
    let own = sandbox
        .command_as_test_user("gdbus")
        .args([
            "call",
            "--system",
            "--dest",
            "org.freedesktop.DBus",
            "--object-path",
            "/org/freedesktop/DBus",
            "--method",
            "org.freedesktop.DBus.RequestName",
            "org.projectatomic.rpmostree1",
            "4",
        ])
        .output()
        .unwrap();
    assert!(!own.status.success(), "{own:?}");

    // Activation runs the wrapper, which runs the given binary non-booted on the sysroot.
    assert_eq!(sandbox.daemon_pid(), None);
    let started = sandbox.start_daemon();
    assert!(
        started.is_err(),
        "the probe never takes the name: {started:?}"
    );
    let log = sandbox.daemon_log();
    let expect_args = format!(
        "probe-args: --sysroot {} --config {}",
        sandbox.sysroot().display(),
        sandbox.config_path().display()
    );
    assert!(log.contains(&expect_args), "{log}");
    assert!(log.contains("probe-uid: 0"), "{log}");
    assert!(
        log.contains("probe-ostree-debug: mutable-deployments"),
        "{log}"
    );
    assert!(
        log.contains(&format!("probe-bus: {}", sandbox.bus_address())),
        "{log}"
    );
    let config = std::fs::read_to_string(sandbox.config_path()).unwrap();
    assert!(
        config.contains("[Daemon]\nIdleExitTimeout=600\n"),
        "{config}"
    );

    // polkit: the contract's defaults (a challenge without an agent), then grants and revoke,
    // as seen by pkcheck run as the test user.
    assert_eq!(pkcheck(&sandbox, UPGRADE), Some(2));
    sandbox.grant(&[UPGRADE, DEPLOY]).unwrap();
    assert_eq!(pkcheck(&sandbox, UPGRADE), Some(0));
    assert_eq!(pkcheck(&sandbox, DEPLOY), Some(0));
    assert_eq!(pkcheck(&sandbox, ROLLBACK), Some(2));
    sandbox.grant(&[ROLLBACK]).unwrap();
    assert_eq!(pkcheck(&sandbox, ROLLBACK), Some(0));
    sandbox.revoke_all().unwrap();
    for action in [UPGRADE, DEPLOY, ROLLBACK] {
        assert_eq!(pkcheck(&sandbox, action), Some(2), "{action}");
    }
    let granting_unknown = sandbox.grant(&["org.example.no-such-action"]);
    assert!(granting_unknown.is_err());
    sandbox.revoke_all().unwrap();

    // Stopping polkit makes it unreachable (not re-activated); starting it restores it.
    let polkitd = sandbox
        .polkit_pid()
        .expect("polkitd runs after the pkchecks");
    sandbox.stop_polkit().unwrap();
    assert_eq!(sandbox.polkit_pid(), None);
    assert!(sandbox.pkcheck_as_test_user(UPGRADE).is_err());
    assert_eq!(
        sandbox.polkit_pid(),
        None,
        "polkitd must not be re-activated"
    );
    sandbox.start_polkit().unwrap();
    let polkitd2 = sandbox
        .polkit_pid()
        .expect("polkitd runs after start_polkit");
    assert_ne!(polkitd, polkitd2);
    sandbox.grant(&[UPGRADE]).unwrap();
    assert_eq!(
        sandbox.pkcheck_as_test_user(UPGRADE).unwrap(),
        PolkitAnswer::Authorized
    );

    // The OSTree fixture: 1.1 (default) and 1.0 deployed, not booted; remote at 2.0.
    let status = sandbox.admin_status().unwrap();
    let deployments = parse_admin_status(&status);
    assert_eq!(versions(&deployments), ["1.1", "1.0"], "{status}");
    for d in &deployments {
        assert_eq!(d.osname, "testos");
        assert!(!d.booted, "{status}");
        assert_eq!(d.refspec.as_deref(), Some("origin:testos/stable"));
    }
    assert_eq!(
        sandbox.booted_deployment_dir(),
        sandbox
            .sysroot()
            .join("ostree/deploy/testos/deploy")
            .join(deployments[0].dir_name())
    );
    let entries = sandbox.boot_entries().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    for (entry, version) in entries.iter().zip(["1.0", "1.1"]) {
        assert!(
            entry.contains(&format!("title TestOS {version}")),
            "{entry}"
        );
        assert!(entry.contains("root=LABEL=testroot rw quiet"), "{entry}");
    }
    let head = |branch: &str| {
        sandbox
            .ostree_remote(&["rev-parse", branch])
            .unwrap()
            .trim()
            .to_owned()
    };
    let remote_version = |branch: &str| {
        let show = sandbox.ostree_remote(&["show", branch]).unwrap();
        show.lines()
            .find_map(|l| l.trim().strip_prefix("Version: ").map(str::to_owned))
            .unwrap_or_default()
    };
    assert_eq!(remote_version(STABLE_BRANCH), "2.0");
    assert_eq!(remote_version(DEVEL_BRANCH), "10.0");
    let before = head(STABLE_BRANCH);
    let new = sandbox.commit(STABLE_BRANCH, "2.1").unwrap();
    assert_ne!(new, before);
    assert_eq!(head(STABLE_BRANCH), new);
    assert_eq!(remote_version(STABLE_BRANCH), "2.1");
    // The sysroot can pull it from the file:// remote.
    sandbox.ostree(&["pull", "origin", STABLE_BRANCH]).unwrap();
    assert_eq!(
        sandbox
            .ostree(&["rev-parse", "origin:testos/stable"])
            .unwrap()
            .trim(),
        new
    );
    // Package data: the compose metadata on stable, an rpmdb in every tree, and the
    // rpm-md repository with its updateinfo.
    let pkglist = sandbox
        .ostree_remote(&[
            "show",
            "--print-metadata-key=rpmostree.rpmdb.pkglist",
            STABLE_BRANCH,
        ])
        .unwrap();
    for spec in rpmostree_tests::fixture_packages("2.1") {
        assert!(
            pkglist.contains(&format!(
                "('{}', '{}', '{}'",
                spec.name, spec.epoch, spec.version
            )),
            "{} missing from {pkglist}",
            spec.name
        );
    }
    assert!(!pkglist.contains("oldtool"), "{pkglist}");
    let devel_meta = sandbox
        .ostree_remote(&[
            "show",
            "--print-metadata-key=rpmostree.rpmdb.pkglist",
            DEVEL_BRANCH,
        ])
        .unwrap_err();
    assert!(
        devel_meta.message().contains("No such metadata key"),
        "{devel_meta}"
    );
    let checkout = sandbox.dir().join("checkout-devel");
    std::fs::create_dir_all(checkout.join("usr/share")).unwrap();
    sandbox
        .ostree_remote(&[
            "checkout",
            "--subpath=/usr/share/rpm",
            DEVEL_BRANCH,
            checkout.join("usr/share/rpm").to_str().unwrap(),
        ])
        .unwrap();
    let out = std::process::Command::new("rpm")
        .arg("--root")
        .arg(&checkout)
        .args([
            "--dbpath",
            "/usr/share/rpm",
            "-qa",
            "--qf",
            "%{NAME}-%{VERSION}\n",
        ])
        .output()
        .unwrap();
    let mut qa: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    qa.sort();
    assert_eq!(
        qa,
        [
            "base-files-1.0",
            "libfoo-2.0",
            "newtool-1.0",
            "testos-release-10.0"
        ],
        "{out:?}"
    );
    let repodata = std::fs::read_dir(sandbox.rpmmd_repo().join("repodata"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(
        repodata.iter().any(|f| f.ends_with("updateinfo.xml.gz")),
        "{repodata:?}"
    );
    let err = sandbox.ostree(&["rev-parse", "no-such-ref"]).unwrap_err();
    assert!(err.message().contains("no-such-ref"), "{err}");

    // Teardown leaves nothing behind.
    let pids: Vec<u32> = [sandbox.bus_pid(), sandbox.polkit_pid()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(pids.len(), 2);
    let t1 = Instant::now();
    drop(sandbox);
    eprintln!(
        "teardown in {:?}; whole test {:?}",
        t1.elapsed(),
        t0.elapsed()
    );
    assert_gone(&dir, &pids);
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn fake_booted_sandbox() {
    skip_unless_root!("fake_booted_sandbox");
    let t0 = Instant::now();
    let probe = write_probe("booted");
    let sandbox = Sandbox::start(SandboxOptions {
        fake_booted: true,
        daemon_bin: Some(probe.clone()),
        idle_exit_timeout: Some(5),
        extra_config: Some("AutomaticUpdatePolicy=check".into()),
        daemon_env: vec![("RPMOSTREE_TEST_MARK".into(), "it's here".into())],
        ..Default::default()
    })
    .unwrap();
    std::fs::remove_file(&probe).unwrap();
    let dir = sandbox.dir().to_path_buf();

    // Inside the fake boot, deployment 0 is the booted one and 1 the rollback.
    let status = sandbox
        .run_fake_booted(&["ostree", "admin", "status"])
        .unwrap();
    let deployments = parse_admin_status(&status);
    assert_eq!(versions(&deployments), ["1.1", "1.0"], "{status}");
    assert!(deployments[0].booted, "{status}");
    assert!(!deployments[1].booted, "{status}");
    assert!(deployments[1].has_marker("rollback"), "{status}");
    assert!(
        status.lines().next().unwrap().starts_with("* testos "),
        "{status}"
    );
    // The chroot has the physical sysroot at /sysroot and the marker file in /run.
    let mounts = sandbox
        .run_fake_booted(&["cat", "/run/ostree-booted", "/proc/self/mountinfo"])
        .unwrap();
    assert!(mounts.contains(" /sysroot "), "{mounts}");
    // The host view is unchanged: nothing booted.
    let host = sandbox.admin_deployments().unwrap();
    assert!(host.iter().all(|d| !d.booted));
    // With a PID namespace the ostree CLI can write to the booted sysroot too.
    sandbox
        .run_fake_booted_pid_ns(&[
            "ostree",
            "admin",
            "kargs",
            "edit-in-place",
            "--append-if-missing=harness.test=1",
        ])
        .unwrap();
    assert!(
        sandbox
            .boot_entries()
            .unwrap()
            .iter()
            .all(|e| e.contains("harness.test=1"))
    );
    // Nothing mounted in the host namespace.
    assert_eq!(rpmostree_tests::mounts_under(&dir), Vec::<String>::new());

    // Activation runs the wrapper, which starts the binary inside the fake boot.
    let started = sandbox.start_daemon();
    assert!(
        started.is_err(),
        "the probe never takes the name: {started:?}"
    );
    let log = sandbox.daemon_log();
    let expect_args = format!(
        "probe-args: --sysroot / --config {}",
        sandbox.config_path().display()
    );
    assert!(log.contains(&expect_args), "{log}");
    assert!(log.contains("probe-booted: yes"), "{log}");
    assert!(
        log.contains("probe-ostree-debug: mutable-deployments"),
        "{log}"
    );
    let config = std::fs::read_to_string(sandbox.config_path()).unwrap();
    assert_eq!(
        config,
        "# Written by the rpm-ostree test harness.\n[Daemon]\nIdleExitTimeout=5\nAutomaticUpdatePolicy=check\n"
    );
    let wrapper = std::fs::read_to_string(dir.join("bin/rpm-ostreed-wrapper")).unwrap();
    assert!(
        wrapper.contains(r"export RPMOSTREE_TEST_MARK='it'\''s here'"),
        "{wrapper}"
    );

    let pids: Vec<u32> = sandbox.bus_pid().into_iter().collect();
    drop(sandbox);
    assert_gone(&dir, &pids);
    eprintln!("fake-booted smoke test: {:?}", t0.elapsed());
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn missing_daemon_binary_is_a_clear_error() {
    skip_unless_root!("missing_daemon_binary_is_a_clear_error");
    let err = Sandbox::start(SandboxOptions {
        daemon_bin: Some(PathBuf::from("/nonexistent/rpm-ostreed")),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.message().contains("/nonexistent/rpm-ostreed"), "{err}");
    assert!(
        err.message().contains("cargo build -p rpm-ostreed"),
        "{err}"
    );
}
