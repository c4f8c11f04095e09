//! Fleets on a real etcd: a 3-member cluster of Debian's etcd on loopback, two replicas of the
//! `rpm-ostree-fleetlock` server in front of it, and simulated nodes running the node-side
//! client code in-process. The safety property (never more holders than slots) is checked from
//! etcd's own history of the semaphore key (every revision, read back with a watch from the
//! first), not from what the servers say. Faults: the etcd leader killed mid-run, a server
//! replica killed mid-run, quorum lost. No root needed; etcd must be installed (`.ci/run` does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fleetlock::client::{Backoff, Client, Outcome};
use fleetlock::semaphore::{self, Value};
use rpmostree_tests::etcd::{EtcdCluster, FleetLockServer};

mod daemons; // three real daemons in fake-booted sandboxes taking turns through the server

/// A fresh directory for one test's cluster and servers (on disk: etcd preallocates its WAL).
fn test_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rpmostree-fleet-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Removed(std::path::PathBuf);
impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn server_bin() -> std::path::PathBuf {
    let bin = rpmostree_tests::target_bin("rpm-ostree-fleetlock");
    assert!(
        bin.is_file(),
        "no server binary at {}: build it with `cargo build -p rpmostree-fleetlock`",
        bin.display()
    );
    bin
}

/// A cluster of `members` and one server for `groups` (plus `extra` lines in `[lock]`).
fn cluster_and_server(
    dir: &std::path::Path,
    members: usize,
    groups: &[(&str, u64)],
    extra: &str,
) -> (EtcdCluster, FleetLockServer) {
    let cluster = EtcdCluster::start(&dir.join("etcd"), members).unwrap();
    let server = FleetLockServer::start(
        &server_bin(),
        &dir.join("s0"),
        &cluster.endpoints(),
        groups,
        extra,
    )
    .unwrap();
    (cluster, server)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Every value the semaphore key of `group` ever had, from etcd's history.
async fn history(endpoints: &[String], group: &str) -> Vec<Value> {
    let mut client = etcd_client::Client::connect(endpoints, None).await.unwrap();
    let key = semaphore::key(group);
    let current = client.get(key.clone(), None).await.unwrap();
    let last = current
        .kvs()
        .first()
        .map(|kv| kv.mod_revision())
        .unwrap_or(0);
    let mut values = Vec::new();
    if last == 0 {
        return values;
    }
    let mut stream = client
        .watch(
            key,
            Some(etcd_client::WatchOptions::new().with_start_revision(1)),
        )
        .await
        .unwrap();
    'outer: while let Some(resp) = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("the history arrives")
        .unwrap()
    {
        for ev in resp.events() {
            if let Some(kv) = ev.kv() {
                if !kv.value().is_empty() {
                    values.push(serde_json::from_slice(kv.value()).unwrap());
                }
                if kv.mod_revision() >= last {
                    break 'outer;
                }
            }
        }
    }
    values
}

fn assert_safe(history: &[Value], slots: u64) {
    assert!(!history.is_empty(), "the key has a history");
    for (i, v) in history.iter().enumerate() {
        assert_eq!(v.total_slots, slots, "revision {i}: {v:?}");
        assert!(
            v.holders.len() as u64 <= v.total_slots,
            "revision {i} has more holders than slots: {v:?}"
        );
        let mut sorted = v.holders.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), v.holders.len(), "a holder twice: {v:?}");
    }
}

/// One node's cycle: pre-reboot until granted, a "reboot", steady-state until granted.
async fn node_cycle(client: &Client, hold: Duration) {
    let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(400));
    loop {
        match client.pre_reboot().await {
            Ok(Outcome::Granted) => break,
            Ok(Outcome::NotNow { .. }) | Err(_) => {
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    tokio::time::sleep(hold).await;
    backoff.reset();
    loop {
        match client.steady_state().await {
            Ok(Outcome::Granted) => break,
            Ok(Outcome::NotNow { .. }) | Err(_) => {
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

#[test]
fn thirty_nodes_share_three_slots_through_leader_and_replica_failures() {
    const NODES: usize = 30;
    const ROUNDS: usize = 3;
    let dir = test_dir("thirty");
    let _removed = Removed(dir.clone());
    let mut cluster = EtcdCluster::start(&dir.join("etcd"), 3).unwrap();
    let endpoints = cluster.endpoints();
    let bin = server_bin();
    let mut servers = [
        FleetLockServer::start(&bin, &dir.join("s0"), &endpoints, &[("workers", 3)], "").unwrap(),
        FleetLockServer::start(&bin, &dir.join("s1"), &endpoints, &[("workers", 3)], "").unwrap(),
    ];
    let urls: Vec<String> = servers.iter().map(FleetLockServer::url).collect();
    let rt = runtime();
    let reboots = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let nodes: Vec<_> = (0..NODES)
        .map(|i| {
            let urls = urls.clone();
            let reboots = reboots.clone();
            rt.spawn(async move {
                let client = Client::new(
                    &urls,
                    &format!("node{i:02}"),
                    "workers",
                    Duration::from_secs(5),
                )
                .unwrap();
                for round in 0..ROUNDS {
                    let hold = Duration::from_millis(5 + ((i * 7 + round * 13) % 30) as u64);
                    node_cycle(&client, hold).await;
                    reboots.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Faults while the nodes run: the etcd leader, then one server replica.
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while reboots.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "stuck at {:?} reboots", reboots);
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for(15);
    let leader = cluster.leader().expect("a leader");
    cluster.kill(leader);
    eprintln!("killed etcd leader m{leader} after {:?}", started.elapsed());
    wait_for(45);
    servers[0].kill();
    eprintln!("killed server replica 0 after {:?}", started.elapsed());
    for n in nodes {
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(180), n).await })
            .expect("every node finishes")
            .unwrap();
    }
    assert_eq!(reboots.load(Ordering::SeqCst), NODES * ROUNDS);
    eprintln!("{} reboots in {:?}", NODES * ROUNDS, started.elapsed());
    // The safety property, from etcd's history.
    let live: Vec<String> = endpoints
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, e)| e.clone())
        .collect();
    let history = rt.block_on(history(&live, "workers"));
    assert_safe(&history, 3);
    // Every grant and every release is a revision: 2 per reboot at least (a node whose lost
    // request was applied may add a recursive no-op, never a write).
    assert!(
        history.len() > NODES * ROUNDS,
        "{} revisions for {} reboots",
        history.len(),
        NODES * ROUNDS
    );
    assert!(
        history.iter().any(|v| v.holders.len() == 3),
        "the three slots were used at once"
    );
    assert_eq!(history.last().map(|v| v.holders.len()), Some(0));
}

#[test]
fn a_restarted_node_keeps_its_one_slot_and_steady_state_frees_it() {
    let dir = test_dir("restart");
    let _removed = Removed(dir.clone());
    let (cluster, server) = cluster_and_server(&dir, 3, &[("workers", 2)], "");
    let endpoints = cluster.endpoints();
    let rt = runtime();
    rt.block_on(async {
        let d = Duration::from_secs(5);
        let a = Client::new(&[server.url()], "node-a", "workers", d).unwrap();
        assert_eq!(a.pre_reboot().await.unwrap(), Outcome::Granted);
        // The node restarts mid-protocol (a new client, same id): asking again keeps one slot.
        let a2 = Client::new(&[server.url()], "node-a", "workers", d).unwrap();
        assert_eq!(a2.pre_reboot().await.unwrap(), Outcome::Granted);
        let b = Client::new(&[server.url()], "node-b", "workers", d).unwrap();
        assert_eq!(b.pre_reboot().await.unwrap(), Outcome::Granted);
        let c = Client::new(&[server.url()], "node-c", "workers", d).unwrap();
        match c.pre_reboot().await.unwrap() {
            Outcome::NotNow {
                status,
                kind,
                value,
            } => {
                assert_eq!((status, kind.as_str()), (500, "failed_lock"));
                assert_eq!(value, "all 2 semaphore slots currently locked");
            }
            o => panic!("{o:?}"),
        }
        // Steady-state of a node that holds nothing changes nothing (airlock's semantics).
        assert_eq!(c.steady_state().await.unwrap(), Outcome::Granted);
        assert_eq!(a2.steady_state().await.unwrap(), Outcome::Granted);
        assert_eq!(c.pre_reboot().await.unwrap(), Outcome::Granted);
        let history = history(&endpoints, "workers").await;
        assert_safe(&history, 2);
        let last = history.last().unwrap();
        assert_eq!(last.holders, ["node-b", "node-c"]);
    });
}

#[test]
fn without_quorum_nothing_is_granted_and_the_cluster_recovers() {
    let dir = test_dir("quorum");
    let _removed = Removed(dir.clone());
    let (mut cluster, server) = cluster_and_server(&dir, 3, &[("workers", 1)], "");
    let endpoints = cluster.endpoints();
    let rt = runtime();
    let d = Duration::from_secs(10);
    let a = Client::new(&[server.url()], "node-a", "workers", d).unwrap();
    assert_eq!(rt.block_on(a.pre_reboot()).unwrap(), Outcome::Granted);
    assert_eq!(rt.block_on(a.steady_state()).unwrap(), Outcome::Granted);
    cluster.kill(0);
    cluster.kill(1);
    let b = Client::new(&[server.url()], "node-b", "workers", d).unwrap();
    let started = Instant::now();
    match rt.block_on(b.pre_reboot()).unwrap() {
        Outcome::NotNow { status, kind, .. } => {
            assert_eq!((status, kind.as_str()), (503, "etcd_unavailable"));
        }
        o => panic!("granted without quorum: {o:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "answered within the transaction timeout, not hung: {:?}",
        started.elapsed()
    );
    cluster.restart(0).unwrap();
    cluster.restart(1).unwrap();
    cluster.wait_writable(Duration::from_secs(60)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match rt.block_on(b.pre_reboot()) {
            Ok(Outcome::Granted) => break,
            other => {
                assert!(Instant::now() < deadline, "no recovery: {other:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    let history = rt.block_on(history(&endpoints, "workers"));
    assert_safe(&history, 1);
    assert_eq!(history.last().unwrap().holders, ["node-b"]);
}

#[test]
fn the_server_speaks_airlocks_protocol_and_admin_commands() {
    let dir = test_dir("protocol");
    let _removed = Removed(dir.clone());
    let (cluster, server) = cluster_and_server(&dir, 1, &[("workers", 3)], "");
    let bin = server_bin();
    let rt = runtime();
    let post = |path: &str, header: bool, body: &str| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"]);
        if header {
            cmd.args(["-H", "fleet-lock-protocol: true"]);
        }
        cmd.args(["--data", body, &format!("{}{path}", server.url())]);
        let out = cmd.output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_owned(), body.to_owned())
    };
    let body =
        |id: &str, group: &str| format!(r#"{{"client_params":{{"id":"{id}","group":"{group}"}}}}"#);
    let (code, text) = post("v1/pre-reboot", false, &body("n1", "workers"));
    assert_eq!(code, "400", "{text}");
    assert!(text.contains("invalid_client_identity"), "{text}");
    let (code, text) = post("v1/pre-reboot", true, &body("n1", "nope"));
    assert_eq!(
        (code.as_str(), text.contains("unknown_group")),
        ("400", true),
        "{text}"
    );
    let (code, text) = post("v1/pre-reboot", true, "{not json");
    assert_eq!(code, "400", "{text}");
    let (code, _) = post("v1/pre-reboot", true, &body("n1", "workers"));
    assert_eq!(code, "200");
    let (code, _) = post("v1/pre-reboot", true, &body("n2", "workers"));
    assert_eq!(code, "200");
    // The metrics and the admin commands see the holders.
    let metrics = std::process::Command::new("curl")
        .args(["-s", &format!("http://{}/metrics", server.status_address())])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        metrics.contains("airlock_database_semaphore_lock_holders{group=\"workers\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("airlock_database_semaphore_slots{group=\"workers\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fleetlock_requests_total{endpoint=\"pre-reboot\",code=\"200\"} 2"),
        "{metrics}"
    );
    let admin = |args: &[&str]| {
        let out = std::process::Command::new(&bin)
            .args(args)
            .arg("-c")
            .arg(server.config())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = admin(&["slots"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("workers: 2/3 slots held: n1 n2"), "{out}");
    let (code, out, _) = admin(&["release", "--group", "workers", "n1"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, _, err) = admin(&["release", "--group", "workers", "n1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("n1 holds no slot in group workers"), "{err}");
    let history = rt.block_on(history(&cluster.endpoints(), "workers"));
    assert_eq!(history.last().unwrap().holders, ["n2"]);
}

#[test]
fn a_holder_past_max_hold_is_released() {
    let dir = test_dir("maxhold");
    let _removed = Removed(dir.clone());
    let (cluster, server) = cluster_and_server(&dir, 1, &[("workers", 1)], "max_hold_secs = 1");
    let rt = runtime();
    rt.block_on(async {
        let d = Duration::from_secs(5);
        let dead = Client::new(&[server.url()], "dead-node", "workers", d).unwrap();
        let next = Client::new(&[server.url()], "next-node", "workers", d).unwrap();
        assert_eq!(dead.pre_reboot().await.unwrap(), Outcome::Granted);
        assert!(matches!(
            next.pre_reboot().await.unwrap(),
            Outcome::NotNow { .. }
        ));
        // dead-node never reports steady state; after max_hold its slot goes to the next node.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(next.pre_reboot().await.unwrap(), Outcome::Granted);
        let history = history(&cluster.endpoints(), "workers").await;
        assert_safe(&history, 1);
        assert_eq!(history.last().unwrap().holders, ["next-node"]);
    });
}
