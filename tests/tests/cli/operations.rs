//! The mutating commands the daemon implements today, through the real CLI: rollback,
//! cleanup (and its usage error), kargs (printing), cancel, the busy error and `--wait`, and
//! a refused polkit action for a non-root user. Each is checked against `ostree admin status`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use rpmostree_api::{OSProxy, RollbackOptions, TransactionClient};
use rpmostree_tests::SandboxOptions;

use crate::common::*;

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn rollback_swaps_the_boot_order() {
    let Some(sb) = sandbox("rollback_swaps_the_boot_order", SandboxOptions::default()) else {
        return;
    };
    assert_eq!(admin_versions(&sb), ["1.1", "1.0"]);
    let out = cli_ok(&sb, &["rollback"]);
    assert!(out.contains(QUEUED), "{out}");
    assert_eq!(admin_versions(&sb), ["1.0", "1.1"]);
    let entries = sb.boot_entries().expect("boot entries");
    assert!(
        entries.iter().any(|e| e.contains("TestOS 1.0")),
        "{entries:?}"
    );
    // The CLI's own view agrees.
    let json = status_json(&sb);
    assert_eq!(json["deployments"][0]["version"], "1.0");
    let human = cli_ok(&sb, &["status"]);
    let first_version = human
        .lines()
        .find(|l| l.trim_start().starts_with("Version:"))
        .unwrap_or_default();
    assert!(first_version.contains("Version: 1.0 ("), "{human}");
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn cleanup_needs_a_flag_and_cleanup_r_removes_the_rollback() {
    let Some(sb) = sandbox(
        "cleanup_needs_a_flag_and_cleanup_r_removes_the_rollback",
        SandboxOptions::default(),
    ) else {
        return;
    };
    let before = sb.admin_status().expect("admin status");
    let out = cli(&sb, &["cleanup"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stdout.is_empty(), "{}", out.describe());
    for word in ["--base", "--pending", "--rollback", "--repomd"] {
        assert!(out.stderr.contains(word), "{}", out.describe());
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    assert_eq!(
        sb.admin_status().expect("admin status"),
        before,
        "nothing changed"
    );

    cli_ok(&sb, &["cleanup", "-r"]);
    assert_eq!(admin_versions(&sb), ["1.1"]);
    assert_eq!(sb.boot_entries().expect("boot entries").len(), 1);
    // Nothing pending either: -p is a no-op that succeeds.
    cli_ok(&sb, &["cleanup", "-p"]);
    assert_eq!(admin_versions(&sb), ["1.1"]);
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn kargs_prints_the_current_arguments() {
    let Some(sb) = sandbox(
        "kargs_prints_the_current_arguments",
        SandboxOptions::default(),
    ) else {
        return;
    };
    let out = cli_ok(&sb, &["kargs"]);
    let line = out.trim_end();
    assert_eq!(out.lines().count(), 1, "{out}");
    for karg in rpmostree_tests::FIXTURE_KARGS {
        assert!(
            line.split(' ').any(|k| k == karg),
            "{karg} missing in {line}"
        );
    }
    assert!(line.contains("root=LABEL=testroot"), "{line}");
    let out = cli(&sb, &["kargs", "--reboot"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stderr.contains("Cannot reboot"), "{}", out.describe());
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn cancel_without_a_transaction() {
    let Some(sb) = sandbox("cancel_without_a_transaction", SandboxOptions::default()) else {
        return;
    };
    let out = cli_ok(&sb, &["cancel"]);
    assert_eq!(out, "No active transaction.\n");
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn busy_error_names_the_transaction_and_wait_waits_for_it() {
    let Some(sb) = sandbox(
        "busy_error_names_the_transaction_and_wait_waits_for_it",
        SandboxOptions::default(),
    ) else {
        return;
    };
    block_on(Duration::from_secs(150), async {
        let bus = zbus::connection::Builder::address(sb.bus_address())
            .build()
            .await
            .expect("connecting to the sandbox bus");
        let os = OSProxy::builder(&bus)
            .path(OS_PATH)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .expect("the OS proxy");
        // A rollback that nobody has started yet holds the daemon's one slot.
        let address = os
            .rollback(&RollbackOptions::new())
            .await
            .expect("Rollback");

        let out = cli(&sb, &["cleanup", "-b"]);
        assert_eq!(out.code, Some(1), "{}", out.describe());
        assert!(
            out.stderr.contains("Transaction in progress: rollback"),
            "{}",
            out.describe()
        );
        // Only the title: another user's bus name and uid are not shown.
        assert!(
            !out.stderr.contains("started by") && !out.stderr.contains("uid"),
            "{}",
            out.describe()
        );
        assert!(
            out.stderr.contains("rpm-ostree cancel"),
            "{}",
            out.describe()
        );
        assert!(out.stderr.contains("--wait"), "{}", out.describe());
        assert!(
            !out.stderr.contains("Busy("),
            "no debug output: {}",
            out.describe()
        );
        let status = cli_ok(&sb, &["status"]);
        assert!(status.starts_with("State: busy\n"), "{status}");
        assert!(status.contains("Transaction: rollback"), "{status}");

        // With --wait the CLI waits for the rollback, then does its cleanup.
        let mut cmd = sb.command(cli_bin().to_str().expect("utf-8"));
        cmd.args(["--wait", "cleanup", "-b"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning rpm-ostree --wait");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "rpm-ostree --wait must still be waiting"
        );
        let mut txn = TransactionClient::connect(&address)
            .await
            .expect("connecting to the rollback");
        txn.run(|_| {}).await.expect("the rollback succeeds");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "rpm-ostree --wait did not finish after the rollback"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let output = child.wait_with_output().expect("output");
        assert!(
            status.success(),
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("Waiting for the active transaction"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
    assert_eq!(admin_versions(&sb), ["1.0", "1.1"], "the rollback happened");
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn non_root_rollback_without_a_grant_names_the_polkit_action() {
    let Some(sb) = sandbox(
        "non_root_rollback_without_a_grant_names_the_polkit_action",
        SandboxOptions::default(),
    ) else {
        return;
    };
    let before = sb.admin_status().expect("admin status");
    let out = cli_as_test_user(&sb, &["rollback"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("org.projectatomic.rpmostree1.rollback"),
        "{}",
        out.describe()
    );
    assert!(out.stderr.contains("root"), "{}", out.describe());
    assert!(out.stderr.starts_with("error: "), "{}", out.describe());
    assert_eq!(sb.admin_status().expect("admin status"), before);

    // Granted, the same command works.
    sb.grant(&["org.projectatomic.rpmostree1.rollback"])
        .expect("granting rollback");
    let out = cli_as_test_user(&sb, &["rollback"]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert_eq!(admin_versions(&sb), ["1.0", "1.1"]);
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn ctrl_c_cancels_the_transaction_and_fails_with_the_daemon_message() {
    let Some(sb) = sandbox(
        "ctrl_c_cancels_the_transaction_and_fails_with_the_daemon_message",
        SandboxOptions {
            daemon_env: vec![("RPMOSTREED_TEST_TXN_DELAY_MS".into(), "20000".into())],
            ..Default::default()
        },
    ) else {
        return;
    };
    let before = sb.admin_status().expect("admin status");
    let mut cmd = sb.command(cli_bin().to_str().expect("utf-8"));
    cmd.arg("rollback")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning rpm-ostree rollback");
    let start = Instant::now();
    while !sb.daemon_log().contains("transaction rollback started") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the rollback did not start\n{}",
            sb.daemon_log()
        );
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the CLI exited early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the CLI did not finish after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("Caught SIGINT, cancelling transaction"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("cancelled"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        sb.admin_status().expect("admin status"),
        before,
        "nothing changed"
    );
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn cancel_stops_a_running_transaction() {
    let Some(sb) = sandbox(
        "cancel_stops_a_running_transaction",
        SandboxOptions {
            daemon_env: vec![("RPMOSTREED_TEST_TXN_DELAY_MS".into(), "20000".into())],
            ..Default::default()
        },
    ) else {
        return;
    };
    let before = sb.admin_status().expect("admin status");
    let mut cmd = sb.command(cli_bin().to_str().expect("utf-8"));
    cmd.arg("rollback")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning rpm-ostree rollback");
    let start = Instant::now();
    while !sb.daemon_log().contains("transaction rollback started") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the rollback did not start\n{}",
            sb.daemon_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = cli_ok(&sb, &["cancel"]);
    assert_eq!(out, "Cancelling transaction: rollback\nCancelled.\n");
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the cancelled rollback's CLI did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");
    assert_eq!(
        sb.admin_status().expect("admin status"),
        before,
        "nothing changed"
    );
    assert_eq!(cli_ok(&sb, &["cancel"]), "No active transaction.\n");
}
