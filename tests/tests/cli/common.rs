//! Helpers of the CLI system tests: sandboxes, running the real `rpm-ostree` binary with a
//! timeout (as root or as the test user), golden files with a normaliser for volatile
//! fields, and a runtime for the few steps that talk D-Bus directly.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rpmostree_tests::{Sandbox, SandboxOptions};
use serde_json::Value;

/// The OS object of the fixture's stateroot.
pub const OS_PATH: &str = "/org/projectatomic/rpmostree1/testos";
/// How long one CLI invocation may take.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(180);
/// The line printed when the next boot changes.
pub const QUEUED: &str = "Changes queued for next boot. Run \"systemctl reboot\" to start a reboot";

/// Starts a sandbox, or returns `None` when the test must be skipped (not root, outside CI;
/// under `CI=true` that panics instead).
pub fn sandbox(name: &str, options: SandboxOptions) -> Option<Sandbox> {
    if !rpmostree_tests::root_or_skip(name) {
        return None;
    }
    Some(Sandbox::start(options).expect("the sandbox starts"))
}

/// The CLI binary under test (next to this test executable).
pub fn cli_bin() -> PathBuf {
    let bin = rpmostree_tests::target_bin("rpm-ostree");
    assert!(
        bin.is_file(),
        "no CLI binary at {}: build it with `cargo build -p rpm-ostree`",
        bin.display()
    );
    bin
}

/// What a finished command did.
#[derive(Debug)]
pub struct Output {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Output {
    /// Both streams, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit code {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion, killing it (and failing) after `timeout`.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code(),
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// Runs the CLI as root against the sandbox's bus.
pub fn cli(sb: &Sandbox, args: &[&str]) -> Output {
    let mut cmd = sb.command(cli_bin().to_str().expect("utf-8 path"));
    cmd.args(args);
    run_with_timeout(cmd, CLI_TIMEOUT)
}

/// Runs the CLI as root and asserts it succeeded; returns its stdout.
#[track_caller]
pub fn cli_ok(sb: &Sandbox, args: &[&str]) -> String {
    let out = cli(sb, args);
    assert_eq!(
        out.code,
        Some(0),
        "rpm-ostree {args:?} failed\n{}\ndaemon log:\n{}",
        out.describe(),
        tail(&sb.daemon_log(), 40)
    );
    out.stdout
}

/// The CLI copied where the test user may run it, then run as the test user.
pub fn cli_as_test_user(sb: &Sandbox, args: &[&str]) -> Output {
    let bin = sb.install_binary(&cli_bin()).expect("installing the CLI");
    let mut cmd = sb.command_as_test_user(bin.to_str().expect("utf-8 path"));
    cmd.args(args);
    run_with_timeout(cmd, CLI_TIMEOUT)
}

/// The last `n` lines of a log.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `ostree admin status` run inside the fake-booted deployment, parsed: the ground truth of a
/// fake-booted sandbox (it sees the booted deployment and, through the fake boot's `/run`,
/// the staged one, which `ostree admin status` from outside cannot).
pub fn booted_admin(sb: &Sandbox) -> Vec<rpmostree_tests::AdminDeployment> {
    let text = sb
        .run_fake_booted(&["ostree", "admin", "status"])
        .expect("ostree admin status in the fake boot");
    rpmostree_tests::parse_admin_status(&text)
}

/// Versions of the deployments according to `ostree admin status`, in order.
pub fn admin_versions(sb: &Sandbox) -> Vec<String> {
    sb.admin_deployments()
        .expect("ostree admin status")
        .into_iter()
        .map(|d| d.version.unwrap_or_default())
        .collect()
}

/// A runtime for the steps that talk D-Bus directly, with a hard timeout.
pub fn block_on<F: std::future::Future>(timeout: Duration, future: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        tokio::time::timeout(timeout, future)
            .await
            .expect("finished in time")
    })
}

/// Parses the CLI's `status --json`.
pub fn status_json(sb: &Sandbox) -> Value {
    let text = cli_ok(sb, &["status", "--json"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("status --json: {e}\n{text}"))
}

// ---------------------------------------------------------------------------------------
// Golden files

/// The directory of the golden files.
pub fn golden_dir() -> PathBuf {
    rpmostree_tests::workspace_root()
        .join("tests")
        .join("golden")
}

/// Compares `actual` (already normalised) with `tests/golden/<name>`; with `UPDATE_GOLDEN=1`
/// writes it instead.
#[track_caller]
pub fn assert_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(golden_dir()).expect("creating tests/golden");
        std::fs::write(&path, actual).expect("writing the golden file");
        eprintln!("blessed {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e}\nrun with UPDATE_GOLDEN=1 to create it; the output was:\n{actual}",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs (run with UPDATE_GOLDEN=1 to bless an intended change)\n{}",
        path.display(),
        diff(&expected, actual)
    );
}

/// A line diff, good enough for assertion messages.
fn diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => out.push_str(&format!("  {x}\n")),
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("- {x}\n"));
                }
                if let Some(y) = y {
                    out.push_str(&format!("+ {y}\n"));
                }
            }
        }
    }
    out
}

/// Normalises volatile parts of CLI output: 64-hex checksums become `<CHECKSUM-n>` (numbered
/// by first appearance, so equal checksums stay equal), ISO timestamps `<TIMESTAMP>`, unique
/// bus names `<BUS-NAME>`, the sandbox directory `<SANDBOX>`, deployment serials after a
/// checksum `.<SERIAL>`.
pub fn normalise_text(text: &str, sandbox_dir: &Path) -> String {
    let text = text.replace(&sandbox_dir.display().to_string(), "<SANDBOX>");
    let text = replace_checksums(&text);
    let text = replace_timestamps(&text);
    let text = replace_bus_names(&text);
    replace_serials(&text)
}

/// Normalises `status --json`: timestamps, serials and unique bus names by key, then the
/// textual replacements of [`normalise_text`].
pub fn normalise_json(text: &str, sandbox_dir: &Path) -> String {
    let mut value: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON ({e}):\n{text}"));
    normalise_value(&mut value, None);
    let pretty = serde_json::to_string_pretty(&value).expect("serialising JSON");
    normalise_text(&pretty, sandbox_dir) + "\n"
}

fn normalise_value(value: &mut Value, key: Option<&str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                normalise_value(v, Some(k));
            }
        }
        Value::Array(items) => {
            for item in items {
                normalise_value(item, key);
            }
        }
        Value::Number(_) => {
            if let Some(k) = key
                && (k.ends_with("timestamp") || k == "serial")
            {
                *value = Value::from(format!("<{}>", k.to_uppercase()));
            }
        }
        _ => {}
    }
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn replace_checksums(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if is_hex(bytes[i]) && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let mut j = i;
            while j < bytes.len() && is_hex(bytes[j]) {
                j += 1;
            }
            if j - i == 64 && (j == bytes.len() || !bytes[j].is_ascii_alphanumeric()) {
                let next = seen.len() + 1;
                let n = *seen.entry(&text[i..j]).or_insert(next);
                out.push_str(&format!("<CHECKSUM-{n}>"));
                i = j;
                continue;
            }
            out.push_str(&text[i..j]);
            i = j;
            continue;
        }
        let ch = text[i..].chars().next().expect("a char");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn replace_timestamps(text: &str) -> String {
    // YYYY-MM-DDTHH:MM:SSZ
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:ddZ";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let fits = bytes.len() - i >= SHAPE.len()
            && SHAPE.iter().zip(&bytes[i..]).all(|(s, b)| match s {
                b'd' => b.is_ascii_digit(),
                other => other == b,
            });
        if fits {
            out.push_str("<TIMESTAMP>");
            i += SHAPE.len();
            continue;
        }
        let ch = text[i..].chars().next().expect("a char");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn replace_bus_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(":1.") {
        let after = &rest[pos + 3..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..pos]);
        if digits > 0 {
            out.push_str("<BUS-NAME>");
            rest = &after[digits..];
        } else {
            out.push_str(":1.");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn replace_serials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(">.") {
        let after = &rest[pos + 2..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..pos + 2]);
        if digits > 0 && rest[..pos].ends_with(|c: char| c.is_ascii_digit()) {
            out.push_str("<SERIAL>");
            rest = &after[digits..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn the_normaliser_replaces_volatile_fields() {
    let a = "a".repeat(64);
    let b = "0123456789abcdef".repeat(4);
    let text = format!(
        "Commit: {a}\nid testos-{b}.3 {a}\nVersion: 1.0 (2024-05-06T07:08:09Z)\nby :1.42\n"
    );
    assert_eq!(
        normalise_text(&text, Path::new("/tmp/x")),
        "Commit: <CHECKSUM-1>\nid testos-<CHECKSUM-2>.<SERIAL> <CHECKSUM-1>\nVersion: 1.0 (<TIMESTAMP>)\nby <BUS-NAME>\n"
    );
    let json =
        format!("{{\"deployments\":[{{\"timestamp\":12,\"serial\":0,\"checksum\":\"{a}\"}}]}}");
    let n = normalise_json(&json, Path::new("/tmp/x"));
    assert!(n.contains("\"<TIMESTAMP>\""), "{n}");
    assert!(n.contains("\"<SERIAL>\""), "{n}");
    assert!(n.contains("<CHECKSUM-1>"), "{n}");
}
