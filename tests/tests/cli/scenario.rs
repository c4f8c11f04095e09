//! The end-to-end scenario of the CLI on a fake-booted system, every step checked against
//! `ostree admin status` and the boot entries on disk:
//!
//! status -> upgrade (to a new commit on the local remote, staged and locked) -> status shows
//! it pending -> finalize-deployment -> (simulated shutdown) -> rollback -> kargs --append ->
//! cleanup -> rebase to origin:testos/devel.
//!
//! Steps marked NEEDS-DAEMON use methods that rpm-ostreed does not implement yet; until it
//! does, they make this test FAIL (with the daemon's NotSupported message), never skip.

use rpmostree_tests::{AdminDeployment, DEVEL_BRANCH, STABLE_BRANCH, Sandbox, SandboxOptions};
use serde_json::Value;

use crate::common::*;

/// Runs a step; on failure the message names the step and the daemon method it needs.
#[track_caller]
fn step(sb: &Sandbox, what: &str, args: &[&str]) -> String {
    let out = cli(sb, args);
    // Captured by the test runner; shown when the test fails.
    eprintln!(
        "$ rpm-ostree {}\n{}{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    assert_eq!(
        out.code,
        Some(0),
        "scenario step `{what}` (rpm-ostree {}) failed{}\n{}\ndaemon log:\n{}",
        args.join(" "),
        if out.stderr.contains("not supported") {
            " because the daemon does not implement the method yet"
        } else {
            ""
        },
        out.describe(),
        tail(&sb.daemon_log(), 40)
    );
    out.stdout
}

fn admin(sb: &Sandbox) -> Vec<AdminDeployment> {
    booted_admin(sb)
}

fn versions(deployments: &[AdminDeployment]) -> Vec<&str> {
    deployments
        .iter()
        .map(|d| d.version.as_deref().unwrap_or("?"))
        .collect()
}

fn booted_index(deployments: &[AdminDeployment]) -> usize {
    deployments
        .iter()
        .position(|d| d.booted)
        .expect("a booted deployment")
}

/// Simulates the shutdown that finalizes a staged deployment.
fn finalize_staged(sb: &Sandbox) {
    sb.run_fake_booted_pid_ns(&["ostree", "admin", "finalize-staged"])
        .expect("ostree admin finalize-staged");
    step(sb, "reload after finalizing", &["reload"]);
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn scenario_upgrade_rollback_kargs_cleanup_rebase() {
    let Some(sb) = sandbox(
        "scenario_upgrade_rollback_kargs_cleanup_rebase",
        SandboxOptions {
            fake_booted: true,
            ..Default::default()
        },
    ) else {
        return;
    };

    // 1. status: booted 1.1, rollback 1.0.
    let status = step(&sb, "status", &["status"]);
    assert!(status.contains("● origin:testos/stable"), "{status}");
    let deployments = admin(&sb);
    assert_eq!(versions(&deployments), ["1.1", "1.0"]);
    assert!(deployments[0].booted, "{deployments:?}");
    assert_eq!(sb.boot_entries().expect("entries").len(), 2);

    // 2. upgrade to a new commit, staged and locked. NEEDS-DAEMON: Upgrade.
    let checksum = sb.commit(STABLE_BRANCH, "3.0").expect("a new commit");
    let out = step(&sb, "upgrade", &["upgrade", "--lock-finalization"]);
    assert!(out.contains(QUEUED), "{out}");
    let deployments = admin(&sb);
    assert_eq!(
        deployments[0].version.as_deref(),
        Some("3.0"),
        "{deployments:?}"
    );
    assert_eq!(deployments[0].checksum, checksum);
    assert!(deployments[0].has_marker("staged"), "{deployments:?}");
    assert!(deployments[1].booted, "{deployments:?}");
    assert_eq!(
        sb.boot_entries().expect("entries").len(),
        2,
        "a staged deployment gets its boot entry only when finalized"
    );
    // Nothing new on the remote now: unchanged.
    let out = cli(&sb, &["upgrade", "--unchanged-exit-77"]);
    assert_eq!(out.code, Some(77), "{}", out.describe());

    // 3. status shows it pending.
    let json = status_json(&sb);
    let first = &json["deployments"][0];
    assert_eq!(first["version"], "3.0");
    assert_eq!(first["staged"], Value::Bool(true));
    assert_eq!(first["booted"], Value::Bool(false));
    assert_eq!(first["finalization-locked"], Value::Bool(true), "{first}");
    let out = cli(&sb, &["status", "--pending-exit-77"]);
    assert_eq!(out.code, Some(77), "{}", out.describe());
    let human = step(&sb, "status -v", &["status", "-v"]);
    assert!(human.contains("Staged: yes"), "{human}");

    // 4. finalize-deployment: without a reboot service it is refused and the deployment stays
    //    locked; with logind (a stand-in that records the request) it is unlocked once the
    //    reboot was accepted.
    let out = cli(&sb, &["finalize-deployment", &checksum]);
    assert_ne!(out.code, Some(0), "{}", out.describe());
    assert!(
        out.stderr.contains("nothing was changed"),
        "{}",
        out.describe()
    );
    assert_eq!(
        status_json(&sb)["deployments"][0]["finalization-locked"],
        Value::Bool(true)
    );
    let logind = rpmostree_tests::RebootServices::start(
        sb.bus_address(),
        rpmostree_tests::StandInOptions {
            logind: true,
            ..Default::default()
        },
    )
    .expect("the logind stand-in starts");
    let out = cli(&sb, &["finalize-deployment", &checksum]);
    assert_eq!(
        out.code,
        Some(0),
        "{}\ndaemon log:\n{}",
        out.describe(),
        tail(&sb.daemon_log(), 40)
    );
    assert_eq!(
        logind
            .calls()
            .iter()
            .filter(|c| c.method == "Reboot")
            .count(),
        1
    );
    drop(logind);
    let json = status_json(&sb);
    assert_eq!(
        json["deployments"][0]["finalization-locked"],
        Value::Bool(false),
        "finalize-deployment unlocked the staged deployment"
    );
    // The shutdown writes it: a boot entry for 3.0 appears; the daemon, which asked for the
    // reboot and accepts no more changes, goes down with the system.
    finalize_staged(&sb);
    sb.kill_daemon(15).expect("stopping the daemon");
    sb.wait_daemon_gone(std::time::Duration::from_secs(30))
        .expect("the daemon stops");
    let deployments = admin(&sb);
    assert_eq!(
        deployments[0].version.as_deref(),
        Some("3.0"),
        "{deployments:?}"
    );
    assert!(!deployments[0].has_marker("staged"));
    let entries = sb.boot_entries().expect("entries");
    assert!(
        entries.iter().any(|e| e.contains("TestOS 3.0")),
        "{entries:?}"
    );

    // 5. rollback: the rollback deployment (after the booted one) or, without one, the booted
    //    deployment becomes the default again.
    let before = admin(&sb);
    let booted = booted_index(&before);
    let target = before
        .get(booted + 1)
        .filter(|d| d.osname == before[booted].osname)
        .unwrap_or(&before[booted])
        .dir_name();
    let out = step(&sb, "rollback", &["rollback"]);
    assert!(out.contains(QUEUED), "{out}");
    let after = admin(&sb);
    assert_eq!(after[0].dir_name(), target, "{after:?}");

    // 6. kargs --append: a new staged deployment with the argument. NEEDS-DAEMON: KernelArgs.
    let out = step(
        &sb,
        "kargs --append",
        &["kargs", "--append=scenario.karg=1"],
    );
    assert!(out.contains("Kernel arguments updated."), "{out}");
    let kargs = step(&sb, "kargs", &["kargs"]);
    assert!(kargs.contains("scenario.karg=1"), "{kargs}");
    assert!(kargs.contains("root=LABEL=testroot"), "{kargs}");
    let deployments = admin(&sb);
    assert!(deployments[0].has_marker("staged"), "{deployments:?}");
    // Appending what is there with --append-if-missing changes nothing.
    let out = cli(
        &sb,
        &[
            "kargs",
            "--append-if-missing=scenario.karg=1",
            "--unchanged-exit-77",
        ],
    );
    assert_eq!(out.code, Some(77), "{}", out.describe());
    finalize_staged(&sb);
    let entries = sb.boot_entries().expect("entries");
    assert!(
        entries.iter().any(|e| e.contains("scenario.karg=1")),
        "{entries:?}"
    );

    // 7. cleanup of pending and rollback deployments: only the booted one is left.
    step(&sb, "cleanup -pr", &["cleanup", "-p", "-r"]);
    let deployments = admin(&sb);
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert!(deployments[0].booted);
    assert_eq!(sb.boot_entries().expect("entries").len(), 1);

    // 8. rebase to the other branch: staged, with the new refspec. NEEDS-DAEMON: Rebase.
    let refspec = format!("origin:{DEVEL_BRANCH}");
    let out = step(&sb, "rebase", &["rebase", &refspec]);
    assert!(out.contains(QUEUED), "{out}");
    let deployments = admin(&sb);
    assert_eq!(
        deployments[0].version.as_deref(),
        Some("10.0"),
        "{deployments:?}"
    );
    assert_eq!(deployments[0].refspec.as_deref(), Some(refspec.as_str()));
    assert!(deployments[0].has_marker("staged"), "{deployments:?}");
    let status = step(&sb, "status", &["status"]);
    assert!(
        status.starts_with(&format!("State: idle\nDeployments:\n  {refspec}\n")),
        "{status}"
    );
}
