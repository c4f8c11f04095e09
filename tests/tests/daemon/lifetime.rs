//! The daemon's lifetime: activation, clients keeping it alive, idle exit and re-activation,
//! recovery after SIGKILL in the middle of a transaction, and a bad configuration reported to
//! every caller instead of a silent failure.

use std::time::Duration;

use rpmostree_api::{RegisterClientOptions, UnregisterClientOptions};
use rpmostree_tests::SandboxOptions;

use crate::common::*;

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn clients_keep_the_daemon_alive_and_it_exits_when_idle() {
    let Some(sb) = sandbox(SandboxOptions {
        idle_exit_timeout: Some(2),
        ..Default::default()
    }) else {
        return;
    };
    run(Duration::from_secs(90), async {
        let client = bus(&sb).await;
        let sysroot = sysroot(&client).await;
        // A client id is bounded.
        let err = rpmostree_api::Error::from(
            sysroot
                .register_client(&RegisterClientOptions::new().id("x".repeat(300)))
                .await
                .unwrap_err(),
        );
        assert_eq!(err.dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs");
        sysroot
            .register_client(&RegisterClientOptions::new().id("system-test"))
            .await
            .unwrap();
        let first = sb.daemon_pid().expect("activated by the first call");
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(
            sb.daemon_pid(),
            Some(first),
            "a registered client keeps the daemon alive"
        );

        // UnregisterClient: idle again, so it leaves.
        sysroot
            .unregister_client(&UnregisterClientOptions::new())
            .await
            .unwrap();
        sb.wait_daemon_gone(Duration::from_secs(15)).unwrap();

        // Activation brings it back transparently.
        assert_eq!(versions(&sysroot).await.len(), 2);
        let second = sb.daemon_pid().unwrap();
        assert_ne!(first, second);

        // A client that registers and then vanishes from the bus is forgotten.
        sysroot
            .register_client(&RegisterClientOptions::new())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(sb.daemon_pid(), Some(second));
        drop(sysroot);
        client.close().await.unwrap();
        sb.wait_daemon_gone(Duration::from_secs(15)).unwrap();
        assert!(sb.daemon_log().contains("idle"), "{}", sb.daemon_log());
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn sigkill_in_the_middle_of_a_transaction_leaves_a_working_system() {
    let Some(sb) = sandbox(SandboxOptions {
        daemon_env: vec![("RPMOSTREED_TEST_TXN_DELAY_MS".into(), "3000".into())],
        ..Default::default()
    }) else {
        return;
    };
    let before = sb.admin_status().unwrap();
    run(Duration::from_secs(90), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        let txn = os.rollback_transaction(&Default::default()).await.unwrap();
        assert!(txn.proxy.start().await.unwrap());
        tokio::time::sleep(Duration::from_millis(500)).await;
        sb.kill_daemon(9).unwrap();
        sb.wait_daemon_gone(Duration::from_secs(10)).unwrap();
        assert_eq!(
            sb.admin_status().unwrap(),
            before,
            "the killed transaction changed nothing"
        );

        // The next call activates a fresh daemon that serves normally, and can take the
        // sysroot lock the killed one held.
        let sysroot = sysroot(&bus).await;
        assert_eq!(versions(&sysroot).await, ["1.1", "1.0"]);
        let mut txn = os.rollback_transaction(&Default::default()).await.unwrap();
        txn.run(|_| {}).await.unwrap();
        assert_eq!(admin_versions(&sb), ["1.0", "1.1"]);
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_bad_configuration_is_reported_to_every_caller_until_fixed() {
    let Some(sb) = sandbox(SandboxOptions {
        extra_config: Some("AutomaticUpdatePolicy=sometimes".into()),
        ..Default::default()
    }) else {
        return;
    };
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let err = rpmostree_api::Error::from(sysroot.deployments().await.unwrap_err());
        assert!(
            err.to_string().contains("AutomaticUpdatePolicy=sometimes"),
            "{err}"
        );
        let err = rpmostree_api::Error::from(sysroot.reload().await.unwrap_err());
        assert!(
            err.to_string().contains("AutomaticUpdatePolicy=sometimes"),
            "{err}"
        );

        let config = std::fs::read_to_string(sb.config_path()).unwrap();
        std::fs::write(sb.config_path(), config.replace("sometimes", "check")).unwrap();
        sysroot.reload_config().await.unwrap();
        assert_eq!(sysroot.automatic_update_policy().await.unwrap(), "check");
        assert_eq!(versions(&sysroot).await.len(), 2);
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_sysroot_that_cannot_be_loaded_is_explained_to_every_caller() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        assert_eq!(versions(&sysroot).await.len(), 2);
        // Break the sysroot behind the daemon's back: its repository disappears.
        let repo = sb.sysroot().join("ostree/repo");
        let moved = sb.sysroot().join("ostree/repo.away");
        std::fs::rename(&repo, &moved).unwrap();
        let err = rpmostree_api::Error::from(sysroot.reload().await.unwrap_err());
        assert_eq!(
            err.dbus_name(),
            "org.projectatomic.rpmostreed.Error.InvalidSysroot"
        );
        assert!(
            err.message().contains("cannot load the OSTree sysroot"),
            "{err}"
        );
        let err = rpmostree_api::Error::from(sysroot.deployments().await.unwrap_err());
        assert_eq!(
            err.dbus_name(),
            "org.projectatomic.rpmostreed.Error.InvalidSysroot"
        );
        // The daemon still answers what it can, and recovers once the sysroot is back.
        assert_eq!(
            sysroot.path().await.unwrap(),
            sb.sysroot().display().to_string()
        );
        std::fs::rename(&moved, &repo).unwrap();
        sysroot.reload().await.unwrap();
        assert_eq!(versions(&sysroot).await.len(), 2);
    });
}
