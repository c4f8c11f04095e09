//! Package layering through the real CLI on a fake-booted system: `install` of a package with
//! a rich dependency, a file dependency, a Recommends and a `%post` that writes a hardlinked
//! base file; the refused requests (not found, needing a newer base package, a failing
//! `%post`, lua, an unsupported path, a request the base already provides); `uninstall`; and
//! an upgrade that keeps the layering on the new base, where a request the new base ships
//! becomes inactive. Ground truth: `rpm -qa` on the deployment, its files, the base commit's
//! file, `ostree fsck`, the origin file and the commit metadata.

use std::path::PathBuf;
use std::process::Command;

use rpmostree_tests::{Sandbox, SandboxOptions};

use crate::common::*;

/// The deployments, staged ones included (seen from inside the fake boot when `booted`).
fn deployments(sb: &Sandbox, booted: bool) -> Vec<rpmostree_tests::AdminDeployment> {
    if booted {
        booted_admin(sb)
    } else {
        sb.admin_deployments().unwrap()
    }
}

/// The directory and checksum of the first (newest) deployment.
fn first_deployment(sb: &Sandbox, booted: bool) -> (PathBuf, String) {
    let deployments = deployments(sb, booted);
    let d = deployments.first().expect("a deployment");
    let dir = sb
        .sysroot()
        .join("ostree/deploy")
        .join(&d.osname)
        .join("deploy")
        .join(format!("{}.{}", d.checksum, d.serial));
    (dir, d.checksum.clone())
}

/// The OS object of the sandbox's stateroot, on a new connection to its bus.
async fn os_proxy(sb: &Sandbox) -> rpmostree_api::OSProxy<'static> {
    let bus = zbus::connection::Builder::address(sb.bus_address())
        .build()
        .await
        .expect("connecting to the sandbox bus");
    rpmostree_api::OSProxy::builder(&bus)
        .path(OS_PATH)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .expect("the OS proxy")
}

/// `rpm -qa` (name-version-release) of a deployment, sorted.
fn rpm_qa(root: &std::path::Path) -> Vec<String> {
    let out = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args([
            "--dbpath",
            "/usr/share/rpm",
            "-qa",
            "--qf",
            "%{NAME}-%{VERSION}-%{RELEASE}\\n",
        ])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

fn metadata_key(sb: &Sandbox, commit: &str, key: &str) -> String {
    sb.ostree(&["show", &format!("--print-metadata-key={key}"), commit])
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn fails_with(sb: &Sandbox, args: &[&str], needles: &[&str]) {
    let before = booted_admin(sb);
    let out = cli(sb, args);
    assert_ne!(out.code, Some(0), "{args:?} must fail: {}", out.describe());
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "{args:?}: expected {n:?}: {}",
            out.describe()
        );
    }
    assert_eq!(booted_admin(sb), before, "{args:?} changed the deployments");
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn install_uninstall_and_upgrade_keep_layering_with_real_rpms() {
    let Some(sb) = sandbox(
        "install_uninstall_and_upgrade_keep_layering_with_real_rpms",
        SandboxOptions {
            fake_booted: true,
            ..Default::default()
        },
    ) else {
        return;
    };
    let (_, booted) = first_deployment(&sb, true);

    // Install: layer-a pulls layer-b 2.0 (rich dependency) and layer-c (Recommends).
    let out = cli_ok(&sb, &["install", "layer-a"]);
    assert!(out.contains(QUEUED), "{out}");
    let (dir, layered) = first_deployment(&sb, true);
    assert_ne!(layered, booted);
    let qa = rpm_qa(&dir);
    for p in [
        "layer-a-1.0-1",
        "layer-b-2.0-1",
        "layer-c-1.0-1",
        "base-files-1.0-1",
        "libfoo-1.0-1",
    ] {
        assert!(qa.contains(&p.to_owned()), "{p} missing from {qa:?}");
    }
    assert!(
        !qa.iter().any(|p| p.starts_with("libfoo-2")),
        "the base is locked: {qa:?}"
    );
    // %post ran in the new tree with $1 = 1, wrote /etc and changed a hardlinked base file.
    let post = std::fs::read_to_string(dir.join("usr/share/layer-a/post-ran")).unwrap();
    assert_eq!(post, "layer-a %post ran with arg 1\n");
    assert!(dir.join("usr/etc/layer-a.generated").is_file());
    let refs = sb.ostree(&["refs", "--list", "rpmostree/pkg"]).unwrap();
    for p in [
        "layer-a/1.0-1.noarch",
        "layer-b/2.0-1.noarch",
        "layer-c/1.0-1.noarch",
    ] {
        assert!(refs.contains(&format!("rpmostree/pkg/{p}")), "{refs}");
    }
    let version = std::fs::read_to_string(dir.join("usr/share/testos/version")).unwrap();
    assert_eq!(version, "1.1\ntouched by layer-a\n");
    let base_version = sb
        .ostree(&["cat", &booted, "/usr/share/testos/version"])
        .unwrap();
    assert_eq!(base_version, "1.1\n", "the base commit is untouched");
    let tmpfiles =
        std::fs::read_to_string(dir.join("usr/lib/rpm-ostree/tmpfiles.d/layer-b.conf")).unwrap();
    assert!(
        tmpfiles.contains("d /var/lib/layer-b 0755 root root - -"),
        "{tmpfiles}"
    );
    sb.ostree(&["fsck"]).expect("ostree fsck is clean");
    // The layered commit and the origin.
    assert_eq!(metadata_key(&sb, &layered, "rpmostree.clientlayer"), "true");
    assert_eq!(
        metadata_key(&sb, &layered, "rpmostree.packages"),
        "['layer-a']"
    );
    assert_eq!(
        sb.ostree(&["rev-parse", &format!("{layered}^")])
            .unwrap()
            .trim(),
        booted,
        "the base is the layered commit's parent"
    );
    assert!(
        dir.join("usr/etc/layer-b.conf").is_file(),
        "/etc content goes to /usr/etc"
    );
    // The daemon's view.
    let json = status_json(&sb);
    let d0 = &json["deployments"][0];
    assert_eq!(d0["packages"], serde_json::json!(["layer-a"]), "{d0}");
    assert_eq!(
        d0["requested-packages"],
        serde_json::json!(["layer-a"]),
        "{d0}"
    );
    assert_eq!(d0["base-checksum"], booted.as_str(), "{d0}");
    let out = cli_ok(&sb, &["status"]);
    assert!(out.contains("LayeredPackages: layer-a"), "{out}");
    // Shutdown finalizes the staged deployment: its origin file and merged /etc are written.
    sb.run_fake_booted_pid_ns(&["ostree", "admin", "finalize-staged"])
        .expect("ostree admin finalize-staged");
    let (dir, _) = first_deployment(&sb, true);
    let origin = std::fs::read_to_string(format!("{}.origin", dir.display())).unwrap();
    assert!(
        origin.contains("baserefspec=origin:testos/stable"),
        "{origin}"
    );
    assert!(origin.contains("requested=layer-a;"), "{origin}");
    assert!(
        dir.join("etc/layer-b.conf").is_file(),
        "the merged /etc has the package's config"
    );

    // Refused requests, each leaving the deployments as they were.
    fails_with(
        &sb,
        &["install", "no-such-package"],
        &["Packages not found: no-such-package"],
    );
    fails_with(&sb, &["install", "needs-new-libfoo"], &["libfoo-abi"]);
    fails_with(
        &sb,
        &["install", "bad-post"],
        &["%post", "bad-post", "failing on purpose"],
    );
    fails_with(&sb, &["install", "lua-post"], &["lua-post", "lua"]);
    fails_with(
        &sb,
        &["install", "srv-files"],
        &["Unsupported path: /srv/srv-files"],
    );
    fails_with(
        &sb,
        &["install", "base-files"],
        &["already provided by", "--allow-inactive"],
    );
    fails_with(
        &sb,
        &["install", "layer-a"],
        &["'layer-a' is already requested"],
    );
    fails_with(
        &sb,
        &["uninstall", "layer-c"],
        &["'layer-c' is not currently requested"],
    );
    fails_with(
        &sb,
        &["install", "--apply-live", "layer-c"],
        &["--apply-live"],
    );
    sb.ostree(&["fsck"])
        .expect("ostree fsck is clean after the failures");
    let out = cli(
        &sb,
        &["install", "--idempotent", "--unchanged-exit-77", "layer-a"],
    );
    assert_eq!(out.code, Some(77), "{}", out.describe());

    // A dry run resolves and shows, and deploys nothing.
    let before = booted_admin(&sb);
    let out = cli_ok(&sb, &["install", "--dry-run", "newtool"]);
    assert!(out.contains("newtool-1.0-1.noarch"), "{out}");
    assert_eq!(booted_admin(&sb), before);

    // newtool is layered on 1.1; 2.0 ships it, so after the upgrade it is inactive while
    // layer-a is layered again on the new base.
    cli_ok(&sb, &["install", "newtool"]);
    // A local RPM (passed to the daemon as a descriptor) whose dependency comes from the
    // repository.
    let local = rpmostree_tests::rpms::build_rpms(&[rpmostree_tests::rpms::RpmSpec::new(
        "local-tool",
        "1.0",
        "1",
    )
    .summary("A tool from a file")
    .requires("layer-c")])
    .unwrap();
    let local = local[0].to_str().unwrap().to_owned();
    let out = cli_ok(&sb, &["install", &local]);
    assert!(out.contains("local-tool-1.0-1.noarch"), "{out}");
    let (dir, _) = first_deployment(&sb, true);
    let qa = rpm_qa(&dir);
    assert!(qa.contains(&"local-tool-1.0-1".to_owned()), "{qa:?}");
    let out = cli_ok(&sb, &["status"]);
    assert!(
        out.contains("LocalPackages: local-tool-1.0-1.noarch"),
        "{out}"
    );
    fails_with(
        &sb,
        &["install", &local],
        &["'local-tool-1.0-1.noarch' is already requested"],
    );
    let out = cli_ok(&sb, &["upgrade"]);
    assert!(
        out.contains("Inactive requests") || out.contains(QUEUED),
        "{out}"
    );
    let (dir, upgraded) = first_deployment(&sb, true);
    let qa = rpm_qa(&dir);
    for p in [
        "layer-a-1.0-1",
        "libfoo-2.0-1",
        "newtool-1.0-1",
        "testos-release-2.0-1",
        "local-tool-1.0-1",
        "layer-c-1.0-1",
    ] {
        assert!(qa.contains(&p.to_owned()), "{p} missing from {qa:?}");
    }
    assert_eq!(
        metadata_key(&sb, &upgraded, "rpmostree.packages"),
        "['layer-a']"
    );
    let json = status_json(&sb);
    let d0 = &json["deployments"][0];
    assert_eq!(d0["packages"], serde_json::json!(["layer-a"]), "{d0}");
    assert_eq!(
        d0["requested-packages"],
        serde_json::json!(["layer-a", "newtool"]),
        "{d0}"
    );
    assert_eq!(d0["version"], "2.0", "{d0}");
    assert_eq!(
        d0["requested-local-packages"],
        serde_json::json!(["local-tool-1.0-1.noarch"]),
        "{d0}"
    );
    // A local package is uninstalled by its name.
    cli_ok(&sb, &["uninstall", "local-tool"]);
    let (dir, _) = first_deployment(&sb, true);
    assert!(!rpm_qa(&dir).contains(&"local-tool-1.0-1".to_owned()));
    // The new base makes needs-new-libfoo installable.
    cli_ok(&sb, &["install", "needs-new-libfoo"]);
    let (dir, _) = first_deployment(&sb, true);
    assert!(rpm_qa(&dir).contains(&"needs-new-libfoo-1.0-1".to_owned()));

    // uninstall --all goes back to the plain base.
    cli_ok(&sb, &["uninstall", "--all"]);
    let (dir, plain) = first_deployment(&sb, true);
    assert_eq!(metadata_key(&sb, &plain, "rpmostree.clientlayer"), "");
    assert!(!rpm_qa(&dir).iter().any(|p| p.starts_with("layer-")));
    let json = status_json(&sb);
    assert_eq!(
        json["deployments"][0]["requested-packages"],
        serde_json::json!([])
    );
    // The package cache keeps what deployments still layer (the finalized layer-a
    // deployment is still there) and drops the rest.
    let refs = sb.ostree(&["refs", "--list", "rpmostree/pkg"]).unwrap();
    for gone in ["local-tool", "needs-new-libfoo", "newtool"] {
        assert!(!refs.contains(gone), "{gone} is unused: {refs}");
    }
    assert!(
        refs.contains("rpmostree/pkg/layer-a/1.0-1.noarch"),
        "{refs}"
    );
    sb.ostree(&["fsck"])
        .expect("ostree fsck is clean at the end");
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn pkg_change_over_d_bus_and_a_non_root_user_with_and_without_the_grant() {
    let Some(sb) = sandbox(
        "pkg_change_over_d_bus_and_a_non_root_user_with_and_without_the_grant",
        SandboxOptions::default(),
    ) else {
        return;
    };
    // Not booted: the new deployment is written directly.
    let before = deployments(&sb, false);
    let out = cli_as_test_user(&sb, &["install", "layer-c"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr
            .contains("org.projectatomic.rpmostree1.install-uninstall-packages"),
        "{}",
        out.describe()
    );
    assert_eq!(deployments(&sb, false), before);
    sb.grant(&["org.projectatomic.rpmostree1.install-uninstall-packages"])
        .expect("granting install-uninstall-packages");
    let out = cli_as_test_user(&sb, &["install", "layer-c", "owned-files"]);
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let (dir, _) = first_deployment(&sb, false);
    assert!(rpm_qa(&dir).contains(&"layer-c-1.0-1".to_owned()));
    // Files owned by a system user keep their owner, group and mode (setuid included).
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let secret = std::fs::metadata(dir.join("usr/share/owned-files/secret")).unwrap();
        assert_eq!((secret.uid(), secret.gid()), (990, 990));
        assert_eq!(secret.permissions().mode() & 0o7777, 0o640);
        let tool = std::fs::metadata(dir.join("usr/bin/owned-tool")).unwrap();
        assert_eq!((tool.uid(), tool.gid()), (0, 990));
        assert_eq!(tool.permissions().mode() & 0o7777, 0o4555);
        let state = std::fs::metadata(dir.join("usr/share/owned-files/state")).unwrap();
        assert_eq!((state.uid(), state.gid()), (991, 991), "from sysusers.d");
        // systemd-sysusers made dynsvc in the new tree; the file has its ids.
        let passwd = std::fs::read_to_string(dir.join("usr/etc/passwd")).unwrap();
        let dynsvc: u32 = passwd
            .lines()
            .find_map(|l| l.strip_prefix("dynsvc:x:"))
            .and_then(|rest| rest.split(':').next())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no dynsvc in {passwd}"));
        assert!(dynsvc > 0 && dynsvc < 1000, "{passwd}");
        let dynamic = std::fs::metadata(dir.join("usr/share/owned-files/dynamic")).unwrap();
        assert_eq!(dynamic.uid(), dynsvc);
    }
    sb.ostree(&["fsck"]).expect("ostree fsck is clean");
    // An update check of a layered deployment compares bases: the layered packages are not
    // part of the update.
    let out = cli_ok(&sb, &["upgrade", "--check"]);
    assert!(
        out.contains("Diff: 4 upgraded, 1 downgraded, 1 removed, 1 added"),
        "{out}"
    );

    // PkgChange, as Cockpit and scripts call it: dry-run first (nothing changes), then for
    // real, adding layer-b and removing layer-c.
    block_on(std::time::Duration::from_secs(170), async {
        let os = os_proxy(&sb).await;
        let before = deployments(&sb, false);
        let options = rpmostree_api::PkgChangeOptions::new().dry_run(true);
        let mut messages = Vec::new();
        os.pkg_change_transaction(&options, &["layer-b"], &["layer-c"])
            .await
            .expect("PkgChange")
            .run(|e| {
                if let rpmostree_api::TransactionEvent::Message { text } = e {
                    messages.push(text.clone());
                }
            })
            .await
            .expect("the dry run succeeds");
        assert!(
            messages.iter().any(|m| m.contains("layer-b-2.0-1.noarch")),
            "{messages:?}"
        );
        assert_eq!(deployments(&sb, false), before);
        os.pkg_change_transaction(
            &rpmostree_api::PkgChangeOptions::new(),
            &["layer-b"],
            &["layer-c"],
        )
        .await
        .expect("PkgChange")
        .run(|_| {})
        .await
        .expect("the change succeeds");
        let err = os
            .pkg_change(&rpmostree_api::PkgChangeOptions::new(), &["bad;name"], &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("invalid package request"), "{err}");
        // Upstream's CLI passes UpdateDeployment's options to PkgChange as well: a wrong type
        // is refused naming the key.
        let options = rpmostree_api::PkgChangeOptions::new()
            .with_extra("no-layering", zbus::OwnedVariant::from(7u32));
        let err = os.pkg_change(&options, &[], &[]).await.unwrap_err();
        assert!(err.to_string().contains("'no-layering'"), "{err}");
    });
    let (dir, layered) = first_deployment(&sb, false);
    let qa = rpm_qa(&dir);
    assert!(qa.contains(&"layer-b-2.0-1".to_owned()), "{qa:?}");
    assert!(!qa.contains(&"layer-c-1.0-1".to_owned()), "{qa:?}");
    assert_eq!(
        metadata_key(&sb, &layered, "rpmostree.packages"),
        "['layer-b', 'owned-files']"
    );
    let origin = std::fs::read_to_string(format!("{}.origin", dir.display())).unwrap();
    assert!(
        origin.contains("requested=layer-b;owned-files;"),
        "{origin}"
    );

    // Rebase with packages: the other branch's base, the requests kept and one added.
    block_on(std::time::Duration::from_secs(170), async {
        let os = os_proxy(&sb).await;
        os.rebase_transaction(
            &rpmostree_api::RebaseOptions::new(),
            "origin:testos/devel",
            &["layer-c"],
        )
        .await
        .expect("Rebase")
        .run(|_| {})
        .await
        .expect("the rebase succeeds");
    });
    let (dir, _) = first_deployment(&sb, false);
    let qa = rpm_qa(&dir);
    for p in [
        "testos-release-10.0-1",
        "layer-b-2.0-1",
        "layer-c-1.0-1",
        "owned-files-1.0-1",
    ] {
        assert!(qa.contains(&p.to_owned()), "{p} missing from {qa:?}");
    }
    let origin = std::fs::read_to_string(format!("{}.origin", dir.display())).unwrap();
    assert!(
        origin.contains("baserefspec=origin:testos/devel"),
        "{origin}"
    );
    assert!(
        origin.contains("requested=layer-b;layer-c;owned-files;"),
        "{origin}"
    );

    // What upstream's `rpm-ostree uninstall --all` sends: PkgChange with `no-layering`.
    block_on(std::time::Duration::from_secs(170), async {
        let os = os_proxy(&sb).await;
        let options = rpmostree_api::PkgChangeOptions::new()
            .with_extra("no-layering", zbus::OwnedVariant::from(true))
            .with_extra("no-pull-base", zbus::OwnedVariant::from(true))
            .with_extra("print-interactive", zbus::OwnedVariant::from(false));
        os.pkg_change_transaction(&options, &[], &[])
            .await
            .expect("PkgChange")
            .run(|_| {})
            .await
            .expect("removing every layered package succeeds");
    });
    let (dir, _) = first_deployment(&sb, false);
    let origin = std::fs::read_to_string(format!("{}.origin", dir.display())).unwrap();
    assert!(!origin.contains("requested="), "{origin}");
    assert!(!rpm_qa(&dir).contains(&"layer-b-2.0-1".to_owned()));
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn override_remove_replace_reset_and_reset_on_a_booted_system() {
    let Some(sb) = sandbox(
        "override_remove_replace_reset_and_reset_on_a_booted_system",
        SandboxOptions {
            fake_booted: true,
            ..Default::default()
        },
    ) else {
        return;
    };
    let (booted_dir, booted) = first_deployment(&sb, true);
    assert!(booted_dir.join("usr/share/bar/VERSION").is_file());

    // Remove a base package: its files and its rpmdb entry go.
    let out = cli_ok(&sb, &["override", "remove", "bar"]);
    assert!(out.contains(QUEUED), "{out}");
    let (dir, commit) = first_deployment(&sb, true);
    assert_ne!(commit, booted);
    let qa = rpm_qa(&dir);
    assert!(!qa.contains(&"bar-1.0-1".to_owned()), "{qa:?}");
    assert!(qa.contains(&"libfoo-1.0-1".to_owned()), "{qa:?}");
    assert!(
        !dir.join("usr/share/bar/VERSION").exists(),
        "its files are gone"
    );
    assert!(dir.join("usr/share/libfoo/VERSION").is_file());
    assert!(
        booted_dir.join("usr/share/bar/VERSION").is_file(),
        "the booted tree keeps it"
    );
    let out = cli_ok(&sb, &["status"]);
    assert!(
        out.contains("RemovedBasePackages: bar-1.0-1.noarch"),
        "{out}"
    );
    let json = status_json(&sb);
    let d0 = &json["deployments"][0];
    assert_eq!(
        d0["requested-base-removals"],
        serde_json::json!(["bar"]),
        "{d0}"
    );
    assert_eq!(d0["base-removals"][0][0], "bar-1.0-1.noarch", "{d0}");
    fails_with(
        &sb,
        &["override", "remove", "bar"],
        &["Override already exists for package 'bar'"],
    );
    fails_with(
        &sb,
        &["override", "remove", "no-such-base-package"],
        &["no-such-base-package"],
    );
    fails_with(
        &sb,
        &["override", "reset", "libfoo"],
        &["No overrides for package 'libfoo'"],
    );

    // Replace a base package with a local RPM: a newer libfoo, with its own files.
    let local = rpmostree_tests::rpms::build_rpms(&[rpmostree_tests::rpms::RpmSpec::new(
        "libfoo", "3.0", "1",
    )
    .summary("Foo runtime library")
    .provides("libfoo-abi = 3.0")])
    .unwrap();
    let local = local[0].to_str().unwrap().to_owned();
    cli_ok(&sb, &["override", "replace", &local]);
    let (dir, commit) = first_deployment(&sb, true);
    let qa = rpm_qa(&dir);
    assert!(qa.contains(&"libfoo-3.0-1".to_owned()), "{qa:?}");
    assert!(!qa.contains(&"libfoo-1.0-1".to_owned()), "{qa:?}");
    assert!(
        !qa.contains(&"bar-1.0-1".to_owned()),
        "the removal stays: {qa:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("usr/share/libfoo/VERSION")).unwrap(),
        "libfoo 3.0-1\n"
    );
    assert_eq!(metadata_key(&sb, &commit, "rpmostree.clientlayer"), "true");
    let out = cli_ok(&sb, &["status"]);
    assert!(out.contains("ReplacedBasePackages:"), "{out}");
    assert!(out.contains("libfoo-3.0-1.noarch"), "{out}");
    let json = status_json(&sb);
    let d0 = &json["deployments"][0];
    assert_eq!(
        d0["requested-base-local-replacements"],
        serde_json::json!(["libfoo-3.0-1.noarch"]),
        "{d0}"
    );
    sb.ostree(&["fsck"]).expect("ostree fsck is clean");

    // Reset one override by name, then layer a package and reset everything.
    cli_ok(&sb, &["override", "reset", "bar"]);
    let (dir, _) = first_deployment(&sb, true);
    let qa = rpm_qa(&dir);
    assert!(qa.contains(&"bar-1.0-1".to_owned()), "{qa:?}");
    assert!(dir.join("usr/share/bar/VERSION").is_file());
    assert!(qa.contains(&"libfoo-3.0-1".to_owned()), "{qa:?}");
    cli_ok(&sb, &["install", "layer-c"]);
    cli_ok(&sb, &["reset"]);
    let (dir, commit) = first_deployment(&sb, true);
    assert_eq!(commit, booted, "back to the plain base");
    let qa = rpm_qa(&dir);
    assert!(qa.contains(&"libfoo-1.0-1".to_owned()), "{qa:?}");
    assert!(!qa.contains(&"layer-c-1.0-1".to_owned()), "{qa:?}");
    let json = status_json(&sb);
    let d0 = &json["deployments"][0];
    assert_eq!(d0["requested-packages"], serde_json::json!([]), "{d0}");
    assert_eq!(
        d0["requested-base-local-replacements"],
        serde_json::json!([]),
        "{d0}"
    );
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn file_triggers_and_scriptlets_see_the_new_files_and_the_machine_accounts() {
    let Some(sb) = sandbox(
        "file_triggers_and_scriptlets_see_the_new_files_and_the_machine_accounts",
        SandboxOptions::default(),
    ) else {
        return;
    };
    let (base_dir, _) = first_deployment(&sb, false);
    assert!(!base_dir.join("usr/share/base-files/triggered").exists());
    // layer-c adds nothing under /usr/share/watched: the base's trigger does not run.
    cli_ok(&sb, &["install", "layer-c"]);
    let (dir, _) = first_deployment(&sb, false);
    assert!(!dir.join("usr/share/base-files/triggered").exists());
    // watch-trigger adds a watched file: the base's trigger and its own see it on stdin.
    cli_ok(&sb, &["install", "watch-trigger"]);
    let (dir, _) = first_deployment(&sb, false);
    assert_eq!(
        std::fs::read_to_string(dir.join("usr/share/base-files/triggered")).unwrap(),
        "/usr/share/watched/w\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("usr/share/watch-trigger/seen")).unwrap(),
        "/usr/share/watched/w\n"
    );
    sb.ostree(&["fsck"]).expect("ostree fsck is clean");

    // Scriptlets see the accounts of the running system (the configuration deployment's
    // /etc/passwd), which stay out of the new tree.
    let config_passwd = dir.join("etc/passwd");
    let mut text = std::fs::read_to_string(&config_passwd).unwrap();
    text.push_str("machineuser:x:995:995::/:/sbin/nologin\n");
    std::fs::write(&config_passwd, text).unwrap();
    cli_ok(&sb, &["install", "pre-sees-users"]);
    let (dir, _) = first_deployment(&sb, false);
    assert_eq!(
        std::fs::read_to_string(dir.join("usr/share/pre-sees-users/seen")).unwrap(),
        "found\n"
    );
    let tree_passwd = std::fs::read_to_string(dir.join("usr/etc/passwd")).unwrap();
    assert!(!tree_passwd.contains("machineuser"), "{tree_passwd}");
    assert!(tree_passwd.contains("testsvc"), "{tree_passwd}");
}

/// Pids whose command line has `needle` and `program`.
fn processes_with(needle: &str, program: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && cmdline.contains(program) {
            out.push(pid);
        }
    }
    out
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_daemon_killed_in_a_scriptlet_leaves_no_server_mount_or_directory_behind() {
    let Some(sb) = sandbox(
        "a_daemon_killed_in_a_scriptlet_leaves_no_server_mount_or_directory_behind",
        SandboxOptions::default(),
    ) else {
        return;
    };
    let before = deployments(&sb, false);
    let mut cmd = sb.command(cli_bin().to_str().unwrap());
    cmd.args(["install", "endless-post"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut install = cmd.spawn().unwrap();
    let sysroot = sb.sysroot().display().to_string();
    let started = std::time::Instant::now();
    while processes_with(&sysroot, "rofiles-fuse").len() < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the scriptlet never started: {}",
            sb.daemon_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    sb.kill_daemon(9).unwrap();
    sb.wait_daemon_gone(std::time::Duration::from_secs(10))
        .unwrap();
    let status = install.wait().unwrap();
    assert!(!status.success(), "the install cannot succeed");
    // Neither the FUSE servers nor the scriptlet's sandbox outlive the daemon.
    let started = std::time::Instant::now();
    loop {
        let left: Vec<u32> = ["rofiles-fuse", "bwrap"]
            .iter()
            .flat_map(|p| processes_with(&sysroot, p))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "still running: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(deployments(&sb, false), before, "nothing was deployed");
    // The next change works (a new daemon, by activation) and clears what the killed one
    // left in the repository's tmp/.
    cli_ok(&sb, &["install", "layer-c"]);
    let tmp = sb.sysroot().join("ostree/repo/tmp");
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rpmostree-"))
        .collect();
    assert!(left.is_empty(), "{left:?}: {}", sb.daemon_log());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!("{}/ostree/repo/tmp/rpmostree-", sysroot)),
        "{mounts}"
    );
}
