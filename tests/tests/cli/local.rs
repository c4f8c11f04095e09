//! What the CLI does without a daemon: completions, man pages, usage errors, and the error
//! when rpm-ostreed cannot be reached. No root needed.

use std::process::Command;
use std::time::Duration;

use crate::common::*;

fn local(args: &[&str]) -> Output {
    let mut cmd = Command::new(cli_bin());
    cmd.args(args).env(
        "DBUS_SYSTEM_BUS_ADDRESS",
        "unix:path=/nonexistent/rpmostree-test-bus",
    );
    run_with_timeout(cmd, Duration::from_secs(60))
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = local(&["completions", shell]);
        assert_eq!(out.code, Some(0), "{}", out.describe());
        assert!(
            out.stdout.contains("rpm-ostree"),
            "{shell}: {}",
            out.describe()
        );
        for verb in ["status", "upgrade", "kargs", "finalize-deployment"] {
            assert!(out.stdout.contains(verb), "{shell} lacks {verb}");
        }
    }
}

#[test]
fn man_pages_are_written_for_each_command() {
    let dir = std::env::temp_dir().join(format!("rpmostree-cli-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = local(&["man", dir.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    for page in ["rpm-ostree.1", "rpm-ostree-status.1", "rpm-ostree-kargs.1"] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
    assert!(
        !dir.join("rpm-ostree-completions.1").exists(),
        "hidden commands get no page"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let out = local(&["cleanup"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stderr.contains("--pending"), "{}", out.describe());
    let out = local(&["no-such-verb"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    let out = local(&["--help"]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(out.stdout.contains("status"), "{}", out.describe());
}

#[test]
fn an_unreachable_daemon_is_reported_clearly() {
    let out = local(&["status"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr
            .contains("rpm-ostreed could not be reached on the system bus"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("/nonexistent/rpmostree-test-bus"),
        "{}",
        out.describe()
    );
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .count(),
        1
    );
}
