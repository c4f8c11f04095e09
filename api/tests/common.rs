//! Shared helpers: peer-to-peer connection pairs and semantic comparison of introspection XML.

use std::collections::BTreeMap;

use zbus::{Connection, connection::Builder};
use zbus_xml::{ArgDirection, Node};

/// Serves `objects` on one end of a socket pair and returns (server, client) connections.
pub async fn p2p_pair(
    configure: impl FnOnce(Builder<'static>) -> Builder<'static>,
) -> (Connection, Connection) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let server = configure(Builder::unix_stream(a).server(zbus::Guid::generate()).p2p()).build();
    let client = Builder::unix_stream(b).p2p().build();
    tokio::try_join!(server, client).unwrap()
}

/// Introspects `path` on the peer of `client`.
pub async fn introspect(client: &Connection, path: &str) -> String {
    let proxy = zbus::fdo::IntrospectableProxy::builder(client)
        .destination("org.projectatomic.rpmostree1")
        .path(path.to_owned())
        .build()
        .await
        .unwrap();
    proxy.introspect().await.unwrap()
}

/// The wire-relevant description of one interface: what a client can call, read and receive.
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    /// method -> [(arg name, type, direction)]
    pub methods: BTreeMap<String, Vec<(String, String, &'static str)>>,
    /// property -> (type, access)
    pub properties: BTreeMap<String, (String, (bool, bool))>,
    /// signal -> [(arg name, type)]
    pub signals: BTreeMap<String, Vec<(String, String)>>,
}

/// Parses introspection XML into interface name -> shape.
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
                            let dir = match a.direction() {
                                Some(ArgDirection::Out) => "out",
                                _ => "in",
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
                        (p.ty().to_string(), (p.access().read(), p.access().write())),
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

/// Asserts that the live introspection of an object has exactly the `expected` interfaces (plus
/// the standard freedesktop ones), each identical in shape to the XML.
pub fn assert_same_interfaces(live: &str, expected: &BTreeMap<String, Shape>, names: &[&str]) {
    let live = shapes(live);
    let own: Vec<&String> = live
        .keys()
        .filter(|n| !n.starts_with("org.freedesktop.DBus."))
        .collect();
    assert_eq!(own, names.iter().collect::<Vec<_>>(), "interfaces served");
    for name in names {
        let want = &expected[*name];
        let got = &live[*name];
        for (m, args) in &want.methods {
            assert_eq!(got.methods.get(m), Some(args), "{name}.{m}: arguments");
        }
        for (p, t) in &want.properties {
            assert_eq!(
                got.properties.get(p),
                Some(t),
                "{name}.{p}: type and access"
            );
        }
        for (s, args) in &want.signals {
            assert_eq!(got.signals.get(s), Some(args), "{name}.{s}: arguments");
        }
        assert_eq!(got, want, "{name}: no extra or missing members");
    }
}
