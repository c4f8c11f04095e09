//! Every xtask answers `--help` with its usage and exits 0; an unknown task fails.

use std::process::Command;

fn xtask(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("running xtask");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn help_lists_the_tasks_and_each_task_explains_itself() {
    let (ok, text) = xtask(&["--help"]);
    assert!(ok, "{text}");
    let tasks = [
        "codegen", "test", "demo", "install", "sandbox", "api-diff", "bench",
    ];
    for task in tasks {
        assert!(text.contains(task), "{task} missing from:\n{text}");
        let (ok, text) = xtask(&[task, "--help"]);
        assert!(ok, "{task} --help failed:\n{text}");
        assert!(
            text.starts_with(&format!("usage: cargo xtask {task}")),
            "{text}"
        );
    }
    let (ok, text) = xtask(&["no-such-task"]);
    assert!(!ok);
    assert!(text.contains("unknown task"), "{text}");
}
