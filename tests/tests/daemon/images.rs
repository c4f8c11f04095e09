//! Container images over D-Bus with the typed proxies: `UpdateDeployment{set-refspec}` to an
//! image, staged locked, with per-layer progress, then `FinalizeDeployment` by the image's
//! digest, an `Upgrade` that follows the tag and a `Rebase` back to the branch; a cancel in the middle of a slow registry pull ends promptly and leaves nothing
//! behind (no deployment, no layer a later pull would trust).

use std::time::{Duration, Instant};

use rpmostree_api::{
    FinalizeDeploymentOptions, RebaseOptions, TransactionEvent, UpdateDeploymentModifiers,
    UpdateDeploymentOptions, UpgradeOptions,
};
use rpmostree_tests::{RebootServices, Registry, Sandbox, SandboxOptions, StandInOptions};

use crate::common::*;

fn with_containers(fake_booted: bool) -> SandboxOptions {
    SandboxOptions {
        fake_booted,
        containers: true,
        ..Default::default()
    }
}

fn layer_refs(sb: &Sandbox) -> String {
    sb.ostree(&["refs", "--list", "ostree/container/blob"])
        .unwrap()
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn an_image_staged_locked_by_update_deployment_is_finalized_by_its_digest() {
    let Some(sb) = sandbox(with_containers(true)) else {
        return;
    };
    let digest = sb.build_image("2.0", "stable").unwrap();
    let image = sb.oci_image_ref("stable");
    run(Duration::from_secs(240), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;
        let mut txn = os
            .update_deployment_transaction(
                &UpdateDeploymentModifiers::new().set_refspec(image.clone()),
                &UpdateDeploymentOptions::new().lock_finalization(true),
            )
            .await
            .unwrap();
        let mut layer_lines = Vec::new();
        let mut bytes = 0;
        txn.run(|e| match e {
            TransactionEvent::PercentProgress { text, .. }
                if text.starts_with("Fetching layer") =>
            {
                layer_lines.push(text.clone())
            }
            TransactionEvent::DownloadProgress { transfer, .. } => bytes = bytes.max(transfer.0),
            _ => {}
        })
        .await
        .unwrap();
        assert!(
            layer_lines.iter().any(|l| l.contains(" of ")),
            "{layer_lines:?}"
        );
        assert!(bytes > 0, "DownloadProgress counts the bytes fetched");
        let staged = sysroot.deployments().await.unwrap()[0].clone();
        assert_eq!(staged.staged, Some(true));
        assert_eq!(staged.finalization_locked, Some(true));
        assert_eq!(
            staged.container_image_reference.as_deref(),
            Some(image.as_str())
        );
        assert_eq!(
            staged.container_image_reference_digest.as_deref(),
            Some(digest.as_str())
        );
        assert!(staged.origin.is_none(), "{staged:?}");

        // A digest that is not the staged image's is refused; the image's own digest unlocks.
        let services = RebootServices::start(
            sb.bus_address(),
            StandInOptions {
                logind: true,
                ..Default::default()
            },
        )
        .unwrap();
        let wrong = format!("sha256:{}", "0".repeat(64));
        let err = os
            .finalize_deployment_transaction(&FinalizeDeploymentOptions::new().checksum(wrong))
            .await
            .unwrap()
            .run(|_| {})
            .await
            .expect_err("a wrong digest");
        assert!(
            err.message().contains("Expected staged base checksum"),
            "{err}"
        );
        os.finalize_deployment_transaction(
            &FinalizeDeploymentOptions::new().checksum(digest.clone()),
        )
        .await
        .unwrap()
        .run(|_| {})
        .await
        .unwrap();
        assert_eq!(
            services
                .calls()
                .iter()
                .filter(|c| c.method == "Reboot")
                .count(),
            1
        );
        wait_for("the unlock", Duration::from_secs(10), || async {
            sysroot.deployments().await.unwrap()[0].finalization_locked == Some(false)
        })
        .await;
    });
    // The daemon asked for a reboot and accepts no more changes (as a system going down): a
    // new one follows the tag to a new image, then goes back to the branch.
    sb.kill_daemon(15).unwrap();
    sb.wait_daemon_gone(Duration::from_secs(30)).unwrap();
    let v3 = sb.build_image("3.0", "stable").unwrap();
    run(Duration::from_secs(240), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;
        os.upgrade_transaction(&UpgradeOptions::new())
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
        let staged = sysroot.deployments().await.unwrap()[0].clone();
        assert_eq!(
            staged.container_image_reference_digest.as_deref(),
            Some(v3.as_str())
        );
        assert_eq!(staged.version.as_deref(), Some("3.0"));
        os.rebase_transaction(&RebaseOptions::new(), "origin:testos/stable", &[])
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
        let staged = sysroot.deployments().await.unwrap()[0].clone();
        assert_eq!(staged.origin.as_deref(), Some("origin:testos/stable"));
        assert!(staged.container_image_reference.is_none(), "{staged:?}");
        assert_eq!(staged.version.as_deref(), Some("2.0"));
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_cancel_in_the_middle_of_an_image_pull_ends_promptly_and_keeps_nothing() {
    let Some(sb) = sandbox(with_containers(false)) else {
        return;
    };
    let registry = Registry::start(&sb.dir().join("registry")).unwrap();
    sb.build_image("2.0", "stable").unwrap();
    let (proxy, image, _) = sb
        .big_image_behind_proxy(&registry, 4_000_000, 400_000)
        .unwrap();
    let before = sb.admin_status().unwrap();
    run(Duration::from_secs(180), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        let mut txn = os
            .rebase_transaction(&RebaseOptions::new(), &image, &[])
            .await
            .unwrap();
        let cancel = txn.proxy.clone();
        let mut cancelled_at = None;
        let mut finished_at = None;
        let result = txn
            .run(|e| match e {
                TransactionEvent::PercentProgress { text, percentage }
                    if text.starts_with("Fetching layer")
                        && *percentage >= 5
                        && cancelled_at.is_none() =>
                {
                    cancelled_at = Some(Instant::now());
                    let cancel = cancel.clone();
                    tokio::spawn(async move { cancel.cancel().await });
                }
                TransactionEvent::Finished { .. } => finished_at = Some(Instant::now()),
                _ => {}
            })
            .await;
        let took = finished_at.expect("Finished") - cancelled_at.expect("a layer was fetching");
        assert!(took < Duration::from_secs(5), "Cancel took {took:?}");
        let err = result.expect_err("a cancelled pull fails");
        assert!(err.message().contains("cancelled"), "{err}");
    });
    assert_eq!(sb.admin_status().unwrap(), before, "nothing was deployed");
    assert!(layer_refs(&sb).trim().is_empty(), "{}", layer_refs(&sb));
    sb.ostree(&["fsck"]).expect("ostree fsck is clean");
    // The daemon still works: the same image through the registry itself.
    sb.trust_registry(&registry.address()).unwrap();
    let image = format!(
        "ostree-unverified-registry:{}/testos:big",
        registry.address()
    );
    run(Duration::from_secs(180), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        os.rebase_transaction(&RebaseOptions::new(), &image, &[])
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
    });
    assert_ne!(sb.admin_status().unwrap(), before);
    drop(proxy);
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn sigkill_during_an_image_pull_leaves_a_sound_repository_and_the_pull_resumes() {
    let Some(sb) = sandbox(with_containers(false)) else {
        return;
    };
    let registry = Registry::start(&sb.dir().join("registry")).unwrap();
    sb.build_image("2.0", "stable").unwrap();
    let (proxy, image, digest) = sb
        .big_image_behind_proxy(&registry, 3_000_000, 1_000_000)
        .unwrap();
    let before = sb.admin_status().unwrap();
    // Kills at spread-out points of the pull: before, during and between the two layers.
    for (i, bytes) in [100_000u64, 1_500_000, 3_000_000].into_iter().enumerate() {
        let start = proxy.bytes();
        run(Duration::from_secs(60), async {
            let bus = bus(&sb).await;
            let os = os(&bus).await;
            let txn = os
                .rebase_transaction(&RebaseOptions::new(), &image, &[])
                .await
                .unwrap();
            txn.proxy.start().await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while proxy.bytes() < start + bytes && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let _ = sb.kill_daemon(9);
        sb.wait_daemon_gone(Duration::from_secs(30)).unwrap();
        if let Err(e) = sb.ostree(&["fsck"]) {
            panic!("ostree fsck after kill {i}: {e}");
        }
        assert_eq!(
            sb.admin_status().unwrap(),
            before,
            "kill {i}: nothing deployed"
        );
    }
    // A new daemon pulls what is missing and deploys the image.
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;
        os.rebase_transaction(&RebaseOptions::new(), &image, &[])
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap();
        let d = &sysroot.deployments().await.unwrap()[0];
        assert_eq!(
            d.container_image_reference_digest.as_deref(),
            Some(digest.as_str())
        );
    });
    sb.ostree(&["fsck"]).expect("ostree fsck is clean");
}
