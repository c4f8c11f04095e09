//! The full flow with real daemons: three fake-booted sandboxes, each with its own rpm-ostreed
//! configured with `AutomaticUpdatePolicy=apply` and `[Fleet] Strategy=fleetlock`, a logind
//! stand-in recording reboots, one FleetLock server on a 3-member etcd, one slot. Each
//! automatic update is staged locked; the nodes take turns: slot -> unlock -> reboot (recorded)
//! -> the daemon restarts as after a boot -> steady state frees the slot -> the next node.

use std::time::{Duration, Instant};

use rpmostree_api::{AutomaticUpdateTriggerOptions, OSProxy};
use rpmostree_tests::{RebootServices, Sandbox, SandboxOptions, StandInOptions};

use crate::*;

fn reboots(logind: &RebootServices) -> usize {
    logind
        .calls()
        .iter()
        .filter(|c| c.method == "Reboot")
        .count()
}

fn fleet_state(sb: &Sandbox) -> String {
    std::fs::read_to_string(sb.dir().join("run/rpm-ostree/fleet-lock")).unwrap_or_default()
}

/// A fake-booted sandbox whose daemon applies automatic updates through FleetLock at `url`
/// as `node`, with a logind stand-in recording reboots.
fn fleet_node(url: &str, node: &str) -> (Sandbox, RebootServices) {
    let sb = Sandbox::start(SandboxOptions {
        fake_booted: true,
        extra_config: Some(format!(
            "AutomaticUpdatePolicy=apply\n[Fleet]\nStrategy=fleetlock\nURL={url}\nGroup=workers\nNodeId={node}\nMaxRetryIntervalSecs=1\n"
        )),
        ..Default::default()
    })
    .unwrap();
    let logind = RebootServices::start(
        sb.bus_address(),
        StandInOptions {
            logind: true,
            ..Default::default()
        },
    )
    .unwrap();
    (sb, logind)
}

/// Runs the automatic update of `sb` (as rpm-ostreed-automatic.timer would start it) to its end.
fn trigger_automatic_update(rt: &tokio::runtime::Runtime, sb: &Sandbox) {
    rt.block_on(async {
        let bus = zbus::connection::Builder::address(sb.bus_address())
            .build()
            .await
            .unwrap();
        let os = OSProxy::builder(&bus)
            .path("/org/projectatomic/rpmostree1/testos")
            .build()
            .await
            .unwrap();
        let (enabled, txn) = os
            .automatic_update_trigger_transaction(
                &AutomaticUpdateTriggerOptions::new().mode("auto"),
            )
            .await
            .unwrap();
        assert!(enabled);
        txn.expect("a transaction").run(|_| {}).await.unwrap();
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn three_daemons_take_turns_rebooting_through_fleetlock() {
    if !rpmostree_tests::root_or_skip("three_daemons_take_turns_rebooting_through_fleetlock") {
        return;
    }
    let dir = test_dir("daemons");
    let _removed = Removed(dir.clone());
    let (cluster, server) = cluster_and_server(&dir, 3, &[("workers", 1)], "");
    let endpoints = cluster.endpoints();
    let nodes: Vec<(Sandbox, RebootServices)> = (0..3)
        .map(|i| fleet_node(&server.url(), &format!("node{i}")))
        .collect();
    let rt = runtime();
    // The automatic update of every node (as rpm-ostreed-automatic.timer would start it).
    for (sb, _) in &nodes {
        trigger_automatic_update(&rt, sb);
        assert!(
            sb.dir().join("run/ostree/staged-deployment").exists(),
            "staged"
        );
    }
    let cli = nodes[0]
        .0
        .install_binary(&rpmostree_tests::target_bin("rpm-ostree"))
        .unwrap();
    let mut rebooted = [false; 3];
    for turn in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(90);
        let total = |nodes: &[(Sandbox, RebootServices)]| {
            nodes.iter().map(|(_, l)| reboots(l)).sum::<usize>()
        };
        while total(&nodes) < turn + 1 {
            assert!(Instant::now() < deadline, "turn {turn}: no node rebooted");
            std::thread::sleep(Duration::from_millis(100));
        }
        // One slot: while it is held nobody else reboots.
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(total(&nodes), turn + 1, "turn {turn}: more than one reboot");
        let who = (0..3)
            .find(|i| !rebooted[*i] && reboots(&nodes[*i].1) == 1)
            .expect("the node that rebooted");
        rebooted[who] = true;
        let (sb, _) = &nodes[who];
        assert!(
            !sb.dir()
                .join("run/ostree/staged-deployment-locked")
                .exists(),
            "the slot holder's staged deployment was unlocked"
        );
        assert!(
            fleet_state(sb).contains("phase=rebooting"),
            "{}",
            fleet_state(sb)
        );
        // The others wait, and say why.
        for (i, (other, _)) in nodes.iter().enumerate().filter(|(i, _)| !rebooted[*i]) {
            let state = fleet_state(other);
            assert!(state.contains("phase=waiting-for-slot"), "node{i}: {state}");
            assert!(
                state.contains("last-error-kind=failed_lock"),
                "node{i}: {state}"
            );
            assert!(
                other
                    .dir()
                    .join("run/ostree/staged-deployment-locked")
                    .exists(),
                "node{i} stays locked"
            );
            if turn == 0 && i == (0..3).find(|j| !rebooted[*j]).unwrap_or(0) {
                let status = other
                    .run_fake_booted(&[cli.to_str().unwrap(), "status"])
                    .unwrap_or_else(|e| e.to_string());
                assert!(
                    status.contains(
                        "FleetLockState: waiting for a reboot slot; last answer: failed_lock"
                    ),
                    "{status}"
                );
            }
        }
        // The reboot: the daemon goes away and starts again in the new boot, which reports
        // steady state and frees the slot.
        sb.kill_daemon(9).unwrap();
        sb.wait_daemon_gone(Duration::from_secs(30)).unwrap();
        sb.start_daemon().unwrap();
    }
    assert_eq!(rebooted, [true; 3]);
    // The last node's steady state empties the semaphore; at no revision was it over-full.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = rt.block_on(history(&endpoints, "workers"));
        if h.last().is_some_and(|v| v.holders.is_empty()) {
            assert_safe(&h, 1);
            assert!(h.len() >= 6, "3 grants and 3 releases: {h:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the last slot was not freed: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (sb, _) in &nodes {
        let state = fleet_state(sb);
        assert!(state.contains("phase=idle"), "{state}");
    }
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_daemon_killed_while_waiting_for_a_slot_resumes_the_wait() {
    if !rpmostree_tests::root_or_skip("a_daemon_killed_while_waiting_for_a_slot_resumes_the_wait") {
        return;
    }
    let dir = test_dir("resume");
    let _removed = Removed(dir.clone());
    let (_cluster, server) = cluster_and_server(&dir, 1, &[("workers", 1)], "");
    let (sb, logind) = fleet_node(&server.url(), "node0");
    let rt = runtime();
    // Another host holds the only slot.
    let other = fleetlock::client::Client::new(
        &[server.url()],
        "other-host",
        "workers",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(
        rt.block_on(other.pre_reboot()).unwrap(),
        fleetlock::client::Outcome::Granted
    );
    trigger_automatic_update(&rt, &sb);
    let wait_phase = |phase: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !fleet_state(&sb).contains(&format!("phase={phase}")) {
            assert!(
                Instant::now() < deadline,
                "never {phase}: {}",
                fleet_state(&sb)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_phase("waiting-for-slot");
    // Killed in the middle of the wait, then started again (by activation).
    sb.kill_daemon(9).unwrap();
    sb.wait_daemon_gone(Duration::from_secs(30)).unwrap();
    let before = fleet_state(&sb);
    std::thread::sleep(Duration::from_millis(1100));
    sb.start_daemon().unwrap();
    // The new daemon reports steady state, then takes up the wait (its own writes).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = fleet_state(&sb);
        if now != before && now.contains("phase=waiting-for-slot") {
            break;
        }
        assert!(Instant::now() < deadline, "the wait was not resumed: {now}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(reboots(&logind), 0, "no reboot while the slot is taken");
    // The other host is done: this one gets the slot and reboots.
    assert_eq!(
        rt.block_on(other.steady_state()).unwrap(),
        fleetlock::client::Outcome::Granted
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while reboots(&logind) == 0 {
        assert!(Instant::now() < deadline, "no reboot: {}", fleet_state(&sb));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !sb.dir()
            .join("run/ostree/staged-deployment-locked")
            .exists()
    );
}
