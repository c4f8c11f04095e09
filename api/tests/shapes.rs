//! The generator's `shapes` sample (every signature shape), as blessed in
//! `codegen/tests/golden/shapes/`: it compiles, serves its XML exactly, and carries each shape
//! across a real call.

#[path = "../../codegen/tests/golden/shapes/mod.rs"]
#[allow(
    clippy::too_many_arguments,
    clippy::type_complexity,
    clippy::needless_lifetimes,
    clippy::manual_async_fn,
    dead_code
)]
#[rustfmt::skip]
mod generated;

use std::collections::HashMap;

use generated::dicts::{Details, WorkOptions};
use generated::job::{JobHandler, JobInterface};
use generated::service::{ServiceHandler, ServiceInterface, ServiceProxy};
use rpmostree_api::{CallContext, Result};
use zbus::{OwnedObjectPath, OwnedVariant};

use crate::common::{assert_same_interfaces, introspect, p2p_pair, shapes};

const XML: &str = include_str!("../../codegen/tests/data/shapes.xml");

struct Impl;

impl ServiceHandler for Impl {
    async fn ping(&self, _ctx: &CallContext<'_>) -> Result<()> {
        Ok(())
    }

    async fn diff(
        &self,
        _ctx: &CallContext<'_>,
        r#type: String,
        names: Vec<String>,
        settings: HashMap<String, String>,
        r#where: OwnedObjectPath,
    ) -> Result<(Vec<(String, u32, HashMap<String, OwnedVariant>)>, Details)> {
        let result = names
            .iter()
            .map(|n| (n.clone(), settings.len() as u32, HashMap::new()))
            .collect();
        Ok((
            result,
            Details::new().checksum(format!("{type}@{}", r#where.as_str())),
        ))
    }

    async fn list(
        &self,
        _ctx: &CallContext<'_>,
        raw: HashMap<String, OwnedVariant>,
    ) -> Result<Vec<Details>> {
        let mut keys: Vec<_> = raw.into_keys().collect();
        keys.sort();
        Ok(keys
            .into_iter()
            .map(|k| Details::new().checksum(k))
            .collect())
    }

    async fn send(
        &self,
        _ctx: &CallContext<'_>,
        value: OwnedVariant,
        _fd: zbus::OwnedFd,
        fds: Vec<zbus::OwnedFd>,
    ) -> Result<Vec<OwnedVariant>> {
        Ok(vec![value, OwnedVariant::from(fds.len() as u32)])
    }

    async fn work(&self, _ctx: &CallContext<'_>, options: WorkOptions) -> Result<String> {
        Ok(format!(
            "{:?} {:?} {:?}",
            options.r#type,
            options.origin,
            options.fds.map(|f| f.0.len())
        ))
    }

    async fn active(&self) -> Result<(String, String, String)> {
        Ok(("a".into(), "b".into(), "c".into()))
    }

    async fn level(&self) -> Result<u32> {
        Ok(3)
    }
}

struct NoJob;
impl JobHandler for NoJob {}

#[tokio::test]
async fn the_shapes_sample_serves_its_xml_and_carries_every_shape() {
    let (_server, client) = p2p_pair(|b| {
        b.serve_at("/org/example/shapes/Service", ServiceInterface(Impl))
            .serve_at("/", JobInterface(NoJob))
    })
    .await;
    let expected = shapes(XML);
    let live = introspect(&client, "/org/example/shapes/Service").await;
    assert_same_interfaces(&live, &expected, &["org.example.shapes.Service"]);
    let live = introspect(&client, "/").await;
    assert_same_interfaces(&live, &expected, &["org.example.shapes.Job"]);

    let proxy = ServiceProxy::new(&client).await.unwrap();
    proxy.ping().await.unwrap();
    let mut settings = HashMap::new();
    settings.insert("k".to_owned(), "v".to_owned());
    let (result, details) = proxy
        .diff(
            "kind",
            &["x", "y"],
            &settings,
            &zbus::ObjectPath::try_from("/p").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(result.len(), 2);
    assert_eq!(result[1].0, "y");
    assert_eq!(result[1].1, 1);
    assert_eq!(details.checksum.as_deref(), Some("kind@/p"));

    let mut raw: HashMap<&str, &zbus::Variant<'_>> = HashMap::new();
    let one = zbus::Variant::from(1u32);
    raw.insert("b", &one);
    raw.insert("a", &one);
    let items = proxy.list(&raw).await.unwrap();
    assert_eq!(
        items
            .iter()
            .map(|d| d.checksum.clone().unwrap())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );

    let null = std::fs::File::open("/dev/null").unwrap();
    let values = proxy
        .send(
            &zbus::Variant::from("v"),
            zbus::Fd::from(&null),
            &[zbus::Fd::from(&null), zbus::Fd::from(&null)],
        )
        .await
        .unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(u32::try_from(values[1].try_clone().unwrap()).unwrap(), 2);

    let options = WorkOptions::new()
        .r#type("keyword")
        .origin(("url".into(), "desc".into()))
        .fds(vec![std::os::fd::OwnedFd::from(null.try_clone().unwrap())].into());
    let reply = proxy.work(&options).await.unwrap();
    assert_eq!(reply, "Some(\"keyword\") Some((\"url\", \"desc\")) Some(1)");

    assert_eq!(
        proxy.active().await.unwrap(),
        ("a".to_owned(), "b".to_owned(), "c".to_owned())
    );
    assert_eq!(proxy.level().await.unwrap(), 3);
    let err = proxy.items().await.unwrap_err();
    assert!(err.to_string().contains("Service.Items"), "{err}");
}
