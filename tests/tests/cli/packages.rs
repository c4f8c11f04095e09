//! The package side through the real CLI: `upgrade --check` with the package diff and the
//! security advisory, the diff printed after `upgrade`, `status` with `Diff:` and
//! `SecAdvisories:` for the pending deployment, `refresh-md`, `search`, and the local
//! `db diff|list|version`, checked against the fixture's known package changes.

use rpmostree_tests::{FIXTURE_ADVISORY, FIXTURE_ADVISORY_CVE, SandboxOptions};

use crate::common::*;

/// The fixture's 1.1 -> 2.0 changes in upstream's multi-line layout.
const UPDATE_BLOCK: &str = "Upgraded:
  clock 1:2.0-1 -> 2:1.0-1
  libfoo 1.0-1 -> 2.0-1
  testos-release 1.1-1 -> 2.0-1
  tilde 1.0~rc1-1 -> 1.0-1
Downgraded:
  bar 1.0-1 -> 0.9-1
Removed:
  oldtool-1.0-1.noarch
Added:
  newtool-1.0-1.noarch
";

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn check_upgrade_status_search_and_db_on_a_booted_system() {
    let Some(sb) = sandbox(
        "check_upgrade_status_search_and_db_on_a_booted_system",
        SandboxOptions {
            fake_booted: true,
            ..Default::default()
        },
    ) else {
        return;
    };

    // upgrade --check: the update, its package summary and its security advisory.
    let out = cli_ok(&sb, &["upgrade", "--check"]);
    assert!(out.contains("AvailableUpdate:"), "{out}");
    assert!(out.contains("Version: 2.0"), "{out}");
    assert!(
        out.contains("Diff: 4 upgraded, 1 downgraded, 1 removed, 1 added"),
        "{out}"
    );
    assert!(out.contains("SecAdvisories: 1 important"), "{out}");
    // --preview lists the packages and the advisory with its CVE.
    let out = cli_ok(&sb, &["upgrade", "--preview"]);
    assert!(out.contains("libfoo 1.0-1 -> 2.0-1"), "{out}");
    assert!(out.contains(FIXTURE_ADVISORY), "{out}");
    assert!(out.contains(FIXTURE_ADVISORY_CVE), "{out}");
    assert!(out.contains("libfoo-2.0-1.noarch"), "{out}");
    assert_eq!(
        admin_versions(&sb),
        ["1.1", "1.0"],
        "a check changes nothing"
    );

    // The upgrade prints what changes in packages.
    let out = cli_ok(&sb, &["upgrade"]);
    assert!(out.contains(UPDATE_BLOCK), "{out}");
    let staged: Vec<Option<String>> = booted_admin(&sb).into_iter().map(|d| d.version).collect();
    assert_eq!(
        staged.first().cloned().flatten().as_deref(),
        Some("2.0"),
        "{staged:?}"
    );

    // status: the pending deployment carries the summary lines; -v the full lists.
    let out = cli_ok(&sb, &["status"]);
    assert!(
        out.contains("Diff: 4 upgraded, 1 downgraded, 1 removed, 1 added"),
        "{out}"
    );
    assert!(out.contains("SecAdvisories: 1 important"), "{out}");
    assert!(
        !out.contains("AvailableUpdate:"),
        "shown inline, not again: {out}"
    );
    let out = cli_ok(&sb, &["status", "-v"]);
    assert!(out.contains("Upgraded: clock 1:2.0-1 -> 2:1.0-1"), "{out}");
    assert!(out.contains("libfoo 1.0-1 -> 2.0-1"), "{out}");
    assert!(out.contains("Removed: oldtool-1.0-1.noarch"), "{out}");
    let json = status_json(&sb);
    let cached = &json["cached-update"];
    assert_eq!(cached["rpm-diff"]["removed"][0][1], "oldtool", "{cached}");
    assert_eq!(cached["advisories"][0][0], FIXTURE_ADVISORY, "{cached}");

    // refresh-md and search on the repository.
    let out = cli_ok(&sb, &["refresh-md"]);
    assert!(out.contains("rpm-md repo 'testos'"), "{out}");
    let out = cli_ok(&sb, &["search", "hello"]);
    assert!(out.contains("hello : A friendly greeting program"), "{out}");
    let out = cli_ok(&sb, &["search", "no-such-package-anywhere"]);
    assert!(out.contains("No matches found."), "{out}");

    // db diff with no revision compares the booted and the pending deployment; it runs
    // locally (inside the booted system), without the daemon.
    let cli = sb.install_binary(&cli_bin()).unwrap();
    sb.install_binary(&rpmostree_tests::target_bin("rpm-ostreed"))
        .unwrap();
    let out = sb
        .run_fake_booted(&[cli.to_str().unwrap(), "db", "diff"])
        .unwrap();
    assert!(
        out.starts_with("ostree diff commit from: booted deployment ("),
        "{out}"
    );
    assert!(
        out.contains("ostree diff commit to:   pending deployment ("),
        "{out}"
    );
    assert!(out.ends_with(UPDATE_BLOCK), "{out}");
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn db_diff_list_and_version_of_commits() {
    let Some(sb) = sandbox(
        "db_diff_list_and_version_of_commits",
        SandboxOptions::default(),
    ) else {
        return;
    };
    let admin = sb.admin_deployments().unwrap();
    let (new, old) = (admin[0].checksum.clone(), admin[1].checksum.clone());
    let sysroot = sb.sysroot().to_str().unwrap().to_owned();

    let out = cli_ok(&sb, &["db", "diff", "--sysroot", &sysroot, &old, &new]);
    assert_eq!(
        out,
        format!(
            "ostree diff commit from: {old}\nostree diff commit to:   {new}\n\
             Upgraded:\n  testos-release 1.0-1 -> 1.1-1\n"
        )
    );
    // What GNOME Software runs for its update history: the block format still comes out.
    let gs = cli(
        &sb,
        &[
            "db",
            "diff",
            "--changelogs",
            "--format=block",
            "--sysroot",
            &sysroot,
            &old,
            &new,
        ],
    );
    assert_eq!(gs.code, Some(0), "{}", gs.describe());
    assert!(
        gs.stdout
            .ends_with("Upgraded:\n  testos-release 1.0-1 -> 1.1-1\n"),
        "{}",
        gs.describe()
    );
    let out = cli_ok(
        &sb,
        &[
            "db",
            "diff",
            "--sysroot",
            &sysroot,
            "-F",
            "diff",
            &old,
            &new,
        ],
    );
    assert!(
        out.ends_with("!testos-release-1.0-1.noarch\n=testos-release-1.1-1.noarch\n"),
        "{out}"
    );
    let out = cli_ok(
        &sb,
        &[
            "db",
            "diff",
            "--sysroot",
            &sysroot,
            "-F",
            "json",
            &old,
            &new,
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["ostree-commit-to"], new.as_str());
    assert_eq!(json["pkgdiff"][0][0], "testos-release");

    // A ref works as a revision, and patterns select packages.
    let out = cli_ok(
        &sb,
        &[
            "db",
            "list",
            "--sysroot",
            &sysroot,
            "origin:testos/stable",
            "lib*",
            "bar",
        ],
    );
    assert_eq!(
        out,
        format!(
            "ostree commit: origin:testos/stable ({new})\n bar-1.0-1.noarch\n libfoo-1.0-1.noarch\n"
        )
    );
    let full = cli_ok(&sb, &["db", "list", "--sysroot", &sysroot, &new]);
    let listed: Vec<&str> = full.lines().skip(1).map(str::trim).collect();
    let expected: Vec<String> = rpmostree_tests::truth::rpm_qa(&sb, &new)
        .unwrap()
        .iter()
        .map(|(n, evr, a)| format!("{n}-{evr}.{a}"))
        .collect();
    assert_eq!(listed, expected, "what rpm -qa of a checkout lists");

    // A commit without package-list metadata: its rpmdb is read (through the package helper).
    sb.ostree(&["pull", "--subpath=/usr/share/rpm", "origin", "testos/devel"])
        .unwrap();
    let out = cli_ok(
        &sb,
        &["db", "list", "--sysroot", &sysroot, "origin:testos/devel"],
    );
    let listed: Vec<&str> = out.lines().skip(1).map(str::trim).collect();
    assert_eq!(
        listed,
        [
            "base-files-1.0-1.noarch",
            "libfoo-2.0-1.noarch",
            "newtool-1.0-1.noarch",
            "testos-release-10.0-1.noarch"
        ],
        "{out}"
    );
    // The same as an ordinary user (GNOME Software runs `db` as the desktop user), and
    // nothing is written into the repository.
    let repo_tmp = sb.sysroot().join("ostree/repo/tmp");
    let before: Vec<_> = std::fs::read_dir(&repo_tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let user = cli_as_test_user(
        &sb,
        &["db", "list", "--sysroot", &sysroot, "origin:testos/devel"],
    );
    assert_eq!(user.code, Some(0), "{}", user.describe());
    assert_eq!(user.stdout, out);
    let after: Vec<_> = std::fs::read_dir(&repo_tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after, "db wrote into the repository");

    let out = cli_ok(&sb, &["db", "version", "--sysroot", &sysroot, &old, &new]);
    let versions: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rpmdbv is:"))
        .map(str::trim)
        .collect();
    assert_eq!(versions.len(), 2, "{out}");
    assert_ne!(versions[0], versions[1]);
    // Upstream's rpmdbv: the count, then a SHA-256 over each `[E:]N-V-R.A` in name order.
    for (commit, version) in [(&old, versions[0]), (&new, versions[1])] {
        let qa = rpmostree_tests::truth::rpm_qa(&sb, commit).unwrap();
        let text: String = qa
            .iter()
            .map(|(n, evr, a)| match evr.split_once(':') {
                Some((e, vr)) => format!("{e}:{n}-{vr}.{a}"),
                None => format!("{n}-{evr}.{a}"),
            })
            .collect();
        let mut sha = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut sha.stdin.take().unwrap(), text.as_bytes()).unwrap();
        let digest = String::from_utf8(sha.wait_with_output().unwrap().stdout).unwrap();
        let digest = digest.split_whitespace().next().unwrap().to_owned();
        assert_eq!(version, format!("{}:{digest}", qa.len()), "{out}");
    }

    // Bad input: a clear error, exit 1.
    let out = cli(&sb, &["db", "diff", "--sysroot", &sysroot, "nope", &new]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stderr.contains("nope"), "{}", out.describe());
    let out = cli(&sb, &["db", "diff", "--sysroot", &sysroot, "a", "b", "c"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("at most 2 arguments"),
        "{}",
        out.describe()
    );
}
