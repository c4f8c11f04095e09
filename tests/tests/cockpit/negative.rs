//! What cockpit-ostree sees when things go wrong, through the real bridge: no daemon (the
//! channel closes with `not-found`, its "OSTree is not available" curtain), an unauthorised
//! user (`access-denied` for a superuser channel, the daemon's polkit `AccessDenied` for a
//! mutation on the user's own channel), and a mutation while another transaction waits (GIO's
//! busy error, by its exact D-Bus name).

use std::time::Duration;

use rpmostree_api::{BUSY_ERROR_NAME, OSProxy, RollbackOptions};
use rpmostree_tests::SandboxOptions;
use serde_json::{Value, json};

use crate::bridge::{Bridge, NAME, OS_IFACE, OS_PATH, SYSROOT_IFACE, SYSROOT_PATH};
use crate::common::*;

const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn no_daemon_closes_the_channel_with_not_found() {
    let Some(sb) = sandbox(
        "cockpit: no daemon -> not-found",
        SandboxOptions {
            without_daemon: true,
            ..Default::default()
        },
    ) else {
        return;
    };
    let mut b = root_bridge(&sb);
    open_like_cockpit_ostree(&mut b, "d1");
    let close = b.wait_close("d1");
    b.check(
        close["problem"] == "not-found",
        &format!("the channel closes with problem not-found: {close}"),
    );
    // If the bridge said anything about the owner before closing, it was "nobody".
    for f in b.unconsumed() {
        if f.channel == "d1" && f.message.get("owner").is_some() {
            b.check(
                f.message["owner"].is_null(),
                &format!("no owner: {}", f.message),
            );
        }
    }
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn an_unauthorised_user_gets_access_denied_and_nothing_changes() {
    let Some(sb) = sandbox("cockpit: unauthorised user", SandboxOptions::default()) else {
        return;
    };
    let before = sb.admin_status().unwrap();
    let mut b = Bridge::start(sb.command_as_test_user(COCKPIT_BRIDGE), HARD_TIMEOUT);

    // cockpit-ostree's own options need superuser; an ordinary user's bridge with no superuser
    // peer refuses: the page's "Not authorized to update software" curtain.
    open_like_cockpit_ostree(&mut b, "su");
    let close = b.wait_close("su");
    b.check(
        close["problem"] == "access-denied",
        &format!("a superuser channel of a non-root bridge closes with access-denied: {close}"),
    );

    // With superuser "try" the bridge falls back to the user itself: reading works...
    b.open(
        "d1",
        json!({"bus": "system", "name": NAME, "superuser": "try", "capabilities": ["address"]}),
    );
    b.wait_ready("d1");
    b.watch(
        "d1",
        json!({"path": SYSROOT_PATH, "interface": SYSROOT_IFACE}),
    );
    let listed = versions(b.cache("d1"));
    b.check(
        listed == ["1.1", "1.0"],
        &format!("an unprivileged user reads the deployments: {listed:?}"),
    );
    // ...and a mutation is refused by polkit (no rule grants it; no agent to ask).
    let err = b.call("d1", OS_PATH, OS_IFACE, "Rollback", json!([{}]));
    match err {
        Err(e) => b.check(
            e.name == ACCESS_DENIED,
            &format!("Rollback is refused with {ACCESS_DENIED}: {e}"),
        ),
        Ok(out) => b.fail(&format!("Rollback must be refused, it returned {out:?}")),
    }
    let err = b.call("d1", OS_PATH, OS_IFACE, "Cleanup", json!([["base"]]));
    b.check(
        err.as_ref().is_err_and(|e| e.name == ACCESS_DENIED),
        &format!("Cleanup is refused with {ACCESS_DENIED}: {err:?}"),
    );
    let active = b.call_ok(
        "d1",
        SYSROOT_PATH,
        "org.freedesktop.DBus.Properties",
        "Get",
        json!([SYSROOT_IFACE, "ActiveTransactionPath"]),
    );
    b.check(
        active.first().is_some_and(|v| v["v"] == ""),
        &format!("no transaction was created: {active:?}"),
    );
    b.close("d1");
    drop(b);
    assert_eq!(
        sb.admin_status().unwrap(),
        before,
        "nothing changed on disk"
    );
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_mutation_during_another_transaction_gets_the_busy_error() {
    let Some(sb) = sandbox(
        "cockpit: concurrent mutation -> busy",
        SandboxOptions::default(),
    ) else {
        return;
    };
    let before = sb.admin_status().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Another client asks for a rollback and does not start it yet: the transaction holds the
    // daemon while this connection lives.
    let (conn, held) = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let conn = zbus::connection::Builder::address(sb.bus_address())
                .build()
                .await
                .unwrap();
            let os = OSProxy::new(&conn, OS_PATH).await.unwrap();
            let address = os.rollback(&RollbackOptions::new()).await.unwrap();
            (conn, address)
        })
        .await
        .expect("the held rollback was set up in time")
    });

    let mut b = root_bridge(&sb);
    open_like_cockpit_ostree(&mut b, "d1");
    b.wait_ready("d1");
    b.watch(
        "d1",
        json!({"path": SYSROOT_PATH, "interface": SYSROOT_IFACE}),
    );
    let active = b
        .cache("d1")
        .props(SYSROOT_PATH, SYSROOT_IFACE)
        .and_then(|p| p.get("ActiveTransaction"))
        .cloned()
        .unwrap_or(Value::Null);
    b.check(
        active[0] == "Rollback" && active[2] == OS_PATH,
        &format!("the page sees the held rollback in ActiveTransaction: {active}"),
    );
    let err = b.call("d1", OS_PATH, OS_IFACE, "Cleanup", json!([["base"]]));
    match &err {
        Err(e) => b.check(
            e.name == BUSY_ERROR_NAME && e.message.contains("Transaction in progress"),
            &format!("Cleanup gets the busy error {BUSY_ERROR_NAME}: {e}"),
        ),
        Ok(out) => b.fail(&format!(
            "Cleanup must be refused as busy, it returned {out:?}"
        )),
    }
    // The held transaction is untouched: still the active one.
    let path = b.call_ok(
        "d1",
        SYSROOT_PATH,
        "org.freedesktop.DBus.Properties",
        "Get",
        json!([SYSROOT_IFACE, "ActiveTransactionPath"]),
    );
    b.check(
        path.first().is_some_and(|v| v["v"] == held.as_str()),
        &format!("the held transaction stays active ({held}): {path:?}"),
    );
    b.close("d1");
    drop(b);
    rt.block_on(async move {
        drop(conn);
        tokio::time::sleep(Duration::from_millis(50)).await;
    });
    assert_eq!(
        sb.admin_status().unwrap(),
        before,
        "nothing changed on disk"
    );
}
