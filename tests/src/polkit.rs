//! The real polkitd for a sandbox: bus-activated through a wrapper that gives it a private
//! mount namespace in which the sandbox's actions and rules replace the host's.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::HarnessError;
use crate::process;
use crate::shell_quote;

/// Where polkitd lives on Debian 12 (there is no /usr/libexec/polkitd there).
pub(crate) const POLKITD: &str = "/usr/lib/polkit-1/polkitd";
/// The directories polkitd reads; fixed at build time, no option changes them.
pub(crate) const HOST_ACTIONS: &str = "/usr/share/polkit-1/actions";
/// Rules of the administrator.
pub(crate) const HOST_ETC_RULES: &str = "/etc/polkit-1/rules.d";
/// Rules of the distribution.
pub(crate) const HOST_SHARE_RULES: &str = "/usr/share/polkit-1/rules.d";

/// What `pkcheck` answered for one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolkitAnswer {
    /// Exit 0: authorized.
    Authorized,
    /// Exit 1: not authorized.
    NotAuthorized,
    /// Exit 2: only with authentication (there is never an agent in the sandbox).
    Challenge,
}

/// Paths of polkit's part of a sandbox.
#[derive(Debug, Clone)]
pub(crate) struct PolkitPaths {
    /// `DIR/polkit`.
    pub(crate) root: PathBuf,
    /// Bound over `/usr/share/polkit-1/actions`.
    pub(crate) actions: PathBuf,
    /// Bound over `/etc/polkit-1/rules.d`: the test's grant rules.
    pub(crate) rules: PathBuf,
    /// Bound over `/usr/share/polkit-1/rules.d`: a copy of the distribution's default rules.
    pub(crate) share_rules: PathBuf,
    /// polkitd's output.
    pub(crate) log: PathBuf,
    /// The script that the activation file runs.
    pub(crate) wrapper: PathBuf,
    /// The activation file in the bus's service directory.
    pub(crate) activation_file: PathBuf,
}

impl PolkitPaths {
    pub(crate) fn new(dir: &Path, services: &Path) -> Self {
        let root = dir.join("polkit");
        Self {
            actions: root.join("actions"),
            rules: root.join("rules.d"),
            share_rules: root.join("share-rules.d"),
            log: root.join("polkitd.log"),
            wrapper: dir.join("bin").join("run-polkitd"),
            activation_file: services.join("org.freedesktop.PolicyKit1.service"),
            root,
        }
    }
}

fn mkdir_readable(dir: &Path) -> Result<(), HarnessError> {
    fs::create_dir_all(dir).map_err(|e| HarnessError::io("creating", dir, e))?;
    // polkitd switches to user polkitd: everything it reads must be world-readable.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| HarnessError::io("chmod", dir, e))
}

/// Writes a file with mode 0644 (or 0755 when `exec`).
pub(crate) fn write_file(path: &Path, text: &str, exec: bool) -> Result<(), HarnessError> {
    fs::write(path, text).map_err(|e| HarnessError::io("writing", path, e))?;
    let mode = if exec { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| HarnessError::io("chmod", path, e))
}

/// Creates the directories, the project's action file, the default rules, the wrapper and
/// the activation file.
pub(crate) fn setup(paths: &PolkitPaths, project_policy: &str) -> Result<(), HarnessError> {
    for d in [
        &paths.root,
        &paths.actions,
        &paths.rules,
        &paths.share_rules,
    ] {
        mkdir_readable(d)?;
    }
    write_file(
        &paths.actions.join("org.projectatomic.rpmostree1.policy"),
        project_policy,
        false,
    )?;
    // The distribution's default rules (on Debian: members of group sudo are administrators),
    // so auth_admin behaves as on the host.
    let default_rules = Path::new(HOST_SHARE_RULES).join("50-default.rules");
    if let Ok(text) = fs::read_to_string(&default_rules) {
        write_file(&paths.share_rules.join("50-default.rules"), &text, false)?;
    }
    let wrapper = format!(
        "#!/bin/sh\n\
         # Started by the sandbox bus for org.freedesktop.PolicyKit1. polkitd reads fixed paths,\n\
         # so it runs in a private mount namespace with this sandbox's directories over them.\n\
         exec >>{log} 2>&1\n\
         exec unshare --mount --propagation private sh -c 'set -e\n\
         mount --bind \"$1\" {actions}\n\
         mount --bind \"$2\" {etc_rules}\n\
         mount --bind \"$3\" {share_rules}\n\
         shift 3\n\
         exec {polkitd} \"$@\"' run-polkitd {a} {r} {s} \"$@\"\n",
        log = shell_quote(&paths.log),
        actions = HOST_ACTIONS,
        etc_rules = HOST_ETC_RULES,
        share_rules = HOST_SHARE_RULES,
        polkitd = POLKITD,
        a = shell_quote(&paths.actions),
        r = shell_quote(&paths.rules),
        s = shell_quote(&paths.share_rules),
    );
    write_file(&paths.wrapper, &wrapper, true)?;
    install_activation_file(paths)
}

/// Writes the activation file (Exec= is the wrapper: no quotes, no arguments).
pub(crate) fn install_activation_file(paths: &PolkitPaths) -> Result<(), HarnessError> {
    let text = format!(
        "[D-BUS Service]\nName=org.freedesktop.PolicyKit1\nExec={}\nUser=root\n",
        paths.wrapper.display()
    );
    write_file(&paths.activation_file, &text, false)
}

/// The text of a rules file that answers YES for `actions` when asked about `user`.
pub(crate) fn grant_rules(user: &str, actions: &[&str]) -> String {
    let list = actions
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "// Written by the rpm-ostree test harness: grants to the sandbox's test user.\n\
         polkit.addRule(function(action, subject) {{\n\
         \x20   var granted = [{list}];\n\
         \x20   if (subject.user == {user:?} && granted.indexOf(action.id) >= 0) {{\n\
         \x20       return polkit.Result.YES;\n\
         \x20   }}\n\
         }});\n"
    )
}

/// Asks polkit, with `pkcheck` running as `uid`/`gid`, whether that very process is
/// authorized for `action`.
pub(crate) fn pkcheck_as(
    bus_address: &str,
    uid: u32,
    gid: u32,
    action: &str,
) -> Result<PolkitAnswer, HarnessError> {
    let mut cmd = Command::new("setpriv");
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus_address)
        .current_dir("/")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .args(["--init-groups", "sh", "-c"])
        // $$ is the shell, which exec turns into pkcheck: the subject is pkcheck itself.
        .arg("exec pkcheck --action-id \"$1\" --process $$")
        .args(["pkcheck-as-test-user", action]);
    let out = process::run(&mut cmd, Duration::from_secs(30))?;
    match out.status.code() {
        Some(0) => Ok(PolkitAnswer::Authorized),
        Some(1) => Ok(PolkitAnswer::NotAuthorized),
        Some(2) => Ok(PolkitAnswer::Challenge),
        _ => Err(HarnessError::new(format!(
            "pkcheck --action-id {action} as uid {uid} failed ({}): {}",
            out.status,
            out.stderr.trim_end()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_rule_lists_actions_and_user() {
        let r = grant_rules("rpmostree-test", &["a.b.c", "d.e"]);
        assert!(r.contains(r#"var granted = ["a.b.c", "d.e"];"#), "{r}");
        assert!(r.contains(r#"subject.user == "rpmostree-test""#), "{r}");
        assert!(r.contains("polkit.Result.YES"), "{r}");
    }
}
