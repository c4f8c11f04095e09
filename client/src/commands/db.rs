//! `rpm-ostree db diff|list|version`: package queries on the sysroot's repository, no daemon
//! involved. Upstream reads the repository in the client process; this client links no
//! libostree, so it runs `rpm-ostreed db …` (the daemon's binary in a read-only query mode that
//! prints JSON) and prints the answer the way upstream does.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::Exit;
use crate::cli::{DbArgs, DbCommand, DbDiffFormat};
use crate::diff::{Advisory, Package, PackageDiff, advisories_block};
use crate::output::Style;

/// Where the daemon binary is: next to this executable (a build tree), else the installed
/// `/usr/libexec/rpm-ostreed`. Never from the environment: `rpm-ostree` may run as root with
/// a caller's environment.
fn daemon_binary() -> PathBuf {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("rpm-ostreed")));
    match sibling {
        Some(s) if s.is_file() => s,
        _ => PathBuf::from("/usr/libexec/rpm-ostreed"),
    }
}

/// Runs `rpm-ostreed --sysroot S db ARGS…` and parses its JSON answer.
fn query(sysroot: Option<&Path>, args: &[&str]) -> Result<Value> {
    let bin = daemon_binary();
    let out = Command::new(&bin)
        // Only what the query needs of the environment.
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .arg("--sysroot")
        .arg(sysroot.unwrap_or(Path::new("/")))
        .arg("db")
        .args(args)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let text = text.trim().trim_start_matches("error: ");
        bail!("{text}");
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("reading the answer of {}", bin.display()))
}

/// Runs one `db` command.
pub fn run(args: &DbArgs) -> Result<Exit> {
    let style = Style::detect();
    match &args.command {
        DbCommand::Diff(a) => {
            if a.revisions.len() > 2 {
                bail!("\"db diff\" takes at most 2 arguments");
            }
            if a.format == DbDiffFormat::Diff && a.advisories {
                bail!("diff format and --advisories not supported");
            }
            if a.format == DbDiffFormat::Json && a.changelogs {
                bail!("json format and --changelogs not supported");
            }
            if a.changelogs {
                eprintln!("note: changelogs are not available; showing the package changes only");
            }
            let mut argv = vec!["diff", "--"];
            argv.extend(a.revisions.iter().map(String::as_str));
            let answer = query(a.sysroot.as_deref(), &argv)?;
            print!("{}", format_diff(&answer, a.format, a.advisories, style)?);
        }
        DbCommand::List(a) => {
            let mut argv = vec!["list", "--"];
            argv.extend(a.arguments.iter().map(String::as_str));
            let answer = query(a.sysroot.as_deref(), &argv)?;
            print!("{}", format_list(&answer, a.advisories, style)?);
        }
        DbCommand::Version(a) => {
            let mut argv = vec!["version", "--"];
            argv.extend(a.revisions.iter().map(String::as_str));
            let answer = query(a.sysroot.as_deref(), &argv)?;
            print!("{}", format_version(&answer)?);
        }
    }
    Ok(Exit::Success)
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v[key]
        .as_str()
        .ok_or_else(|| anyhow!("the query answer lacks '{key}'"))
}

/// `ostree commit: REV (CHECKSUM)`-style headers, without the checksum when REV is one.
fn header(prefix: &str, desc: &str, checksum: &str) -> String {
    if desc == checksum {
        format!("{prefix}{desc}\n")
    } else {
        format!("{prefix}{desc} ({checksum})\n")
    }
}

fn package(v: &Value) -> Option<Package> {
    if v.is_null() {
        return None;
    }
    Some(Package::new(
        v["name"].as_str().unwrap_or_default(),
        v["evr"].as_str().unwrap_or_default(),
        v["arch"].as_str().unwrap_or_default(),
    ))
}

fn advisories(v: &Value) -> Vec<Advisory> {
    v.as_array()
        .map(|list| {
            list.iter()
                .map(|a| Advisory {
                    id: a["id"].as_str().unwrap_or_default().to_owned(),
                    kind: a["kind"].as_u64().unwrap_or(0) as u32,
                    severity: a["severity"].as_u64().unwrap_or(0) as u32,
                    nevras: a["nevras"]
                        .as_array()
                        .map(|n| {
                            n.iter()
                                .filter_map(|s| s.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    cve_references: a["cve_references"]
                        .as_array()
                        .map(|refs| {
                            refs.iter()
                                .filter_map(|r| {
                                    Some((r[0].as_str()?.to_owned(), r[1].as_str()?.to_owned()))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `db diff` in one of upstream's three formats.
fn format_diff(
    answer: &Value,
    format: DbDiffFormat,
    with_advisories: bool,
    style: Style,
) -> Result<String> {
    let entries = answer["diff"]
        .as_array()
        .ok_or_else(|| anyhow!("the query answer lacks 'diff'"))?;
    if format == DbDiffFormat::Json {
        // Upstream's JSON: the two checksums, the a(sua{sv}) diff and the advisories.
        let pkgdiff: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut details = serde_json::Map::new();
                for (key, side) in [("PreviousPackage", "previous"), ("NewPackage", "new")] {
                    if let Some(p) = package(&e[side]) {
                        details.insert(key.to_owned(), json!([p.name, p.evr, p.arch]));
                    }
                }
                json!([e["name"], e["type"], details])
            })
            .collect();
        let advisories: Vec<Value> = advisories(&answer["advisories"])
            .iter()
            .map(|a| {
                json!([a.id, a.kind, a.severity, a.nevras, {"cve_references": a.cve_references}])
            })
            .collect();
        let out = json!({
            "ostree-commit-from": answer["from"]["checksum"],
            "ostree-commit-to": answer["to"]["checksum"],
            "pkgdiff": pkgdiff,
            "advisories": advisories,
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&out)?));
    }
    let mut out = header(
        "ostree diff commit from: ",
        text(&answer["from"], "desc")?,
        text(&answer["from"], "checksum")?,
    );
    out += &header(
        "ostree diff commit to:   ",
        text(&answer["to"], "desc")?,
        text(&answer["to"], "checksum")?,
    );
    if format == DbDiffFormat::Diff {
        // Name order, a changed package as its old (`!`) and new (`=`) NEVRA.
        let mut sorted: Vec<&Value> = entries.iter().collect();
        sorted.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        for e in sorted {
            match (package(&e["previous"]), package(&e["new"])) {
                (Some(o), Some(n)) => out += &format!("!{}\n={}\n", o.nevra(), n.nevra()),
                (Some(o), None) => out += &format!("-{}\n", o.nevra()),
                (None, Some(n)) => out += &format!("+{}\n", n.nevra()),
                (None, None) => {}
            }
        }
        return Ok(out);
    }
    let mut diff = PackageDiff::default();
    for e in entries {
        let (old, new) = (package(&e["previous"]), package(&e["new"]));
        match (e["type"].as_u64(), old, new) {
            (Some(2), Some(o), Some(n)) => diff.upgraded.push((o, n)),
            (Some(3), Some(o), Some(n)) => diff.downgraded.push((o, n)),
            (Some(1), Some(o), _) => diff.removed.push(o),
            (Some(0), _, Some(n)) => diff.added.push(n),
            _ => bail!("the query answer has a malformed diff entry: {e}"),
        }
    }
    out += &diff.multiline();
    if with_advisories {
        out.push('\n');
        out += &advisories_block(&advisories(&answer["advisories"]), true, 0, style);
    }
    Ok(out)
}

/// `db list`: each commit, then ` NEVRA` per package (and its advisories with `-a`).
fn format_list(answer: &Value, with_advisories: bool, style: Style) -> Result<String> {
    let mut out = String::new();
    for c in answer["commits"].as_array().into_iter().flatten() {
        out += &header("ostree commit: ", text(c, "rev")?, text(c, "checksum")?);
        for p in c["packages"].as_array().into_iter().flatten() {
            out += &format!(" {}\n", text(p, "nevra")?);
        }
        let found = advisories(&c["advisories"]);
        if with_advisories && !found.is_empty() {
            out.push('\n');
            out += &advisories_block(&found, true, 0, style);
        }
    }
    Ok(out)
}

/// `db version`: each commit and its rpmdb version.
fn format_version(answer: &Value) -> Result<String> {
    let mut out = String::new();
    for c in answer["commits"].as_array().into_iter().flatten() {
        out += &header("ostree commit: ", text(c, "rev")?, text(c, "checksum")?);
        out += &format!("  rpmdbv is: {:>66}\n", text(c, "rpmdbv")?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, evr: &str) -> Value {
        json!({"name": name, "evr": evr, "arch": "noarch", "nevra": format!("{name}-{evr}.noarch")})
    }

    fn answer() -> Value {
        json!({
            "from": {"desc": "booted deployment", "checksum": "aaa"},
            "to": {"desc": "bbb", "checksum": "bbb"},
            "diff": [
                {"name": "newtool", "type": 0, "previous": null, "new": pkg("newtool", "1.0-1")},
                {"name": "oldtool", "type": 1, "previous": pkg("oldtool", "1.0-1"), "new": null},
                {"name": "libfoo", "type": 2, "previous": pkg("libfoo", "1.0-1"), "new": pkg("libfoo", "2.0-1")},
                {"name": "bar", "type": 3, "previous": pkg("bar", "1.0-1"), "new": pkg("bar", "0.9-1")},
            ],
            "advisories": [{"id": "TESTOS-1", "kind": 1, "severity": 3, "nevras": ["libfoo-2.0-1.noarch"],
                            "cve_references": [["https://bz/1", "CVE-2026-1 libfoo"]]}],
        })
    }

    #[test]
    fn block_format_is_upstreams() {
        let out = format_diff(
            &answer(),
            DbDiffFormat::Block,
            false,
            Style { color: false },
        )
        .unwrap();
        assert_eq!(
            out,
            "ostree diff commit from: booted deployment (aaa)\n\
             ostree diff commit to:   bbb\n\
             Upgraded:\n  libfoo 1.0-1 -> 2.0-1\n\
             Downgraded:\n  bar 1.0-1 -> 0.9-1\n\
             Removed:\n  oldtool-1.0-1.noarch\n\
             Added:\n  newtool-1.0-1.noarch\n"
        );
        let with =
            format_diff(&answer(), DbDiffFormat::Block, true, Style { color: false }).unwrap();
        assert!(
            with.contains("TESTOS-1") && with.contains("CVE-2026-1 libfoo"),
            "{with}"
        );
    }

    #[test]
    fn diff_format_is_sorted_by_name() {
        let out =
            format_diff(&answer(), DbDiffFormat::Diff, false, Style { color: false }).unwrap();
        let body: Vec<&str> = out.lines().skip(2).collect();
        assert_eq!(
            body,
            [
                "!bar-1.0-1.noarch",
                "=bar-0.9-1.noarch",
                "!libfoo-1.0-1.noarch",
                "=libfoo-2.0-1.noarch",
                "+newtool-1.0-1.noarch",
                "-oldtool-1.0-1.noarch",
            ]
        );
    }

    #[test]
    fn json_format_has_upstreams_keys() {
        let out =
            format_diff(&answer(), DbDiffFormat::Json, false, Style { color: false }).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["ostree-commit-from"], "aaa");
        assert_eq!(v["ostree-commit-to"], "bbb");
        assert_eq!(
            v["pkgdiff"][2],
            json!(["libfoo", 2, {"PreviousPackage": ["libfoo", "1.0-1", "noarch"], "NewPackage": ["libfoo", "2.0-1", "noarch"]}])
        );
        assert_eq!(v["advisories"][0][0], "TESTOS-1");
    }

    #[test]
    fn list_and_version() {
        let list = json!({"commits": [{"rev": "r", "checksum": "c", "packages": [pkg("a", "1-1")], "advisories": []}]});
        assert_eq!(
            format_list(&list, true, Style { color: false }).unwrap(),
            "ostree commit: r (c)\n a-1-1.noarch\n"
        );
        let version = json!({"commits": [{"rev": "c", "checksum": "c", "rpmdbv": "1:abc"}]});
        let out = format_version(&version).unwrap();
        assert_eq!(out.lines().next(), Some("ostree commit: c"));
        assert!(
            out.ends_with(&format!("  rpmdbv is: {:>66}\n", "1:abc")),
            "{out}"
        );
    }
}
