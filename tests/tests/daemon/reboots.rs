//! Reboots follow only written changes, after `Finished`, through logind (or systemd's clean
//! `reboot.target` where logind is absent); inhibitors and refusals leave the change queued; a
//! locked staged deployment is unlocked only once the reboot was accepted; quoted kernel
//! arguments survive a round trip through the boot entry; a crash right after staging never
//! leaves an unlocked staged deployment. A logind and systemd stand-in on the sandbox bus records
//! every request with its time.

use std::time::{Duration, SystemTime};

use rpmostree_api::{
    AutomaticUpdateTriggerOptions, FinalizeDeploymentOptions, KernelArgsOptions, OSProxy,
    RollbackOptions, TransactionEvent, UpgradeOptions,
};
use rpmostree_tests::{Call, Inhibitor, RebootServices, Sandbox, SandboxOptions, StandInOptions};

use crate::common::*;

const LOGIND: &str = "org.freedesktop.login1.Manager";
const SYSTEMD: &str = "org.freedesktop.systemd1.Manager";

fn reboots(calls: &[Call]) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| c.method == "Reboot" || c.method == "StartUnit")
        .collect()
}

/// Runs a transaction to its end; returns whether it succeeded, its error or last message, and
/// when `Finished` arrived.
async fn run_txn(
    txn: Result<rpmostree_api::TransactionClient, zbus::Error>,
) -> (bool, String, SystemTime) {
    let mut txn = txn.unwrap();
    let mut finished_at = SystemTime::now();
    let mut messages = Vec::new();
    let result = txn
        .run(|e| match e {
            TransactionEvent::Finished { .. } => finished_at = SystemTime::now(),
            TransactionEvent::Message { text } => messages.push(text.clone()),
            _ => {}
        })
        .await;
    match result {
        Ok(_) => (true, messages.join("\n"), finished_at),
        Err(e) => (false, e.to_string(), finished_at),
    }
}

/// A bus monitor (root may become one) that sees, in the bus's own order, the daemon's
/// `PropertiesChanged` on the Sysroot object and every `Reboot` or `StartUnit` call.
async fn monitor(sb: &Sandbox) -> zbus::MessageStream {
    use zbus::{MatchRule, message::Type};
    let conn = zbus::connection::Builder::address(sb.bus_address())
        .build()
        .await
        .unwrap();
    let rules = [
        MatchRule::builder()
            .msg_type(Type::Signal)
            .interface("org.freedesktop.DBus.Properties")
            .member("PropertiesChanged")
            .path("/org/projectatomic/rpmostree1/Sysroot")
            .build()
            .unwrap(),
        MatchRule::builder()
            .msg_type(Type::MethodCall)
            .member("Reboot")
            .build()
            .unwrap(),
        MatchRule::builder()
            .msg_type(Type::MethodCall)
            .member("StartUnit")
            .build()
            .unwrap(),
    ];
    let stream = zbus::MessageStream::from(&conn);
    zbus::fdo::MonitoringProxy::new(&conn)
        .await
        .unwrap()
        .become_monitor(&rules, 0)
        .await
        .unwrap();
    stream
}

/// Reads the monitor until the first reboot request; true when the daemon had announced the
/// end of its transaction (`ActiveTransactionPath` emptied) on the bus before it.
async fn finished_before_reboot(stream: &mut zbus::MessageStream) -> bool {
    use futures_util::StreamExt;
    type Changed = (
        String,
        std::collections::HashMap<String, zbus::OwnedVariant>,
        Vec<String>,
    );
    let mut ended = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, stream.next()).await {
        let header = msg.header();
        let member = header.member().map(|m| m.to_string()).unwrap_or_default();
        if member == "Reboot" || member == "StartUnit" {
            return ended;
        }
        if let Ok((_, changed, _)) = msg.body().deserialize::<Changed>()
            && let Some(v) = changed.get("ActiveTransactionPath")
            && String::try_from(v.clone()).is_ok_and(|p| p.is_empty())
        {
            ended = true;
        }
    }
    panic!("no reboot request was seen on the bus");
}

/// A logind and/or systemd stand-in on the sandbox bus.
fn stand_in(sb: &Sandbox, logind: bool, systemd: bool) -> RebootServices {
    RebootServices::start(
        sb.bus_address(),
        StandInOptions {
            logind,
            systemd,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Restarts the daemon (after it asked for a reboot it accepts no more changes, as a system
/// going down would).
async fn restart(sb: &Sandbox) -> (zbus::Connection, OSProxy<'static>) {
    sb.kill_daemon(15).unwrap();
    sb.wait_daemon_gone(Duration::from_secs(30)).unwrap();
    let bus = bus(sb).await;
    let os = os(&bus).await;
    (bus, os)
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_reboot_follows_only_a_written_change_and_comes_after_finished() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    let services = stand_in(&sb, true, true);
    run(Duration::from_secs(180), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;

        // Nothing written: dry-run and download-only never reboot.
        for options in [
            UpgradeOptions::new().reboot(true).dry_run(true),
            UpgradeOptions::new().reboot(true).download_only(true),
        ] {
            let (ok, text, _) = run_txn(os.upgrade_transaction(&options).await).await;
            assert!(ok, "{text}");
        }
        assert_eq!(admin_versions(&sb), ["1.1", "1.0"]);

        // A written change: Finished reaches the client, then logind is asked. The bus
        // monitor sees the daemon announce the transaction's end before the request, in the
        // bus's own order (the timestamps can only say the same loosely).
        let mut watch = monitor(&sb).await;
        let (ok, text, finished_at) = run_txn(
            os.upgrade_transaction(&UpgradeOptions::new().reboot(true))
                .await,
        )
        .await;
        assert!(ok, "{text}");
        assert_eq!(admin_versions(&sb)[0], "2.0");
        let calls = services.wait_for_calls(1, Duration::from_secs(10));
        let asked = reboots(&calls);
        assert_eq!(asked.len(), 1, "{calls:?}");
        assert_eq!(
            (asked[0].interface.as_str(), asked[0].method.as_str()),
            (LOGIND, "Reboot")
        );
        assert_eq!(asked[0].args, ["false"]);
        // The order on the bus is exact; the client's clock only says it loosely (a client
        // busy elsewhere may read `Finished` late), so the times are only printed.
        assert!(
            finished_before_reboot(&mut watch).await,
            "the transaction's end was announced before the reboot request"
        );
        eprintln!(
            "Finished read by the client {:?} before logind got the request",
            asked[0].at.duration_since(finished_at)
        );

        // Once a reboot was asked for, nothing more may change.
        let err =
            rpmostree_api::Error::from(os.rollback(&RollbackOptions::new()).await.unwrap_err());
        assert!(
            err.message()
                .contains("Reboot initiated, cannot start new transaction"),
            "{err}"
        );
        let (_bus, os) = restart(&sb).await;

        // No update, unchanged kernel arguments, `apply` with nothing new: no reboot.
        let (ok, text, _) = run_txn(
            os.upgrade_transaction(&UpgradeOptions::new().reboot(true))
                .await,
        )
        .await;
        assert!(ok, "{text}");
        let current = os
            .get_deployment_boot_config("0", false)
            .await
            .unwrap()
            .options
            .unwrap();
        let (ok, text, _) = run_txn(
            os.kernel_args_transaction(
                &current,
                &[],
                &[],
                &[],
                &KernelArgsOptions::new().reboot(true),
            )
            .await,
        )
        .await;
        assert!(ok, "{text}");
        let (started, address) = os
            .automatic_update_trigger(&AutomaticUpdateTriggerOptions::new().mode("apply"))
            .await
            .unwrap();
        assert!(started);
        let (ok, text, _) =
            run_txn(rpmostree_api::TransactionClient::connect(&address).await).await;
        assert!(ok, "{text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            reboots(&services.calls()).len(),
            1,
            "{:?}",
            services.calls()
        );
    });
    // systemd's abrupt Manager.Reboot() was never used.
    assert!(
        !services
            .calls()
            .iter()
            .any(|c| c.interface == SYSTEMD && c.method == "Reboot")
    );
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn without_logind_the_reboot_is_systemds_clean_reboot_target() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    let services = stand_in(&sb, false, true);
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        let mut watch = monitor(&sb).await;
        let (ok, text, _) = run_txn(
            os.rollback_transaction(&RollbackOptions::new().reboot(true))
                .await,
        )
        .await;
        assert!(ok, "{text}");
        assert!(finished_before_reboot(&mut watch).await);
        let calls = services.wait_for_calls(1, Duration::from_secs(10));
        let asked = reboots(&calls);
        assert_eq!(asked.len(), 1, "{calls:?}");
        assert_eq!(asked[0].interface, SYSTEMD);
        assert_eq!(asked[0].method, "StartUnit");
        assert_eq!(asked[0].args, ["reboot.target", "replace-irreversibly"]);
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn an_inhibited_or_impossible_reboot_leaves_the_change_queued_and_says_so() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        // No reboot service at all.
        let (ok, text, _) = run_txn(
            os.rollback_transaction(&RollbackOptions::new().reboot(true))
                .await,
        )
        .await;
        assert!(!ok);
        assert!(text.contains("queued for the next boot"), "{text}");
        assert!(text.contains("neither logind"), "{text}");
        assert_eq!(
            admin_versions(&sb),
            ["1.0", "1.1"],
            "the rollback was written"
        );

        // logind with a blocking shutdown inhibitor.
        let services = RebootServices::start(
            sb.bus_address(),
            StandInOptions {
                logind: true,
                inhibitors: vec![Inhibitor {
                    what: "sleep:shutdown".into(),
                    who: "backup-tool".into(),
                    why: "copying files".into(),
                    mode: "block".into(),
                    uid: 0,
                    pid: 1,
                }],
                ..Default::default()
            },
        )
        .unwrap();
        let (ok, text, _) = run_txn(
            os.rollback_transaction(&RollbackOptions::new().reboot(true))
                .await,
        )
        .await;
        assert!(!ok);
        assert!(text.contains("queued for the next boot"), "{text}");
        assert!(text.contains("Held by: backup-tool"), "{text}");
        assert_eq!(admin_versions(&sb), ["1.1", "1.0"]);
        assert!(reboots(&services.calls()).is_empty());
        // The daemon is not stuck in "rebooting": another change works.
        let (ok, text, _) = run_txn(os.rollback_transaction(&RollbackOptions::new()).await).await;
        assert!(ok, "{text}");
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn finalize_unlocks_only_once_the_reboot_was_accepted() {
    let Some(sb) = sandbox(SandboxOptions {
        fake_booted: true,
        ..Default::default()
    }) else {
        return;
    };
    run(Duration::from_secs(180), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        let os = os(&bus).await;
        let (ok, text, _) = run_txn(
            os.upgrade_transaction(&UpgradeOptions::new().lock_finalization(true))
                .await,
        )
        .await;
        assert!(ok, "{text}");
        let staged = sysroot.deployments().await.unwrap()[0].clone();
        assert_eq!(staged.finalization_locked, Some(true));
        let checksum = staged.checksum.unwrap();
        let finalize = FinalizeDeploymentOptions::new().checksum(checksum.clone());
        let locked = || async { sysroot.deployments().await.unwrap()[0].finalization_locked };

        // No reboot service, then logind refusing: the deployment stays locked.
        let (ok, text, _) = run_txn(os.finalize_deployment_transaction(&finalize).await).await;
        assert!(!ok);
        assert!(text.contains("nothing was changed"), "{text}");
        assert_eq!(locked().await, Some(true));
        let services = RebootServices::start(
            sb.bus_address(),
            StandInOptions {
                logind: true,
                refuse_reboot: Some("Operation inhibited by the test".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let (ok, text, _) = run_txn(os.finalize_deployment_transaction(&finalize).await).await;
        assert!(!ok);
        assert!(text.contains("refused"), "{text}");
        assert_eq!(reboots(&services.calls()).len(), 1);
        assert_eq!(locked().await, Some(true));
        drop(services);

        // logind accepts: unlocked, after the request.
        let services = stand_in(&sb, true, false);
        let (ok, text, _) = run_txn(os.finalize_deployment_transaction(&finalize).await).await;
        assert!(ok, "{text}");
        assert_eq!(reboots(&services.calls()).len(), 1);
        wait_for("the unlock", Duration::from_secs(10), || async {
            locked().await == Some(false)
        })
        .await;
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn quoted_kernel_arguments_survive_append_replace_and_delete() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        let options = || async {
            os.get_deployment_boot_config("0", false)
                .await
                .unwrap()
                .options
                .unwrap()
        };
        let kargs = |added: &'static [&'static str],
                     replaced: &'static [&'static str],
                     removed: &'static [&'static str]| {
            let os = os.clone();
            async move {
                let current = os
                    .get_deployment_boot_config("0", false)
                    .await
                    .unwrap()
                    .options
                    .unwrap();
                run_txn(
                    os.kernel_args_transaction(
                        &current,
                        added,
                        replaced,
                        removed,
                        &KernelArgsOptions::new(),
                    )
                    .await,
                )
                .await
            }
        };
        // The default deployment's boot entry: the one with the highest `version`.
        let entry_has = |text: &str| {
            let entries = sb.boot_entries().unwrap();
            let version = |e: &String| -> u32 {
                e.lines()
                    .find_map(|l| l.strip_prefix("version "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0)
            };
            entries
                .iter()
                .max_by_key(|e| version(e))
                .is_some_and(|e| e.contains(text))
        };

        let (ok, text, _) = kargs(&[r#"foo="a b c""#], &[], &[]).await;
        assert!(ok, "{text}");
        assert!(
            options().await.contains(r#"foo="a b c""#),
            "{}",
            options().await
        );
        assert!(entry_has(r#"foo="a b c""#), "{:?}", sb.boot_entries());

        let (ok, text, _) = kargs(&[], &[r#"foo="x y""#], &[]).await;
        assert!(ok, "{text}");
        let now = options().await;
        assert!(
            now.contains(r#"foo="x y""#) && !now.contains("a b c"),
            "{now}"
        );
        assert!(entry_has(r#"foo="x y""#));

        let (ok, text, _) = kargs(&[], &[], &["foo"]).await;
        assert!(ok, "{text}");
        let now = options().await;
        assert!(!now.contains("foo="), "{now}");
        assert!(!entry_has("foo="));

        // An unbalanced quote is refused before anything is written.
        let before = sb.admin_status().unwrap();
        let current = options().await;
        let err = rpmostree_api::Error::from(
            os.kernel_args(
                &current,
                &[r#"bar="a b"#],
                &[],
                &[],
                &KernelArgsOptions::new(),
            )
            .await
            .unwrap_err(),
        );
        assert!(err.message().contains("unbalanced double quote"), "{err}");
        assert_eq!(sb.admin_status().unwrap(), before);
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_crash_right_after_staging_never_leaves_an_unlocked_staged_deployment() {
    let Some(sb) = sandbox(SandboxOptions {
        fake_booted: true,
        daemon_env: vec![("RPMOSTREED_TEST_FAULT".into(), "after-stage".into())],
        ..Default::default()
    }) else {
        return;
    };
    run(Duration::from_secs(120), async {
        let bus = bus(&sb).await;
        let os = os(&bus).await;
        let (ok, text, _) = run_txn(
            os.upgrade_transaction(&UpgradeOptions::new().lock_finalization(true))
                .await,
        )
        .await;
        assert!(!ok, "the daemon died mid-transaction: {text}");
    });
    sb.wait_daemon_gone(Duration::from_secs(30)).unwrap();
    let status = sb.run_fake_booted(&["ostree", "admin", "status"]).unwrap();
    assert!(status.contains("staged"), "{status}");
    assert!(
        sb.dir()
            .join("run/ostree/staged-deployment-locked")
            .exists(),
        "the staged deployment is locked\n{status}"
    );
}
