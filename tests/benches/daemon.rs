//! Benchmarks of rpm-ostreed on the real stack (private system bus, real polkitd, OSTree
//! sysroot, the daemon by activation). Not a test: it measures, prints a Markdown table and
//! asserts nothing about time. Run it with `cargo xtask bench` (as root); results and method
//! are kept in docs/PERFORMANCE.md.
//!
//! Every figure is measured next to a reference taken in the same run on the same machine, so
//! that ratios stay meaningful on a shared, noisy machine: the bus round trip floor
//! (`org.freedesktop.DBus.GetId` through the same dbus-daemon) and `ostree admin status` on the
//! same sysroot.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use rpmostree_api::{RollbackOptions, SysrootProxy};
use rpmostree_tests::{Sandbox, SandboxOptions};
use zbus::Connection;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn connect(sb: &Sandbox) -> Connection {
    zbus::connection::Builder::address(sb.bus_address())
        .build()
        .await
        .unwrap()
}

async fn sysroot(bus: &Connection) -> SysrootProxy<'static> {
    SysrootProxy::builder(bus)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap()
}

async fn get_all(bus: &Connection) -> Duration {
    let start = Instant::now();
    bus.call_method(
        Some("org.projectatomic.rpmostree1"),
        "/org/projectatomic/rpmostree1/Sysroot",
        Some("org.freedesktop.DBus.Properties"),
        "GetAll",
        &("org.projectatomic.rpmostree1.Sysroot",),
    )
    .await
    .unwrap();
    start.elapsed()
}

async fn bus_floor(bus: &Connection) -> Duration {
    let start = Instant::now();
    bus.call_method(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        Some("org.freedesktop.DBus"),
        "GetId",
        &(),
    )
    .await
    .unwrap();
    start.elapsed()
}

/// (RSS, private anonymous memory) in KiB, from /proc/PID/smaps_rollup.
fn memory_kib(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Anonymous:"))
}

/// How long starting any program linked with libostree takes here: `ostree --version`.
fn libostree_exec_floor() -> Duration {
    let mut times = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        std::process::Command::new("ostree")
            .arg("--version")
            .output()
            .unwrap();
        times.push(start.elapsed());
    }
    percentile(&mut times, 0.5)
}

fn main() {
    if !rpmostree_tests::is_root() {
        eprintln!(
            "the daemon benchmarks need root (a private system bus, polkitd, an OSTree sysroot)"
        );
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // 1. Activation to first reply, and idle RSS.
    let sb = Sandbox::start(SandboxOptions::default()).unwrap();
    rt.block_on(async {
        let bus = connect(&sb).await;
        let mut activation = Vec::new();
        let mut floors = Vec::new();
        let mut rss = Vec::new();
        let mut anon = Vec::new();
        for _ in 0..10 {
            floors.push(bus_floor(&bus).await);
            activation.push(get_all(&bus).await);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (r, a) = memory_kib(sb.daemon_pid().unwrap());
            rss.push(r);
            anon.push(a);
            sb.kill_daemon(15).unwrap();
            sb.wait_daemon_gone(Duration::from_secs(10)).unwrap();
        }
        let act = percentile(&mut activation, 0.5);
        let floor = percentile(&mut floors, 0.5);
        let exec = libostree_exec_floor();
        rows.push((
            "activation to first reply (GetAll), median of 10".into(),
            ms(act),
            format!(
                "{:.2}× the start of `ostree --version` ({}), the floor for any libostree program here; bus round trip {}",
                act.as_secs_f64() / exec.as_secs_f64(),
                ms(exec),
                ms(floor)
            ),
        ));
        rss.sort();
        anon.sort();
        rows.push((
            "idle memory after activation, median of 10: RSS / private (anonymous)".into(),
            format!(
                "{:.1} MiB / {:.1} MiB",
                rss[rss.len() / 2] as f64 / 1024.0,
                anon[anon.len() / 2] as f64 / 1024.0
            ),
            "the rest of RSS is shared library pages (libostree, GLib, GIO and their dependencies)".into(),
        ));

        // 2. GetAll latency, idle.
        let _ = get_all(&bus).await;
        let mut idle = Vec::new();
        let mut floors = Vec::new();
        for _ in 0..300 {
            idle.push(get_all(&bus).await);
            floors.push(bus_floor(&bus).await);
        }
        let floor = percentile(&mut floors, 0.5);
        let admin_start = Instant::now();
        for _ in 0..10 {
            sb.admin_status().unwrap();
        }
        let admin = admin_start.elapsed() / 10;
        rows.push((
            "GetAll(Sysroot) idle, p50 / p99 of 300".into(),
            format!(
                "{} / {}",
                ms(percentile(&mut idle, 0.5)),
                ms(percentile(&mut idle, 0.99))
            ),
            format!(
                "p50 = {:.1}× bus round trip; `ostree admin status` takes {}",
                percentile(&mut idle, 0.5).as_secs_f64() / floor.as_secs_f64(),
                ms(admin)
            ),
        ));
    });
    drop(sb);

    // 3. GetAll while a transaction runs, and 4. Cancel to Finished.
    let sb = Sandbox::start(SandboxOptions {
        daemon_env: vec![("RPMOSTREED_TEST_TXN_DELAY_MS".into(), "60000".into())],
        ..Default::default()
    })
    .unwrap();
    rt.block_on(async {
        let bus = connect(&sb).await;
        let sysroot = sysroot(&bus).await;
        let _ = sysroot.deployments().await.unwrap();
        let os = rpmostree_api::OSProxy::new(&bus, "/org/projectatomic/rpmostree1/testos")
            .await
            .unwrap();
        let mut cancel = Vec::new();
        for round in 0..5 {
            let mut txn = os
                .rollback_transaction(&RollbackOptions::new())
                .await
                .unwrap();
            txn.proxy.start().await.unwrap();
            if round == 0 {
                let mut busy = Vec::new();
                for _ in 0..300 {
                    busy.push(get_all(&bus).await);
                }
                rows.push((
                    "GetAll(Sysroot) during a transaction, p50 / p99 of 300".into(),
                    format!(
                        "{} / {}",
                        ms(percentile(&mut busy, 0.5)),
                        ms(percentile(&mut busy, 0.99))
                    ),
                    "reads come from the daemon's snapshot, never from libostree".into(),
                ));
            }
            let start = Instant::now();
            txn.proxy.cancel().await.unwrap();
            let _ = txn.run(|_| {}).await;
            cancel.push(start.elapsed());
            while !sysroot.active_transaction_path().await.unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        rows.push((
            "Cancel() to Finished, median of 5".into(),
            ms(percentile(&mut cancel, 0.5)),
            format!("max {}", ms(percentile(&mut cancel, 1.0))),
        ));
    });
    drop(sb);

    // 5. 200 concurrent clients reading Deployments.
    let sb = Sandbox::start(SandboxOptions::default()).unwrap();
    rt.block_on(async {
        let first = connect(&sb).await;
        let _ = get_all(&first).await;
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let address = sb.bus_address().to_owned();
            tasks.push(tokio::spawn(async move {
                let bus = zbus::connection::Builder::address(address.as_str())
                    .build()
                    .await?;
                let sysroot = SysrootProxy::builder(&bus)
                    .cache_properties(zbus::proxy::CacheProperties::No)
                    .build()
                    .await?;
                let mut times = Vec::new();
                for _ in 0..5 {
                    let start = Instant::now();
                    sysroot.deployments().await?;
                    times.push(start.elapsed());
                }
                Ok::<_, zbus::Error>(times)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(times) => all.extend(times),
                Err(_) => errors += 1,
            }
        }
        rows.push((
            "200 concurrent clients × 5 reads of Deployments, p50 / p99".into(),
            format!(
                "{} / {}",
                ms(percentile(&mut all, 0.5)),
                ms(percentile(&mut all, 0.99))
            ),
            format!("{errors} client(s) failed"),
        ));
    });
    drop(sb);

    cli_benchmarks(&mut rows);

    println!("| measurement | result | reference / note |");
    println!("|---|---|---|");
    for (what, result, note) in rows {
        println!("| {what} | {result} | {note} |");
    }
}

/// Wall time of a command, with its peak RSS (KiB) when GNU time is available.
fn timed(mut cmd: std::process::Command) -> (Duration, Option<u64>) {
    let has_time = std::path::Path::new("/usr/bin/time").exists();
    let start = Instant::now();
    let out = if has_time {
        let program = cmd.get_program().to_owned();
        let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
        let envs: Vec<_> = cmd
            .get_envs()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
            .collect();
        std::process::Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(program)
            .args(args)
            .envs(envs)
            .output()
            .unwrap()
    } else {
        cmd.output().unwrap()
    };
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak = has_time
        .then(|| {
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
        })
        .flatten();
    (elapsed, peak)
}

/// The CLI: `rpm-ostree upgrade` against `ostree admin upgrade` on identical fixtures, and
/// `rpm-ostree status` (warm daemon) with 2 and with 10 deployments.
fn cli_benchmarks(rows: &mut Vec<(String, String, String)>) {
    let cli = rpmostree_tests::target_bin("rpm-ostree");
    let ours = Sandbox::start(SandboxOptions::default()).unwrap();
    let reference = Sandbox::start(SandboxOptions {
        without_daemon: true,
        ..Default::default()
    })
    .unwrap();
    let (mut ours_t, mut ref_t) = (Vec::new(), Vec::new());
    for round in 0..5 {
        let version = format!("3.{round}");
        ours.commit("testos/stable", &version).unwrap();
        reference.commit("testos/stable", &version).unwrap();
        let mut cmd = ours.command(&cli.display().to_string());
        cmd.arg("upgrade");
        ours_t.push(timed(cmd).0);
        let mut cmd = reference.command("ostree");
        cmd.args([
            "admin",
            &format!("--sysroot={}", reference.sysroot().display()),
            "upgrade",
            "--os=testos",
        ])
        .env("OSTREE_SYSROOT_DEBUG", "mutable-deployments");
        ref_t.push(timed(cmd).0);
    }
    let (o, r) = (percentile(&mut ours_t, 0.5), percentile(&mut ref_t, 0.5));
    rows.push((
        "`rpm-ostree upgrade` (pull + deploy of a new commit), median of 5".into(),
        ms(o),
        format!(
            "{:.2}× `ostree admin upgrade` on an identical fixture ({}); goal ≤ 1.10",
            o.as_secs_f64() / r.as_secs_f64(),
            ms(r)
        ),
    ));

    let status = |sb: &Sandbox| {
        let mut times = Vec::new();
        let mut peaks = Vec::new();
        for _ in 0..20 {
            let mut cmd = sb.command(&cli.display().to_string());
            cmd.arg("status");
            let (t, p) = timed(cmd);
            times.push(t);
            peaks.extend(p);
        }
        peaks.sort();
        (percentile(&mut times, 0.5), peaks.last().copied())
    };
    let mut admin = Vec::new();
    for _ in 0..10 {
        let mut cmd = ours.command("ostree");
        cmd.args([
            "admin",
            &format!("--sysroot={}", ours.sysroot().display()),
            "status",
        ]);
        admin.push(timed(cmd).0);
    }
    let (t, peak) = status(&ours);
    rows.push((
        "`rpm-ostree status`, warm daemon, median of 20 / peak RSS".into(),
        format!("{} / {}", ms(t), peak.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or("n/a".into())),
        format!("`ostree admin status` on the same sysroot: {}; goals ≤ 5 ms, ≤ 10 MiB (upstream ~25 ms, ~29 MiB)", ms(percentile(&mut admin, 0.5))),
    ));
    drop(reference);

    // Ten deployments: keep adding versions, retaining the older ones.
    for n in 0..8 {
        let version = format!("4.{n}");
        ours.commit("testos/stable", &version).unwrap();
        ours.ostree(&["pull", "origin", "testos/stable"]).unwrap();
        ours.ostree_admin(&["deploy", "--retain", "--os=testos", "origin:testos/stable"])
            .unwrap();
    }
    let count = ours.admin_deployments().unwrap().len();
    let (t, peak) = status(&ours);
    rows.push((
        format!("`rpm-ostree status` with {count} deployments, median of 20 / peak RSS"),
        format!(
            "{} / {}",
            ms(t),
            peak.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                .unwrap_or("n/a".into())
        ),
        "the daemon notices the outside deploys and reloads".into(),
    ));
}
