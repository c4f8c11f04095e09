//! The object layer without root and without a bus: the daemon's objects served on one end of
//! a socket pair (a peer-to-peer D-Bus connection), the typed proxies on the other, a fixed
//! authority instead of polkit, and a small sysroot made with the `ostree` tool as any user.
//! What is checked is what callers see: validation before any work, wire error names, and
//! authorization decisions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
};

use futures_util::future::BoxFuture;
use rpmostree_api::{
    DeployOptions, Error, KernelArgsOptions, OSProxy, RebaseOptions, RollbackOptions, SysrootProxy,
    UpdateDeploymentModifiers, UpdateDeploymentOptions, UpgradeOptions,
};
use zbus::{Connection, message::Header};

use crate::{
    authz::{Action, Answer, Authority, Caller},
    daemon::{Options, serve},
};

const OS_PATH: &str = "/org/projectatomic/rpmostree1/testos";

/// Grants a fixed set of actions to a caller of a fixed uid.
#[derive(Debug)]
struct Fixed {
    uid: u32,
    granted: Vec<Action>,
}

impl Authority for Fixed {
    fn caller<'a>(&'a self, header: &'a Header<'_>) -> BoxFuture<'a, Result<Caller, Error>> {
        let sender = header
            .sender()
            .map(|s| s.to_string())
            .unwrap_or_else(|| ":peer".into());
        let uid = self.uid;
        Box::pin(async move { Ok(Caller { sender, uid }) })
    }

    fn ask<'a>(
        &'a self,
        _header: &'a Header<'_>,
        action: Action,
        _interactive: bool,
    ) -> BoxFuture<'a, Result<Answer, String>> {
        let granted = self.granted.contains(&action);
        Box::pin(async move {
            Ok(Answer {
                granted,
                challenge: false,
            })
        })
    }
}

/// A sysroot with one deployment of `testos/stable` (version 1.0), made as the current user;
/// removed on drop.
struct Fixture(PathBuf);

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ostree(args: &[&str]) {
    let out = Command::new("ostree")
        .args(args)
        .env("OSTREE_SYSROOT_DEBUG", "mutable-deployments")
        .output()
        .expect("the ostree tool runs (package ostree)");
    assert!(
        out.status.success(),
        "ostree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!(
        "rpmostreed-object-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let sysroot = dir.join("sysroot");
    let tree = dir.join("tree");
    for d in ["usr/lib/modules/6.1.0", "usr/etc", "usr/bin"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
    }
    std::fs::write(tree.join("usr/lib/modules/6.1.0/vmlinuz"), "kernel").unwrap();
    std::fs::write(tree.join("usr/lib/modules/6.1.0/initramfs.img"), "initrd").unwrap();
    std::fs::write(
        tree.join("usr/lib/os-release"),
        "NAME=TestOS\nID=testos\nVERSION_ID=1\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("../lib/os-release", tree.join("usr/etc/os-release")).unwrap();
    std::fs::create_dir_all(&sysroot).unwrap();
    let s = sysroot.to_str().unwrap();
    ostree(&["admin", "init-fs", "--modern", s]);
    ostree(&["admin", "os-init", &format!("--sysroot={s}"), "testos"]);
    ostree(&[
        &format!("--repo={s}/ostree/repo"),
        "commit",
        "-b",
        "testos/stable",
        &format!("--tree=dir={}", tree.display()),
        "--add-metadata-string=version=1.0",
    ]);
    ostree(&[
        "admin",
        "deploy",
        &format!("--sysroot={s}"),
        "--os=testos",
        "--karg=rw",
        "testos/stable",
    ]);
    Fixture(dir)
}

/// The daemon's objects on one end of a socket pair, a client connection on the other.
async fn connect(fixture: &Path, authority: Fixed) -> (Connection, Arc<crate::daemon::Daemon>) {
    let (a, b) = tokio::net::UnixStream::pair().unwrap();
    let guid = zbus::Guid::generate();
    let server = zbus::connection::Builder::unix_stream(a.into_std().unwrap())
        .server(guid)
        .p2p()
        .build();
    let client = zbus::connection::Builder::unix_stream(b.into_std().unwrap())
        .p2p()
        .build();
    let (server, client) = tokio::join!(server, client);
    let (server, client) = (server.unwrap(), client.unwrap());
    let options = Options {
        sysroot: fixture.join("sysroot"),
        config: fixture.join("rpm-ostreed.conf"),
    };
    let daemon = serve(&server, &options, Arc::new(authority)).await.unwrap();
    // The server connection lives as long as the daemon holds it.
    (client, daemon)
}

async fn os(client: &Connection) -> OSProxy<'static> {
    OSProxy::builder(client)
        .path(OS_PATH)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap()
}

fn err(e: zbus::Error) -> Error {
    Error::from(e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_need_nothing_and_mutations_are_denied_without_a_grant() {
    let f = fixture("deny");
    let (client, _daemon) = connect(
        &f.0,
        Fixed {
            uid: 4242,
            granted: vec![],
        },
    )
    .await;
    let sysroot = SysrootProxy::builder(&client)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    let deployments = sysroot.deployments().await.unwrap();
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0].version.as_deref(), Some("1.0"));
    let os = os(&client).await;
    assert!(
        os.get_deployment_boot_config("0", false)
            .await
            .unwrap()
            .options
            .unwrap()
            .contains("rw")
    );
    let e = err(os.upgrade(&UpgradeOptions::new()).await.unwrap_err());
    assert_eq!(e.dbus_name(), "org.freedesktop.DBus.Error.AccessDenied");
    assert!(
        e.message().contains("org.projectatomic.rpmostree1.upgrade"),
        "{e}"
    );
    // UpdateDeployment asks for what each modifier does.
    let e = err(os
        .update_deployment(
            &UpdateDeploymentModifiers::new().set_refspec("origin:x"),
            &UpdateDeploymentOptions::new(),
        )
        .await
        .unwrap_err());
    assert!(e.message().contains("rpmostree1.rebase"), "{e}");
    // PkgChange asks for its action before it looks at the packages.
    let e = err(os
        .pkg_change(&Default::default(), &["vim"], &[])
        .await
        .unwrap_err());
    assert_eq!(e.dbus_name(), "org.freedesktop.DBus.Error.AccessDenied");
    assert!(e.message().contains("install-uninstall-packages"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_right_wire_error_before_any_work() {
    let f = fixture("validate");
    let (client, daemon) = connect(
        &f.0,
        Fixed {
            uid: 4242,
            granted: vec![
                Action::Upgrade,
                Action::Deploy,
                Action::Rebase,
                Action::Bootconfig,
                Action::Cleanup,
                Action::Rollback,
                Action::InstallUninstallPackages,
            ],
        },
    )
    .await;
    let os = os(&client).await;
    let e = err(os
        .rebase(&RebaseOptions::new(), "origin:bad ref", &[])
        .await
        .unwrap_err());
    assert_eq!(
        e.dbus_name(),
        "org.projectatomic.rpmostreed.Error.InvalidRefspec"
    );
    let e = err(os
        .deploy("revision=xyz", &DeployOptions::new())
        .await
        .unwrap_err());
    assert_eq!(e.dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs");
    let e = err(os
        .kernel_args("rw", &["foo=\"a b"], &[], &[], &KernelArgsOptions::new())
        .await
        .unwrap_err());
    assert_eq!(e.dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs");
    assert!(e.message().contains("unbalanced double quote"), "{e}");
    let e = err(os.cleanup(&["everything"]).await.unwrap_err());
    assert!(e.message().contains("Invalid cleanup type"), "{e}");
    let e = err(os
        .update_deployment(
            &UpdateDeploymentModifiers::new(),
            &UpdateDeploymentOptions::new().apply_live(true),
        )
        .await
        .unwrap_err());
    assert_eq!(e.dbus_name(), "org.freedesktop.DBus.Error.NotSupported");
    assert!(e.message().contains("'apply-live'"), "{e}");
    let e = err(os
        .rebase(&RebaseOptions::new(), &"a".repeat(10_000), &[])
        .await
        .unwrap_err());
    assert!(e.message().contains("too long"), "{e}");
    // A wrong-typed option is refused naming the key.
    let mut bad = std::collections::HashMap::new();
    bad.insert("cache-only", zbus::Variant::from(7u32));
    let e = err(os
        .inner()
        .call_method("Upgrade", &(bad,))
        .await
        .unwrap_err());
    assert_eq!(e.dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs");
    assert!(e.message().contains("cache-only"), "{e}");
    // None of that created a transaction; a valid call does, and a different one is busy
    // with the title only.
    assert!(daemon.engine().active().is_none());
    let address = os.rollback(&RollbackOptions::new()).await.unwrap();
    assert!(address.starts_with("unix:abstract=rpm-ostreed/txn/"));
    let e = err(os.cleanup(&["base"]).await.unwrap_err());
    assert_eq!(e.dbus_name(), rpmostree_api::BUSY_ERROR_NAME);
    assert!(
        e.message().contains("Transaction in progress: rollback"),
        "{e}"
    );
    assert!(!e.message().contains("uid"), "{e}");
}
