//! `rpm-ostreed db`: read-only package queries on the sysroot's repository, without the
//! daemon and without D-Bus, for `rpm-ostree db diff|list|version` (upstream runs these in the
//! client process; our client links no libostree, so it runs this and formats the JSON it
//! prints). Nothing here writes to the sysroot.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use ostree::glib;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::rpm::diff::{Diff, Package};
use crate::sysroot::{self, packages};

/// One `db` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbQuery {
    /// The package changes between two revisions; with one, from the booted deployment to
    /// it; with none, from the booted to the pending deployment (or from the rollback to the
    /// booted one).
    Diff {
        /// `[FROM] [TO]`.
        revisions: Vec<String>,
    },
    /// The packages of revisions, optionally only those matching patterns.
    List {
        /// Revisions, then patterns (the first argument that is not a revision starts them).
        arguments: Vec<String>,
    },
    /// A checksum over the package set of each revision.
    Version {
        /// Revisions.
        revisions: Vec<String>,
    },
}

/// Runs `query` on the sysroot at `sysroot` and prints its answer as JSON on stdout.
pub fn run(sysroot_path: &Path, query: &DbQuery) -> Result<()> {
    let answer = answer(sysroot_path, query)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&answer).context("encoding the answer")?
    );
    Ok(())
}

fn answer(sysroot_path: &Path, query: &DbQuery) -> Result<Value> {
    let sysroot = sysroot::open(sysroot_path, None)?;
    let repo = sysroot.repo();
    match query {
        DbQuery::Diff { revisions } => {
            let ((from_desc, from), (to_desc, to)) = match revisions.as_slice() {
                [] => default_pair(&sysroot)?,
                [to] => (booted(&sysroot)?, (to.clone(), resolve(&repo, to)?)),
                [from, to] => (
                    (from.clone(), resolve(&repo, from)?),
                    (to.clone(), resolve(&repo, to)?),
                ),
                _ => bail!("\"db diff\" takes at most 2 arguments"),
            };
            let diff = packages::diff_commits(&repo, &from, &to)?;
            let known: Vec<String> = commit_advisories(&repo, &from)?
                .iter()
                .filter_map(|a| a["id"].as_str().map(str::to_owned))
                .collect();
            let advisories: Vec<Value> = commit_advisories(&repo, &to)?
                .into_iter()
                .filter(|a| {
                    !a["id"]
                        .as_str()
                        .is_some_and(|id| known.iter().any(|k| k == id))
                })
                .collect();
            Ok(json!({
                "from": {"desc": from_desc, "checksum": from},
                "to": {"desc": to_desc, "checksum": to},
                "diff": diff_json(&diff),
                "advisories": advisories,
            }))
        }
        DbQuery::List { arguments } => {
            if arguments.is_empty() {
                bail!("\"db list\" needs at least one revision");
            }
            let mut revisions = Vec::new();
            let mut patterns: Vec<&str> = Vec::new();
            for a in arguments {
                match (patterns.is_empty(), repo.resolve_rev(a, true)) {
                    (true, Ok(Some(c))) => revisions.push((a.clone(), c.to_string())),
                    _ => patterns.push(a),
                }
            }
            if revisions.is_empty() {
                bail!(
                    "No revision found among the arguments: {}",
                    arguments.join(" ")
                );
            }
            let commits = revisions
                .into_iter()
                .map(|(rev, checksum)| {
                    let list = packages::for_commit(&repo, &checksum)?.unwrap_or_default();
                    let packages: Vec<Value> = list
                        .iter()
                        .filter(|p| patterns.is_empty() || patterns.iter().any(|m| matches(p, m)))
                        .map(package_json)
                        .collect();
                    Ok(json!({
                        "rev": rev,
                        "checksum": checksum,
                        "packages": packages,
                        "advisories": commit_advisories(&repo, &checksum)?,
                    }))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(json!({ "commits": commits }))
        }
        DbQuery::Version { revisions } => {
            if revisions.is_empty() {
                bail!("\"db version\" needs at least one revision");
            }
            let commits = revisions
                .iter()
                .map(|rev| {
                    let checksum = resolve(&repo, rev)?;
                    let mut list = packages::for_commit(&repo, &checksum)?
                        .ok_or_else(|| anyhow!("No package database found in commit {checksum}"))?;
                    // Upstream's order: by name, then version.
                    list.sort_by(|a, b| {
                        a.name
                            .cmp(&b.name)
                            .then_with(|| rpmostree_dnf::evr_cmp(&a.evr(), &b.evr()))
                            .then_with(|| a.arch.cmp(&b.arch))
                    });
                    Ok(json!({
                        "rev": rev,
                        "checksum": checksum,
                        "rpmdbv": rpmdb_version(&list),
                    }))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(json!({ "commits": commits }))
        }
    }
}

fn resolve(repo: &ostree::Repo, rev: &str) -> Result<String> {
    Ok(repo
        .resolve_rev(rev, false)
        .with_context(|| format!("resolving {rev}"))?
        .ok_or_else(|| anyhow!("Revision {rev} not found"))?
        .to_string())
}

fn booted(sysroot: &ostree::Sysroot) -> Result<(String, String)> {
    let b = sysroot
        .booted_deployment()
        .ok_or_else(|| anyhow!("Not booted into any deployment"))?;
    Ok(("booted deployment".to_owned(), b.csum().to_string()))
}

/// Booted → pending, else rollback → booted (upstream's default for `db diff`).
fn default_pair(sysroot: &ostree::Sysroot) -> Result<((String, String), (String, String))> {
    let booted = booted(sysroot)?;
    let (pending, rollback) = sysroot.query_deployments_for(None);
    if let Some(p) = pending {
        return Ok((
            booted,
            ("pending deployment".to_owned(), p.csum().to_string()),
        ));
    }
    if let Some(r) = rollback {
        return Ok((
            ("rollback deployment".to_owned(), r.csum().to_string()),
            booted,
        ));
    }
    bail!("No pending or rollback deployment to diff against")
}

/// Whether `pattern` (a glob with `*` and `?`) selects `p`: it matches the name,
/// `name-version`, `name-version-release` or the full NEVRA.
fn matches(p: &Package, pattern: &str) -> bool {
    let forms = [
        p.name.clone(),
        format!("{}-{}", p.name, p.version),
        format!("{}-{}-{}", p.name, p.version, p.release),
        p.nevra(),
    ];
    forms.iter().any(|f| glob(pattern.as_bytes(), f.as_bytes()))
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(a), Some(b)) if a == b => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// rpm-ostree's `rpmdbv`: the number of packages and a SHA-256 over each one's
/// `[E:]N-V-R.A` (no epoch when it is 0), in list order.
fn rpmdb_version(list: &[Package]) -> String {
    let mut hasher = Sha256::new();
    for p in list {
        let envra = format!("{}-{}-{}.{}", p.name, p.version, p.release, p.arch);
        if p.epoch == 0 {
            hasher.update(envra);
        } else {
            hasher.update(format!("{}:{envra}", p.epoch));
        }
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}:{digest}", list.len())
}

fn package_json(p: &Package) -> Value {
    json!({
        "name": p.name,
        "epoch": p.epoch,
        "version": p.version,
        "release": p.release,
        "arch": p.arch,
        "evr": p.evr(),
        "nevra": p.nevra(),
    })
}

fn diff_json(d: &Diff) -> Vec<Value> {
    d.entries()
        .into_iter()
        .map(|(name, kind, old, new)| {
            json!({
                "name": name,
                "type": kind as u32,
                "previous": old.map(package_json),
                "new": new.map(package_json),
            })
        })
        .collect()
}

/// The `rpmostree.advisories` a compose recorded in a commit, as JSON objects.
fn commit_advisories(repo: &ostree::Repo, checksum: &str) -> Result<Vec<Value>> {
    let (_, _, meta) = sysroot::commit_info(repo, checksum)?;
    let dict = glib::VariantDict::new(Some(&meta));
    let Some(v) = dict.lookup_value(
        "rpmostree.advisories",
        Some(glib::VariantTy::new("a(suuasa{sv})").map_err(|e| anyhow!("{e}"))?),
    ) else {
        return Ok(Vec::new());
    };
    Ok((0..v.n_children())
        .filter_map(|i| {
            let a = v.child_value(i);
            let extra = glib::VariantDict::new(Some(&a.child_value(4)));
            let cves = extra
                .lookup::<Vec<(String, String)>>("cve_references")
                .ok()
                .flatten()
                .unwrap_or_default();
            Some(json!({
                "id": a.child_value(0).str()?,
                "kind": a.child_value(1).get::<u32>()?,
                "severity": a.child_value(2).get::<u32>()?,
                "nevras": a.child_value(3).get::<Vec<String>>()?,
                "cve_references": cves,
            }))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str) -> Package {
        Package {
            name: name.into(),
            epoch: 0,
            version: version.into(),
            release: "1".into(),
            arch: "noarch".into(),
            summary: String::new(),
            reponame: String::new(),
        }
    }

    #[test]
    fn patterns_are_globs_or_prefixes() {
        let p = pkg("libfoo", "2.0");
        assert!(matches(&p, "libfoo"));
        assert!(matches(&p, "lib*"));
        assert!(matches(&p, "libf?o"));
        assert!(matches(&p, "libfoo-2.0"));
        assert!(matches(&p, "libfoo-2.0-1.noarch"));
        assert!(!matches(&p, "libfo"));
        assert!(!matches(&p, "libfoo-2"));
        assert!(!matches(&p, "bar*"));
    }

    #[test]
    fn rpmdb_version_counts_and_hashes_the_set() {
        let a = rpmdb_version(&[pkg("a", "1"), pkg("b", "1")]);
        let b = rpmdb_version(&[pkg("a", "1"), pkg("b", "2")]);
        assert!(a.starts_with("2:") && a.len() == 2 + 64, "{a}");
        assert_ne!(a, b);
        assert_eq!(a, rpmdb_version(&[pkg("a", "1"), pkg("b", "1")]));
    }
}
