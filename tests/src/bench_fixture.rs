//! Package-side benchmark fixtures: synthetic OS images of thousands of real (header-only)
//! packages, built in one `rpmbuild` run per package set and cached
//! ([`crate::rpms::build_rpm_set`]), committed to a sandbox's remote with or without the
//! `rpmostree.rpmdb.pkglist` metadata, and deployed.
//!
//! An image of `count` packages is `pkg0000`… at 1.0-1 ([`bench_image`] with `new: false`);
//! its update upgrades every tenth package to 1.1, downgrades those ending in 03 to 0.9,
//! removes those ending in 07 and adds `extra0000`… (one per hundred packages, at least one).
//! The images of a smaller `count` are subsets of the larger ones, so one build serves all.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::HarnessError;
use crate::rpms::{self, RpmSpec};
use crate::sandbox::Sandbox;

/// The longest `rpmostree.rpmdb.pkglist` text passed on a command line (Linux refuses a single
/// argument of 128 KiB or more).
const MAX_ARG: usize = 120 * 1024;

/// The packages of the benchmark image of `count` packages, or of its update (`new`).
pub fn bench_image(count: usize, new: bool) -> Vec<RpmSpec> {
    let package = |name: String, version: &str| {
        let summary = format!("Benchmark package {name}");
        RpmSpec::new(&name, version, "1").summary(&summary)
    };
    let mut set = Vec::with_capacity(count + count / 100 + 1);
    for i in 0..count {
        let name = format!("pkg{i:04}");
        let version = match (new, i % 100, i % 10) {
            (false, _, _) => "1.0",
            (true, 7, _) => continue,
            (true, 3, _) => "0.9",
            (true, _, 0) => "1.1",
            (true, _, _) => "1.0",
        };
        set.push(package(name, version));
    }
    if new {
        for j in 0..(count / 100).max(1) {
            set.push(package(format!("extra{j:04}"), "1.0"));
        }
    }
    set
}

/// How many package changes lie between the image of `count` packages and its update:
/// upgrades, downgrades, removals and additions.
pub fn bench_image_changes(count: usize) -> usize {
    let old = bench_image(count, false);
    let new = bench_image(count, true);
    let versions: HashMap<&str, &str> = old
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    let changed = new
        .iter()
        .filter(|p| versions.get(p.name.as_str()) != Some(&p.version.as_str()))
        .count();
    let kept: std::collections::HashSet<&str> = new.iter().map(|p| p.name.as_str()).collect();
    changed
        + old
            .iter()
            .filter(|p| !kept.contains(p.name.as_str()))
            .count()
}

/// The built packages of the benchmark images up to some size.
#[derive(Debug, Clone)]
pub struct BenchPackages {
    /// Package files by NEVRA.
    files: HashMap<String, PathBuf>,
}

impl BenchPackages {
    /// Builds (or takes from the cache) every package of the images of up to `max` packages
    /// and their updates: two `rpmbuild` runs the first time on a machine (under a minute
    /// for 2,000 packages), none later.
    pub fn build(max: usize) -> Result<Self, HarnessError> {
        let old = bench_image(max, false);
        let known: std::collections::HashSet<String> = old.iter().map(RpmSpec::nevra).collect();
        let update: Vec<RpmSpec> = bench_image(max, true)
            .into_iter()
            .filter(|p| !known.contains(&p.nevra()))
            .collect();
        let mut files = HashMap::new();
        for set in [old, update] {
            let paths = rpms::build_rpm_set(&set)?;
            files.extend(set.iter().map(RpmSpec::nevra).zip(paths));
        }
        Ok(Self { files })
    }

    /// The package files of `specs`, in order; an error names a package not built.
    pub fn files(&self, specs: &[RpmSpec]) -> Result<Vec<PathBuf>, HarnessError> {
        specs
            .iter()
            .map(|s| {
                self.files.get(&s.nevra()).cloned().ok_or_else(|| {
                    HarnessError::new(format!("{} was not built for the benchmark", s.nevra()))
                })
            })
            .collect()
    }
}

/// A work tree to commit package images from: a copy of the fixture's OS (kernel, `/usr/etc`
/// with its `.repo` file, os-release) whose rpm database is replaced for each commit. It lives
/// in the sandbox's directory and goes with it.
#[derive(Debug)]
pub struct ImageTree {
    dir: PathBuf,
}

impl ImageTree {
    /// Checks out `base` (a branch of the sandbox's remote, e.g. the stable branch) as the
    /// work tree `DIR/bench-tree`.
    pub fn new(sb: &Sandbox, base: &str) -> Result<Self, HarnessError> {
        let dir = sb.dir().join("bench-tree");
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| HarnessError::io("removing", &dir, e))?;
        }
        let target = dir.display().to_string();
        sb.ostree_remote(&["checkout", "-U", base, &target])
            .map_err(|e| e.context(format!("checking out {base} for the benchmark images")))?;
        Ok(Self { dir })
    }

    /// The work tree.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Commits the tree with the rpm database of `specs` (whose package files are `files`) to
    /// `branch` of the sandbox's remote, with the `rpmostree.rpmdb.pkglist` metadata a compose
    /// writes when `pkglist`; returns the checksum.
    pub fn commit(
        &self,
        sb: &Sandbox,
        branch: &str,
        version: &str,
        specs: &[RpmSpec],
        files: &[PathBuf],
        pkglist: bool,
    ) -> Result<String, HarnessError> {
        rpms::install_rpmdb(&self.dir, files)?;
        let mut args = vec![
            "commit".to_owned(),
            format!("--branch={branch}"),
            format!("--subject=Benchmark image {version}"),
            format!("--add-metadata-string=version={version}"),
            "--owner-uid=0".to_owned(),
            "--owner-gid=0".to_owned(),
            format!("--tree=dir={}", self.dir.display()),
        ];
        if pkglist {
            let text = rpms::pkglist_variant_text(specs);
            if text.len() > MAX_ARG {
                return Err(HarnessError::new(format!(
                    "the package list of {} packages is too long for a command line",
                    specs.len()
                )));
            }
            args.push(format!("--add-metadata=rpmostree.rpmdb.pkglist={text}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sb
            .ostree_remote(&args)
            .map_err(|e| e.context(format!("committing {version} to {branch}")))?;
        let checksum = out.trim().to_owned();
        if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(HarnessError::new(format!(
                "ostree commit printed {out:?}, not a checksum"
            )));
        }
        Ok(checksum)
    }
}

/// Pulls `branch` of the remote into the sysroot's repository.
pub fn pull(sb: &Sandbox, branch: &str) -> Result<(), HarnessError> {
    sb.ostree(&["pull", "origin", branch]).map(drop)
}

/// Pulls `branch` and deploys it as the new default deployment of the fixture's stateroot,
/// keeping every other deployment.
pub fn deploy(sb: &Sandbox, branch: &str) -> Result<(), HarnessError> {
    pull(sb, branch)?;
    sb.ostree_admin(&[
        "deploy",
        "--retain",
        &format!("--os={}", sb.osname()),
        &format!("origin:{branch}"),
    ])
    .map(drop)
    .map_err(|e| e.context(format!("deploying {branch}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_their_changes() {
        let old = bench_image(2000, false);
        let new = bench_image(2000, true);
        assert_eq!(old.len(), 2000);
        // 20 removed, 20 added.
        assert_eq!(new.len(), 2000);
        // 200 upgrades, 20 downgrades, 20 removals, 20 additions.
        assert_eq!(bench_image_changes(2000), 260);
        assert_eq!(bench_image_changes(50), 8);
        // Smaller images are subsets of larger ones.
        let big: std::collections::HashSet<String> =
            old.iter().chain(new.iter()).map(RpmSpec::nevra).collect();
        for p in bench_image(50, false).iter().chain(&bench_image(50, true)) {
            assert!(big.contains(&p.nevra()), "{}", p.nevra());
        }
    }
}
