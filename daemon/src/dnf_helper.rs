//! `rpm-ostreed-dnf`: the daemon's helper for everything libdnf does. It reads one request
//! (JSON) on stdin and writes progress, warnings and the answer as JSON lines on stdout (see
//! `rpmostree_dnf::protocol`), then exits. The daemon starts it; it is not meant to be run by
//! hand.

fn main() -> std::process::ExitCode {
    let status = rpmostree_dnf::protocol::serve(std::io::stdin().lock(), std::io::stdout().lock());
    std::process::ExitCode::from(u8::try_from(status).unwrap_or(1))
}
