//! `cargo xtask`: the project's tasks, so that CI, the README and developers run the same steps.
//!
//! - `codegen [--check]`: writes `generated/` from the interface XML (or only checks it);
//! - `test`: every check and test suite, as CI runs them;
//! - `demo`: the end-to-end demonstration; `sandbox [stop]`: one kept running for manual use;
//! - `api-diff [OLD NEW]`: API compatibility of the interface XML (default: every released
//!   version in interface/released/ against the current one);
//! - `install --destdir D [--prefix P]`: the distribution layout;
//! - `bench`: the benchmarks (results in docs/PERFORMANCE.md).

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

mod demo;
mod install;

const SOURCE: &str = "interface/org.projectatomic.rpmostree1.xml";

type Task = fn(&[String]) -> Result<(), String>;

const TASKS: &[(&str, Task, &str)] = &[
    (
        "codegen",
        codegen,
        "write generated/ from the interface XML (--check: only verify)",
    ),
    (
        "test",
        test,
        "run every check and test suite (what CI runs)",
    ),
    (
        "demo",
        demo::demo,
        "run the end-to-end demonstration (root)",
    ),
    (
        "install",
        install::install,
        "lay out binaries and data files: --destdir D [--prefix /usr]",
    ),
    (
        "sandbox",
        demo::sandbox,
        "keep a sandbox running for manual use; `sandbox stop` ends it",
    ),
    (
        "api-diff",
        api_diff,
        "compare two interface XMLs; fails on removed or changed members (OLD NEW)",
    ),
    (
        "bench",
        bench,
        "run the benchmarks (root; results go in docs/PERFORMANCE.md)",
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        usage();
        return ExitCode::from(2);
    };
    if matches!(name.as_str(), "--help" | "-h" | "help") {
        usage_to(&mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let Some((_, task, help)) = TASKS.iter().find(|(n, _, _)| n == name) else {
        eprintln!("xtask: unknown task '{name}'");
        usage();
        return ExitCode::from(2);
    };
    if let Err(e) = std::env::set_current_dir(root()) {
        eprintln!("xtask: cannot enter the workspace root: {e}");
        return ExitCode::FAILURE;
    }
    if args[1..].iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: cargo xtask {name} [args]\n\n{help}");
        return ExitCode::SUCCESS;
    }
    match task(&args[1..]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() {
    usage_to(&mut std::io::stderr());
}

fn usage_to(out: &mut dyn std::io::Write) {
    let _ = writeln!(out, "usage: cargo xtask <task> [args]\n");
    for (name, _, help) in TASKS {
        let _ = writeln!(out, "  {name:<10} {help}");
    }
    let _ = writeln!(out, "\n`cargo xtask <task> --help` describes one task.");
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn codegen(args: &[String]) -> Result<(), String> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => return Err("usage: cargo xtask codegen [--check]".into()),
    };
    let xml = std::fs::read_to_string(SOURCE).map_err(|e| format!("{SOURCE}: {e}"))?;
    let files = rpmostree_codegen::generate(&xml, SOURCE)?;
    let dir = Path::new("generated");
    if check {
        let problems = rpmostree_codegen::diff_dir(&files, dir)?;
        if !problems.is_empty() {
            return Err(format!(
                "generated/ is stale ({}): run `cargo xtask codegen` and commit the result",
                problems.join(", ")
            ));
        }
        println!("generated/ matches {SOURCE}");
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if !files.iter().any(|(n, _)| Some(n) == name.as_ref()) {
            std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let mut changed = 0;
    for (name, text) in &files {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("wrote {}", path.display());
            changed += 1;
        }
    }
    println!("generated/: {changed} file(s) changed");
    Ok(())
}

/// Runs one command, echoing it; fails if it fails.
pub(crate) fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    println!("\n==> {} {}", program, args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn test(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("usage: cargo xtask test".into());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    codegen(&["--check".to_owned()])?;
    api_diff(&[])?;
    run(&cargo, &["fmt", "--all", "--", "--check"], &[])?;
    run(
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    run(
        &cargo,
        &["doc", "--no-deps", "--locked", "-p", "rpmostree-api"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    // The system tests run the daemon and the CLI binaries; `cargo test` alone builds bin
    // targets only as test harnesses, so build them first.
    build_binaries(false)?;
    // System tests are marked ignored (they need root), so that a run without root shows them
    // as ignored rather than passed. As root they run; under CI=true without root, that is a
    // failure, not a skip.
    let mut args = vec!["test", "--workspace", "--all-targets", "--locked"];
    if demo::is_root() {
        args.extend(["--", "--include-ignored"]);
    } else if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
        return Err(
            "CI=true: the system tests need root, and a skipped system test is a failure".into(),
        );
    } else {
        println!("\nnot root: the system tests are listed as ignored; run as root to run them");
    }
    run(&cargo, &args, &[])?;
    run(
        &cargo,
        &["test", "--doc", "--locked", "-p", "rpmostree-api"],
        &[],
    )?;
    println!("\nxtask test: all checks passed");
    Ok(())
}

fn api_diff(args: &[String]) -> Result<(), String> {
    let (old, new) = match args {
        [old, new] => (old.as_str(), new.as_str()),
        [] => {
            // Every released interface against the current one.
            let mut released: Vec<_> = std::fs::read_dir("interface/released")
                .map_err(|e| format!("interface/released: {e}"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "xml"))
                .collect();
            released.sort();
            if released.is_empty() {
                return Err("interface/released has no released interface".into());
            }
            for old in released {
                api_diff(&[old.display().to_string(), SOURCE.to_owned()])?;
            }
            return Ok(());
        }
        _ => return Err("usage: cargo xtask api-diff [OLD.xml NEW.xml]".into()),
    };
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
    let problems = rpmostree_codegen::api_diff(&read(old)?, &read(new)?)?;
    if problems.is_empty() {
        println!("api-diff: {new} is compatible with {old}");
        Ok(())
    } else {
        Err(format!(
            "{new} breaks the API of {old}:\n  {}",
            problems.join("\n  ")
        ))
    }
}

/// Builds the daemon and the CLI (release or debug).
pub(crate) fn build_binaries(release: bool) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec![
        "build",
        "--locked",
        "-p",
        "rpm-ostreed",
        "-p",
        "rpm-ostree",
        "-p",
        "rpmostree-fleetlock",
    ];
    if release {
        args.insert(1, "--release");
    }
    run(&cargo, &args, &[])
}

fn bench(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("usage: cargo xtask bench".into());
    }
    // The benchmark drives the release daemon and CLI, found next to the bench executable.
    build_binaries(true)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(
        &cargo,
        &[
            "bench",
            "--locked",
            "-p",
            "rpmostree-tests",
            "--bench",
            "daemon",
        ],
        &[],
    )
}
