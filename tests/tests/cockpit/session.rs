//! cockpit-ostree's session through the real bridge, as root on a fake-booted sysroot: the
//! superuser channel, its watches (the ObjectManager one included), RegisterClient without a
//! type, the deployment dicts, then Rollback and Deploy each followed on the transaction's
//! peer-to-peer address until `Finished`, checked against `ostree admin status` as the booted
//! system sees it (staged deployments included).

use std::time::Instant;

use rpmostree_tests::SandboxOptions;
use serde_json::{Value, json};

use crate::bridge::{OS_IFACE, OS_PATH, STEP, SYSROOT_IFACE, SYSROOT_PATH, TREE_ROOT};
use crate::common::*;

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn cockpit_ostree_session_rollback_and_deploy() {
    let Some(sb) = sandbox(
        "cockpit: cockpit-ostree session",
        SandboxOptions {
            fake_booted: true,
            ..Default::default()
        },
    ) else {
        return;
    };
    let t0 = Instant::now();
    let admin = booted_status(&sb);
    assert_eq!(admin.len(), 2);
    let mut b = root_bridge(&sb);

    // The main channel, with cockpit-ostree's options; the name is activated.
    open_like_cockpit_ostree(&mut b, "d1");
    b.wait_ready("d1");
    let owner = b.wait_for("the owner of the name", STEP, |f| {
        f.channel == "d1" && f.message.get("owner").is_some()
    });
    b.check(
        owner.message["owner"]
            .as_str()
            .is_some_and(|o| o.starts_with(':')),
        "the daemon owns its name (activated for the bridge)",
    );

    // cockpit-ostree's watches, in its order (consumers.md 1.2), then the ObjectManager watch
    // of the whole tree.
    b.watch("d1", json!({"path": TREE_ROOT}));
    b.add_match(
        "d1",
        json!({"path": SYSROOT_PATH, "interface": SYSROOT_IFACE}),
    );
    b.watch(
        "d1",
        json!({"path": SYSROOT_PATH, "interface": SYSROOT_IFACE}),
    );
    // RegisterClient with an argument and no "type": the bridge must find `a{sv}` by
    // introspecting the object.
    let out = b.call_ok(
        "d1",
        SYSROOT_PATH,
        SYSROOT_IFACE,
        "RegisterClient",
        json!([{"id": {"t": "s", "v": "cockpit-ostree"}}]),
    );
    b.check(out.is_empty(), "RegisterClient returns nothing");
    b.add_match(
        "d1",
        json!({"interface": OS_IFACE, "path_namespace": TREE_ROOT}),
    );
    b.watch(
        "d1",
        json!({"interface": OS_IFACE, "path_namespace": TREE_ROOT}),
    );
    b.watch("d1", json!({"path_namespace": TREE_ROOT}));

    check_meta_and_objects(&b, &sb, "d1");

    // The ObjectManager watch on its own, on a fresh channel: it alone must report both
    // objects with all their properties and remove nothing (consumers.md 0.2, 4.7).
    open_like_cockpit_ostree(&mut b, "om");
    b.wait_ready("om");
    b.watch("om", json!({"path_namespace": TREE_ROOT}));
    check_meta_and_objects(&b, &sb, "om");
    let paths: Vec<&String> = b.cache("om").objects.keys().collect();
    b.check(
        paths == [SYSROOT_PATH, OS_PATH],
        &format!("the tree holds exactly Sysroot and testos: {paths:?}"),
    );
    b.close("om");

    // Sysroot.Deployments: every key cockpit-ostree reads, in ostree's order.
    let cache = b.cache("d1");
    let listed = deployments(cache);
    b.check(listed.len() == 2, "two deployments are listed");
    for (i, d) in listed.iter().enumerate() {
        let problems = deployment_problems(d);
        b.check(
            problems.is_empty(),
            &format!("deployment {i} lacks what cockpit-ostree needs: {problems:?}"),
        );
        b.check(
            d["osname"]["v"] == sb.osname()
                && d["checksum"]["v"] == admin[i].checksum.as_str()
                && d["version"]["v"].as_str() == admin[i].version.as_deref()
                && d["origin"]["v"] == "origin:testos/stable"
                && d["staged"]["v"] == false
                && d["pinned"]["v"] == false,
            &format!(
                "deployment {i} matches `ostree admin status`: {d:?} vs {:?}",
                admin[i]
            ),
        );
    }
    b.check(
        listed[0]["booted"]["v"] == true && listed[1]["booted"]["v"] == false,
        "the first deployment (1.1) is the booted one",
    );
    b.check(
        versions(cache) == ["1.1", "1.0"],
        "1.1 is the default deployment",
    );

    // Before each transaction cockpit-ostree calls ReloadConfig (it is in the introspection).
    b.call_ok("d1", SYSROOT_PATH, SYSROOT_IFACE, "ReloadConfig", json!([]));

    // Rollback({}) on the OS object: a transaction address; then the second channel.
    let out = b.call_ok("d1", OS_PATH, OS_IFACE, "Rollback", json!([{}]));
    let address = transaction_address(&b, "Rollback", &out);
    let outcome = follow_transaction(&mut b, "t1", &address);
    check_finished(&b, "Rollback", &outcome);
    wait_cached_versions(&mut b, "d1", &["1.0", "1.1"]);
    let admin = booted_status(&sb);
    b.check(
        admin[0].version.as_deref() == Some("1.0"),
        &format!("after Rollback, 1.0 is first on disk: {admin:?}"),
    );

    // Deploy("version=1.1", {}) the same way.
    b.call_ok("d1", SYSROOT_PATH, SYSROOT_IFACE, "ReloadConfig", json!([]));
    let out = b.call_ok(
        "d1",
        OS_PATH,
        OS_IFACE,
        "Deploy",
        json!(["version=1.1", {}]),
    );
    let address = transaction_address(&b, "Deploy", &out);
    let outcome = follow_transaction(&mut b, "t2", &address);
    check_finished(&b, "Deploy", &outcome);
    let admin = booted_status(&sb);
    b.check(
        admin[0].version.as_deref() == Some("1.1"),
        &format!("after Deploy version=1.1, 1.1 is first on disk: {admin:?}"),
    );
    b.check(
        admin[0].has_marker("staged"),
        &format!("on a booted system Deploy stages the new deployment: {admin:?}"),
    );
    b.wait_cache(
        "d1",
        "the cached Deployments to start with 1.1",
        STEP,
        |cache| versions(cache).first().map(String::as_str) == Some("1.1"),
    );
    let cache = b.cache("d1");
    b.check(
        deployments(cache)[0]["staged"]["v"] == true,
        "the page sees the new deployment as staged (it hides Pin for it)",
    );
    for (i, d) in deployments(cache).iter().enumerate() {
        let problems = deployment_problems(d);
        b.check(
            problems.is_empty(),
            &format!("after Deploy, deployment {i}: {problems:?}"),
        );
    }
    b.check(
        cache.removed.is_empty(),
        &format!(
            "no interface was ever reported removed: {:?}",
            cache.removed
        ),
    );
    b.close("d1");
    eprintln!(
        "cockpit-ostree session: {} frames in {:?}",
        b.transcript().lines().count(),
        t0.elapsed()
    );
}

/// On `channel`: the meta of both interfaces (cockpit.js builds its proxies' methods from it)
/// and both objects of the tree with the properties cockpit-ostree reads, nothing reported
/// removed. Fails once, listing every problem.
fn check_meta_and_objects(b: &crate::bridge::Bridge, sb: &rpmostree_tests::Sandbox, channel: &str) {
    let cache = b.cache(channel);
    let mut problems = Vec::new();
    let mut need = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    let sysroot_methods = meta_names(cache, SYSROOT_IFACE, "methods");
    for m in [
        "RegisterClient",
        "UnregisterClient",
        "ReloadConfig",
        "Reload",
    ] {
        need(
            sysroot_methods.iter().any(|x| x == m),
            format!("the Sysroot meta lists method {m}"),
        );
    }
    let meta = |iface: &str| cache.meta.get(iface).cloned().unwrap_or(Value::Null);
    need(
        meta(SYSROOT_IFACE)["methods"]["RegisterClient"]["in"] == json!(["a{sv}"]),
        "RegisterClient takes a{sv}".to_owned(),
    );
    let sysroot_props = meta_names(cache, SYSROOT_IFACE, "properties");
    for p in ["Deployments", "Booted", "ActiveTransaction"] {
        need(
            sysroot_props.iter().any(|x| x == p),
            format!("the Sysroot meta lists property {p}"),
        );
    }
    need(
        meta(SYSROOT_IFACE)["properties"]["Deployments"]["type"] == "aa{sv}",
        "Deployments is aa{sv}".to_owned(),
    );
    let os_methods = meta_names(cache, OS_IFACE, "methods");
    for m in [
        "Rollback",
        "Deploy",
        "Rebase",
        "Cleanup",
        "UpdateDeployment",
        "DownloadUpdateRpmDiff",
        "DownloadRebaseRpmDiff",
        "GetCachedUpdateRpmDiff",
        "GetCachedRebaseRpmDiff",
        "GetDeploymentsRpmDiff",
    ] {
        need(
            os_methods.iter().any(|x| x == m),
            format!("the OS meta lists method {m}"),
        );
    }
    need(
        meta(OS_IFACE)["methods"]["Deploy"]["in"] == json!(["s", "a{sv}"]),
        "Deploy takes (s, a{sv})".to_owned(),
    );
    let os_props = meta_names(cache, OS_IFACE, "properties");
    for p in [
        "Name",
        "BootedDeployment",
        "DefaultDeployment",
        "RollbackDeployment",
        "CachedUpdate",
    ] {
        need(
            os_props.iter().any(|x| x == p),
            format!("the OS meta lists property {p}"),
        );
    }
    need(
        cache.removed.is_empty(),
        format!(
            "no interface reported removed (consumers.md 0.2), but: {:?}",
            cache.removed
        ),
    );

    let empty = serde_json::Map::new();
    let sysroot = cache.props(SYSROOT_PATH, SYSROOT_IFACE);
    need(
        sysroot.is_some(),
        "the notify lists the Sysroot object".to_owned(),
    );
    let sysroot = sysroot.unwrap_or(&empty);
    for p in ["Deployments", "Booted", "ActiveTransaction", "Path"] {
        need(
            sysroot.contains_key(p),
            format!("Sysroot's notify carries {p}"),
        );
    }
    need(
        sysroot.get("Booted") == Some(&json!(OS_PATH)),
        format!("Booted names the OS object: {:?}", sysroot.get("Booted")),
    );
    let os = cache.props(OS_PATH, OS_IFACE);
    need(
        os.is_some(),
        "the notify lists the testos object".to_owned(),
    );
    let os = os.unwrap_or(&empty);
    need(
        os.get("Name") == Some(&json!(sb.osname())),
        format!("OS.Name is testos: {:?}", os.get("Name")),
    );
    for p in [
        "BootedDeployment",
        "DefaultDeployment",
        "RollbackDeployment",
    ] {
        let missing = os
            .get(p)
            .and_then(Value::as_object)
            .map(deployment_problems)
            .unwrap_or_else(|| vec![format!("no {p}")]);
        need(missing.is_empty(), format!("OS.{p}: {missing:?}"));
    }
    need(
        os.get("CachedUpdate").is_some_and(Value::is_object),
        "OS.CachedUpdate is a dict".to_owned(),
    );
    if !problems.is_empty() {
        b.fail(&format!("channel {channel}: {problems:#?}"));
    }
}

fn transaction_address(b: &crate::bridge::Bridge, method: &str, out: &[Value]) -> String {
    match out {
        [Value::String(address)] if address.starts_with("unix:") => address.clone(),
        _ => b.fail(&format!(
            "{method} must return one transaction address: {out:?}"
        )),
    }
}

fn check_finished(b: &crate::bridge::Bridge, method: &str, outcome: &Outcome) {
    b.check(
        outcome.started == true,
        &format!("{method}: Start returns true for the caller that started it: {outcome:?}"),
    );
    b.check(
        outcome.success && outcome.error_message.is_empty(),
        &format!("{method}: Finished(true, \"\"): {outcome:?}"),
    );
    b.check(
        outcome.signals.iter().any(|s| s[0] == "Message"),
        &format!("{method}: progress Messages arrive before Finished: {outcome:?}"),
    );
}
