//! Faults at the worst moments, bounded in count and time: SIGKILL of the daemon at spread-out
//! points of a real pull and staging of a commit big enough to take over a second, each followed
//! by `ostree fsck`, a sysroot that loads and, at the end, a transaction that succeeds; Cancel
//! during staging, ending promptly and honestly; a restart of the system bus.

use std::{
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

use rpmostree_api::{TransactionEvent, UpgradeOptions};
use rpmostree_tests::{Sandbox, SandboxOptions};

use crate::common::*;

/// Adds `files` files of 16 KiB of incompressible bytes to the fixture's work tree, so the next
/// commit takes a while to pull and to stage.
fn grow_tree(sb: &Sandbox, files: usize) {
    let dir = sb.dir().join("tree/usr/share/testos/big");
    std::fs::create_dir_all(&dir).unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 16 * 1024];
    for i in 0..files {
        for chunk in block.chunks_mut(8) {
            // xorshift64: cheap bytes that zlib cannot shrink.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let mut f = std::fs::File::create(dir.join(format!("blob-{i:05}"))).unwrap();
        f.write_all(&block).unwrap();
    }
}

/// The sysroot repository passes `ostree fsck`.
fn fsck(sb: &Sandbox, after: &str) {
    if let Err(e) = sb.ostree(&["fsck"]) {
        panic!("ostree fsck failed after {after}: {e}");
    }
}

fn staged_or_deployed(sb: &Sandbox, version: &str) -> bool {
    sb.admin_deployments()
        .unwrap()
        .iter()
        .any(|d| d.version.as_deref() == Some(version))
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn sigkill_at_spread_out_points_of_pull_and_staging_leaves_a_sound_sysroot() {
    let Some(sb) = sandbox(SandboxOptions {
        fake_booted: true,
        ..Default::default()
    }) else {
        return;
    };
    grow_tree(&sb, 4000);
    let target = sb.commit(rpmostree_tests::STABLE_BRANCH, "3.0").unwrap();
    let mut stages = Vec::new();
    // Kill points spread over the first seconds of the transaction (the pull, then staging),
    // shifted by a seed printed for reproduction.
    let seed = std::process::id() as u64 % 97;
    // At least 10 kills; more (up to 20) until some landed during the pull and some during
    // staging: every pull resumes where the last one stopped, so later kills reach staging even
    // on a slow machine.
    let points: Vec<u64> = (0..20)
        .map(|i| 50 + (i % 10) * 230 + (seed * (i + 3)) % 120)
        .collect();
    eprintln!("kill points (ms after Start): {points:?}");
    let mut outcomes = Vec::new();
    for (i, ms) in points.iter().enumerate() {
        if i >= 10 && stages.contains(&"pulling") && stages.contains(&"pulled") {
            break;
        }
        run(Duration::from_secs(60), async {
            let bus = bus(&sb).await;
            let os = os(&bus).await;
            let txn = os
                .upgrade_transaction(&UpgradeOptions::new())
                .await
                .unwrap();
            txn.proxy.start().await.unwrap();
            tokio::time::sleep(Duration::from_millis(*ms)).await;
        });
        match sb.kill_daemon(9) {
            Ok(()) => outcomes.push("killed"),
            // It was faster than the kill point: the transaction ended and the daemon may
            // have been idle; that is a valid point too.
            Err(_) => outcomes.push("already done"),
        }
        sb.wait_daemon_gone(Duration::from_secs(30)).unwrap();
        fsck(&sb, &format!("kill {i} at {ms} ms"));
        let pulled = sb
            .ostree(&["rev-parse", "origin:testos/stable"])
            .is_ok_and(|c| c.trim() == target);
        let stage = if staged_or_deployed(&sb, "3.0") {
            "staged"
        } else if pulled {
            "pulled"
        } else {
            "pulling"
        };
        eprintln!("kill {i} at {ms} ms: {stage}");
        stages.push(stage);
        // The sysroot loads, for libostree and for a new daemon.
        sb.run_fake_booted(&["ostree", "admin", "status"]).unwrap();
    }
    eprintln!("outcomes: {outcomes:?}; {stages:?}");
    // Some kills landed in the middle of the pull, some after it, while staging.
    assert!(stages.contains(&"pulling"), "{stages:?}");
    assert!(stages.contains(&"pulled"), "{stages:?}");
    assert!(
        outcomes.iter().filter(|o| **o == "killed").count() >= 5,
        "{outcomes:?}"
    );
    // The next transaction succeeds and stages 3.0 (or finds it already staged).
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;
        os.upgrade_transaction(&UpgradeOptions::new())
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
        let d = &sysroot.deployments().await.unwrap()[0];
        assert_eq!(d.version.as_deref(), Some("3.0"));
        assert_eq!(d.staged, Some(true));
    });
    fsck(&sb, "the final upgrade");
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn cancel_during_staging_ends_promptly_and_honestly() {
    let Some(sb) = sandbox(SandboxOptions {
        fake_booted: true,
        ..Default::default()
    }) else {
        return;
    };
    grow_tree(&sb, 4000);
    sb.commit(rpmostree_tests::STABLE_BRANCH, "3.0").unwrap();
    let before = sb.admin_status().unwrap();
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        let mut txn = os
            .upgrade_transaction(&UpgradeOptions::new())
            .await
            .unwrap();
        let proxy = txn.proxy.clone();
        let mut cancelled_at = None;
        let mut finished_at = None;
        let mut messages = Vec::new();
        let result = txn
            .run(|e| match e {
                TransactionEvent::TaskBegin { text } if text.contains("Staging") => {
                    cancelled_at = Some(Instant::now());
                    let proxy = proxy.clone();
                    tokio::spawn(async move { proxy.cancel().await });
                }
                TransactionEvent::Message { text } => messages.push(text.clone()),
                TransactionEvent::Finished { .. } => finished_at = Some(Instant::now()),
                _ => {}
            })
            .await;
        let cancelled_at = cancelled_at.expect("staging began");
        let took = finished_at.expect("Finished arrived") - cancelled_at;
        assert!(took < Duration::from_secs(2), "Cancel took {took:?}");
        match result {
            // Cancelled in time: nothing was staged.
            Err(e) => {
                assert!(e.message().contains("cancelled"), "{e}");
                assert!(!staged_or_deployed(&sb, "3.0"));
                assert_eq!(sb.admin_status().unwrap(), before);
            }
            // Staging finished first: the ending says the cancel was too late.
            Ok(_) => {
                assert!(
                    messages.iter().any(|m| m.contains("Too late to cancel")),
                    "{messages:?}"
                );
                assert!(staged_or_deployed(&sb, "3.0"));
            }
        }
    });
    fsck(&sb, "the cancelled staging");
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn cancel_during_a_scriptlet_kills_it_and_deploys_nothing() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    let before = sb.admin_status().unwrap();
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        let mut txn = os
            .pkg_change_transaction(
                &rpmostree_api::PkgChangeOptions::new(),
                &["endless-post"],
                &[],
            )
            .await
            .unwrap();
        let proxy = txn.proxy.clone();
        let mut cancelled_at = None;
        let mut finished_at = None;
        let result = txn
            .run(|e| match e {
                TransactionEvent::TaskBegin { text } if text.contains("scripts") => {
                    cancelled_at = Some(Instant::now());
                    let proxy = proxy.clone();
                    tokio::spawn(async move {
                        // Let the endless %post start first.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        proxy.cancel().await
                    });
                }
                TransactionEvent::Finished { .. } => finished_at = Some(Instant::now()),
                _ => {}
            })
            .await;
        let cancelled_at = cancelled_at.expect("the scriptlets began");
        let took = finished_at.expect("Finished arrived") - cancelled_at;
        assert!(took < Duration::from_secs(5), "Cancel took {took:?}");
        let err = result.expect_err("a cancelled change fails");
        assert!(err.message().contains("cancelled"), "{err}");
    });
    assert_eq!(sb.admin_status().unwrap(), before, "nothing was deployed");
    let sysroot = sb.sysroot().display().to_string();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&sysroot) && (c.contains("bwrap") || c.contains("rofiles-fuse")))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    fsck(&sb, "the cancelled scriptlet");
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_restarted_system_bus_means_a_new_daemon_that_works() {
    let Some(mut sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    let old = sb.start_daemon().unwrap();
    sb.restart_bus().unwrap();
    // The old daemon notices and exits instead of lingering unreachable.
    let gone = rpmostree_tests_wait(Duration::from_secs(20), || {
        !Path::new(&format!("/proc/{old}")).exists()
    });
    assert!(
        gone,
        "the daemon (pid {old}) exited after losing the bus\n{}",
        sb.daemon_log()
    );
    assert!(
        sb.daemon_log().contains("system bus connection was lost"),
        "{}",
        sb.daemon_log()
    );
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        assert_eq!(versions(&sysroot).await, ["1.1", "1.0"]);
        let os = os(&bus).await;
        os.rollback_transaction(&Default::default())
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
    });
    assert_eq!(admin_versions(&sb), ["1.0", "1.1"]);
}

/// Polls `check` every 50 ms for at most `timeout`.
fn rpmostree_tests_wait(timeout: Duration, check: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn cancel_during_a_throttled_http_pull_ends_promptly_and_changes_nothing() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    grow_tree(&sb, 2000);
    sb.commit(rpmostree_tests::STABLE_BRANCH, "3.0").unwrap();
    // The remote over HTTP on loopback, at 2 MiB/s per connection: the 32 MiB pull takes a
    // while.
    let server = rpmostree_tests::HttpServer::start(sb.remote_repo(), Some(2 << 20)).unwrap();
    sb.ostree(&["config", "set", "remote \"origin\".url", &server.url()])
        .unwrap();
    let before = sb.admin_status().unwrap();
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        let mut txn = os
            .upgrade_transaction(&UpgradeOptions::new())
            .await
            .unwrap();
        let proxy = txn.proxy.clone();
        let sent_at_start = server.bytes_sent();
        let running = tokio::spawn(async move {
            let result = txn.run(|_| {}).await;
            (result, Instant::now())
        });
        // Cancel once the pull is well under way: a MiB has gone out.
        wait_for(
            "the pull to be under way",
            Duration::from_secs(30),
            || async { server.bytes_sent() > sent_at_start + (1 << 20) },
        )
        .await;
        let cancelled_at = Instant::now();
        proxy.cancel().await.unwrap();
        let (result, finished_at) = running.await.unwrap();
        let took = finished_at - cancelled_at;
        assert!(took < Duration::from_secs(2), "Cancel took {took:?}");
        let err = result.unwrap_err();
        assert!(err.message().contains("cancelled"), "{err}");
    });
    assert_eq!(sb.admin_status().unwrap(), before, "nothing was deployed");
    fsck(&sb, "the cancelled pull");
    // At full speed, the same upgrade completes (what was fetched is reused).
    server.set_rate(None);
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        os.upgrade_transaction(&UpgradeOptions::new())
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
    });
    assert_eq!(admin_versions(&sb)[0], "3.0");
}
