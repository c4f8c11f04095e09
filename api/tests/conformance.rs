//! The generated adapters serve exactly the interface XML: each interface is served through its
//! adapter with a handler that implements nothing, and its live introspection is compared,
//! member by member, with the parsed XML.

use rpmostree_api::{
    OSExperimentalHandler, OSExperimentalInterface, OSHandler, OSInterface, SysrootHandler,
    SysrootInterface, TransactionHandler, TransactionInterface,
};

use crate::common::{assert_same_interfaces, introspect, p2p_pair, shapes};

const XML: &str = include_str!("../../interface/org.projectatomic.rpmostree1.xml");

struct Nothing;
impl SysrootHandler for Nothing {}
impl OSHandler for Nothing {}
impl OSExperimentalHandler for Nothing {}
impl TransactionHandler for Nothing {}

#[tokio::test]
async fn live_introspection_equals_the_interface_xml() {
    let expected = shapes(XML);
    assert_eq!(expected.len(), 4);
    let (_server, client) = p2p_pair(|b| {
        b.serve_at(
            "/org/projectatomic/rpmostree1/Sysroot",
            SysrootInterface(Nothing),
        )
        .serve_at("/org/projectatomic/rpmostree1/debian", OSInterface(Nothing))
        .serve_at(
            "/org/projectatomic/rpmostree1/debian",
            OSExperimentalInterface(Nothing),
        )
        .serve_at("/", TransactionInterface(Nothing))
    })
    .await;

    let sysroot = introspect(&client, "/org/projectatomic/rpmostree1/Sysroot").await;
    assert_same_interfaces(
        &sysroot,
        &expected,
        &["org.projectatomic.rpmostree1.Sysroot"],
    );
    let os = introspect(&client, "/org/projectatomic/rpmostree1/debian").await;
    assert_same_interfaces(
        &os,
        &expected,
        &[
            "org.projectatomic.rpmostree1.OS",
            "org.projectatomic.rpmostree1.OSExperimental",
        ],
    );
    let txn = introspect(&client, "/").await;
    assert_same_interfaces(
        &txn,
        &expected,
        &["org.projectatomic.rpmostree1.Transaction"],
    );
}

#[tokio::test]
async fn unimplemented_members_fail_with_not_supported() {
    let (_server, client) =
        p2p_pair(|b| b.serve_at("/org/projectatomic/rpmostree1/debian", OSInterface(Nothing)))
            .await;
    let os = rpmostree_api::OSProxy::new(&client, "/org/projectatomic/rpmostree1/debian")
        .await
        .unwrap();
    let err = os.search(&["foo"]).await.unwrap_err();
    let err = rpmostree_api::Error::from(err);
    assert_eq!(err.dbus_name(), "org.freedesktop.DBus.Error.NotSupported");
    assert!(err.message().contains("OS.Search"), "{err}");
}

#[test]
fn every_method_of_the_xml_has_a_proxy_a_handler_and_an_adapter_method() {
    // The semantic test above proves the adapters; this one checks the client side names.
    let generated = [
        include_str!("../../generated/sysroot.rs"),
        include_str!("../../generated/os.rs"),
        include_str!("../../generated/os_experimental.rs"),
        include_str!("../../generated/transaction.rs"),
    ]
    .concat();
    for (iface, shape) in shapes(XML) {
        for method in shape.methods.keys() {
            let attr = format!("#[zbus(name = \"{method}\")]");
            // proxy trait + adapter
            assert!(
                generated.matches(&attr).count() >= 2,
                "{iface}.{method} lacks a proxy or adapter method"
            );
        }
    }
}
