//! The objects the daemon serves: exactly the interface XML (to zbus, busctl and gdbus), every
//! property readable, the ObjectManager complete, and properties that follow the sysroot —
//! including changes made behind the daemon's back.

use std::time::Duration;

use futures_util::StreamExt;
use rpmostree_tests::SandboxOptions;

use crate::common::*;

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn introspection_equals_the_interface_xml_for_zbus_busctl_and_gdbus() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        assert_eq!(
            sysroot.path().await.unwrap(),
            sb.sysroot().display().to_string()
        );
        for (path, names) in [
            (
                "/org/projectatomic/rpmostree1/Sysroot",
                vec!["org.projectatomic.rpmostree1.Sysroot"],
            ),
            (
                OS_PATH,
                vec![
                    "org.projectatomic.rpmostree1.OS",
                    "org.projectatomic.rpmostree1.OSExperimental",
                ],
            ),
        ] {
            let proxy = zbus::fdo::IntrospectableProxy::builder(&bus)
                .destination("org.projectatomic.rpmostree1")
                .path(path)
                .build()
                .await
                .unwrap();
            assert_matches_xml(&proxy.introspect().await.unwrap(), &names);

            let gdbus = sb
                .command("gdbus")
                .args([
                    "introspect",
                    "--system",
                    "--xml",
                    "--dest",
                    "org.projectatomic.rpmostree1",
                    "--object-path",
                    path,
                ])
                .output()
                .unwrap();
            assert!(
                gdbus.status.success(),
                "gdbus: {}",
                String::from_utf8_lossy(&gdbus.stderr)
            );
            assert_matches_xml(&String::from_utf8_lossy(&gdbus.stdout), &names);

            let busctl = sb
                .command("busctl")
                .args([
                    "--system",
                    "call",
                    "org.projectatomic.rpmostree1",
                    path,
                    "org.freedesktop.DBus.Introspectable",
                    "Introspect",
                ])
                .output()
                .unwrap();
            assert!(
                busctl.status.success(),
                "busctl: {}",
                String::from_utf8_lossy(&busctl.stderr)
            );
            // busctl prints `s "<xml>"` with C escapes.
            let text = String::from_utf8_lossy(&busctl.stdout);
            let xml = text
                .trim()
                .trim_start_matches("s ")
                .trim_matches('"')
                .replace("\\\"", "\"")
                .replace("\\n", "\n");
            assert_matches_xml(&xml, &names);
        }
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn getall_object_manager_and_properties_from_the_sysroot() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        assert_eq!(versions(&sysroot).await, ["1.1", "1.0"]);
        assert_eq!(admin_versions(&sb), ["1.1", "1.0"]);

        // GetAll on every object.
        let props = properties(&bus, "/org/projectatomic/rpmostree1/Sysroot").await;
        let all = props
            .get_all(
                zbus::names::InterfaceName::try_from("org.projectatomic.rpmostree1.Sysroot")
                    .unwrap(),
            )
            .await
            .unwrap();
        for key in [
            "Booted",
            "Path",
            "ActiveTransaction",
            "ActiveTransactionPath",
            "AutomaticUpdatePolicy",
            "Deployments",
        ] {
            assert!(all.contains_key(key), "Sysroot GetAll lacks {key}");
        }
        let os_props = properties(&bus, OS_PATH).await;
        let all = os_props
            .get_all(
                zbus::names::InterfaceName::try_from("org.projectatomic.rpmostree1.OS").unwrap(),
            )
            .await
            .unwrap();
        for key in [
            "BootedDeployment",
            "DefaultDeployment",
            "RollbackDeployment",
            "CachedUpdate",
            "HasCachedUpdateRpmDiff",
            "Name",
        ] {
            assert!(all.contains_key(key), "OS GetAll lacks {key}");
        }

        // The ObjectManager lists every object with its interfaces.
        let om = zbus::fdo::ObjectManagerProxy::builder(&bus)
            .destination("org.projectatomic.rpmostree1")
            .path("/org/projectatomic/rpmostree1")
            .build()
            .await
            .unwrap();
        let objects = om.get_managed_objects().await.unwrap();
        let sysroot_ifaces = &objects
            [&zbus::OwnedObjectPath::try_from("/org/projectatomic/rpmostree1/Sysroot").unwrap()];
        assert!(
            sysroot_ifaces
                .keys()
                .any(|i| i.as_str() == "org.projectatomic.rpmostree1.Sysroot")
        );
        let os_ifaces = &objects[&zbus::OwnedObjectPath::try_from(OS_PATH).unwrap()];
        assert!(
            os_ifaces
                .keys()
                .any(|i| i.as_str() == "org.projectatomic.rpmostree1.OS")
        );
        assert!(
            os_ifaces
                .keys()
                .any(|i| i.as_str() == "org.projectatomic.rpmostree1.OSExperimental")
        );
        assert_eq!(objects.len(), 2, "{:?}", objects.keys().collect::<Vec<_>>());

        // Values, from the real sysroot (not booted here).
        assert_eq!(sysroot.booted().await.unwrap().as_str(), "/");
        assert_eq!(
            sysroot.active_transaction().await.unwrap(),
            Default::default()
        );
        assert_eq!(sysroot.active_transaction_path().await.unwrap(), "");
        assert_eq!(sysroot.automatic_update_policy().await.unwrap(), "none");
        let deployments = sysroot.deployments().await.unwrap();
        let admin = sb.admin_deployments().unwrap();
        for (d, a) in deployments.iter().zip(&admin) {
            assert_eq!(d.checksum.as_deref(), Some(a.checksum.as_str()));
            assert_eq!(d.serial, Some(a.serial as i32));
            assert_eq!(d.osname.as_deref(), Some("testos"));
            assert_eq!(
                d.id.clone().unwrap(),
                format!("testos-{}.{}", a.checksum, a.serial)
            );
            assert_eq!(d.origin.as_deref(), Some("origin:testos/stable"));
            assert_eq!(d.booted, Some(false));
            assert_eq!(d.staged, Some(false));
            assert!(d.timestamp.unwrap() > 0);
        }
        let os = os(&bus).await;
        assert_eq!(os.name().await.unwrap(), "testos");
        assert_eq!(
            os.default_deployment().await.unwrap().version.as_deref(),
            Some("1.1")
        );
        assert_eq!(
            os.rollback_deployment().await.unwrap().version.as_deref(),
            Some("1.0")
        );
        assert_eq!(os.booted_deployment().await.unwrap(), Default::default());
        assert_eq!(sysroot.get_os("testos").await.unwrap().as_str(), OS_PATH);
        let err = rpmostree_api::Error::from(sysroot.get_os("nope").await.unwrap_err());
        assert!(err.message().contains("\"nope\" not found"), "{err}");

        // Boot configuration, a query without authorization.
        let config = os.get_deployment_boot_config("0", false).await.unwrap();
        assert!(config.options.unwrap().contains("root=LABEL=testroot"));
        let err = rpmostree_api::Error::from(
            os.get_deployment_boot_config("7", false).await.unwrap_err(),
        );
        assert!(
            err.message().contains("Out of range deployment index 7"),
            "{err}"
        );
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn fake_booted_system_reports_the_booted_deployment() {
    let Some(sb) = sandbox(SandboxOptions {
        fake_booted: true,
        ..Default::default()
    }) else {
        return;
    };
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        assert_eq!(sysroot.booted().await.unwrap().as_str(), OS_PATH);
        assert_eq!(sysroot.path().await.unwrap(), "/");
        let deployments = sysroot.deployments().await.unwrap();
        assert_eq!(deployments[0].booted, Some(true));
        assert_eq!(deployments[1].booted, Some(false));
        let os = os(&bus).await;
        assert_eq!(
            os.booted_deployment().await.unwrap().version.as_deref(),
            Some("1.1")
        );
        assert_eq!(
            os.rollback_deployment().await.unwrap().version.as_deref(),
            Some("1.0")
        );
        assert_eq!(sysroot.get_os("").await.unwrap().as_str(), OS_PATH);
    });
}

#[test]
#[ignore = "system test: needs root; `cargo xtask test` runs it as root"]
fn a_change_behind_the_daemons_back_is_picked_up_with_properties_changed() {
    let Some(sb) = sandbox(SandboxOptions::default()) else {
        return;
    };
    run(Duration::from_secs(60), async {
        let bus = bus(&sb).await;
        let sysroot = sysroot(&bus).await;
        assert_eq!(versions(&sysroot).await.len(), 2);
        let props = properties(&bus, "/org/projectatomic/rpmostree1/Sysroot").await;
        let mut changes = props.receive_properties_changed().await.unwrap();

        sb.ostree_admin(&["undeploy", "1"]).unwrap();

        let changed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let signal = changes.next().await.unwrap();
                let args = signal.args().unwrap();
                if args.changed_properties().contains_key("Deployments") {
                    return;
                }
            }
        })
        .await;
        assert!(
            changed.is_ok(),
            "PropertiesChanged(Deployments) after an outside change"
        );
        assert_eq!(versions(&sysroot).await, ["1.1"]);
        assert_eq!(admin_versions(&sb), ["1.1"]);
    });
}
