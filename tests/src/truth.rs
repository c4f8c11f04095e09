//! Ground truth for the package tests, from rpm itself: `rpm -qa` on a checkout of a
//! commit's rpm database, and the changes between two such lists decided by rpm's own version
//! comparison (its Lua `rpm.vercmp`), so no daemon code judges the daemon.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::{Context, HarnessError};
use crate::{PackageChange, Sandbox, process};

/// One installed package: (name, `[E:]V-R`, arch).
pub type QaEntry = (String, String, String);

/// `rpm --root CHECKOUT -qa` for `commit`, whose `/usr/share/rpm` is checked out of the
/// sysroot's repository (or the remote's, when the sysroot does not have it); sorted by name.
pub fn rpm_qa(sb: &Sandbox, commit: &str) -> Result<Vec<QaEntry>, HarnessError> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let root = sb
        .dir()
        .join(format!("truth-{}", N.fetch_add(1, Ordering::Relaxed)));
    let db = root.join("usr/share/rpm");
    std::fs::create_dir_all(root.join("usr/share"))
        .map_err(|e| HarnessError::io("creating", &root, e))?;
    let target = db.to_string_lossy().into_owned();
    let args = [
        "checkout",
        "--subpath=/usr/share/rpm",
        commit,
        target.as_str(),
    ];
    sb.ostree(&args)
        .or_else(|_| sb.ostree_remote(&args))
        .context(format!("checking out the rpmdb of {commit}"))?;
    let out = process::run_ok(
        Command::new("rpm").arg("--root").arg(&root).args([
            "--dbpath",
            "/usr/share/rpm",
            "-qa",
            "--qf",
            "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\n",
        ]),
        Duration::from_secs(60),
    )
    .context(format!("rpm -qa of {commit}"))?;
    let _ = std::fs::remove_dir_all(&root);
    let mut list: Vec<QaEntry> = out
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, epoch, vr, arch) = (f.next()?, f.next()?, f.next()?, f.next()?);
            let evr = if epoch == "0" {
                vr.to_owned()
            } else {
                format!("{epoch}:{vr}")
            };
            Some((name.to_owned(), evr, arch.to_owned()))
        })
        .collect();
    list.sort();
    Ok(list)
}

/// rpm's comparison of two `[E:]V-R` strings, for every pair at once (one `rpm --eval`).
fn vercmp(pairs: &[(String, String)]) -> Result<Vec<i32>, HarnessError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let quote = |s: &str| format!("{s:?}");
    let script: String = pairs
        .iter()
        .map(|(a, b)| format!("print(rpm.vercmp({}, {}) .. ' ') ", quote(a), quote(b)))
        .collect();
    let out = process::run_ok(
        Command::new("rpm")
            .arg("--eval")
            .arg(format!("%{{lua: {script}}}")),
        Duration::from_secs(60),
    )
    .context("rpm's vercmp")?;
    // rpm's Lua `print` adds no newline: the results are separated by spaces.
    out.split_whitespace()
        .map(|l| {
            l.trim()
                .parse()
                .map_err(|_| HarnessError::new(format!("rpm.vercmp printed {l:?}")))
        })
        .collect()
}

/// The changes from `old` to `new` as the diff methods report them — (name, kind: 0 added,
/// 1 removed, 2 upgraded, 3 downgraded, previous NEVRA, new NEVRA) — sorted by kind, then
/// name. Packages are matched by name and architecture.
pub fn package_changes(
    old: &[QaEntry],
    new: &[QaEntry],
) -> Result<Vec<PackageChange>, HarnessError> {
    let nevra = |(n, evr, a): &QaEntry| format!("{n}-{evr}.{a}");
    let key = |e: &QaEntry| (e.0.clone(), e.2.clone());
    let mut out = Vec::new();
    let mut modified = Vec::new();
    for o in old {
        match new.iter().find(|n| key(n) == key(o)) {
            None => out.push((o.0.clone(), 1, Some(nevra(o)), None)),
            Some(n) if n.1 != o.1 => modified.push((o.clone(), n.clone())),
            Some(_) => {}
        }
    }
    for n in new {
        if !old.iter().any(|o| key(o) == key(n)) {
            out.push((n.0.clone(), 0, None, Some(nevra(n))));
        }
    }
    let pairs: Vec<(String, String)> = modified
        .iter()
        .map(|(o, n)| (o.1.clone(), n.1.clone()))
        .collect();
    for ((o, n), cmp) in modified.iter().zip(vercmp(&pairs)?) {
        let kind = if cmp < 0 { 2 } else { 3 };
        out.push((o.0.clone(), kind, Some(nevra(o)), Some(nevra(n))));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

/// [`package_changes`] between the rpm databases of two commits.
pub fn commit_changes(
    sb: &Sandbox,
    from: &str,
    to: &str,
) -> Result<Vec<PackageChange>, HarnessError> {
    package_changes(&rpm_qa(sb, from)?, &rpm_qa(sb, to)?)
}
