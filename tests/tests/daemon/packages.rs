//! The package side over D-Bus, on real RPM data: package diffs between deployments and of
//! cached updates, rebases and deploys (exact upstream shapes, ground truth from the fixture's
//! package sets), `CachedUpdate` with `rpm-diff` and advisories, and the rpm-md repositories:
//! RefreshMd, ListRepos, ModifyYumRepo, GetPackages, WhatProvides, Search, Cleanup repomd,
//! and broken repositories.

use std::collections::HashMap;
use std::time::Duration;

use rpmostree_api::{
    AutomaticUpdateTriggerOptions, OSProxy, RefreshMdOptions, TransactionEvent, UpgradeOptions,
};
use rpmostree_tests::truth::commit_changes;
use rpmostree_tests::{FIXTURE_ADVISORY, FIXTURE_ADVISORY_CVE, PackageChange, SandboxOptions};
use zbus::OwnedVariant;

use crate::common::*;

type Diff = Vec<(String, u32, HashMap<String, OwnedVariant>)>;
/// One `upgraded`/`downgraded` entry of `rpm-diff`: (type, name, (old evr, arch), (new evr, arch)).
type Modified = (u32, String, (String, String), (String, String));

/// A diff as (name, kind, previous (evr, arch), new (evr, arch)) for comparisons.
fn flat(diff: &Diff) -> Vec<PackageChange> {
    let side = |d: &HashMap<String, OwnedVariant>, key: &str| {
        d.get(key).map(|v| {
            let (name, evr, arch): (String, String, String) =
                v.try_clone().unwrap().try_into().unwrap();
            format!("{name}-{evr}.{arch}")
        })
    };
    diff.iter()
        .map(|(n, k, d)| {
            (
                n.clone(),
                *k,
                side(d, "PreviousPackage"),
                side(d, "NewPackage"),
            )
        })
        .collect()
}

fn entry(name: &str, kind: u32, old: Option<&str>, new: Option<&str>) -> PackageChange {
    (
        name.to_owned(),
        kind,
        old.map(str::to_owned),
        new.map(str::to_owned),
    )
}

/// The changes from the fixture's 1.1 to 2.0, in upstream's order (kind, then name).
fn update_1_1_to_2_0() -> Vec<PackageChange> {
    rpmostree_tests::fixture_update_changes()
}

async fn refresh(
    os: &OSProxy<'_>,
    force: bool,
) -> Result<Vec<TransactionEvent>, rpmostree_api::Error> {
    let mut events = Vec::new();
    let mut txn = os
        .refresh_md_transaction(&RefreshMdOptions::new().force(force))
        .await?;
    txn.run(|e| events.push(e.clone())).await?;
    Ok(events)
}

fn messages(events: &[TransactionEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            TransactionEvent::Message { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn package_diffs_of_deployments_updates_rebases_and_deploys() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;
        let deployments = sysroot.deployments().await.unwrap();
        let ids: Vec<String> = deployments.iter().map(|d| d.id.clone().unwrap()).collect();
        let sums: Vec<String> = deployments
            .iter()
            .map(|d| d.checksum.clone().unwrap())
            .collect();
        assert_eq!(ids.len(), 2);
        let base = sums[0].clone();

        // Between the two deployments (1.0 -> 1.1): only testos-release changed, as rpm -qa
        // of the two commits says.
        let diff = os.get_deployments_rpm_diff(&ids[1], &ids[0]).await.unwrap();
        assert_eq!(
            flat(&diff),
            commit_changes(&sb, &sums[1], &sums[0]).unwrap()
        );
        assert_eq!(
            flat(&diff),
            [entry(
                "testos-release",
                2,
                Some("testos-release-1.0-1.noarch"),
                Some("testos-release-1.1-1.noarch")
            )]
        );
        let back = os.get_deployments_rpm_diff(&ids[0], &ids[1]).await.unwrap();
        assert_eq!(back[0].1, 3, "the other way it is a downgrade");
        let err = os
            .get_deployments_rpm_diff("testos-nope.0", &ids[0])
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("Deployment with id 'testos-nope.0' not found"),
            "{err}"
        );

        // Nothing pulled yet: the cached update diff has no new commit to compare with.
        let (same, details) = os.get_cached_update_rpm_diff("").await.unwrap();
        assert!(same.is_empty(), "{same:?}");
        assert_eq!(details.version.as_deref(), Some("1.1"));

        // Cockpit's "Check for updates": DownloadUpdateRpmDiff, then CachedUpdate.
        os.download_update_rpm_diff_transaction()
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
        let (diff, details) = os.get_cached_update_rpm_diff("").await.unwrap();
        assert_eq!(flat(&diff), update_1_1_to_2_0());
        let update = details.checksum.clone().unwrap();
        assert_eq!(flat(&diff), commit_changes(&sb, &base, &update).unwrap());
        assert_eq!(details.version.as_deref(), Some("2.0"));
        assert_eq!(details.origin.as_deref(), Some("origin:testos/stable"));
        assert_eq!(details.osname.as_deref(), Some("testos"));
        let cached = os.cached_update().await.unwrap();
        assert_eq!(cached.version.as_deref(), Some("2.0"));
        let rpm_diff = cached.rpm_diff.expect("rpm-diff");
        let upgraded: Vec<Modified> = rpm_diff["upgraded"]
            .try_clone()
            .unwrap()
            .try_into()
            .unwrap();
        let names: Vec<&str> = upgraded.iter().map(|u| u.1.as_str()).collect();
        assert_eq!(names, ["clock", "libfoo", "testos-release", "tilde"]);
        assert_eq!(
            upgraded[0],
            (
                0,
                "clock".into(),
                ("1:2.0-1".into(), "noarch".into()),
                ("2:1.0-1".into(), "noarch".into())
            ),
            "an upgrade by epoch, with the epochs shown"
        );
        assert_eq!(upgraded[3].2.0, "1.0~rc1-1");
        let downgraded: Vec<Modified> = rpm_diff["downgraded"]
            .try_clone()
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(downgraded[0].1, "bar");
        let removed: Vec<(u32, String, String, String)> =
            rpm_diff["removed"].try_clone().unwrap().try_into().unwrap();
        assert_eq!(
            removed,
            [(0, "oldtool".into(), "1.0-1".into(), "noarch".into())]
        );
        let added: Vec<(u32, String, String, String)> =
            rpm_diff["added"].try_clone().unwrap().try_into().unwrap();
        assert_eq!(
            added,
            [(0, "newtool".into(), "1.0-1".into(), "noarch".into())]
        );
        let advisories = cached.advisories.expect("advisories");
        assert_eq!(
            advisories.len(),
            1,
            "only the security advisory: {advisories:?}"
        );
        let (id, kind, severity, nevras, extra) = &advisories[0];
        assert_eq!(id, FIXTURE_ADVISORY);
        assert_eq!((*kind, *severity), (1, 3), "security, important");
        assert_eq!(nevras, &["libfoo-2.0-1.noarch"]);
        let cves: Vec<(String, String)> = extra["cve_references"]
            .try_clone()
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(cves.len(), 1);
        assert!(cves[0].1.contains(FIXTURE_ADVISORY_CVE), "{cves:?}");
        assert_eq!(
            admin_versions(&sb),
            ["1.1", "1.0"],
            "a check deploys nothing"
        );

        // A rebase diff: the devel branch has no package-list metadata, so its rpmdb is
        // fetched (and only that) and read.
        let err = os
            .get_cached_rebase_rpm_diff("testos/devel", &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        os.download_rebase_rpm_diff_transaction("testos/devel", &[])
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
        let (diff, details) = os
            .get_cached_rebase_rpm_diff("testos/devel", &[])
            .await
            .unwrap();
        assert_eq!(details.version.as_deref(), Some("10.0"));
        assert_eq!(details.origin.as_deref(), Some("origin:testos/devel"));
        let devel = details.checksum.clone().unwrap();
        assert_eq!(flat(&diff), commit_changes(&sb, &base, &devel).unwrap());
        let kinds: Vec<(&str, u32)> = diff.iter().map(|(n, k, _)| (n.as_str(), *k)).collect();
        assert!(
            kinds.contains(&("newtool", 0)) && kinds.contains(&("clock", 1)),
            "{kinds:?}"
        );
        let other_file = sb.ostree(&["cat", &devel, "/usr/share/testos/version"]);
        assert!(other_file.is_err(), "only the rpmdb of devel was pulled");
        assert_eq!(admin_versions(&sb), ["1.1", "1.0"]);

        // A deploy diff by version.
        os.download_deploy_rpm_diff_transaction("2.0", &[])
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
        let (diff, details) = os.get_cached_deploy_rpm_diff("2.0", &[]).await.unwrap();
        assert_eq!(flat(&diff), update_1_1_to_2_0());
        assert_eq!(
            flat(&diff),
            commit_changes(&sb, &base, &details.checksum.clone().unwrap()).unwrap()
        );
        assert_eq!(details.version.as_deref(), Some("2.0"));
        let err = os.get_cached_deploy_rpm_diff("", &[]).await.unwrap_err();
        assert!(err.to_string().contains("Missing revision"), "{err}");
        let err = os
            .get_cached_deploy_rpm_diff("2.0", &["hello"])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("NotSupported"), "{err}");
        assert_eq!(admin_versions(&sb), ["1.1", "1.0"]);
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn upgrade_on_a_booted_system_caches_its_package_diff() {
    let Some(sb) = sandbox(SandboxOptions {
        fake_booted: true,
        ..Default::default()
    }) else {
        return;
    };
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;
        // `upgrade --check` (check mode) fills rpm-diff and advisories too.
        let (_, txn) = os
            .automatic_update_trigger_transaction(
                &AutomaticUpdateTriggerOptions::new().mode("check"),
            )
            .await
            .unwrap();
        txn.unwrap().run(|_| {}).await.unwrap();
        let cached = os.cached_update().await.unwrap();
        assert!(
            cached.rpm_diff.is_some() && cached.advisories.is_some(),
            "{cached:?}"
        );
        assert_eq!(cached.deployment, None);

        os.upgrade_transaction(&UpgradeOptions::new())
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
        let deployments = sysroot.deployments().await.unwrap();
        let staged = deployments[0].id.clone().unwrap();
        assert_eq!(deployments[0].staged, Some(true));
        let cached = os.cached_update().await.unwrap();
        assert_eq!(cached.deployment.as_deref(), Some(staged.as_str()));
        assert_eq!(cached.version.as_deref(), Some("2.0"));
        let booted = deployments.iter().find(|d| d.booted == Some(true)).unwrap();
        assert_eq!(cached.update_sha256, booted.checksum);
        let removed: Vec<(u32, String, String, String)> = cached.rpm_diff.unwrap()["removed"]
            .try_clone()
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(removed[0].1, "oldtool");
        // The pending deployment's packages against the booted one: what Cockpit shows.
        let diff = os
            .get_deployments_rpm_diff(booted.id.as_deref().unwrap(), &staged)
            .await
            .unwrap();
        assert_eq!(flat(&diff), update_1_1_to_2_0());
        assert_eq!(
            flat(&diff),
            commit_changes(
                &sb,
                booted.checksum.as_deref().unwrap(),
                deployments[0].checksum.as_deref().unwrap()
            )
            .unwrap()
        );
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn rpm_md_repositories_metadata_and_queries() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    // Serve the repository over HTTP, as a real one would be: a `file://` repository is read in
    // place and never cached.
    let server = serve_over_http(&sb);
    let repo_file = sb.repo_file().unwrap();
    let mut server = Some(server);
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;

        let repos = os.list_repos().await.unwrap();
        let summary: Vec<(String, String, bool)> = repos
            .iter()
            .map(|r| {
                (
                    r.id.clone().unwrap(),
                    r.description.clone().unwrap(),
                    r.is_enabled.unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("testos".into(), "TestOS 1.1".into(), true),
                (
                    "testos-extras".into(),
                    format!("TestOS 1.1 Extras ({})", std::env::consts::ARCH),
                    false
                ),
            ]
        );
        assert_eq!(repos[0].is_devel, Some(false));
        assert_eq!(repos[0].is_source, Some(false));

        // Queries use cached metadata only: there is none yet.
        let err = os.get_packages(&["hello"]).await.unwrap_err();
        assert!(
            err.to_string().contains("'testos'") && err.to_string().contains("refresh-md"),
            "{err}"
        );

        let events = refresh(&os, false).await.unwrap();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, TransactionEvent::PercentProgress { .. })),
            "{events:?}"
        );
        assert!(
            messages(&events)
                .iter()
                .any(|m| m.starts_with("rpm-md repo 'testos'")),
            "{events:?}"
        );
        let cache = sb
            .sysroot()
            .join("ostree/deploy/testos/var/cache/rpm-ostree/repomd");
        assert!(cache.is_dir(), "metadata lands in the cache");
        let again = refresh(&os, false).await.unwrap();
        assert!(
            messages(&again).iter().any(|m| m.contains("(cached)")),
            "a second refresh uses the cache: {again:?}"
        );

        let hello = os.get_packages(&["hello", "nope"]).await.unwrap();
        assert_eq!(hello.len(), 1, "{hello:?}");
        assert_eq!(hello[0].key.as_deref(), Some("hello"));
        assert_eq!(hello[0].nevra.as_deref(), Some("hello-1.1-1.noarch"));
        assert_eq!(hello[0].evr.as_deref(), Some("1.1-1"));
        assert_eq!(hello[0].epoch, Some(0));
        assert_eq!(hello[0].reponame.as_deref(), Some("testos"));
        assert_eq!(
            hello[0].summary.as_deref(),
            Some("A friendly greeting program")
        );

        let provides = os.what_provides(&["greeting"]).await.unwrap();
        let nevras: Vec<_> = provides.iter().filter_map(|p| p.nevra.clone()).collect();
        assert_eq!(nevras, ["hello-1.1-1.noarch"]);
        assert_eq!(provides[0].key, None);

        let found = os.search(&["hello"]).await.unwrap();
        let keyed: Vec<(String, String)> = found
            .iter()
            .map(|p| (p.key.clone().unwrap(), p.name.clone().unwrap()))
            .collect();
        assert!(
            keyed.contains(&("match_group_b".into(), "hello".into())),
            "{keyed:?}"
        );
        assert!(
            keyed.contains(&("match_group_b".into(), "hello-docs".into())),
            "{keyed:?}"
        );
        let err = os.search(&[]).await.unwrap_err();
        assert!(
            err.to_string().contains("Must specify a term for search"),
            "{err}"
        );

        // ModifyYumRepo changes `enabled` only, in the deployment's .repo file.
        let before = std::fs::read_to_string(&repo_file).unwrap();
        let err = os
            .modify_yum_repo(
                "testos",
                &HashMap::from([("baseurl".to_owned(), "file:///x".to_owned())]),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("Changing 'baseurl' not allowed"),
            "{err}"
        );
        let err = os
            .modify_yum_repo(
                "nope",
                &HashMap::from([("enabled".to_owned(), "1".to_owned())]),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("Yum repo 'nope' not found"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&repo_file).unwrap(), before);
        os.modify_yum_repo_transaction(
            "testos-extras",
            &HashMap::from([("enabled".to_owned(), "1".to_owned())]),
        )
        .await
        .unwrap()
        .run(|_| {})
        .await
        .unwrap();
        let repos = os.list_repos().await.unwrap();
        assert_eq!(repos[1].is_enabled, Some(true));

        // The extras repository does not exist: refreshing names it, and the cache of the
        // other repository still answers.
        let err = refresh(&os, false).await.unwrap_err();
        assert!(err.to_string().contains("testos-extras"), "{err}");
        os.modify_yum_repo_transaction(
            "testos-extras",
            &HashMap::from([("enabled".to_owned(), "0".to_owned())]),
        )
        .await
        .unwrap()
        .run(|_| {})
        .await
        .unwrap();

        // A corrupt repository: a clear error naming it; the previous cache keeps answering.
        let repomd = sb.rpmmd_repo().join("repodata/repomd.xml");
        let good = std::fs::read(&repomd).unwrap();
        std::fs::write(&repomd, "not xml").unwrap();
        let err = refresh(&os, true).await.unwrap_err();
        assert!(err.to_string().contains("'testos'"), "{err}");
        let hello = os.get_packages(&["hello"]).await.unwrap();
        assert_eq!(hello.len(), 1);
        std::fs::write(&repomd, good).unwrap();

        // An unreachable repository: the same; queries never need the network.
        let requests = server.as_ref().map(|s| s.requests()).unwrap_or_default();
        let found = os.search(&["greeting"]).await.unwrap();
        assert!(
            found.iter().any(|p| p.name.as_deref() == Some("hello")),
            "{found:?}"
        );
        assert_eq!(
            server.as_ref().map(|s| s.requests()).unwrap_or_default(),
            requests,
            "queries read no metadata over the network"
        );
        drop(server.take());
        let err = refresh(&os, true).await.unwrap_err();
        assert!(err.to_string().contains("'testos'"), "{err}");
        assert_eq!(os.get_packages(&["hello"]).await.unwrap().len(), 1);

        // Cleanup repomd empties the cache.
        os.cleanup_transaction(&["repomd"])
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
        assert!(!cache.exists() || std::fs::read_dir(&cache).unwrap().next().is_none());
        assert!(os.get_packages(&["hello"]).await.is_err());
    });
}

/// Whether a package helper of the sandbox is still running.
fn helper_running(sb: &rpmostree_tests::Sandbox) -> bool {
    let helper = sb.dir().join("bin/rpm-ostreed-dnf");
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .any(|e| std::fs::read_link(e.path().join("exe")).is_ok_and(|exe| exe == helper))
        })
        .unwrap_or(false)
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_cancelled_refresh_stops_at_once_and_keeps_the_cache() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    let server = serve_over_http(&sb);
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        refresh(&os, false).await.unwrap();
        assert_eq!(os.get_packages(&["hello"]).await.unwrap().len(), 1);

        // Now a forced refresh at 64 bytes per second: minutes of work, cancelled early.
        server.set_rate(Some(64));
        let mut txn = os
            .refresh_md_transaction(&RefreshMdOptions::new().force(true))
            .await
            .unwrap();
        let proxy = txn.proxy.clone();
        let sent = server.bytes_sent();
        let running = tokio::spawn(async move {
            let result = txn.run(|_| {}).await;
            (result, std::time::Instant::now())
        });
        wait_for("the download to start", Duration::from_secs(30), || async {
            server.bytes_sent() > sent
        })
        .await;
        assert!(helper_running(&sb), "the helper downloads");
        let cancelled_at = std::time::Instant::now();
        proxy.cancel().await.unwrap();
        let (result, finished_at) = running.await.unwrap();
        let took = finished_at - cancelled_at;
        assert!(took < Duration::from_secs(2), "Cancel took {took:?}");
        let err = result.unwrap_err();
        assert!(err.message().contains("cancelled"), "{err}");
        assert!(!helper_running(&sb), "the helper was stopped");
        // The cache from before still answers.
        server.set_rate(None);
        assert_eq!(os.get_packages(&["hello"]).await.unwrap().len(), 1);
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_repository_that_goes_away_mid_download_fails_naming_it_and_keeps_the_cache() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    let server = serve_over_http(&sb);
    let mut server = Some(server);
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        refresh(&os, false).await.unwrap();
        let cache = sb
            .sysroot()
            .join("ostree/deploy/testos/var/cache/rpm-ostree/repomd");
        let listing = |dir: &std::path::Path| -> Vec<String> {
            let mut names: Vec<String> = walk(dir);
            names.sort();
            names
        };
        let before = listing(&cache);
        assert!(!before.is_empty());

        // A slow forced refresh; the server goes away once the download is under way.
        let s = server.as_ref().unwrap();
        s.set_rate(Some(64));
        let sent = s.bytes_sent();
        let mut txn = os
            .refresh_md_transaction(&RefreshMdOptions::new().force(true))
            .await
            .unwrap();
        let running = tokio::spawn(async move { txn.run(|_| {}).await });
        wait_for("the download to start", Duration::from_secs(30), || async {
            server.as_ref().is_some_and(|s| s.bytes_sent() > sent)
        })
        .await;
        drop(server.take());
        let err = running.await.unwrap().unwrap_err();
        assert!(err.message().contains("'testos'"), "{err}");
        assert_eq!(listing(&cache), before, "the cache is as it was");
        assert_eq!(os.get_packages(&["hello"]).await.unwrap().len(), 1);
    });
}

/// Every file under `dir`, relative, with its size.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(
                walk(&path)
                    .into_iter()
                    .map(|p| format!("{}/{p}", e.file_name().to_string_lossy())),
            );
        } else {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(format!("{} {size}", e.file_name().to_string_lossy()));
        }
    }
    out
}

/// Serves the fixture's rpm-md repository on loopback HTTP and points the deployment's
/// `testos.repo` at it.
fn serve_over_http(sb: &rpmostree_tests::Sandbox) -> rpmostree_tests::HttpServer {
    let server = rpmostree_tests::HttpServer::start(sb.rpmmd_repo(), None).unwrap();
    sb.point_repo_at(&server.url()).unwrap();
    server
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn package_requests_of_the_origin_show_in_the_deployments_and_survive_an_upgrade() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    let sha = "ab".repeat(32);
    let deploy_with_origin = |text: &str| {
        let origin = sb.dir().join("layered.origin");
        std::fs::write(&origin, text).unwrap();
        sb.ostree_admin(&[
            "deploy",
            "--os=testos",
            &format!("--origin-file={}", origin.display()),
            "origin:testos/stable",
        ])
        .unwrap();
    };
    deploy_with_origin(&format!(
        "[origin]\nbaserefspec=origin:testos/stable\n\n[packages]\nrequested=hello;greeting;\n\
         requested-local={sha}:foo-1.0-1.noarch;\n"
    ));
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;
        let first = sysroot.deployments().await.unwrap().remove(0);
        assert_eq!(
            first.requested_packages,
            Some(vec!["greeting".to_owned(), "hello".to_owned()])
        );
        assert_eq!(
            first.requested_local_packages,
            Some(vec!["foo-1.0-1.noarch".to_owned()])
        );
        assert_eq!(first.requested_base_removals, Some(Vec::new()));
        assert_eq!(
            first.packages,
            Some(Vec::new()),
            "nothing is layered in the commit"
        );
        assert_eq!(first.base_checksum, None);
        assert_eq!(first.origin.as_deref(), Some("origin:testos/stable"));

        // An upgrade layers the requests again on the new base: a local package that is not
        // in the package cache fails it, naming the package, and nothing changes.
        let before = sb.admin_deployments().unwrap();
        let err = os
            .upgrade_transaction(&UpgradeOptions::new())
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("foo-1.0-1.noarch")
                && err.to_string().contains("package cache"),
            "{err}"
        );
        assert_eq!(sb.admin_deployments().unwrap(), before);
    });

    // Without it, the upgrade keeps the requests and the refspec as `baserefspec`, as
    // upstream, and layers hello (which also provides greeting) on 2.0.
    deploy_with_origin(
        "[origin]\nbaserefspec=origin:testos/stable\n\n[packages]\nrequested=hello;greeting;\n",
    );
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;
        os.upgrade_transaction(&UpgradeOptions::new())
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
        let admin = sb.admin_deployments().unwrap();
        assert_eq!(admin[0].version.as_deref(), Some("2.0"));
        let written = std::fs::read_to_string(sb.sysroot().join(format!(
            "ostree/deploy/testos/deploy/{}.{}.origin",
            admin[0].checksum, admin[0].serial
        )))
        .unwrap();
        assert!(
            written.contains("baserefspec=origin:testos/stable") && !written.contains("\nrefspec="),
            "{written}"
        );
        assert!(written.contains("requested=hello;greeting;"), "{written}");
        let first = sysroot.deployments().await.unwrap().remove(0);
        assert_eq!(
            first.requested_packages,
            Some(vec!["greeting".to_owned(), "hello".to_owned()])
        );
        assert_eq!(
            first.packages,
            Some(vec!["greeting".to_owned(), "hello".to_owned()]),
            "both requests are active: hello is layered and provides greeting"
        );
        assert_eq!(first.version.as_deref(), Some("2.0"));
        assert!(first.base_checksum.is_some());
    });
}
