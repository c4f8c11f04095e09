//! cockpit-ostree's package flows through the real bridge, as root on a fake-booted sysroot:
//! "Check for updates" (`DownloadUpdateRpmDiff`, then the `CachedUpdate` property change),
//! the package tab of the update (`GetCachedUpdateRpmDiff("")`), of the pending deployment
//! after the update is staged (`GetDeploymentsRpmDiff(booted, pending)`), and of a rebase
//! (`DownloadRebaseRpmDiff` then `GetCachedRebaseRpmDiff`), each checked against the
//! fixture's known package changes; and a package installed and removed through `PkgChange`.

use rpmostree_tests::SandboxOptions;
use serde_json::{Value, json};

use crate::bridge::{Bridge, OS_IFACE, OS_PATH, STEP, SYSROOT_IFACE, SYSROOT_PATH, TREE_ROOT};
use crate::common::*;

/// One diff entry as the page reads it: (name, type, previous NEVRA, new NEVRA).
type Entry = (String, u64, Option<String>, Option<String>);

/// Turns the `a(sua{sv})` out-argument into entries; fails on any other shape.
fn entries(b: &Bridge, what: &str, diff: &Value) -> Vec<Entry> {
    let side = |d: &Value, key: &str| -> Option<String> {
        let v = &d[key];
        if v.is_null() {
            return None;
        }
        if v["t"] != "(sss)" {
            b.fail(&format!("{what}: {key} must be an (sss) variant: {v}"));
        }
        let p = &v["v"];
        Some(format!(
            "{}-{}.{}",
            p[0].as_str().unwrap_or(""),
            p[1].as_str().unwrap_or(""),
            p[2].as_str().unwrap_or("")
        ))
    };
    let Some(list) = diff.as_array() else {
        b.fail(&format!("{what}: the diff is not an array: {diff}"));
    };
    list.iter()
        .map(|e| {
            (
                e[0].as_str().unwrap_or("").to_owned(),
                e[1].as_u64().unwrap_or(99),
                side(&e[2], "PreviousPackage"),
                side(&e[2], "NewPackage"),
            )
        })
        .collect()
}

/// The fixture's changes from 1.1 to 2.0, in upstream's order.
fn update() -> Vec<Entry> {
    rpmostree_tests::fixture_update_changes()
        .into_iter()
        .map(|(n, k, o, new)| (n, u64::from(k), o, new))
        .collect()
}

fn address(b: &Bridge, method: &str, out: &[Value]) -> String {
    match out {
        [Value::String(a)] if a.starts_with("unix:") => a.clone(),
        _ => b.fail(&format!(
            "{method} must return a transaction address: {out:?}"
        )),
    }
}

/// A fake-booted sandbox and a root bridge with cockpit-ostree's channel `d1` open; `None`
/// when the test is skipped.
fn booted_with_bridge(name: &str) -> Option<(rpmostree_tests::Sandbox, Bridge)> {
    let sb = sandbox(
        name,
        SandboxOptions {
            fake_booted: true,
            ..Default::default()
        },
    )?;
    let mut b = root_bridge(&sb);
    open_like_cockpit_ostree(&mut b, "d1");
    b.wait_ready("d1");
    Some((sb, b))
}

/// `PkgChange({}, added, removed)` on channel `d1`, followed on channel `txn` as
/// cockpit-ostree follows transactions.
fn pkg_change(b: &mut Bridge, txn: &str, added: Value, removed: Value) -> Outcome {
    let out = b.call_ok(
        "d1",
        OS_PATH,
        OS_IFACE,
        "PkgChange",
        json!([{}, added, removed]),
    );
    let addr = address(b, "PkgChange", &out);
    follow_transaction(b, txn, &addr)
}

/// The package tab of the first (pending) deployment, as the page asks for it:
/// `GetDeploymentsRpmDiff(booted, pending)` with the ids of the bridge's cached `Deployments`.
fn pending_diff(b: &mut Bridge) -> Vec<Entry> {
    let listed = deployments(b.cache("d1"));
    let id = |d: &serde_json::Map<String, Value>| d["id"]["v"].as_str().unwrap_or("").to_owned();
    let booted = listed
        .iter()
        .find(|d| d["booted"]["v"] == true)
        .map(id)
        .unwrap_or_default();
    let pending = listed.first().map(id).unwrap_or_default();
    let out = b.call_ok(
        "d1",
        OS_PATH,
        OS_IFACE,
        "GetDeploymentsRpmDiff",
        json!([booted, pending]),
    );
    entries(b, "GetDeploymentsRpmDiff", &out[0])
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn cockpit_ostree_check_for_updates_and_package_lists() {
    let Some((sb, mut b)) = booted_with_bridge("cockpit: cockpit-ostree package lists") else {
        return;
    };
    b.watch("d1", json!({"path": TREE_ROOT}));
    watch_sysroot_and_register(&mut b, "d1");
    b.add_match(
        "d1",
        json!({"interface": OS_IFACE, "path_namespace": TREE_ROOT}),
    );
    b.watch(
        "d1",
        json!({"interface": OS_IFACE, "path_namespace": TREE_ROOT}),
    );
    let no_update = b
        .cache("d1")
        .props(OS_PATH, OS_IFACE)
        .and_then(|p| p.get("CachedUpdate"))
        .cloned();
    b.check(
        no_update == Some(json!({})),
        &format!("no update is cached before the check: {no_update:?}"),
    );

    // "Check for updates": the JS passes null, which becomes no arguments.
    b.call_ok("d1", SYSROOT_PATH, SYSROOT_IFACE, "ReloadConfig", json!([]));
    let out = b.call_ok("d1", OS_PATH, OS_IFACE, "DownloadUpdateRpmDiff", json!([]));
    let addr = address(&b, "DownloadUpdateRpmDiff", &out);
    let outcome = follow_transaction(&mut b, "t1", &addr);
    b.check(
        outcome.success,
        &format!("DownloadUpdateRpmDiff finishes: {outcome:?}"),
    );
    // The page then only waits for CachedUpdate to change.
    b.wait_cache("d1", "CachedUpdate with the new commit", STEP, |cache| {
        cache
            .props(OS_PATH, OS_IFACE)
            .and_then(|p| p.get("CachedUpdate"))
            .is_some_and(|u| u["version"]["v"] == "2.0")
    });
    let cached = b
        .cache("d1")
        .props(OS_PATH, OS_IFACE)
        .and_then(|p| p.get("CachedUpdate"))
        .cloned()
        .unwrap_or(Value::Null);
    for key in ["osname", "checksum", "timestamp", "version", "origin"] {
        b.check(
            !cached[key]["v"].is_null(),
            &format!("CachedUpdate has {key}: {cached}"),
        );
    }
    b.check(
        cached["rpm-diff"]["t"] == "a{sv}" && cached["advisories"]["t"] == "a(suuasa{sv})",
        &format!("CachedUpdate carries rpm-diff and advisories: {cached}"),
    );
    let checksum = cached["checksum"]["v"].as_str().unwrap_or("").to_owned();

    // The update row's package tab.
    let out = b.call_ok(
        "d1",
        OS_PATH,
        OS_IFACE,
        "GetCachedUpdateRpmDiff",
        json!([""]),
    );
    b.check(
        out.len() == 2,
        "GetCachedUpdateRpmDiff returns (diff, details)",
    );
    let got = entries(&b, "GetCachedUpdateRpmDiff", &out[0]);
    b.check(got == update(), &format!("the update's packages: {got:?}"));
    b.check(
        out[1]["checksum"]["v"] == checksum.as_str(),
        &format!("the details name the update: {}", out[1]),
    );

    // "Update" (without the reboot): the pending deployment's package tab.
    let out = b.call_ok("d1", OS_PATH, OS_IFACE, "Deploy", json!([checksum, {}]));
    let addr = address(&b, "Deploy", &out);
    let outcome = follow_transaction(&mut b, "t2", &addr);
    b.check(outcome.success, &format!("Deploy finishes: {outcome:?}"));
    b.wait_cache("d1", "the staged deployment", STEP, |cache| {
        versions(cache).first().map(String::as_str) == Some("2.0")
    });
    let got = pending_diff(&mut b);
    b.check(
        got == update(),
        &format!("the pending deployment's packages: {got:?}"),
    );

    // A branch change: DownloadRebaseRpmDiff, then GetCachedRebaseRpmDiff with its details.
    let out = b.call_ok(
        "d1",
        OS_PATH,
        OS_IFACE,
        "DownloadRebaseRpmDiff",
        json!(["origin:testos/devel", []]),
    );
    let addr = address(&b, "DownloadRebaseRpmDiff", &out);
    let outcome = follow_transaction(&mut b, "t3", &addr);
    b.check(
        outcome.success,
        &format!("DownloadRebaseRpmDiff finishes: {outcome:?}"),
    );
    let out = b.call_ok(
        "d1",
        OS_PATH,
        OS_IFACE,
        "GetCachedRebaseRpmDiff",
        json!(["origin:testos/devel", []]),
    );
    b.check(
        out.len() == 2,
        "GetCachedRebaseRpmDiff returns exactly two values",
    );
    let details = &out[1];
    for key in ["osname", "timestamp", "origin", "checksum", "version"] {
        b.check(
            !details[key]["v"].is_null(),
            &format!("the rebase details have {key}: {details}"),
        );
    }
    b.check(
        details["origin"]["v"] == "origin:testos/devel" && details["version"]["v"] == "10.0",
        &format!("the rebase row: {details}"),
    );
    let got = entries(&b, "GetCachedRebaseRpmDiff", &out[0]);
    let booted_checksum = booted_status(&sb)
        .into_iter()
        .find(|d| d.booted)
        .map(|d| d.checksum)
        .unwrap_or_default();
    let devel = details["checksum"]["v"].as_str().unwrap_or("").to_owned();
    let truth: Vec<Entry> = rpmostree_tests::truth::commit_changes(&sb, &booted_checksum, &devel)
        .unwrap_or_else(|e| b.fail(&format!("rpm -qa: {e}")))
        .into_iter()
        .map(|(n, k, o, new)| (n, u64::from(k), o, new))
        .collect();
    b.check(
        got == truth,
        &format!("the devel branch's packages against the booted 1.1, as rpm -qa says: {got:?} vs {truth:?}"),
    );
    b.close("d1");
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn cockpit_installs_and_removes_a_package_through_pkg_change() {
    let Some((_sb, mut b)) = booted_with_bridge("cockpit: PkgChange installs a layered package")
    else {
        return;
    };
    watch_sysroot_and_register(&mut b, "d1");

    // PkgChange(options, added, removed), as a page or script calls it.
    let outcome = pkg_change(&mut b, "t1", json!(["layer-b"]), json!([]));
    b.check(outcome.success, &format!("PkgChange finishes: {outcome:?}"));
    b.wait_cache("d1", "the staged layered deployment", STEP, |cache| {
        deployments(cache)
            .first()
            .is_some_and(|d| d["packages"]["v"] == json!(["layer-b"]))
    });
    let listed = deployments(b.cache("d1"));
    let first = &listed[0];
    b.check(
        first["requested-packages"]["v"] == json!(["layer-b"])
            && first["staged"]["v"] == true
            && first["base-checksum"]["v"].is_string(),
        &format!("the new deployment layers layer-b on the booted base: {first:?}"),
    );
    // The page's package tab of the pending deployment shows the layered package as added.
    let got = pending_diff(&mut b);
    b.check(
        got == [(
            "layer-b".to_owned(),
            0,
            None,
            Some("layer-b-2.0-1.noarch".to_owned()),
        )],
        &format!("the pending deployment adds layer-b: {got:?}"),
    );

    // A request for a package that does not exist fails the transaction with its name.
    let outcome = pkg_change(&mut b, "t2", json!(["no-such-package"]), json!([]));
    b.check(
        !outcome.success && outcome.error_message.contains("no-such-package"),
        &format!("PkgChange of a missing package fails naming it: {outcome:?}"),
    );

    // Removing it again goes back to the plain base.
    let outcome = pkg_change(&mut b, "t3", json!([]), json!(["layer-b"]));
    b.check(outcome.success, &format!("PkgChange finishes: {outcome:?}"));
    b.wait_cache("d1", "the staged plain deployment", STEP, |cache| {
        deployments(cache)
            .first()
            .is_some_and(|d| d["requested-packages"]["v"] == json!([]))
    });
}
