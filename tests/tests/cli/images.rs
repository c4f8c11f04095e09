//! Container images through the real CLI: rebase from an ostree ref to a bootable image (an
//! `oci:` layout and a loopback registry), upgrades that follow the tag (and do nothing when
//! the digest did not change), deploying a digest, layered packages on an image, and back to
//! an ostree ref; a missing image, a registry that goes away mid-pull and a corrupt layer
//! leave the system unchanged. Ground truth: `ostree admin status`, the origin files and
//! `skopeo inspect`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rpmostree_tests::{Registry, Sandbox, SandboxOptions};

use crate::common::*;

fn options() -> SandboxOptions {
    SandboxOptions {
        containers: true,
        ..Default::default()
    }
}

/// The origin file of deployment `index` (as `ostree admin status` orders them).
fn origin_of(sb: &Sandbox, index: usize, booted: bool) -> String {
    let deployments = if booted {
        booted_admin(sb)
    } else {
        sb.admin_deployments().unwrap()
    };
    let d = &deployments[index];
    let path = sb
        .sysroot()
        .join("ostree/deploy")
        .join(&d.osname)
        .join("deploy")
        .join(format!("{}.origin", d.dir_name()));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `CachedUpdate` of the OS, over D-Bus: its checksum (the new image's digest) and its
/// `manifest-diff`.
async fn cached_update(sb: &Sandbox) -> (String, std::collections::HashMap<String, u64>) {
    let conn = zbus::connection::Builder::address(sb.bus_address())
        .build()
        .await
        .unwrap();
    let os = rpmostree_api::OSProxy::builder(&conn)
        .path(OS_PATH)
        .build()
        .await
        .unwrap();
    let update = os.cached_update().await.unwrap();
    let checksum = update.checksum.clone().unwrap_or_default();
    let diff = update
        .manifest_diff
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, u64::try_from(&v).unwrap_or(u64::MAX)))
        .collect();
    (checksum, diff)
}

fn checksums(sb: &Sandbox) -> Vec<String> {
    sb.admin_deployments()
        .unwrap()
        .into_iter()
        .map(|d| d.checksum)
        .collect()
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn rebase_to_an_image_upgrade_to_a_new_tag_and_back_fake_booted() {
    let Some(sb) = sandbox(
        "rebase_to_an_image_upgrade_to_a_new_tag_and_back_fake_booted",
        SandboxOptions {
            fake_booted: true,
            ..options()
        },
    ) else {
        return;
    };
    let v2 = sb.build_image("2.0", "stable").unwrap();
    let image = sb.oci_image_ref("stable");
    let out = cli_ok(&sb, &["rebase", &image]);
    assert!(out.contains(QUEUED), "{out}");
    assert!(out.contains("Importing:"), "{out}");
    let admin = booted_admin(&sb);
    assert!(admin[0].markers.contains(&"staged".to_owned()), "{admin:?}");
    let json = status_json(&sb);
    let d0 = &json["deployments"][0];
    assert_eq!(d0["container-image-reference"], image.as_str(), "{d0}");
    assert_eq!(d0["container-image-reference-digest"], v2.as_str(), "{d0}");
    assert_eq!(d0["version"], "2.0", "{d0}");
    assert!(d0.get("origin").is_none(), "{d0}");
    // What zincati reads: the image's manifest and configuration in base-commit-meta.
    let meta = &d0["base-commit-meta"];
    let config = meta["ostree.container.image-config"].as_str().unwrap_or("");
    assert!(config.contains("com.coreos.stream"), "{meta}");
    assert!(meta["ostree.manifest"].as_str().is_some(), "{meta}");
    let human = cli_ok(&sb, &["status"]);
    let block: Vec<&str> = human.lines().skip_while(|l| !l.contains(&image)).collect();
    assert!(!block.is_empty(), "{human}");
    assert!(block[1].trim_start() == format!("Digest: {v2}"), "{human}");
    assert!(block[2].contains("Version: 2.0 ("), "{human}");
    // The staged deployment's tree is the image's.
    let staged = &admin[0].checksum;
    assert_eq!(
        sb.ostree(&["cat", staged, "/usr/share/testos/version"])
            .unwrap(),
        "2.0\n"
    );

    // The tag moves to a new image: upgrade follows it (on top of the staged deployment).
    let v3 = sb.build_image("3.0", "stable").unwrap();
    let out = cli_ok(&sb, &["upgrade"]);
    assert!(out.contains(QUEUED), "{out}");
    let json = status_json(&sb);
    assert_eq!(
        json["deployments"][0]["container-image-reference-digest"],
        v3.as_str()
    );
    assert_eq!(json["deployments"][0]["version"], "3.0");
    // The same digest again: nothing to do.
    let before = booted_admin(&sb);
    let out = cli_ok(&sb, &["upgrade"]);
    assert!(out.contains("No upgrade available"), "{out}");
    assert_eq!(booted_admin(&sb), before);

    // Back to the ostree branch.
    let out = cli_ok(&sb, &["rebase", "origin:testos/stable"]);
    assert!(out.contains(QUEUED), "{out}");
    let json = status_json(&sb);
    let d0 = &json["deployments"][0];
    assert_eq!(d0["origin"], "origin:testos/stable", "{d0}");
    assert!(d0.get("container-image-reference").is_none(), "{d0}");
    assert_eq!(d0["version"], "2.0", "{d0}");
    sb.run_fake_booted_pid_ns(&["ostree", "admin", "finalize-staged"])
        .expect("ostree admin finalize-staged");
    let origin = origin_of(&sb, 0, false);
    assert!(origin.contains("refspec=origin:testos/stable"), "{origin}");
    assert!(!origin.contains("container-image-reference"), "{origin}");
    sb.ostree(&["fsck"]).expect("ostree fsck is clean");
}

/// Starts a registry in the sandbox holding the images `stable` (2.0) and `next` (3.0).
fn registry_with_images(sb: &Sandbox) -> (Registry, String, String) {
    let registry = Registry::start(&sb.dir().join("registry")).unwrap();
    sb.build_image("2.0", "stable").unwrap();
    sb.build_image("3.0", "next").unwrap();
    let v2 = registry
        .push(&sb.oci_dir(), "stable", "testos:stable")
        .unwrap();
    let v3 = registry.push(&sb.oci_dir(), "next", "testos:next").unwrap();
    sb.trust_registry(&registry.address()).unwrap();
    (registry, v2, v3)
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn registry_images_rebase_deploy_by_digest_layer_packages_and_prune() {
    let Some(sb) = sandbox(
        "registry_images_rebase_deploy_by_digest_layer_packages_and_prune",
        options(),
    ) else {
        return;
    };
    let (registry, v2, v3) = registry_with_images(&sb);
    let image = format!(
        "ostree-unverified-registry:{}/testos:stable",
        registry.address()
    );
    let out = cli_ok(&sb, &["rebase", &image]);
    assert!(out.contains("Importing:"), "{out}");
    let origin = origin_of(&sb, 0, false);
    assert!(
        origin.contains(&format!("container-image-reference={image}")),
        "{origin}"
    );
    let json = status_json(&sb);
    assert_eq!(
        json["deployments"][0]["container-image-reference-digest"],
        v2.as_str()
    );
    assert_eq!(
        registry.digest("testos", "stable").unwrap(),
        v2,
        "skopeo inspect agrees"
    );

    // The tag moves: --check sees the new image from its manifest alone (no layer is
    // fetched), and the cached update says how many layers the upgrade would fetch.
    let v2_again = registry
        .push(&sb.oci_dir(), "stable", "testos:old")
        .unwrap();
    assert_eq!(v2_again, v2);
    registry
        .push(&sb.oci_dir(), "next", "testos:stable")
        .unwrap();
    let layers_before = sb
        .ostree(&["refs", "--list", "ostree/container/blob"])
        .unwrap();
    let out = cli_ok(&sb, &["upgrade", "--check"]);
    assert!(out.contains(&v3), "{out}");
    assert_eq!(
        sb.ostree(&["refs", "--list", "ostree/container/blob"])
            .unwrap(),
        layers_before,
        "a check fetches no layer"
    );
    let cached = block_on(Duration::from_secs(30), cached_update(&sb));
    assert_eq!(cached.0, v3);
    assert_eq!(cached.1.get("n-added"), Some(&1), "{:?}", cached.1);
    assert_eq!(cached.1.get("total"), Some(&1), "{:?}", cached.1);
    let out = cli_ok(&sb, &["upgrade"]);
    assert!(out.contains("Importing:"), "{out}");
    let json = status_json(&sb);
    assert_eq!(
        json["deployments"][0]["container-image-reference-digest"],
        v3.as_str()
    );
    let before = checksums(&sb);
    let out = cli_ok(&sb, &["upgrade"]);
    assert!(out.contains("No upgrade available"), "{out}");
    assert_eq!(checksums(&sb), before);

    // Deploy by digest: the digest of the old image, pinned in the origin.
    let out = cli_ok(&sb, &["deploy", &v2]);
    assert!(
        out.contains(&format!("Image {image}: digest {v2}")),
        "{out}"
    );
    let origin = origin_of(&sb, 0, false);
    assert!(
        origin.contains(&format!("override-commit={v2}")),
        "{origin}"
    );
    let json = status_json(&sb);
    assert_eq!(
        json["deployments"][0]["container-image-reference-digest"],
        v2.as_str()
    );
    assert_eq!(json["deployments"][0]["version"], "2.0");
    // Pinned: an upgrade does nothing.
    let before = checksums(&sb);
    let out = cli_ok(&sb, &["upgrade"]);
    assert!(out.contains("no upgrade available"), "{out}");
    assert_eq!(checksums(&sb), before);

    // Packages layered on the image: the layered commit's parent is the image's commit.
    let image_commit = before[0].clone();
    let out = cli_ok(&sb, &["install", "hello"]);
    assert!(out.contains("hello"), "{out}");
    let json = status_json(&sb);
    let d0 = &json["deployments"][0];
    assert_eq!(d0["packages"], serde_json::json!(["hello"]), "{d0}");
    assert_eq!(d0["base-checksum"], image_commit.as_str(), "{d0}");
    assert_eq!(d0["container-image-reference-digest"], v2.as_str(), "{d0}");
    let origin = origin_of(&sb, 0, false);
    assert!(origin.contains("requested=hello;"), "{origin}");
    assert!(origin.contains("container-image-reference="), "{origin}");

    // Back to ostree; once no deployment follows an image, cleanup drops the images.
    cli_ok(&sb, &["rebase", "origin:testos/stable"]);
    cli_ok(&sb, &["cleanup", "-r"]);
    let admin = sb.admin_deployments().unwrap();
    assert_eq!(admin.len(), 1, "{admin:?}");
    // The layered package goes along (as on any rebase).
    let origin = origin_of(&sb, 0, false);
    assert!(
        origin.contains("baserefspec=origin:testos/stable"),
        "{origin}"
    );
    assert!(origin.contains("requested=hello;"), "{origin}");
    assert!(!origin.contains("container-image-reference"), "{origin}");
    let images = |sb: &Sandbox| {
        sb.ostree(&["refs", "--list", "ostree/container/image"])
            .unwrap()
    };
    assert!(!images(&sb).trim().is_empty(), "the image is still stored");
    let out = cli_ok(&sb, &["cleanup", "-b"]);
    assert!(out.contains("Pruned images: 1"), "{out}");
    assert!(images(&sb).trim().is_empty(), "{}", images(&sb));
    sb.ostree(&["fsck"]).expect("ostree fsck is clean");
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn bad_images_are_clear_errors_and_change_nothing() {
    let Some(sb) = sandbox("bad_images_are_clear_errors_and_change_nothing", options()) else {
        return;
    };
    let (mut registry, _, _) = registry_with_images(&sb);
    let before = sb.admin_status().unwrap();
    let base = format!("ostree-unverified-registry:{}", registry.address());

    // Not a reference at all, a transport we refuse, and an image the registry lacks.
    let out = cli(&sb, &["rebase", "ostree-unverified-image:dir:/tmp/x"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("Unsupported transport 'dir'"),
        "{}",
        out.describe()
    );
    let out = cli(&sb, &["rebase", &format!("{base}/missing:stable")]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("manifest unknown"),
        "{}",
        out.describe()
    );
    let out = cli(&sb, &["rebase", &sb.oci_image_ref("no-such-tag")]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert_eq!(sb.admin_status().unwrap(), before);

    // A corrupt layer: the blob's bytes no longer match its digest.
    let layer = layer_blob(&sb.oci_dir(), "stable");
    let mut bytes = std::fs::read(&layer).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&layer, &bytes).unwrap();
    let out = cli(&sb, &["rebase", &sb.oci_image_ref("stable")]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    // Where the flipped byte lands decides who notices first (gzip, tar, ostree's checksums
    // or the proxy's digest check); the error always names the import.
    assert!(
        out.stderr
            .contains("error: importing ostree-unverified-image:oci:"),
        "{}",
        out.describe()
    );
    assert_eq!(sb.admin_status().unwrap(), before);
    // Nothing of the bad layer is kept for a later pull to trust.
    let layers = sb
        .ostree(&["refs", "--list", "ostree/container/blob"])
        .unwrap();
    assert!(layers.trim().is_empty(), "{layers}");

    // A registry that goes away in the middle of the pull: a slow proxy in front of it, cut
    // off once part of a layer went through.
    let (mut proxy, image, _) = sb
        .big_image_behind_proxy(&registry, 6_000_000, 1_000_000)
        .unwrap();
    let mut cmd = sb.command(cli_bin().to_str().unwrap());
    cmd.args(["rebase", &image]);
    let child = std::thread::spawn(move || run_with_timeout(cmd, CLI_TIMEOUT));
    let deadline = Instant::now() + Duration::from_secs(120);
    while proxy.bytes() < 1_500_000 {
        assert!(Instant::now() < deadline, "the pull did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    proxy.stop();
    registry.stop();
    let out = child.join().unwrap();
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stderr.contains("testos:big"), "{}", out.describe());
    assert_eq!(sb.admin_status().unwrap(), before, "nothing changed");
    sb.ostree(&["fsck"]).expect("ostree fsck is clean");
}

/// The blob of the first layer of image `tag` in an OCI layout.
fn layer_blob(layout: &std::path::Path, tag: &str) -> PathBuf {
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
    };
    let index = read(layout.join("index.json"));
    let manifest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no image tagged {tag}: {index}"));
    let manifest = read(blob(manifest["digest"].as_str().unwrap()));
    blob(manifest["layers"][0]["digest"].as_str().unwrap())
}
