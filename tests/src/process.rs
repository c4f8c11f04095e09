//! Child processes with timeouts, signals by pid, and the sweep that finds every process a
//! sandbox left behind.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::HarnessError;

/// What a finished command printed, and how it ended.
#[derive(Debug)]
pub(crate) struct Captured {
    /// Exit status.
    pub(crate) status: ExitStatus,
    /// Standard output, lossily decoded.
    pub(crate) stdout: String,
    /// Standard error, lossily decoded.
    pub(crate) stderr: String,
}

/// `program arg1 arg2 ...`, for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion (stdin closed, stdout and stderr captured); kills it after
/// `timeout`.
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> Result<Captured, HarnessError> {
    let what = describe(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| HarnessError::new(format!("cannot start `{what}`: {e}")))?;
    // Readers on threads, so a chatty child never blocks on a full pipe; a channel, so a
    // grandchild that keeps a pipe open cannot block us either.
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    if let Some(mut out) = child.stdout.take() {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            let _ = tx.send((true, buf));
        });
    }
    if let Some(mut err) = child.stderr.take() {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            let _ = tx.send((false, buf));
        });
    }
    drop(tx);
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(HarnessError::new(format!("waiting for `{what}`: {e}"))),
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            let (stdout, stderr) = collect(&rx, Duration::from_millis(500));
            return Err(HarnessError::new(format!(
                "`{what}` did not finish within {}s and was killed\nstdout: {stdout}\nstderr: {stderr}",
                timeout.as_secs_f32()
            )));
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    let (stdout, stderr) = collect(&rx, Duration::from_secs(2));
    Ok(Captured {
        status,
        stdout,
        stderr,
    })
}

/// Gathers what the reader threads read, waiting at most `grace` for them.
fn collect(rx: &mpsc::Receiver<(bool, Vec<u8>)>, grace: Duration) -> (String, String) {
    let deadline = Instant::now() + grace;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, b)) => stdout = b,
            Ok((false, b)) => stderr = b,
            Err(_) => break,
        }
    }
    (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Runs `cmd` and returns its stdout; a non-zero exit is an error carrying stderr.
pub(crate) fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<String, HarnessError> {
    let what = describe(cmd);
    let out = run(cmd, timeout)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(HarnessError::new(format!(
            "`{what}` failed ({}): {}{}",
            out.status,
            out.stderr.trim_end(),
            if out.stdout.trim().is_empty() {
                String::new()
            } else {
                format!("\nstdout: {}", out.stdout.trim_end())
            }
        )))
    }
}

/// Polls `check` until it returns `Ok(true)`, for at most `timeout`. An `Err` from `check`
/// ends the wait at once.
pub(crate) fn wait_for(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool, HarnessError>,
) -> Result<(), HarnessError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if check()? {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(HarnessError::new(format!(
                "timed out after {:.1}s waiting for {what}",
                timeout.as_secs_f32()
            )));
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Sends `signal` (a number, e.g. 15) to `pid` with kill(1).
pub(crate) fn signal(pid: u32, signal: i32) -> Result<(), HarnessError> {
    run_ok(
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string()),
        Duration::from_secs(10),
    )
    .map(drop)
}

/// Whether `pid` is a live process (a zombie counts as gone: it holds no resources).
pub(crate) fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => match stat.rfind(')') {
            Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        Err(_) => false,
    }
}

/// Sends SIGTERM to `pid`, waits up to `grace` for it to go, then SIGKILL (waiting again).
pub(crate) fn terminate(pid: u32, grace: Duration) -> Result<(), HarnessError> {
    if !alive(pid) {
        return Ok(());
    }
    let _ = signal(pid, 15);
    if wait_for(&format!("pid {pid} to exit"), grace, || Ok(!alive(pid))).is_ok() {
        return Ok(());
    }
    let _ = signal(pid, 9);
    wait_for(
        &format!("pid {pid} to exit after SIGKILL"),
        Duration::from_secs(5),
        || Ok(!alive(pid)),
    )
}

/// Whether `hay` mentions the path `dir` itself or something below it (not merely a
/// sibling that shares the prefix, like `...-1` versus `...-10`).
fn mentions(hay: &[u8], dir: &[u8]) -> bool {
    if dir.is_empty() || hay.len() < dir.len() {
        return false;
    }
    hay.windows(dir.len())
        .enumerate()
        .any(|(i, w)| w == dir && !hay.get(i + dir.len()).is_some_and(u8::is_ascii_digit))
}

/// Every process other than this one that belongs to the sandbox in `dir`: one whose
/// command line, environment (the sandbox bus address), root directory or executable points
/// into `dir`. Live processes only.
pub(crate) fn processes_of(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || !alive(pid) {
            continue;
        }
        let base = entry.path();
        let points_inside =
            |link: &str| fs::read_link(base.join(link)).is_ok_and(|p| p.starts_with(dir));
        let file_mentions =
            |file: &str| fs::read(base.join(file)).is_ok_and(|bytes| mentions(&bytes, needle));
        // The environment counts only for processes the sandbox's bus activated (dbus-daemon
        // sets DBUS_STARTER_ADDRESS for them): a user's shell that merely exported the
        // sandbox's bus address must survive the teardown.
        let activated_here = || {
            fs::read(base.join("environ")).is_ok_and(|bytes| {
                mentions(&bytes, needle) && mentions(&bytes, b"DBUS_STARTER_ADDRESS=")
            })
        };
        if points_inside("root")
            || points_inside("exe")
            || file_mentions("cmdline")
            || activated_here()
        {
            found.push(pid);
        }
    }
    found
}

/// Mount points in this process's mount namespace at or below `dir`, deepest first.
pub(crate) fn mounts_under(dir: &Path) -> Vec<String> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<String> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|mp| Path::new(mp).starts_with(dir))
        .map(str::to_owned)
        .collect();
    found.sort_by_key(|mp| std::cmp::Reverse(mp.len()));
    found
}

/// Whether an executable named `name` is on `PATH` (or the usual system dirs).
pub(crate) fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = OsStr::new("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    std::env::split_paths(&path)
        .chain(std::env::split_paths(extra))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Whether `path` is a regular file with an execute bit.
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A free loopback port (bound, then released).
pub(crate) fn free_port() -> Result<u16, HarnessError> {
    let l = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| HarnessError::new(format!("finding a free port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| HarnessError::new(format!("finding a free port: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_respects_path_boundaries() {
        let dir = b"/tmp/rpmostree-sandbox-5-1";
        assert!(mentions(b"x=/tmp/rpmostree-sandbox-5-1/bus", dir));
        assert!(mentions(b"/tmp/rpmostree-sandbox-5-1", dir));
        assert!(mentions(b"a\0/tmp/rpmostree-sandbox-5-1\0", dir));
        assert!(!mentions(b"/tmp/rpmostree-sandbox-5-10/bus", dir));
        assert!(!mentions(b"/tmp/other", dir));
    }

    #[test]
    fn run_captures_and_times_out() {
        let out = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(out.status.code(), Some(3));
        let e = run_ok(
            Command::new("sh").args(["-c", "echo bad >&2; exit 1"]),
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(e.message().contains("bad"), "{e}");
        let e = run(Command::new("sleep").arg("5"), Duration::from_millis(100)).unwrap_err();
        assert!(e.message().contains("did not finish"), "{e}");
    }

    #[test]
    fn alive_sees_self_and_not_nonsense() {
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX));
    }
}
