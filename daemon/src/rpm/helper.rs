//! Talking to `rpm-ostreed-dnf`, the helper that does the libdnf work: one process per
//! request, the request as JSON on its stdin, progress and the answer as JSON lines on its
//! stdout (`rpmostree_dnf::protocol`). The helper is the file next to the running binary, so
//! a caller cannot point the daemon (or `rpm-ostreed db`) at another program.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use rpmostree_dnf::protocol::{Message, Reply, Request};

/// The helper's file name, next to the daemon's binary.
pub(crate) const HELPER: &str = "rpm-ostreed-dnf";

/// How often a running request checks for a cancel.
const POLL: Duration = Duration::from_millis(100);

fn helper_path() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the daemon's own binary")?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("the daemon's binary {} has no directory", exe.display()))?;
    Ok(dir.join(HELPER))
}

/// Kills and reaps the helper if it is still running when the call ends early.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Runs `request` in a new helper process; `on_message` sees progress and warnings as they
/// come; `cancelled` is polled, and a cancel kills the helper and fails the call with
/// "cancelled". Blocks: call it from a blocking thread.
pub(crate) fn call(
    request: &Request,
    on_message: &mut dyn FnMut(&Message),
    cancelled: &dyn Fn() -> bool,
) -> Result<Reply> {
    let path = helper_path()?;
    let mut child = Running(
        Command::new(&path)
            // Nothing of the caller's environment reaches librpm (`~/.rpmmacros` can run
            // shell commands): `rpm-ostreed db` runs as whoever calls the CLI.
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting the package helper {}", path.display()))?,
    );
    let text = serde_json::to_vec(request).context("encoding the package request")?;
    {
        let mut stdin = child
            .0
            .stdin
            .take()
            .ok_or_else(|| anyhow!("the package helper has no stdin"))?;
        stdin
            .write_all(&text)
            .context("sending the request to the package helper")?;
    }
    let stdout = child
        .0
        .stdout
        .take()
        .ok_or_else(|| anyhow!("the package helper has no stdout"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("rpm-helper-reader".into())
        .spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
        .context("starting the package helper's reader")?;
    loop {
        if cancelled() {
            bail!("cancelled");
        }
        match rx.recv_timeout(POLL) {
            Ok(line) => match serde_json::from_str::<Message>(&line) {
                Ok(Message::Reply(reply)) => return Ok(reply),
                Ok(Message::Error(e)) => bail!("{e}"),
                Ok(other) => on_message(&other),
                Err(e) => bail!("the package helper wrote something unexpected ({e}): {line}"),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.0.wait().context("waiting for the package helper")?;
                bail!("the package helper ended without an answer ({status})");
            }
        }
    }
}

/// [`call`] for requests without progress and without a cancel.
pub(crate) fn call_simple(request: &Request) -> Result<Reply> {
    call(request, &mut |_| {}, &|| false)
}

/// The error for an answer of another kind than the request asked for.
pub(crate) fn unexpected(reply: Reply) -> anyhow::Error {
    anyhow!("the package helper answered with {reply:?}")
}
