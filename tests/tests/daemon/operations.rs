//! The deploy family on the real sysroot through D-Bus: upgrade, deploy by version and checksum,
//! rebase, kernel arguments, update checks into `CachedUpdate`, staging and finalization on a
//! fake-booted system; and bad input that leaves the sysroot unchanged.

use std::time::Duration;

use rpmostree_api::{
    AutomaticUpdateTriggerOptions, DeployOptions, Error, FinalizeDeploymentOptions,
    KernelArgsOptions, RebaseOptions, TransactionEvent, UpdateDeploymentModifiers,
    UpdateDeploymentOptions, UpgradeOptions,
};
use rpmostree_tests::SandboxOptions;

use crate::common::*;

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn upgrade_deploy_rebase_and_kargs_on_a_sysroot() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;
        assert!(!os.has_cached_update_rpm_diff().await.unwrap());

        // An update check fills CachedUpdate without deploying.
        let (enabled, txn) = os
            .automatic_update_trigger_transaction(
                &AutomaticUpdateTriggerOptions::new().mode("check"),
            )
            .await
            .unwrap();
        assert!(enabled);
        txn.unwrap().run(|_| {}).await.unwrap();
        let cached = os.cached_update().await.unwrap();
        assert_eq!(cached.version.as_deref(), Some("2.0"));
        assert_eq!(cached.ref_has_new_commit, Some(true));
        // What upstream's `upgrade --check` reads first.
        assert!(os.has_cached_update_rpm_diff().await.unwrap());
        assert_eq!(admin_versions(&sb), ["1.1", "1.0"]);

        // Upgrade: pulls 2.0 with progress and deploys it.
        let mut events = Vec::new();
        let mut txn = os
            .upgrade_transaction(&UpgradeOptions::new())
            .await
            .unwrap();
        txn.run(|e| events.push(e.clone())).await.unwrap();
        for (what, found) in [
            (
                "DownloadProgress",
                events
                    .iter()
                    .any(|e| matches!(e, TransactionEvent::DownloadProgress { .. })),
            ),
            (
                "PercentProgress",
                events.iter().any(|e| {
                    matches!(
                        e,
                        TransactionEvent::PercentProgress {
                            percentage: 100,
                            ..
                        }
                    )
                }),
            ),
            (
                "ProgressEnd",
                events
                    .iter()
                    .any(|e| matches!(e, TransactionEvent::ProgressEnd)),
            ),
        ] {
            assert!(found, "the upgrade reports {what}: {events:?}");
        }
        assert_eq!(versions(&sysroot).await, ["2.0", "1.1"]);
        assert_eq!(admin_versions(&sb), ["2.0", "1.1"]);
        assert!(
            sb.boot_entries()
                .unwrap()
                .iter()
                .any(|e| e.contains("root=LABEL=testroot"))
        );

        // Nothing new: success, no new deployment.
        let mut txn = os
            .upgrade_transaction(&UpgradeOptions::new())
            .await
            .unwrap();
        let mut messages = Vec::new();
        txn.run(|e| {
            if let TransactionEvent::Message { text } = e {
                messages.push(text.clone())
            }
        })
        .await
        .unwrap();
        assert!(
            messages.iter().any(|m| m.contains("No upgrade available")),
            "{messages:?}"
        );
        assert_eq!(admin_versions(&sb), ["2.0", "1.1"]);

        // Deploy an older version by name (allowed by default for Deploy).
        let mut txn = os
            .deploy_transaction("version=1.0", &DeployOptions::new())
            .await
            .unwrap();
        txn.run(|_| {}).await.unwrap();
        assert_eq!(admin_versions(&sb)[0], "1.0");

        // Kernel arguments: appended on a new deployment of the same commit.
        let current = os
            .get_deployment_boot_config("0", false)
            .await
            .unwrap()
            .options
            .unwrap();
        let mut txn = os
            .kernel_args_transaction(
                &current,
                &["debug=1"],
                &[],
                &["quiet"],
                &KernelArgsOptions::new(),
            )
            .await
            .unwrap();
        txn.run(|_| {}).await.unwrap();
        let options = os
            .get_deployment_boot_config("0", false)
            .await
            .unwrap()
            .options
            .unwrap();
        assert!(
            options.contains("debug=1") && !options.contains("quiet"),
            "{options}"
        );
        assert!(
            sb.boot_entries()
                .unwrap()
                .iter()
                .any(|e| e.contains("debug=1"))
        );

        // Rebase to the devel branch.
        let mut txn = os
            .rebase_transaction(&RebaseOptions::new(), "origin:testos/devel", &[])
            .await
            .unwrap();
        txn.run(|_| {}).await.unwrap();
        let first = &sb.admin_deployments().unwrap()[0];
        assert_eq!(first.version.as_deref(), Some("10.0"));
        assert_eq!(first.refspec.as_deref(), Some("origin:testos/devel"));
        let d = &sysroot.deployments().await.unwrap()[0];
        assert_eq!(d.origin.as_deref(), Some("origin:testos/devel"));
        assert!(
            d.base_commit_meta.as_ref().unwrap().contains_key("version"),
            "base-commit-meta carries the commit metadata"
        );

        // UpdateDeployment with set-refspec back to stable.
        let mut txn = os
            .update_deployment_transaction(
                &UpdateDeploymentModifiers::new().set_refspec("origin:testos/stable"),
                &UpdateDeploymentOptions::new(),
            )
            .await
            .unwrap();
        txn.run(|_| {}).await.unwrap();
        assert_eq!(
            sb.admin_deployments().unwrap()[0].refspec.as_deref(),
            Some("origin:testos/stable")
        );
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    let before = sb.admin_status().unwrap();
    run(Duration::from_secs(90), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        // Unknown version: the transaction fails naming it.
        let mut txn = os
            .deploy_transaction("version=9.9", &DeployOptions::new())
            .await
            .unwrap();
        let err = txn.run(|_| {}).await.unwrap_err();
        assert!(err.message().contains("Version 9.9 not found"), "{err}");
        // Malformed refspec: refused before any transaction.
        let err = Error::from(
            os.rebase(&RebaseOptions::new(), "origin:bad ref", &[])
                .await
                .unwrap_err(),
        );
        assert_eq!(
            err.dbus_name(),
            "org.projectatomic.rpmostreed.Error.InvalidRefspec"
        );
        // Unknown remote.
        let mut txn = os
            .rebase_transaction(&RebaseOptions::new(), "nowhere:testos/devel", &[])
            .await
            .unwrap();
        let err = txn.run(|_| {}).await.unwrap_err();
        assert!(
            err.message().contains("Remote \"nowhere\" not found"),
            "{err}"
        );
        // Kernel arguments with invalid characters.
        let err = Error::from(
            os.kernel_args("rw", &["bad\narg"], &[], &[], &KernelArgsOptions::new())
                .await
                .unwrap_err(),
        );
        assert_eq!(err.dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs");
        assert!(err.message().contains("Invalid kernel argument"), "{err}");
        // An option of the wrong type over D-Bus.
        let mut bad = std::collections::HashMap::new();
        bad.insert("reboot", zbus::Variant::from("yes"));
        let err = Error::from(
            os.inner()
                .call_method("Upgrade", &(bad,))
                .await
                .unwrap_err(),
        );
        assert_eq!(err.dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs");
        assert!(err.message().contains("reboot"), "{err}");
        // No option is silently ignored: those not implemented are refused, naming the key.
        for (key, options) in [(
            "apply-live",
            UpdateDeploymentOptions::new().apply_live(true),
        )] {
            let err = Error::from(
                os.update_deployment(&UpdateDeploymentModifiers::new(), &options)
                    .await
                    .unwrap_err(),
            );
            assert_eq!(err.dbus_name(), "org.freedesktop.DBus.Error.NotSupported");
            assert!(err.message().contains(&format!("'{key}'")), "{key}: {err}");
        }
        let err = Error::from(
            os.clear_rollback_target(
                &rpmostree_api::ClearRollbackTargetOptions::new().reboot(true),
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(err.dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs");
        let err = Error::from(
            os.deploy("version=1.0", &DeployOptions::new().no_pull_base(true))
                .await
                .unwrap_err(),
        );
        assert!(err.message().contains("no-pull-base"), "{err}");
        // Overlong input is refused before any work.
        let err = Error::from(
            os.rebase(&RebaseOptions::new(), &"x".repeat(5000), &[])
                .await
                .unwrap_err(),
        );
        assert!(err.message().contains("refspec is too long"), "{err}");
        // no-pull-base alone changes nothing: no second deployment of the same commit.
        let mut messages = Vec::new();
        let mut txn = os
            .update_deployment_transaction(
                &UpdateDeploymentModifiers::new(),
                &UpdateDeploymentOptions::new().no_pull_base(true),
            )
            .await
            .unwrap();
        txn.run(|e| {
            if let TransactionEvent::Message { text } = e {
                messages.push(text.clone());
            }
        })
        .await
        .unwrap();
        assert!(messages.iter().any(|m| m == "No changes."), "{messages:?}");
    });
    assert_eq!(
        sb.admin_status().unwrap(),
        before,
        "nothing changed on disk"
    );
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn staged_upgrade_and_finalization_on_a_booted_system() {
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
        let mut txn = os
            .upgrade_transaction(&UpgradeOptions::new().lock_finalization(true))
            .await
            .unwrap();
        txn.run(|_| {}).await.unwrap();
        let deployments = sysroot.deployments().await.unwrap();
        assert_eq!(deployments[0].staged, Some(true));
        assert_eq!(deployments[0].version.as_deref(), Some("2.0"));
        assert_eq!(deployments[0].finalization_locked, Some(true));
        assert!(
            sb.run_fake_booted(&["ostree", "admin", "status"])
                .unwrap()
                .contains("staged")
        );

        // Finalize: a wrong checksum is refused; the right one unlocks once logind (a
        // stand-in here) accepted the reboot.
        let err = os
            .finalize_deployment_transaction(
                &FinalizeDeploymentOptions::new().checksum("0".repeat(64)),
            )
            .await
            .unwrap()
            .run(|_| {})
            .await
            .unwrap_err();
        assert!(
            err.message().contains("Expected staged base checksum"),
            "{err}"
        );
        let services = rpmostree_tests::RebootServices::start(
            sb.bus_address(),
            rpmostree_tests::StandInOptions {
                logind: true,
                ..Default::default()
            },
        )
        .unwrap();
        let checksum = deployments[0].checksum.clone().unwrap();
        os.finalize_deployment_transaction(&FinalizeDeploymentOptions::new().checksum(checksum))
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
        drop(services);
        wait_for(
            "the staged deployment to be unlocked",
            Duration::from_secs(10),
            || async { sysroot.deployments().await.unwrap()[0].finalization_locked == Some(false) },
        )
        .await;
        // Shutdown: what ostree-finalize-staged.service does; the daemon, which asked for the
        // reboot, is stopped with it.
        sb.run_fake_booted_pid_ns(&["ostree", "admin", "finalize-staged"])
            .unwrap();
        let admin = sb.admin_deployments().unwrap();
        assert_eq!(admin[0].version.as_deref(), Some("2.0"));
        sb.kill_daemon(15).unwrap();
        sb.wait_daemon_gone(Duration::from_secs(30)).unwrap();
        let bus2 = crate::common::bus(&sb).await;
        let os = crate::common::os(&bus2).await;

        // After that shutdown step, the system still runs 1.1: a rollback brings it back to
        // the front, and cleanup of the pending deployment works.
        let mut txn = os.rollback_transaction(&Default::default()).await.unwrap();
        txn.run(|_| {}).await.unwrap();
        assert_eq!(
            sb.admin_deployments().unwrap()[0].version.as_deref(),
            Some("1.1")
        );
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn download_only_cache_only_checksums_and_reboot_without_a_reboot_service() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;

        // cache-only: nothing new is on the machine yet, so nothing changes.
        let mut messages = Vec::new();
        let mut txn = os
            .upgrade_transaction(&UpgradeOptions::new().cache_only(true))
            .await
            .unwrap();
        txn.run(|e| {
            if let TransactionEvent::Message { text } = e {
                messages.push(text.clone())
            }
        })
        .await
        .unwrap();
        assert!(
            messages.iter().any(|m| m.contains("No upgrade available")),
            "{messages:?}"
        );
        assert_eq!(admin_versions(&sb), ["1.1", "1.0"]);

        // download-only: 2.0 is pulled into the sysroot repo, no deployment is made.
        let mut txn = os
            .upgrade_transaction(&UpgradeOptions::new().download_only(true))
            .await
            .unwrap();
        txn.run(|_| {}).await.unwrap();
        assert_eq!(admin_versions(&sb), ["1.1", "1.0"]);
        let head = sb.ostree(&["rev-parse", "origin:testos/stable"]).unwrap();
        let head = head.trim().to_owned();
        let remote_head = sb.ostree_remote(&["rev-parse", "testos/stable"]).unwrap();
        assert_eq!(head, remote_head.trim());

        // Now cache-only deploys what was downloaded.
        let mut txn = os
            .upgrade_transaction(&UpgradeOptions::new().cache_only(true))
            .await
            .unwrap();
        txn.run(|_| {}).await.unwrap();
        assert_eq!(admin_versions(&sb)[0], "2.0");

        // Deploy by checksum; a malformed checksum is refused before any transaction.
        let old = sb.admin_deployments().unwrap()[1].checksum.clone();
        let mut txn = os
            .deploy_transaction(&format!("revision={old}"), &DeployOptions::new())
            .await
            .unwrap();
        txn.run(|_| {}).await.unwrap();
        assert_eq!(sb.admin_deployments().unwrap()[0].checksum, old);
        let err = Error::from(
            os.deploy("revision=abc", &DeployOptions::new())
                .await
                .unwrap_err(),
        );
        assert_eq!(err.dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs");

        // reboot: the sandbox has neither logind nor systemd, so the transaction says so,
        // and the change is written (queued for the next boot).
        let before = admin_versions(&sb);
        let mut txn = os
            .rollback_transaction(&rpmostree_api::RollbackOptions::new().reboot(true))
            .await
            .unwrap();
        let err = txn.run(|_| {}).await.unwrap_err();
        assert!(err.message().contains("no reboot was requested"), "{err}");
        let after = admin_versions(&sb);
        assert_ne!(before, after, "the rollback itself was written");
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn an_update_driver_registers_and_status_reports_it() {
    let Some(sb) = sandbox(SandboxOptions {
        fake_booted: true,
        ..Default::default()
    }) else {
        return;
    };
    let before = sb.run_fake_booted(&["ostree", "admin", "status"]).unwrap();
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        // What zincati does: `deploy "" --register-driver zincati`.
        let mut txn = os
            .deploy_transaction("", &DeployOptions::new().register_driver("zincati"))
            .await
            .unwrap();
        txn.run(|_| {}).await.unwrap();
        // An empty revision without a driver is refused.
        let err = Error::from(os.deploy("", &DeployOptions::new()).await.unwrap_err());
        assert_eq!(err.dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs");
    });
    // The booted system's /run is the sandbox's run/.
    let file = std::fs::read_to_string(sb.dir().join("run/rpm-ostree/update-driver")).unwrap();
    assert!(file.contains("driver-name=zincati"), "{file}");
    assert_eq!(
        sb.run_fake_booted(&["ostree", "admin", "status"]).unwrap(),
        before,
        "registering deploys nothing"
    );
    let cli = sb
        .install_binary(&rpmostree_tests::target_bin("rpm-ostree"))
        .unwrap();
    let cli = cli.to_str().unwrap();
    let human = sb.run_fake_booted(&[cli, "status"]).unwrap();
    assert!(human.contains("AutomaticUpdatesDriver: zincati"), "{human}");
    let json = sb.run_fake_booted(&[cli, "status", "--json"]).unwrap();
    assert!(json.contains("\"driver-name\": \"zincati\""), "{json}");
}
