//! A container-image system through the real bridge, as cockpit-ostree drives it: `Rebase`
//! to an image (the page shows `container-image-reference` where `origin` is absent), an
//! upgrade that follows the image's tag, and `Rebase` back to an ostree branch, each seen in
//! the bridge's cache of `Deployments` and checked against `ostree admin status`.

use rpmostree_tests::SandboxOptions;
use serde_json::{Value, json};

use crate::bridge::{Bridge, OS_IFACE, OS_PATH, STEP};
use crate::common::*;

fn address(b: &Bridge, method: &str, out: &[Value]) -> String {
    match out {
        [Value::String(a)] if a.starts_with("unix:") => a.clone(),
        _ => b.fail(&format!(
            "{method} must return a transaction address: {out:?}"
        )),
    }
}

/// The first cached deployment's `key`, as a string.
fn first(b: &Bridge, key: &str) -> String {
    deployments(b.cache("d1"))
        .first()
        .and_then(|d| d.get(key))
        .and_then(|v| v["v"].as_str())
        .unwrap_or("")
        .to_owned()
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn cockpit_ostree_rebases_to_an_image_follows_its_tag_and_returns() {
    let Some(sb) = sandbox(
        "cockpit: image rebase",
        SandboxOptions {
            fake_booted: true,
            containers: true,
            ..Default::default()
        },
    ) else {
        return;
    };
    let mut b = root_bridge(&sb);
    open_like_cockpit_ostree(&mut b, "d1");
    b.wait_ready("d1");
    watch_sysroot_and_register(&mut b, "d1");
    wait_cached_versions(&mut b, "d1", &["1.1", "1.0"]);

    let v2 = sb.build_image("2.0", "stable").expect("image 2.0");
    let image = sb.oci_image_ref("stable");
    let out = b.call_ok("d1", OS_PATH, OS_IFACE, "Rebase", json!([{}, image, []]));
    let addr = address(&b, "Rebase", &out);
    let outcome = follow_transaction(&mut b, "t1", &addr);
    b.check(outcome.success, &format!("Rebase finishes: {outcome:?}"));
    // Progress per layer, with the bytes fetched.
    let layer_progress = outcome.signals.iter().any(|s| {
        s[0] == "PercentProgress"
            && s[1][0]
                .as_str()
                .is_some_and(|t| t.starts_with("Fetching layer sha256:") && t.contains(" of "))
    });
    b.check(
        layer_progress,
        &format!("PercentProgress per layer: {:?}", outcome.signals),
    );
    let bytes = outcome
        .signals
        .iter()
        .any(|s| s[0] == "DownloadProgress" && s[1][5][0].as_u64().is_some_and(|b| b > 0));
    b.check(
        bytes,
        &format!("DownloadProgress with bytes: {:?}", outcome.signals),
    );
    wait_cached_versions(&mut b, "d1", &["2.0", "1.1", "1.0"]);
    b.check(
        first(&b, "container-image-reference") == image,
        "the page's origin falls back to container-image-reference",
    );
    b.check(
        first(&b, "container-image-reference-digest") == v2,
        "the digest is the image's",
    );
    for d in deployments(b.cache("d1")) {
        let problems: Vec<String> = deployment_problems(&d)
            .into_iter()
            .filter(|p| !(p.contains("\"origin\"") && d.contains_key("container-image-reference")))
            .collect();
        b.check(problems.is_empty(), &format!("{problems:?} in {d:?}"));
    }

    // The tag moves on; an upgrade (UpdateDeployment with no modifiers) follows it.
    let v3 = sb.build_image("3.0", "stable").expect("image 3.0");
    let out = b.call_ok("d1", OS_PATH, OS_IFACE, "UpdateDeployment", json!([{}, {}]));
    let addr = address(&b, "UpdateDeployment", &out);
    let outcome = follow_transaction(&mut b, "t2", &addr);
    b.check(
        outcome.success,
        &format!("the upgrade finishes: {outcome:?}"),
    );
    wait_cached_versions(&mut b, "d1", &["3.0", "1.1", "1.0"]);
    b.check(
        first(&b, "container-image-reference-digest") == v3,
        "the new digest",
    );
    let admin = booted_status(&sb);
    b.check(
        admin[0].markers.iter().any(|m| m == "staged"),
        &format!("staged on disk: {admin:?}"),
    );
    b.check(
        sb.ostree(&["cat", &admin[0].checksum, "/usr/share/testos/version"])
            .is_ok_and(|v| v == "3.0\n"),
        "the staged tree is the image's",
    );

    // Back to the branch.
    let out = b.call_ok(
        "d1",
        OS_PATH,
        OS_IFACE,
        "Rebase",
        json!([{}, "origin:testos/stable", []]),
    );
    let addr = address(&b, "Rebase", &out);
    let outcome = follow_transaction(&mut b, "t3", &addr);
    b.check(
        outcome.success,
        &format!("Rebase back finishes: {outcome:?}"),
    );
    wait_cached_versions(&mut b, "d1", &["2.0", "1.1", "1.0"]);
    b.wait_cache("d1", "the ostree origin", STEP, |cache| {
        deployments(cache)
            .first()
            .is_some_and(|d| d["origin"]["v"] == "origin:testos/stable")
    });
    b.check(
        first(&b, "container-image-reference").is_empty(),
        "no image any more",
    );
}
