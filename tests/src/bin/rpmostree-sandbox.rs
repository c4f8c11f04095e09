//! `rpmostree-sandbox`: the real daemon, bus, polkitd and a fake-booted OSTree sysroot from the
//! system-test harness, driven by the real `rpm-ostree` CLI. `cargo xtask demo` and
//! `cargo xtask sandbox [stop]` install the packages, build the binaries and run this.
//!
//! Usage: `rpmostree-sandbox demo | start | stop | serve` (serve is what `start` runs in the
//! background).

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Duration,
};

use rpmostree_tests::{Registry, Sandbox, SandboxOptions};

/// Where a kept sandbox records how to reach it, and where `stop` asks it to end.
const STATE_DIR: &str = "/tmp/rpmostree-xtask-sandbox";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("start") => sandbox(&[]),
        Some("stop") => sandbox(&["stop".to_owned()]),
        Some("serve") => sandbox(&["serve".to_owned()]),
        _ => Err("usage: rpmostree-sandbox demo | start | stop".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rpmostree-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

fn require_root() -> Result<(), String> {
    if rpmostree_tests::is_root() {
        Ok(())
    } else {
        Err(
            "the sandbox needs root: it starts a private system bus, polkitd in a private mount \
             namespace and a fake-booted OSTree sysroot"
                .into(),
        )
    }
}

/// The directory with the debug daemon and CLI (next to this binary).
fn bin_dir() -> PathBuf {
    rpmostree_tests::target_bin("rpm-ostree")
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn start(bin_dir: &Path) -> Result<Sandbox, String> {
    Sandbox::start(SandboxOptions {
        fake_booted: true,
        daemon_bin: Some(bin_dir.join("rpm-ostreed")),
        containers: true,
        ..Default::default()
    })
    .map_err(|e| format!("starting the sandbox: {e}"))
}

fn say(text: &str) {
    println!("\n\x1b[1m==> {text}\x1b[0m");
}

/// Runs the CLI in the sandbox, showing the command and its output.
fn cli(sb: &Sandbox, bin: &Path, args: &[&str]) -> Result<(), String> {
    println!("$ rpm-ostree {}", args.join(" "));
    let out = sb
        .command(&bin.display().to_string())
        .args(args)
        .output()
        .map_err(|e| format!("running rpm-ostree: {e}"))?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`rpm-ostree {}` failed ({})",
            args.join(" "),
            out.status
        ))
    }
}

/// Runs the CLI inside the fake-booted system (for the local `db` commands), showing the
/// command and its output.
fn in_boot(sb: &Sandbox, bin_dir: &Path, args: &[&str]) -> Result<(), String> {
    println!("$ rpm-ostree {}", args.join(" "));
    let cli = sb
        .install_binary(&bin_dir.join("rpm-ostree"))
        .map_err(|e| e.to_string())?;
    sb.install_binary(&bin_dir.join("rpm-ostreed"))
        .map_err(|e| e.to_string())?;
    let mut argv = vec![cli.to_str().unwrap_or_default()];
    argv.extend_from_slice(args);
    let out = sb.run_fake_booted(&argv).map_err(|e| e.to_string())?;
    print!("{out}");
    Ok(())
}

/// What is on disk, straight from libostree's own tool.
fn on_disk(sb: &Sandbox) -> Result<(), String> {
    let status = sb
        .run_fake_booted(&["ostree", "admin", "status"])
        .map_err(|e| e.to_string())?;
    println!("   on disk (`ostree admin status`):");
    for line in status.lines() {
        println!("   | {line}");
    }
    Ok(())
}

/// The narrated demonstration.
fn demo() -> Result<(), String> {
    require_root()?;
    let bin_dir = bin_dir();
    let cli_bin = bin_dir.join("rpm-ostree");
    say(
        "Starting a sandbox: a private system bus, the real polkitd, and an OSTree sysroot booted (in a private mount namespace) into version 1.1 of `testos`; its remote `origin` has 2.0 on testos/stable and 10.0 on testos/devel. rpm-ostreed starts by D-Bus activation on the first call.",
    );
    let sb = start(&bin_dir)?;
    println!(
        "   sandbox: {} (bus {})",
        sb.dir().display(),
        sb.bus_address()
    );

    say("What is deployed: the booted 1.1 and its rollback 1.0");
    cli(&sb, &cli_bin, &["status"])?;

    say(
        "Check for updates: the daemon fetches only the new commit's metadata; the package changes come from its package list, the security advisory from the rpm-md repository's updateinfo",
    );
    cli(&sb, &cli_bin, &["upgrade", "--preview"])?;

    say(
        "Upgrade: the daemon pulls 2.0 from the remote and stages it for the next boot; the CLI prints what changes in packages",
    );
    cli(&sb, &cli_bin, &["upgrade"])?;
    cli(&sb, &cli_bin, &["status"])?;
    on_disk(&sb)?;

    say(
        "The package database, read locally on the booted system (no daemon): the booted deployment against the pending one",
    );
    in_boot(&sb, &bin_dir, &["db", "diff"])?;

    say("rpm-md repositories: refresh the metadata cache, then search it");
    cli(&sb, &cli_bin, &["refresh-md"])?;
    cli(&sb, &cli_bin, &["search", "greeting"])?;

    say(
        "Simulating a reboot's shutdown step: the staged deployment is finalized (what ostree-finalize-staged.service does)",
    );
    sb.run_fake_booted_pid_ns(&["ostree", "admin", "finalize-staged"])
        .map_err(|e| e.to_string())?;
    on_disk(&sb)?;

    say("Rollback: 1.1, still running, becomes the default again");
    cli(&sb, &cli_bin, &["rollback"])?;
    on_disk(&sb)?;

    say("Kernel arguments: the current ones, then one appended on a new deployment");
    cli(&sb, &cli_bin, &["kargs"])?;
    cli(&sb, &cli_bin, &["kargs", "--append=demo.greeting=hello"])?;
    let entries = sb.boot_entries().map_err(|e| e.to_string())?;
    if let Some(first) = entries.iter().find(|e| e.contains("demo.greeting=hello")) {
        println!("   boot entry on disk:");
        for line in first.lines() {
            println!("   | {line}");
        }
    }

    say("Rebase to the devel branch (10.0)");
    cli(&sb, &cli_bin, &["rebase", "origin:testos/devel"])?;
    cli(&sb, &cli_bin, &["status"])?;

    say(
        "Package layering: install layer-a on top of 10.0 (libdnf resolves it with the base locked: layer-b 2.0 for a rich dependency, layer-c as a Recommends); its %post runs in bubblewrap, and the result is one new deployment",
    );
    cli(&sb, &cli_bin, &["install", "layer-a"])?;
    cli(&sb, &cli_bin, &["status"])?;
    on_disk(&sb)?;

    say(
        "Container images: a build system encapsulates the 3.0 tree as a bootable OCI image and pushes it to a registry (Debian's docker-registry on loopback); rebase to it, the daemon pulls it through skopeo's image proxy layer by layer, and the layered package stays on top",
    );
    let registry =
        Registry::start(&sb.dir().join("registry")).map_err(|e| format!("registry: {e}"))?;
    sb.build_image("3.0", "stable").map_err(|e| e.to_string())?;
    let digest = registry
        .push(&sb.oci_dir(), "stable", "testos:stable")
        .map_err(|e| e.to_string())?;
    sb.trust_registry(&registry.address())
        .map_err(|e| e.to_string())?;
    println!("   pushed {}/testos:stable ({digest})", registry.address());
    let image = format!(
        "ostree-unverified-registry:{}/testos:stable",
        registry.address()
    );
    cli(&sb, &cli_bin, &["rebase", &image])?;
    cli(&sb, &cli_bin, &["status"])?;
    on_disk(&sb)?;

    say("Back from the image to the ostree branch");
    cli(&sb, &cli_bin, &["rebase", "origin:testos/stable"])?;
    cli(&sb, &cli_bin, &["status", "-b"])?;

    say("Done; tearing the sandbox down (no process, mount or file is left behind)");
    drop(registry);
    drop(sb);
    Ok(())
}

/// `start`, `stop` and `serve`: keeps a sandbox running in the background until stopped.
fn sandbox(args: &[String]) -> Result<(), String> {
    let state = Path::new(STATE_DIR);
    match args.first().map(String::as_str) {
        Some("stop") => {
            let Ok(pid) = std::fs::read_to_string(state.join("pid")) else {
                println!("No sandbox is running.");
                return Ok(());
            };
            std::fs::write(state.join("stop"), b"").map_err(|e| e.to_string())?;
            let stat = PathBuf::from(format!("/proc/{}/stat", pid.trim()));
            // Gone, or a zombie waiting for a late reaper.
            let gone = || {
                std::fs::read_to_string(&stat)
                    .map(|s| {
                        s.rsplit(')')
                            .next()
                            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
                    })
                    .unwrap_or(true)
            };
            for _ in 0..300 {
                if gone() {
                    let _ = std::fs::remove_dir_all(state);
                    println!("Sandbox stopped.");
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(format!(
                "the sandbox (pid {}) did not stop within 30 s",
                pid.trim()
            ))
        }
        Some("serve") => serve(state),
        None => {
            require_root()?;
            if state.join("pid").exists() {
                return Err(format!(
                    "a sandbox is already running (see {}/env); stop it with `cargo xtask sandbox stop`",
                    STATE_DIR
                ));
            }
            let _ = std::fs::remove_dir_all(state);
            std::fs::create_dir_all(state).map_err(|e| e.to_string())?;
            let me = std::env::current_exe().map_err(|e| e.to_string())?;
            let log = std::fs::File::create(state.join("log")).map_err(|e| e.to_string())?;
            let child = Command::new(me)
                .arg("serve")
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("starting the sandbox: {e}"))?;
            for _ in 0..600 {
                if let Ok(env) = std::fs::read_to_string(state.join("env")) {
                    print!("{env}");
                    return Ok(());
                }
                if !PathBuf::from(format!("/proc/{}", child.id())).exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(format!(
                "the sandbox did not come up; its log:\n{}",
                std::fs::read_to_string(state.join("log")).unwrap_or_default()
            ))
        }
        Some(other) => Err(format!("usage: cargo xtask sandbox [stop] (not '{other}')")),
    }
}

fn serve(state: &Path) -> Result<(), String> {
    let bin_dir = bin_dir();
    let sb = start(&bin_dir)?;
    let cli_bin = bin_dir.join("rpm-ostree");
    let address = sb.bus_address().to_owned();
    let env = format!(
        "A sandbox is running in {dir}: a private system bus, polkitd, a fake-booted OSTree sysroot\n\
         and rpm-ostreed (started on first use).\n\n\
         Point clients at it:\n\
         \x20 export DBUS_SYSTEM_BUS_ADDRESS={address}\n\
         \x20 {cli} status\n\
         \x20 busctl --system tree org.projectatomic.rpmostree1\n\
         \x20 gdbus introspect --system --dest org.projectatomic.rpmostree1 --object-path /org/projectatomic/rpmostree1/Sysroot\n\
         \x20 cockpit-bridge     # speaks the cockpit protocol on stdin/stdout to this bus\n\
         The daemon's log is {dir}/daemon.log.\n\n\
         Stop it with: cargo xtask sandbox stop\n",
        dir = sb.dir().display(),
        cli = cli_bin.display(),
    );
    std::fs::write(state.join("pid"), std::process::id().to_string()).map_err(|e| e.to_string())?;
    std::fs::write(state.join("env"), &env).map_err(|e| e.to_string())?;
    while !state.join("stop").exists() {
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(sb);
    Ok(())
}
