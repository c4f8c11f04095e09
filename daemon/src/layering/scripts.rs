//! Package scriptlets, run as upstream runs them: `%pre` of every package, then each package's
//! `%post`, then every `%posttrans`, then the `%transfiletriggerin` of every package of the
//! tree (base and layered) whose patterns match files, with the matching paths on stdin; each in
//! `bwrap` with the new tree as `/`, and `/usr` and
//! `/etc` behind `rofiles-fuse --copyup` so that a write to a file that is a hardlink into the
//! repository copies it first and never changes a repository object. Lua scriptlets were
//! refused at import (unless marked `-- rpm-ostree-skip`, then skipped here).

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};

/// When a scriptlet runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// `%pre`.
    Pre,
    /// `%post`.
    Post,
    /// `%posttrans`.
    Posttrans,
    /// `%transfiletriggerin`.
    FileTriggerIn,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Pre => "%prein",
            Phase::Post => "%post",
            Phase::Posttrans => "%posttrans",
            Phase::FileTriggerIn => "%transfiletriggerin",
        }
    }
}

/// One scriptlet of one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Script {
    /// The package's NEVRA.
    pub(crate) nevra: String,
    /// The package's name.
    pub(crate) name: String,
    /// When it runs.
    pub(crate) phase: Phase,
    /// The interpreter and its arguments (`/bin/sh` by default).
    pub(crate) interpreter: Vec<String>,
    /// The script text.
    pub(crate) body: String,
    /// `$1`: 1 for an install, 2 for a replacement (upgrade or downgrade) of a base package;
    /// none (0) for a file trigger.
    pub(crate) arg: u32,
    /// For a file trigger: the path prefixes it watches.
    pub(crate) patterns: Vec<String>,
}

/// The `%transfiletriggerin` scriptlets of a package, from its header: lua ones are refused as
/// upstream refuses them.
pub(crate) fn file_triggers_of_package(
    header: &[u8],
    nevra: &str,
    name: &str,
) -> Result<Vec<Script>> {
    let meta = rpm::PackageMetadata::parse(&mut Cursor::new(header))
        .map_err(|e| anyhow!("{nevra}: reading the package header: {e}"))?;
    let triggers = meta.get_trans_file_triggers().unwrap_or_default();
    let mut out = Vec::new();
    for t in triggers {
        let patterns: Vec<String> = t
            .conditions
            .iter()
            .filter(|c| c.flags.contains(rpm::DependencyFlags::TRIGGERIN))
            .map(|c| c.name.clone())
            .collect();
        if patterns.is_empty() {
            continue;
        }
        out.push(Script {
            nevra: nevra.to_owned(),
            name: name.to_owned(),
            phase: Phase::FileTriggerIn,
            interpreter: if t.program.is_empty() {
                vec!["/bin/sh".to_owned()]
            } else {
                t.program
            },
            body: t.script,
            arg: 0,
            patterns,
        });
    }
    Ok(out)
}

/// A file trigger of a base package, as the package helper read it from the base's rpmdb.
pub(crate) fn from_base_trigger(t: rpmostree_dnf::FileTrigger) -> Script {
    Script {
        nevra: t.nevra,
        name: t.package,
        phase: Phase::FileTriggerIn,
        interpreter: if t.interpreter.is_empty() {
            vec!["/bin/sh".to_owned()]
        } else {
            t.interpreter
        },
        body: t.script,
        arg: 0,
        patterns: t.patterns,
    }
}

/// The paths (absolute, as in the running system) of the files at or under `pattern` in the
/// tree, never following symlinks; directories themselves are not listed.
fn matching_files(root: &Path, pattern: &str) -> Vec<String> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
        let path = root.join(rel);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            return;
        };
        if meta.is_dir() {
            let Ok(entries) = fs::read_dir(&path) else {
                return;
            };
            let mut names: Vec<_> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for name in names {
                walk(root, &rel.join(name), out);
            }
        } else {
            out.push(format!("/{}", rel.display()));
        }
    }
    let rel = pattern.trim_start_matches('/');
    let mut out = Vec::new();
    if rel.is_empty()
        || Path::new(rel)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return out;
    }
    // Never through a symlink in the tree (it could point out of it).
    if super::pkgcache::check_parents(root, Path::new(rel)).is_ok() {
        walk(root, Path::new(rel), &mut out);
    }
    out
}

/// Scriptlets upstream never runs (its ignore list), as `<name>.<phase>`.
const IGNORED: &[&str] = &[
    "glibc.%prein",
    "bash.%post",
    "systemd.%transfiletriggerin",
    "kernel-core.%posttrans",
    "kernel.%posttrans",
];

/// The scriptlets of a package, from its header (the lead, signature header and header);
/// `arg` is their `$1`.
pub(crate) fn of_package(header: &[u8], nevra: &str, name: &str, arg: u32) -> Result<Vec<Script>> {
    let meta = rpm::PackageMetadata::parse(&mut Cursor::new(header))
        .map_err(|e| anyhow!("{nevra}: reading the package header: {e}"))?;
    let mut out = Vec::new();
    for (phase, script) in [
        (Phase::Pre, meta.get_pre_install_script()),
        (Phase::Post, meta.get_post_install_script()),
        (Phase::Posttrans, meta.get_post_trans_script()),
    ] {
        let Ok(script) = script else { continue };
        if IGNORED.contains(&format!("{name}.{}", phase.name()).as_str()) {
            continue;
        }
        let interpreter = script
            .program
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".to_owned()]);
        if interpreter.first().is_some_and(|p| p == "<lua>") {
            // Import refused lua unless it opted out with `-- rpm-ostree-skip`.
            continue;
        }
        if script.script.trim().is_empty() && interpreter.len() == 1 {
            continue;
        }
        out.push(Script {
            nevra: nevra.to_owned(),
            name: name.to_owned(),
            phase,
            interpreter,
            body: script.script,
            arg,
            patterns: Vec::new(),
        });
    }
    Ok(out)
}

/// A `rofiles-fuse --copyup` mount, unmounted on drop. rofiles-fuse runs in the foreground as
/// the daemon's child under `setpriv --pdeathsig KILL`, so a daemon killed in the middle of a
/// scriptlet leaves no FUSE server behind (only a dead mount, which the next assembly's sweep
/// unmounts).
struct Rofiles {
    mount: PathBuf,
    child: Option<std::process::Child>,
}

/// How long a rofiles-fuse mount may take to appear.
const MOUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

impl Rofiles {
    fn mount(source: &Path, mount: PathBuf) -> Result<Self> {
        use std::os::unix::fs::MetadataExt;
        fs::create_dir_all(&mount).with_context(|| format!("creating {}", mount.display()))?;
        let before = fs::metadata(&mount)?.dev();
        let log = mount.with_extension("log");
        let child = Command::new("setpriv")
            .args([
                "--pdeathsig",
                "KILL",
                "--",
                "rofiles-fuse",
                "-f",
                "--copyup",
            ])
            .arg(source)
            .arg(&mount)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .spawn()
            .context("running rofiles-fuse (from the ostree package) under setpriv")?;
        let mut this = Self {
            mount,
            child: Some(child),
        };
        let started = std::time::Instant::now();
        loop {
            if fs::metadata(&this.mount).is_ok_and(|m| m.dev() != before) {
                return Ok(this);
            }
            let exited = this
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || started.elapsed() > MOUNT_TIMEOUT {
                let text = fs::read_to_string(&log).unwrap_or_default();
                this.child.take().map(|mut c| {
                    let _ = c.kill();
                    c.wait()
                });
                bail!(
                    "rofiles-fuse {} did not mount{}",
                    source.display(),
                    if text.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", text.trim())
                    }
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl Drop for Rofiles {
    fn drop(&mut self) {
        unmount(&self.mount);
        if let Some(mut child) = self.child.take() {
            // An unmounted rofiles-fuse exits by itself; do not wait for a stuck one.
            let started = std::time::Instant::now();
            while matches!(child.try_wait(), Ok(None)) && started.elapsed().as_secs() < 5 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir(&self.mount);
        let _ = fs::remove_file(self.mount.with_extension("log"));
    }
}

/// Unmounts `path`, lazily when it is busy or its FUSE server is gone.
pub(crate) fn unmount(path: &Path) {
    let ok = Command::new("umount")
        .arg(path)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(path)
            .stderr(Stdio::null())
            .status();
    }
}

/// The capabilities a script keeps as root (upstream's list).
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_SYS_CHROOT",
    "CAP_SETFCAP",
];

/// Runs `scripts` (already in package order) in the tree `root`, whose `/etc` is at `etc` for
/// the duration (upstream's "tempetc"); `work` is a private scratch directory. A failing script
/// fails with its package, phase, exit status and last lines of output; `cancelled` is polled
/// while a script runs, and a cancel kills it.
pub(crate) fn run(
    root: &Path,
    work: &Path,
    scripts: &[Script],
    cancelled: &dyn Fn() -> bool,
) -> Result<()> {
    if scripts.is_empty() {
        return Ok(());
    }
    for d in ["var/tmp", "run", "tmp", "proc", "dev", "sys"] {
        fs::create_dir_all(root.join(d)).with_context(|| format!("creating {d} in the tree"))?;
    }
    let usr = Rofiles::mount(&root.join("usr"), work.join("rofiles-usr"))?;
    let etc = Rofiles::mount(&root.join("etc"), work.join("rofiles-etc"))?;
    let script_dir = work.join("scripts");
    fs::create_dir_all(&script_dir)?;
    let mut ordered: Vec<&Script> = scripts.iter().collect();
    // Stable: within a phase, the package order given.
    ordered.sort_by_key(|s| s.phase);
    for (i, script) in ordered.into_iter().enumerate() {
        let stdin = if script.phase == Phase::FileTriggerIn {
            if IGNORED.contains(&format!("{}.{}", script.name, script.phase.name()).as_str()) {
                continue;
            }
            let files: Vec<String> = script
                .patterns
                .iter()
                .flat_map(|p| matching_files(root, p))
                .collect();
            if files.is_empty() {
                continue;
            }
            if script.interpreter.first().is_some_and(|p| p == "<lua>") {
                bail!(
                    "Package '{}' has (currently) unsupported script of type '%transfiletriggerin' in lua; see https://github.com/coreos/rpm-ostree/issues/749",
                    script.nevra
                );
            }
            let list = script_dir.join(format!("{i}.files"));
            fs::write(&list, format!("{}\n", files.join("\n")))?;
            Some(list)
        } else {
            None
        };
        let sandbox = Sandbox {
            root,
            usr: &usr.mount,
            etc: &etc.mount,
            dir: &script_dir,
        };
        run_one(sandbox, i, script, stdin.as_deref(), cancelled)?;
    }
    drop(etc);
    drop(usr);
    let _ = fs::remove_dir_all(root.join("var/tmp"));
    let _ = fs::remove_dir_all(root.join("var/lib/rpm-state"));
    Ok(())
}

/// Where scriptlets run: the tree, its `/usr` and `/etc` behind rofiles-fuse, and the
/// directory for script files, their input and their output.
#[derive(Debug, Clone, Copy)]
struct Sandbox<'a> {
    root: &'a Path,
    usr: &'a Path,
    etc: &'a Path,
    dir: &'a Path,
}

fn run_one(
    sandbox: Sandbox<'_>,
    index: usize,
    script: &Script,
    stdin: Option<&Path>,
    cancelled: &dyn Fn() -> bool,
) -> Result<()> {
    let Sandbox {
        root,
        usr,
        etc,
        dir,
    } = sandbox;
    let label = format!("{}.{}", script.name, script.phase.name());
    let file = dir.join(format!("{index}.script"));
    fs::write(&file, &script.body).with_context(|| format!("writing {}", file.display()))?;
    let mut cmd = Command::new("bwrap");
    cmd.arg("--ro-bind").arg(root).arg("/");
    cmd.arg("--bind").arg(usr).arg("/usr");
    cmd.arg("--bind").arg(etc).arg("/etc");
    cmd.args([
        "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/run", "--tmpfs", "/tmp",
    ]);
    cmd.args(["--tmpfs", "/var/tmp", "--tmpfs", "/sys"]);
    for sys in ["block", "bus", "class", "dev", "devices"] {
        let p = format!("/sys/{sys}");
        if Path::new(&p).exists() {
            cmd.args(["--ro-bind", &p, &p]);
        }
    }
    cmd.arg("--ro-bind")
        .arg(&file)
        .arg("/run/rpm-ostree-script");
    cmd.args([
        "--chdir",
        "/",
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-uts",
        "--unshare-ipc",
        "--unshare-cgroup-try",
        "--unshare-net",
        "--cap-drop",
        "ALL",
    ]);
    for cap in CAPS {
        cmd.args(["--cap-add", cap]);
    }
    cmd.args(&script.interpreter);
    cmd.arg("/run/rpm-ostree-script");
    if script.arg != 0 {
        cmd.arg(script.arg.to_string());
    }
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin")
        .env("LANG", "C.UTF-8")
        .env("SYSTEMD_OFFLINE", "1");
    match stdin {
        Some(list) => {
            let f = fs::File::open(list).with_context(|| format!("opening {}", list.display()))?;
            cmd.stdin(f);
        }
        None => {
            cmd.stdin(Stdio::null());
        }
    }
    // Output goes to a file (read afterwards), so that waiting can poll for a cancel.
    let log = dir.join(format!("{index}.log"));
    let out_file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdout(out_file.try_clone()?).stderr(out_file);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {label} of {} (bwrap)", script.nevra))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if cancelled() {
            // bwrap's --die-with-parent takes the script down with it.
            let _ = child.kill();
            let _ = child.wait();
            bail!(crate::sysroot::ops::CANCELLED);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let text = fs::read_to_string(&log).unwrap_or_default();
    for line in text.lines() {
        tracing::info!(target: "rpm-ostree-script", "{label}: {line}");
    }
    if !status.success() {
        let tail: Vec<&str> = text.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let status = status.code().map_or_else(
            || "was killed".to_owned(),
            |c| format!("exited with code {c}"),
        );
        bail!(
            "Running {} for {}: the script {status}{}",
            script.phase.name(),
            script.nevra,
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {}", tail.join("\n"))
            }
        );
    }
    Ok(())
}
