//! Shared helpers: sandbox start-up, bus connections, proxies and waiting.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use rpmostree_api::{OSProxy, SysrootProxy};
use rpmostree_tests::{Sandbox, SandboxOptions};
use zbus::Connection;
use zbus_xml::{ArgDirection, Node};

/// The OS object of the fixture's stateroot.
pub const OS_PATH: &str = "/org/projectatomic/rpmostree1/testos";

/// Starts a sandbox, or returns `None` when the test must be skipped (not root, outside CI).
pub fn sandbox(options: SandboxOptions) -> Option<Sandbox> {
    if !rpmostree_tests::root_or_skip("rpm-ostreed system test") {
        return None;
    }
    Some(Sandbox::start(options).expect("the sandbox starts"))
}

/// A root connection to the sandbox's system bus.
pub async fn bus(sandbox: &Sandbox) -> Connection {
    zbus::connection::Builder::address(sandbox.bus_address())
        .build()
        .await
        .expect("connecting to the sandbox bus")
}

/// The Sysroot proxy (activates the daemon on first use).
pub async fn sysroot(bus: &Connection) -> SysrootProxy<'static> {
    SysrootProxy::builder(bus)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap()
}

/// The OS proxy of the fixture's stateroot.
pub async fn os(bus: &Connection) -> OSProxy<'static> {
    OSProxy::builder(bus)
        .path(OS_PATH)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap()
}

/// The `org.freedesktop.DBus.Properties` proxy of one of the daemon's objects.
pub async fn properties(bus: &Connection, path: &str) -> zbus::fdo::PropertiesProxy<'static> {
    zbus::fdo::PropertiesProxy::builder(bus)
        .destination("org.projectatomic.rpmostree1")
        .path(path.to_owned())
        .build()
        .await
        .unwrap()
}

/// Polls `check` every 50 ms until it is true, failing after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Versions of the deployments, in order, as the daemon reports them.
pub async fn versions(sysroot: &SysrootProxy<'_>) -> Vec<String> {
    sysroot
        .deployments()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.version.unwrap_or_default())
        .collect()
}

/// Versions of the deployments as `ostree admin status` reports them (the ground truth).
pub fn admin_versions(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .admin_deployments()
        .unwrap()
        .into_iter()
        .map(|d| d.version.unwrap_or_default())
        .collect()
}

/// A runtime for one test, with a hard timeout so no test hangs.
pub fn run<F: std::future::Future<Output = ()>>(timeout: Duration, future: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(timeout, future)
            .await
            .expect("the test finished in time")
    });
}

/// The wire shape of one interface: methods, properties and signals with their signatures.
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    pub methods: BTreeMap<String, Vec<(String, String, &'static str)>>,
    pub properties: BTreeMap<String, (String, bool, bool)>,
    pub signals: BTreeMap<String, Vec<(String, String)>>,
}

/// Parses introspection XML into interface name → shape, ignoring annotations and docs.
pub fn shapes(xml: &str) -> BTreeMap<String, Shape> {
    let node = Node::try_from(xml).unwrap();
    node.interfaces()
        .iter()
        .map(|i| {
            let methods = i
                .methods()
                .map(|m| {
                    let args = m
                        .args()
                        .iter()
                        .map(|a| {
                            let dir = if a.direction() == Some(ArgDirection::Out) {
                                "out"
                            } else {
                                "in"
                            };
                            (a.name().unwrap_or("").to_owned(), a.ty().to_string(), dir)
                        })
                        .collect();
                    (m.name().to_string(), args)
                })
                .collect();
            let properties = i
                .properties()
                .map(|p| {
                    (
                        p.name().to_string(),
                        (p.ty().to_string(), p.access().read(), p.access().write()),
                    )
                })
                .collect();
            let signals = i
                .signals()
                .map(|s| {
                    let args = s
                        .args()
                        .iter()
                        .map(|a| (a.name().unwrap_or("").to_owned(), a.ty().to_string()))
                        .collect();
                    (s.name().to_string(), args)
                })
                .collect();
            (
                i.name().to_string(),
                Shape {
                    methods,
                    properties,
                    signals,
                },
            )
        })
        .collect()
}

/// Asserts that an object's live introspection has exactly `names` (besides the freedesktop
/// standard interfaces), each identical to the interface XML.
pub fn assert_matches_xml(live: &str, names: &[&str]) {
    let expected = shapes(&std::fs::read_to_string(rpmostree_tests::INTERFACE_XML).unwrap());
    let live = shapes(live);
    let own: Vec<&str> = live
        .keys()
        .map(String::as_str)
        .filter(|n| !n.starts_with("org.freedesktop.DBus."))
        .collect();
    assert_eq!(own, names, "interfaces served");
    for name in names {
        assert_eq!(
            live[*name], expected[*name],
            "{name} differs from the interface XML"
        );
    }
}
