//! Transactions on the real sysroot: Rollback and Cleanup end to end (checked against
//! `ostree admin status` and the boot entries), one transaction at a time (busy error, joining),
//! Cancel, clients leaving, unstarted transactions, and peer credentials on the socket.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rpmostree_api::{BUSY_ERROR_NAME, Error, RollbackOptions, TransactionClient, TransactionEvent};
use rpmostree_tests::SandboxOptions;

use crate::common::*;

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn rollback_and_cleanup_change_the_sysroot_and_properties_change_before_finished() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    let entries_before = sb.boot_entries().unwrap();
    assert_eq!(entries_before.len(), 2);
    run(Duration::from_secs(90), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;
        let props = properties(&bus, "/org/projectatomic/rpmostree1/Sysroot").await;
        let mut changes = props.receive_properties_changed().await.unwrap();

        let mut txn = os
            .rollback_transaction(&RollbackOptions::new())
            .await
            .unwrap();
        assert_eq!(txn.proxy.title().await.unwrap(), "rollback");
        assert!(
            txn.proxy
                .initiating_client_description()
                .await
                .unwrap()
                .contains(":1.")
        );
        let (method, _sender, path) = sysroot.active_transaction().await.unwrap();
        assert_eq!((method.as_str(), path.as_str()), ("Rollback", OS_PATH));
        assert_eq!(
            sysroot.active_transaction_path().await.unwrap(),
            txn.address
        );

        let mut events = Vec::new();
        txn.run(|e| events.push(e.clone())).await.unwrap();
        assert!(events.iter().any(|e| matches!(e, TransactionEvent::Message { text } if text.contains("to be first deployment"))));
        // By the time Finished arrived, the properties had changed.
        assert_eq!(versions(&sysroot).await, ["1.0", "1.1"]);
        let seen = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(signal) = changes.next().await {
                if signal
                    .args()
                    .unwrap()
                    .changed_properties()
                    .contains_key("Deployments")
                {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(seen, Ok(true), "PropertiesChanged(Deployments) was emitted");
        assert_eq!(admin_versions(&sb), ["1.0", "1.1"]);
        let entries = sb.boot_entries().unwrap();
        assert!(
            entries.iter().any(|e| e.contains("TestOS 1.0")),
            "{entries:?}"
        );

        // The finished transaction leaves the slot.
        wait_for(
            "the transaction to close",
            Duration::from_secs(10),
            || async { sysroot.active_transaction_path().await.unwrap().is_empty() },
        )
        .await;

        // Cleanup of the rollback deployment.
        let mut txn = os.cleanup_transaction(&["rollback-deploy"]).await.unwrap();
        txn.run(|_| {}).await.unwrap();
        assert_eq!(versions(&sysroot).await, ["1.0"]);
        assert_eq!(admin_versions(&sb), ["1.0"]);
        assert_eq!(sb.boot_entries().unwrap().len(), 1);

        // Invalid input: a clear error, nothing created, nothing changed.
        let err = Error::from(os.cleanup(&["everything"]).await.unwrap_err());
        assert!(
            err.message().contains("Invalid cleanup type: everything"),
            "{err}"
        );
        assert_eq!(sysroot.active_transaction_path().await.unwrap(), "");
        // Nothing left to roll back to: the transaction fails with a clear message.
        let mut txn = os
            .rollback_transaction(&RollbackOptions::new())
            .await
            .unwrap();
        let err = txn.run(|_| {}).await.unwrap_err();
        assert!(
            err.message().contains("No rollback deployment found"),
            "{err}"
        );
        assert_eq!(admin_versions(&sb), ["1.0"]);
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn rollback_on_a_fake_booted_system() {
    let Some(sb) = sandbox(SandboxOptions {
        fake_booted: true,
        ..Default::default()
    }) else {
        return;
    };
    run(Duration::from_secs(90), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        let mut txn = os
            .rollback_transaction(&RollbackOptions::new())
            .await
            .unwrap();
        txn.run(|_| {}).await.unwrap();
        let admin = sb.admin_deployments().unwrap();
        assert_eq!(admin[0].version.as_deref(), Some("1.0"));
        let sysroot = sysroot(&bus).await;
        let deployments = sysroot.deployments().await.unwrap();
        assert_eq!(deployments[0].version.as_deref(), Some("1.0"));
        assert_eq!(
            deployments[1].booted,
            Some(true),
            "the booted deployment does not change"
        );
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn one_transaction_at_a_time_busy_and_join() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        let first = os.rollback(&RollbackOptions::new()).await.unwrap();
        // Identical request: joins.
        let again = os.rollback(&RollbackOptions::new()).await.unwrap();
        assert_eq!(first, again);
        // A different one: the busy error GNOME Software retries on, naming the active one.
        let err = os.cleanup(&["base"]).await.unwrap_err();
        let err = Error::from(err);
        assert_eq!(err.dbus_name(), BUSY_ERROR_NAME);
        assert!(
            err.message().contains("Transaction in progress: rollback"),
            "{err}"
        );
        let err = Error::from(
            os.rollback(&RollbackOptions::new().reboot(true))
                .await
                .unwrap_err(),
        );
        assert!(
            err.is_busy(),
            "different options are a different request: {err}"
        );

        // Two clients on the same transaction: the first Start starts it, the second attaches.
        let mut a = TransactionClient::connect(&first).await.unwrap();
        let b = TransactionClient::connect(&first).await.unwrap();
        assert!(a.proxy.start().await.unwrap());
        assert!(!b.proxy.start().await.unwrap());
        let outcome = a.run(|_| {}).await.unwrap();
        assert!(!outcome.started_here, "already started above");
        // A Start after the end re-sends Finished to that peer.
        let mut c = b;
        assert!(!c.proxy.start().await.unwrap());
        let finished = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(e) = c.events.next().await {
                if let TransactionEvent::Finished { success, .. } = e.unwrap() {
                    return success;
                }
            }
            false
        })
        .await;
        assert_eq!(finished, Ok(true));
        assert_eq!(admin_versions(&sb), ["1.0", "1.1"]);
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn cancel_ends_the_transaction_quickly_and_changes_nothing() {
    let Some(sb) = sandbox(SandboxOptions {
        daemon_env: vec![("RPMOSTREED_TEST_TXN_DELAY_MS".into(), "20000".into())],
        ..Default::default()
    }) else {
        return;
    };
    let before = sb.admin_status().unwrap();
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        let mut txn = os
            .rollback_transaction(&RollbackOptions::new())
            .await
            .unwrap();
        assert!(txn.proxy.start().await.unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cancelled_at = Instant::now();
        txn.proxy.cancel().await.unwrap();
        let err = txn.run(|_| {}).await.unwrap_err();
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(5),
            "Cancel is honoured promptly"
        );
        assert!(err.message().contains("cancelled"), "{err}");
        assert_eq!(sb.admin_status().unwrap(), before);
        // The daemon is free again.
        let sysroot = sysroot(&bus).await;
        wait_for("the slot to be free", Duration::from_secs(10), || async {
            sysroot.active_transaction_path().await.unwrap().is_empty()
        })
        .await;
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_client_leaving_after_start_does_not_cancel_but_one_that_never_starts_is_dropped() {
    let Some(sb) = sandbox(SandboxOptions {
        daemon_env: vec![
            ("RPMOSTREED_TEST_TXN_DELAY_MS".into(), "1500".into()),
            ("RPMOSTREED_TXN_START_TIMEOUT_SECS".into(), "2".into()),
        ],
        ..Default::default()
    }) else {
        return;
    };
    run(Duration::from_secs(90), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        {
            let txn = os
                .rollback_transaction(&RollbackOptions::new())
                .await
                .unwrap();
            assert!(txn.proxy.start().await.unwrap());
            // The peer connection goes away here.
        }
        let sysroot = sysroot(&bus).await;
        wait_for(
            "the rollback to complete without its client",
            Duration::from_secs(20),
            || async { admin_versions(&sb) == ["1.0", "1.1"] },
        )
        .await;
        wait_for("the slot to be free", Duration::from_secs(40), || async {
            sysroot.active_transaction_path().await.unwrap().is_empty()
        })
        .await;

        // Nobody starts this one: it is dropped after the start timeout.
        let address = os.rollback(&RollbackOptions::new()).await.unwrap();
        assert_eq!(sysroot.active_transaction_path().await.unwrap(), address);
        wait_for(
            "the unstarted transaction to be dropped",
            Duration::from_secs(15),
            || async { sysroot.active_transaction_path().await.unwrap().is_empty() },
        )
        .await;
        assert!(
            TransactionClient::connect(&address).await.is_err(),
            "its socket is gone"
        );
        assert_eq!(admin_versions(&sb), ["1.0", "1.1"]);
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn only_root_and_the_initiator_may_connect_to_a_transaction() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        // Started by root (uid 0): the test user may not connect.
        let address = os.rollback(&RollbackOptions::new()).await.unwrap();
        let out = sb
            .command_as_test_user("gdbus")
            .args(["call", "--address", &address, "--object-path", "/"])
            .args(["--method", "org.projectatomic.rpmostree1.Transaction.Start"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "a foreign uid must not get in");
        // The refusal is logged by the daemon's accept task, which may lag behind gdbus.
        wait_for(
            "the daemon to log the refusal",
            Duration::from_secs(10),
            || async { sb.daemon_log().contains("may not connect") },
        )
        .await;
        // Root (the initiator) can.
        let mut txn = TransactionClient::connect(&address).await.unwrap();
        txn.run(|_| {}).await.unwrap();
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn sigterm_cancels_the_running_transaction_and_exits_cleanly() {
    let Some(sb) = sandbox(SandboxOptions {
        daemon_env: vec![("RPMOSTREED_TEST_TXN_DELAY_MS".into(), "20000".into())],
        ..Default::default()
    }) else {
        return;
    };
    let before = sb.admin_status().unwrap();
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        let mut txn = os
            .rollback_transaction(&RollbackOptions::new())
            .await
            .unwrap();
        assert!(txn.proxy.start().await.unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
        sb.kill_daemon(15).unwrap();
        // The client still hears how it ended.
        let err = txn.run(|_| {}).await.unwrap_err();
        assert!(err.message().contains("cancelled"), "{err}");
    });
    sb.wait_daemon_gone(Duration::from_secs(20)).unwrap();
    assert!(
        sb.daemon_log().contains("exiting: terminated"),
        "{}",
        sb.daemon_log()
    );
    assert_eq!(sb.admin_status().unwrap(), before, "nothing was written");
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn reload_during_a_transaction_keeps_the_last_complete_view() {
    let Some(sb) = sandbox(SandboxOptions {
        daemon_env: vec![("RPMOSTREED_TEST_TXN_DELAY_MS".into(), "3000".into())],
        ..Default::default()
    }) else {
        return;
    };
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;
        assert_eq!(versions(&sysroot).await, ["1.1", "1.0"]);
        let mut txn = os.cleanup_transaction(&["base"]).await.unwrap();
        assert!(txn.proxy.start().await.unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The sysroot changes on disk while the transaction works (a stand-in for its own
        // half-done writes): Reload() must not publish that.
        sb.ostree_admin(&["undeploy", "1"]).unwrap();
        sysroot.reload().await.unwrap();
        assert_eq!(versions(&sysroot).await, ["1.1", "1.0"]);
        txn.run(|_| {}).await.unwrap();
        // Once the work is done, the daemon's view is the disk's.
        assert_eq!(versions(&sysroot).await, ["1.1"]);
    });
}
