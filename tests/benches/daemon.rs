//! Benchmarks of rpm-ostreed on the real stack (private system bus, real polkitd, OSTree
//! sysroot, the daemon by activation). Not a test: it measures, prints a Markdown table and
//! asserts nothing about time. Run it with `cargo xtask bench` (as root); results and method
//! are kept in docs/PERFORMANCE.md.
//!
//! Every figure is measured next to a reference taken in the same run on the same machine, so
//! that ratios stay meaningful on a shared, noisy machine: the bus round trip floor
//! (`org.freedesktop.DBus.GetId` through the same dbus-daemon) and `ostree admin status` on the
//! same sysroot. The package side (`GetDeploymentsRpmDiff`, `rpm-ostree db diff`, `RefreshMd`)
//! runs on images of 50 and 2,000 real packages (see `rpmostree_tests::bench_fixture`);
//! `RPMOSTREE_BENCH_ONLY=packages` runs only those rows. Package layering (`rpm-ostree
//! install` on a base of 20,000 files, warm and cold package cache) is measured against
//! the same trees built with the ostree CLI; `RPMOSTREE_BENCH_ONLY=layering` runs only that.
//! Container images (a cold import of a 1 GiB image against skopeo, tar and ostree doing the
//! same work, and an update that fetches one small layer) run only with
//! `RPMOSTREE_BENCH_ONLY=images`: they write several GiB and take minutes. The fleet load
//! (10,000 simulated FleetLock nodes against two server replicas on a 3-member etcd) runs with
//! `cargo bench` (`cargo xtask bench`) or alone with `RPMOSTREE_BENCH_ONLY=fleet`.

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
    match std::env::var("RPMOSTREE_BENCH_ONLY").as_deref() {
        Ok("packages") => {
            package_benchmarks(&rt, &mut rows);
            print_table(rows);
            return;
        }
        Ok("layering") => {
            layering_benchmarks(&mut rows);
            print_table(rows);
            return;
        }
        Ok("images") => {
            image_benchmarks(&mut rows);
            print_table(rows);
            return;
        }
        Ok("fleet") => {
            fleet_benchmarks(&mut rows);
            print_table(rows);
            return;
        }
        _ => {}
    }
    // The fleet load (10,000 simulated nodes) runs under `cargo bench`, not when `cargo test`
    // runs this binary as a smoke test.
    if std::env::args().any(|a| a == "--bench") {
        fleet_benchmarks(&mut rows);
    }

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
    package_benchmarks(&rt, &mut rows);
    layering_benchmarks(&mut rows);
    print_table(rows);
}

fn print_table(rows: Vec<(String, String, String)>) {
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

/// Runs `cmd`, which must succeed; returns its wall time and stdout.
fn run_timed(cmd: &mut std::process::Command) -> (Duration, String) {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    (elapsed, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The reference for `rpm-ostree db diff`: what a script would do without rpm-ostree. Checks
/// out `/usr/share/rpm` of both commits (copies, so rpm cannot touch the repository's
/// objects), lists each with `rpm -qa`, sorts the lists and runs `diff` on them.
fn rpmdb_diff_reference(
    repo: &std::path::Path,
    scratch: &std::path::Path,
    from: &str,
    to: &str,
) -> Duration {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).unwrap();
    let start = Instant::now();
    let mut lists = Vec::new();
    for (i, commit) in [from, to].into_iter().enumerate() {
        let root = scratch.join(format!("root{i}"));
        let db = root.join("usr/share/rpm");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        run_timed(
            std::process::Command::new("ostree")
                .arg(format!("--repo={}", repo.display()))
                .args([
                    "checkout",
                    "--force-copy",
                    "--subpath=/usr/share/rpm",
                    commit,
                ])
                .arg(&db),
        );
        let (_, out) = run_timed(
            std::process::Command::new("rpm")
                .arg("--root")
                .arg(&root)
                .args(["--dbpath", "/usr/share/rpm", "-qa"]),
        );
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort_unstable();
        let list = scratch.join(format!("list{i}"));
        std::fs::write(&list, lines.join("\n") + "\n").unwrap();
        lists.push(list);
    }
    let out = std::process::Command::new("diff")
        .args(&lists)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the two package lists differ");
    start.elapsed()
}

/// Median of `n` runs of a closure returning a duration.
fn median_of(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..n).map(|_| f()).collect();
    percentile(&mut times, 0.5)
}

/// The package side: `GetDeploymentsRpmDiff` between deployments of 50 and 2,000 packages,
/// `rpm-ostree db diff` with and without the package-list metadata against checkout +
/// `rpm -qa` + `diff`, and `RefreshMd` cold and warm on a repository of 2,000 packages served
/// over HTTP on loopback.
fn package_benchmarks(rt: &tokio::runtime::Runtime, rows: &mut Vec<(String, String, String)>) {
    use rpmostree_tests::bench_fixture::{
        self, BenchPackages, ImageTree, bench_image, bench_image_changes,
    };

    const BIG: usize = 2000;
    const SMALL: usize = 50;
    let t0 = Instant::now();
    let packages = BenchPackages::build(BIG).unwrap();
    eprintln!("[bench] {BIG}-package sets ready after {:?}", t0.elapsed());
    let sb = Sandbox::start(SandboxOptions::default()).unwrap();
    let tree = ImageTree::new(&sb, rpmostree_tests::STABLE_BRANCH).unwrap();

    // (count, pkglist) -> (old commit, new commit), the images deployed when they carry the
    // package list (the rpmdb alone serves `db diff` without it).
    let mut pairs = std::collections::HashMap::new();
    for (count, pkglist) in [(SMALL, true), (BIG, true), (BIG, false)] {
        let mut pair = Vec::new();
        for new in [false, true] {
            let specs = bench_image(count, new);
            let files = packages.files(&specs).unwrap();
            let branch = format!(
                "bench/{count}{}/{}",
                if pkglist { "" } else { "-no-pkglist" },
                if new { "new" } else { "old" }
            );
            let version = format!("{count}.{}", u8::from(new));
            let checksum = tree
                .commit(&sb, &branch, &version, &specs, &files, pkglist)
                .unwrap();
            if pkglist {
                bench_fixture::deploy(&sb, &branch).unwrap();
            } else {
                bench_fixture::pull(&sb, &branch).unwrap();
            }
            pair.push(checksum);
        }
        pairs.insert((count, pkglist), (pair[0].clone(), pair[1].clone()));
    }
    let repo = sb.sysroot().join("ostree/repo");
    eprintln!(
        "[bench] package images committed and deployed after {:?}",
        t0.elapsed()
    );

    // 1. GetDeploymentsRpmDiff: the daemon reads the two commits' package lists.
    rt.block_on(async {
        let bus = connect(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = rpmostree_api::OSProxy::new(&bus, "/org/projectatomic/rpmostree1/testos")
            .await
            .unwrap();
        let deployments = sysroot.deployments().await.unwrap();
        let id_of = |checksum: &str| {
            deployments
                .iter()
                .find(|d| d.checksum.as_deref() == Some(checksum))
                .and_then(|d| d.id.clone())
                .unwrap()
        };
        for count in [SMALL, BIG] {
            let (old, new) = &pairs[&(count, true)];
            let (id0, id1) = (id_of(old), id_of(new));
            let first_start = Instant::now();
            let diff = os.get_deployments_rpm_diff(&id0, &id1).await.unwrap();
            let first = first_start.elapsed();
            assert_eq!(diff.len(), bench_image_changes(count), "{diff:?}");
            let mut times = Vec::new();
            let mut floors = Vec::new();
            for _ in 0..20 {
                floors.push(bus_floor(&bus).await);
                let start = Instant::now();
                os.get_deployments_rpm_diff(&id0, &id1).await.unwrap();
                times.push(start.elapsed());
            }
            let t = percentile(&mut times, 0.5);
            let floor = percentile(&mut floors, 0.5);
            let show = median_of(10, || {
                run_timed(
                    std::process::Command::new("ostree")
                        .arg(format!("--repo={}", repo.display()))
                        .args(["show", "--print-metadata-key=rpmostree.rpmdb.pkglist", new]),
                )
                .0
            });
            rows.push((
                format!(
                    "GetDeploymentsRpmDiff, {count} packages ({} changes), median of 20",
                    diff.len()
                ),
                ms(t),
                format!(
                    "{:.1}× bus round trip ({}); {:.2}× `ostree show --print-metadata-key=rpmostree.rpmdb.pkglist` of one of the commits ({}); first call {}{}",
                    t.as_secs_f64() / floor.as_secs_f64(),
                    ms(floor),
                    t.as_secs_f64() / show.as_secs_f64(),
                    ms(show),
                    ms(first),
                    if count == BIG { "; goal < 20 ms" } else { "" }
                ),
            ));
        }
    });

    // 2. `rpm-ostree db diff` of the 2,000-package pair, with and without the package lists.
    let cli = rpmostree_tests::target_bin("rpm-ostree");
    let sysroot_arg = sb.sysroot().display().to_string();
    let scratch = sb.dir().join("bench-rpmdb-reference");
    for (pkglist, runs) in [(true, 10), (false, 5)] {
        let (old, new) = &pairs[&(BIG, pkglist)];
        let db_diff = || {
            let mut cmd = sb.command(&cli.display().to_string());
            cmd.args(["db", "diff", "--sysroot", &sysroot_arg, old, new]);
            run_timed(&mut cmd)
        };
        let (_, out) = db_diff();
        let listed = out.lines().filter(|l| l.starts_with("  ")).count();
        assert_eq!(listed, bench_image_changes(BIG), "{out}");
        let ours = median_of(runs, || db_diff().0);
        let reference = median_of(runs, || rpmdb_diff_reference(&repo, &scratch, old, new));
        rows.push((
            format!(
                "`rpm-ostree db diff` of {BIG} packages, {}, median of {runs}",
                if pkglist {
                    "commits with `rpmostree.rpmdb.pkglist`"
                } else {
                    "commits without package lists (rpmdb read by the helper)"
                }
            ),
            ms(ours),
            format!(
                "{:.2}× `ostree checkout --subpath=/usr/share/rpm` of both commits + `rpm -qa` of each + `diff` of the sorted lists ({})",
                ours.as_secs_f64() / reference.as_secs_f64(),
                ms(reference)
            ),
        ));
    }
    let _ = std::fs::remove_dir_all(&scratch);

    // 3. RefreshMd of a repository of the 2,000 (updated) packages over HTTP on loopback.
    let specs = bench_image(BIG, true);
    let rpmmd = sb.dir().join("bench-rpmmd");
    rpmostree_tests::rpms::create_repo(&rpmmd, &packages.files(&specs).unwrap(), &[]).unwrap();
    let server = rpmostree_tests::HttpServer::start(&rpmmd, None).unwrap();
    sb.point_repo_at(&server.url()).unwrap();
    // The transfer floor: repomd.xml and primary.xml, what a refresh downloads (libdnf leaves
    // filelists and other until something needs them; the server's counters confirm it).
    let repomd = std::fs::read_to_string(rpmmd.join("repodata/repomd.xml")).unwrap();
    let primary = repomd
        .split("<data type=\"")
        .find(|block| block.starts_with("primary\""))
        .and_then(|block| block.split("href=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let urls = [
        format!("{}/repodata/repomd.xml", server.url()),
        format!("{}/{primary}", server.url()),
    ];
    let cache = sb
        .sysroot()
        .join("ostree/deploy/testos/var/cache/rpm-ostree");
    rt.block_on(async {
        let bus = connect(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = rpmostree_api::OSProxy::new(&bus, "/org/projectatomic/rpmostree1/testos")
            .await
            .unwrap();
        let refresh = |force: bool| {
            let os = &os;
            let sysroot = &sysroot;
            async move {
                while !sysroot.active_transaction_path().await.unwrap().is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let start = Instant::now();
                let mut txn = os
                    .refresh_md_transaction(&rpmostree_api::RefreshMdOptions::new().force(force))
                    .await
                    .unwrap();
                txn.run(|_| {}).await.unwrap();
                start.elapsed()
            }
        };
        let mut cold = Vec::new();
        let (requests, sent) = (server.requests(), server.bytes_sent());
        for _ in 0..5 {
            for sub in ["repomd", "solv"] {
                let _ = std::fs::remove_dir_all(cache.join(sub));
            }
            cold.push(refresh(true).await);
            let landed = cache.join("repomd");
            assert!(landed.is_dir(), "no metadata in {}", landed.display());
        }
        let cold_requests = (server.requests() - requests) / 5;
        let cold_bytes = (server.bytes_sent() - sent) / 5;
        let found = os.get_packages(&["extra0019", "pkg1990"]).await.unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        let mut warm = Vec::new();
        let requests = server.requests();
        for _ in 0..10 {
            warm.push(refresh(false).await);
        }
        let warm_requests = server.requests() - requests;
        let mut list = Vec::new();
        let mut floors = Vec::new();
        for _ in 0..10 {
            floors.push(bus_floor(&bus).await);
            let start = Instant::now();
            os.list_repos().await.unwrap();
            list.push(start.elapsed());
        }
        let curl = median_of(5, || {
            let mut cmd = std::process::Command::new("curl");
            cmd.args(["--silent", "--show-error", "--fail"]);
            for url in &urls {
                cmd.args(["--output", "/dev/null", url]);
            }
            run_timed(&mut cmd).0
        });
        let cold = percentile(&mut cold, 0.5);
        let warm = percentile(&mut warm, 0.5);
        rows.push((
            format!(
                "RefreshMd cold (empty cache, force), {} packages over HTTP on loopback, median of 5",
                specs.len()
            ),
            ms(cold),
            format!(
                "{:.1}× `curl` fetching repomd.xml and primary.xml from the same server ({}); the helper made {cold_requests} requests ({:.0} KiB) per refresh",
                cold.as_secs_f64() / curl.as_secs_f64(),
                ms(curl),
                cold_bytes as f64 / 1024.0,
            ),
        ));
        let list = percentile(&mut list, 0.5);
        rows.push((
            format!(
                "RefreshMd warm (cache fresh, no force), median of 10: {warm_requests} requests in all"
            ),
            ms(warm),
            format!(
                "{:.2}× `ListRepos` (one helper run reading the .repo files, no transaction: {}); bus round trip {}",
                warm.as_secs_f64() / list.as_secs_f64(),
                ms(list),
                ms(percentile(&mut floors, 0.5))
            ),
        ));
    });
    drop(server);
    drop(sb);
    eprintln!("[bench] package benchmarks took {:?}", t0.elapsed());
}

/// How many files the layering benchmark adds to the base image.
const LAYER_BASE_FILES: usize = 20_000;

/// Keeps only the newest deployment (`ostree admin undeploy` of the older ones).
fn keep_newest_deployment(sb: &Sandbox) {
    loop {
        let n = sb.admin_deployments().unwrap().len();
        if n <= 1 {
            break;
        }
        sb.ostree_admin(&["undeploy", &(n - 1).to_string()])
            .unwrap();
    }
}

/// Package layering on a base of 20,000 files: `rpm-ostree install` of one small package
/// without scriptlets, end to end through the CLI, with the package already in the cache
/// (warm) and with its cache ref deleted before each run (cold: imported again), against the
/// floor of the same trees built with the ostree CLI in the same run: a hardlink checkout of
/// the base and of the package's cache commit over it, `ostree commit` with the devino
/// speedup, and `ostree admin deploy`.
fn layering_benchmarks(rows: &mut Vec<(String, String, String)>) {
    use rpmostree_tests::bench_fixture::{self, ImageTree};

    const RUNS: usize = 5;
    let cli = rpmostree_tests::target_bin("rpm-ostree");
    let sb = Sandbox::start(SandboxOptions::default()).unwrap();
    let tree = ImageTree::new(&sb, rpmostree_tests::STABLE_BRANCH).unwrap();
    let bulk = tree.path().join("usr/share/bench");
    for i in 0..LAYER_BASE_FILES {
        let dir = bulk.join(format!("d{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("f{i:05}")), format!("bench file {i}\n")).unwrap();
    }
    let specs = rpmostree_tests::fixture_packages("1.1");
    let files = rpmostree_tests::rpms::build_rpms(&specs).unwrap();
    let base = tree
        .commit(&sb, "testos/bench-layer", "3.0", &specs, &files, true)
        .unwrap();
    bench_fixture::deploy(&sb, "testos/bench-layer").unwrap();
    keep_newest_deployment(&sb);
    let repo = sb.sysroot().join("ostree/repo");
    let run_cli = |args: &[&str]| {
        let mut cmd = sb.command(cli.to_str().unwrap());
        cmd.args(args);
        run_timed(&mut cmd).0
    };
    let cache_refs = || {
        let out = sb.ostree(&["refs", "--list", "rpmostree/pkg"]).unwrap();
        out.lines().map(str::to_owned).collect::<Vec<_>>()
    };

    // Warm: one install fills the package cache; every timed run uses it.
    run_cli(&["install", "layer-c"]);
    run_cli(&["uninstall", "layer-c"]);
    let warm = median_of(RUNS, || {
        let t = run_cli(&["install", "layer-c"]);
        run_cli(&["uninstall", "layer-c"]);
        t
    });
    let cold = median_of(RUNS, || {
        for r in cache_refs() {
            sb.ostree(&["refs", "--delete", &r]).unwrap();
        }
        let t = run_cli(&["install", "layer-c"]);
        run_cli(&["uninstall", "layer-c"]);
        t
    });

    // The floor: the same trees with the ostree CLI.
    run_cli(&["install", "layer-c"]);
    let package = cache_refs()
        .into_iter()
        .find(|r| r.starts_with("rpmostree/pkg/layer-c/"))
        .expect("the cache ref of layer-c");
    run_cli(&["uninstall", "layer-c"]);
    keep_newest_deployment(&sb);
    let work = sb.dir().join("bench-layer-floor");
    let floor = median_of(RUNS, || {
        let _ = std::fs::remove_dir_all(&work);
        let start = Instant::now();
        let ostree = |args: &[&str]| {
            let mut cmd = std::process::Command::new("ostree");
            cmd.arg(format!("--repo={}", repo.display())).args(args);
            run_timed(&mut cmd).1
        };
        let dir = work.to_str().unwrap();
        ostree(&["checkout", "-H", &base, dir]);
        ostree(&["checkout", "-H", "--union-identical", &package, dir]);
        let commit = ostree(&[
            "commit",
            "--link-checkout-speedup",
            &format!("--parent={base}"),
            "--orphan",
            &format!("--tree=dir={dir}"),
        ]);
        let commit = commit.trim().to_owned();
        sb.ostree_admin(&["deploy", &format!("--os={}", sb.osname()), &commit])
            .unwrap();
        let t = start.elapsed();
        sb.ostree_admin(&["undeploy", "0"]).unwrap();
        t
    });
    let ratio = |t: Duration| t.as_secs_f64() / floor.as_secs_f64();
    rows.push((
        format!(
            "`rpm-ostree install` of one package (no scriptlets), warm package cache, base of {LAYER_BASE_FILES} files"
        ),
        ms(warm),
        format!(
            "{:.2}x the ostree floor (checkout -H of base + package, commit --link-checkout-speedup, admin deploy: {})",
            ratio(warm),
            ms(floor)
        ),
    ));
    rows.push((
        "the same install with a cold package cache (the RPM imported again)".to_owned(),
        ms(cold),
        format!("{:.2}x the ostree floor", ratio(cold)),
    ));
}

/// The size of the benchmark image's tree.
const IMAGE_BYTES: usize = 1 << 30;

/// Importing a container image of 1 GiB from an `oci:` layout (`rpm-ostree rebase
/// --download-only`, the image pulled through skopeo's proxy and written into the sysroot's
/// repository; nothing deployed), cold each time, against the floor of the same data moved by
/// the tools themselves in the same run: `skopeo copy` of the image to another `oci:` layout,
/// `tar -xzf` of its layer, and `ostree commit` of the tree into a fresh bare repository.
/// Then an update whose only new layer is a small derived one: only that layer is fetched.
fn image_benchmarks(rows: &mut Vec<(String, String, String)>) {
    const RUNS: usize = 3;
    let cli = rpmostree_tests::target_bin("rpm-ostree");
    let sb = Sandbox::start(SandboxOptions {
        containers: true,
        ..Default::default()
    })
    .unwrap();
    // 1 GiB in 1 MiB files, each half pseudo-random and half zeros (compresses about 2:1,
    // as OS content does).
    let tree = sb.dir().join("bench-image-tree");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..IMAGE_BYTES / (1 << 20) {
        let dir = tree.join(format!("usr/share/bench/d{:02}", i / 64));
        if i % 64 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let mut data = vec![0u8; 1 << 20];
        for chunk in data[..1 << 19].chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        std::fs::write(dir.join(format!("f{i:04}")), &data).unwrap();
    }
    let src = sb.dir().join("bench-image-src");
    let ostree_in = |repo: &std::path::Path, args: &[&str]| {
        let mut cmd = std::process::Command::new("ostree");
        cmd.arg(format!("--repo={}", repo.display())).args(args);
        run_timed(&mut cmd)
    };
    ostree_in(&src, &["init", "--mode=bare-user"]);
    let commit = |dir: &std::path::Path, repo: &std::path::Path| {
        ostree_in(
            repo,
            &[
                "commit",
                "--orphan",
                "--owner-uid=0",
                "--owner-gid=0",
                "--add-metadata-string=version=9.0",
                &format!("--tree=dir={}", dir.display()),
            ],
        )
    };
    let (_, rev) = commit(&tree, &src);
    let digest = sb.encapsulate(&src, rev.trim(), "big").unwrap();
    let layout = sb.oci_dir();
    let image = sb.oci_image_ref("big");
    let drop_images = || {
        for prefix in ["ostree/container/image", "ostree/container/blob"] {
            let out = sb.ostree(&["refs", "--list", prefix]).unwrap();
            for r in out.lines().filter(|l| !l.is_empty()) {
                sb.ostree(&["refs", "--delete", r]).unwrap();
            }
        }
        sb.ostree(&["prune", "--refs-only"]).unwrap();
    };
    let run_cli = |args: &[&str]| {
        let mut cmd = sb.command(cli.to_str().unwrap());
        cmd.args(args);
        run_timed(&mut cmd)
    };
    let import = median_of(RUNS, || {
        drop_images();
        run_cli(&["rebase", "--download-only", &image]).0
    });
    let layer = {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let m = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["digest"] == digest.as_str())
            .unwrap()
            .clone();
        let blob = |d: &str| {
            layout
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:"))
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(blob(m["digest"].as_str().unwrap())).unwrap())
                .unwrap();
        blob(manifest["layers"][0]["digest"].as_str().unwrap())
    };
    let layer_size = std::fs::metadata(&layer).unwrap().len();
    let work = sb.dir().join("bench-image-floor");
    let floor = median_of(RUNS, || {
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("unpacked")).unwrap();
        let fresh = work.join("repo");
        ostree_in(&fresh, &["init", "--mode=bare"]);
        let start = Instant::now();
        run_timed(std::process::Command::new("skopeo").args([
            "copy",
            "--quiet",
            &format!("oci:{}:big", layout.display()),
            &format!("oci:{}:big", work.join("copy").display()),
        ]));
        run_timed(std::process::Command::new("tar").args([
            "-xzf",
            layer.to_str().unwrap(),
            "-C",
            work.join("unpacked").to_str().unwrap(),
        ]));
        commit(&tree, &fresh);
        start.elapsed()
    });
    rows.push((
        format!(
            "container image import, 1 GiB tree ({} MiB layer), `oci:` layout, cold, median of {RUNS}",
            layer_size >> 20
        ),
        ms(import),
        format!(
            "{:.2}x the floor: skopeo copy to another oci: layout + tar -xzf of the layer + ostree commit of the tree into a bare repo ({})",
            import.as_secs_f64() / floor.as_secs_f64(),
            ms(floor)
        ),
    ));

    // An update that changes one layer: the base layer is already in the repository.
    drop_images();
    sb.derive_image("big", "upd1", &[("usr/share/derived/v", b"1\n")])
        .unwrap();
    sb.derive_image("big", "upd2", &[("usr/share/derived/v", b"2\n")])
        .unwrap();
    run_cli(&["rebase", "--download-only", &sb.oci_image_ref("upd1")]);
    let refs = |prefix: &str| -> Vec<String> {
        let out = sb.ostree(&["refs", "--list", prefix]).unwrap();
        out.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let stored = refs("ostree/container");
    let mut fetched = String::new();
    let update = median_of(RUNS, || {
        // Back to the state after upd1: upd2 and its layer not stored.
        for r in refs("ostree/container") {
            if !stored.contains(&r) {
                sb.ostree(&["refs", "--delete", &r]).unwrap();
            }
        }
        let (t, out) = run_cli(&["rebase", "--download-only", &sb.oci_image_ref("upd2")]);
        fetched = out
            .lines()
            .find(|l| l.starts_with("Layers needed"))
            .unwrap_or("no layer fetched")
            .to_owned();
        t
    });
    rows.push((
        "update to an image whose only new layer is a small derived one (base layer stored)"
            .to_owned(),
        ms(update),
        format!(
            "{}; {:.3}x the cold import",
            fetched,
            update.as_secs_f64() / import.as_secs_f64()
        ),
    ));
}

/// One load scenario's figures.
struct FleetLoad {
    wall: Duration,
    requests: usize,
    pre_reboot: Vec<Duration>,
    steady_state: Vec<Duration>,
    refused: usize,
    conflicts: u64,
}

/// `nodes` simulated nodes in `groups` groups of `slots` slots each run one update cycle
/// (pre-reboot until granted, a short "reboot", steady-state until granted) against `servers`
/// with at most `in_flight` requests at once; returns the figures, with the servers'
/// optimistic-conflict counters read from their metrics.
fn fleet_load(
    servers: &[rpmostree_tests::etcd::FleetLockServer],
    nodes: usize,
    groups: &[String],
    in_flight: usize,
) -> FleetLoad {
    use fleetlock::client::{Backoff, Client, Outcome};
    use std::sync::{Arc, Mutex};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
    let gate = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let samples = Arc::new(Mutex::new((Vec::new(), Vec::new(), 0usize)));
    let conflicts_before = servers.iter().map(server_conflicts).sum::<u64>();
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..nodes {
            let (urls, gate, samples) = (urls.clone(), gate.clone(), samples.clone());
            let group = groups[i % groups.len()].clone();
            tasks.push(tokio::spawn(async move {
                let client = Client::new(
                    &urls,
                    &format!("node{i:05}"),
                    &group,
                    Duration::from_secs(30),
                )
                .unwrap();
                for pre in [true, false] {
                    let mut backoff =
                        Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
                    loop {
                        let permit = gate.acquire().await.unwrap();
                        let t = Instant::now();
                        let r = if pre {
                            client.pre_reboot().await
                        } else {
                            client.steady_state().await
                        };
                        let took = t.elapsed();
                        drop(permit);
                        let granted = matches!(r, Ok(Outcome::Granted));
                        {
                            let mut s = samples.lock().unwrap();
                            if pre {
                                s.0.push(took)
                            } else {
                                s.1.push(took)
                            }
                            if !granted {
                                s.2 += 1;
                            }
                        }
                        if granted {
                            break;
                        }
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    if pre {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let wall = start.elapsed();
    let (pre_reboot, steady_state, refused) = std::mem::take(&mut *samples.lock().unwrap());
    FleetLoad {
        wall,
        requests: pre_reboot.len() + steady_state.len(),
        pre_reboot,
        steady_state,
        refused,
        conflicts: servers.iter().map(server_conflicts).sum::<u64>() - conflicts_before,
    }
}

/// `fleetlock_semaphore_conflicts_total` from a server's metrics.
fn server_conflicts(server: &rpmostree_tests::etcd::FleetLockServer) -> u64 {
    let out = std::process::Command::new("curl")
        .args(["-s", &format!("http://{}/metrics", server.status_address())])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("fleetlock_semaphore_conflicts_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The fleet load on loopback: a 3-member etcd (Debian's), two replicas of the release
/// `rpm-ostree-fleetlock`, and simulated nodes (the node-side client code). 10,000 nodes in
/// 100 groups of 5 slots; then 1,000 nodes in one group of 10 slots (every request on one
/// etcd key).
fn fleet_benchmarks(rows: &mut Vec<(String, String, String)>) {
    use rpmostree_tests::etcd::{EtcdCluster, FleetLockServer};
    let dir = std::env::temp_dir().join(format!("rpmostree-bench-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = EtcdCluster::start(&dir.join("etcd"), 3).unwrap();
    let bin = rpmostree_tests::target_bin("rpm-ostree-fleetlock");
    let names: Vec<String> = (0..100).map(|g| format!("g{g:03}")).collect();
    let mut groups: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 5)).collect();
    groups.push(("hot", 10));
    let servers: Vec<FleetLockServer> = (0..2)
        .map(|i| {
            FleetLockServer::start(
                &bin,
                &dir.join(format!("s{i}")),
                &cluster.endpoints(),
                &groups,
                "",
            )
            .unwrap()
        })
        .collect();
    let mut report = |what: &str, load: FleetLoad| {
        let rate = load.requests as f64 / load.wall.as_secs_f64();
        let (mut pre, mut steady) = (load.pre_reboot, load.steady_state);
        rows.push((
            format!("{what}: wall time, {} requests", load.requests),
            ms(load.wall),
            format!(
                "{rate:.0} requests/s; {} refused (slot taken), {} optimistic conflicts retried in the servers",
                load.refused, load.conflicts
            ),
        ));
        rows.push((
            format!("{what}: pre-reboot latency p50 / p99"),
            format!(
                "{} / {}",
                ms(percentile(&mut pre, 0.5)),
                ms(percentile(&mut pre, 0.99))
            ),
            format!("{} requests (granted or refused)", pre.len()),
        ));
        rows.push((
            format!("{what}: steady-state latency p50 / p99"),
            format!(
                "{} / {}",
                ms(percentile(&mut steady, 0.5)),
                ms(percentile(&mut steady, 0.99))
            ),
            format!("{} requests", steady.len()),
        ));
    };
    let load = fleet_load(&servers, 10_000, &names, 200);
    report("10,000 nodes, 100 groups of 5 slots", load);
    // One group: every request on one etcd key.
    let hot = fleet_load(&servers, 1_000, &["hot".to_owned()], 200);
    report("1,000 nodes, 1 group of 10 slots", hot);
    drop(servers);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
