//! Every typed dictionary round-trips: raw a{sv} -> typed -> raw gives the same entries, a value
//! of the wrong type is rejected with an error naming the key and the expected type, unknown keys
//! are kept, and the same holds across a real D-Bus call.

use std::collections::{BTreeSet, HashMap};

use rpmostree_api::dict::{Dict, DictError, KeySchema};
use rpmostree_api::*;
use zbus::{OwnedVariant, Signature, Variant};

/// A sample value of any signature.
fn sample(sig: &Signature) -> Variant<'static> {
    match sig {
        Signature::U8 => Variant::U8(7),
        Signature::Bool => Variant::Bool(true),
        Signature::I16 => Variant::I16(-7),
        Signature::U16 => Variant::U16(7),
        Signature::I32 => Variant::I32(-7),
        Signature::U32 => Variant::U32(7),
        Signature::I64 => Variant::I64(-7),
        Signature::U64 => Variant::U64(7),
        Signature::F64 => Variant::F64(0.5),
        Signature::Str => Variant::from("sample".to_owned()),
        Signature::ObjectPath => {
            Variant::ObjectPath(zbus::ObjectPath::try_from("/sample").unwrap().into_owned())
        }
        Signature::Variant => Variant::new(Variant::U32(3)),
        Signature::Fd => {
            let file = std::fs::File::open("/dev/null").unwrap();
            Variant::Fd(zbus::Fd::Owned(file.into()))
        }
        Signature::Array(child) => {
            let mut array = zbus::wire::Array::new(child);
            array.append(sample(child)).unwrap();
            Variant::Array(array)
        }
        Signature::Dict { key, value } => {
            let mut dict = zbus::wire::Dict::new(key, value);
            dict.append(sample(key), sample(value)).unwrap();
            Variant::Dict(dict)
        }
        Signature::Structure(fields) => {
            let mut b = zbus::wire::StructureBuilder::new();
            for f in fields.iter() {
                b = b.append_field(sample(f));
            }
            Variant::Structure(b.build().unwrap())
        }
        other => panic!("no sample for {other}"),
    }
}

/// A value whose type differs from `sig`.
fn wrong(sig: &Signature) -> Variant<'static> {
    if matches!(sig, Signature::Str) {
        Variant::U32(1)
    } else {
        Variant::from("wrong".to_owned())
    }
}

/// The D-Bus serialisation of a value inside a variant.
fn wire(value: &Variant<'_>) -> Vec<u8> {
    let ctxt = zbus::wire::serialized::Context::new(zbus::wire::LE, 0);
    zbus::wire::to_bytes(ctxt, value).unwrap().to_vec()
}

fn round_trip<T: Dict + std::fmt::Debug>() -> usize {
    let keys: &[KeySchema] = T::KEYS;
    let mut raw: Vec<(String, Variant<'static>)> = keys
        .iter()
        .map(|k| {
            let sig = Signature::try_from(k.signature).unwrap();
            (k.key.to_owned(), sample(&sig))
        })
        .collect();
    raw.push(("x-unknown-key".to_owned(), Variant::from("kept".to_owned())));
    let expected: HashMap<String, Vec<u8>> = raw
        .iter()
        .filter(|(_, v)| !v.value_signature().to_string().contains('h'))
        .map(|(k, v)| (k.clone(), wire(v)))
        .collect();

    // raw -> typed -> raw
    let typed = T::from_variants(raw).unwrap_or_else(|e| panic!("{}: {e}", T::NAME));
    let back = typed.to_dict().unwrap();
    assert_eq!(
        back.len(),
        keys.len() + 1,
        "{}: every key comes back",
        T::NAME
    );
    for (k, v) in &back {
        let v = Variant::from(v.try_clone().unwrap());
        match expected.get(k) {
            // Same bytes on the wire.
            Some(want) => assert_eq!(&wire(&v), want, "{}: {k}", T::NAME),
            // Descriptors are duplicated on the way: compare the type only.
            None => assert!(
                v.value_signature().to_string().contains('h'),
                "{}: {k}",
                T::NAME
            ),
        }
    }
    assert!(
        back.contains_key("x-unknown-key"),
        "{}: the unknown key is kept",
        T::NAME
    );

    // each key with a value of the wrong type is rejected, naming the key and the type
    for k in keys {
        let sig = Signature::try_from(k.signature).unwrap();
        let err: DictError = T::from_variants([(k.key.to_owned(), wrong(&sig))]).unwrap_err();
        assert_eq!(err.key, k.key);
        assert_eq!(err.expected, k.signature);
        assert_eq!(err.dict, T::NAME);
        let text = err.to_string();
        assert!(text.contains(k.key) && text.contains(k.signature), "{text}");
    }
    keys.len()
}

macro_rules! all_dicts {
    ($($t:ident),* $(,)?) => {
        #[test]
        fn every_dictionary_round_trips_and_rejects_wrong_types() {
            let mut names = BTreeSet::new();
            let mut keys = 0;
            $(
                keys += round_trip::<$t>();
                names.insert(<$t as Dict>::NAME.to_owned());
            )*
            // the list above must name every Dict of the interface XML
            let xml = include_str!("../../interface/org.projectatomic.rpmostree1.xml");
            let declared: BTreeSet<String> = xml
                .split("name=\"org.projectatomic.rpmostree1.Dict\" value=\"")
                .skip(1)
                .map(|rest| rest.split('"').next().unwrap().to_owned())
                .collect();
            assert_eq!(names, declared, "every dictionary type is tested");
            assert!(keys > 150, "the schemas document {keys} keys");
        }
    };
}

all_dicts!(
    RegisterClientOptions,
    UnregisterClientOptions,
    Deployment,
    AutomaticUpdateTriggerOptions,
    CachedUpdate,
    DeployOptions,
    UpdateDetails,
    UpgradeOptions,
    RollbackOptions,
    ClearRollbackTargetOptions,
    RebaseOptions,
    PkgChangeOptions,
    SetInitramfsStateOptions,
    InitramfsEtcOptions,
    KernelArgsOptions,
    BootConfig,
    RefreshMdOptions,
    RepoInfo,
    UpdateDeploymentModifiers,
    UpdateDeploymentOptions,
    FinalizeDeploymentOptions,
    PackageInfo,
    LiveFsOptions,
);

#[test]
fn builders_set_typed_fields() {
    let options = UpgradeOptions::new()
        .reboot(true)
        .allow_downgrade(false)
        .initiating_command_line("rpm-ostree upgrade")
        .with_extra("x-future", OwnedVariant::from(5u32));
    assert_eq!(options.reboot, Some(true));
    let raw = options.to_dict().unwrap();
    assert!(bool::try_from(raw["reboot"].try_clone().unwrap()).unwrap());
    assert!(!bool::try_from(raw["allow-downgrade"].try_clone().unwrap()).unwrap());
    assert_eq!(
        String::try_from(raw["initiating-command-line"].try_clone().unwrap()).unwrap(),
        "rpm-ostree upgrade"
    );
    assert_eq!(
        u32::try_from(raw["x-future"].try_clone().unwrap()).unwrap(),
        5
    );
    assert_eq!(raw.len(), 4, "unset keys are not sent");
    assert_eq!(UpgradeOptions::from_dict(raw).unwrap(), options);
}

/// A handler that echoes what it received, to check typed options across a real call.
struct Echo;

impl OSHandler for Echo {
    async fn upgrade(&self, _ctx: &CallContext<'_>, options: UpgradeOptions) -> Result<String> {
        Ok(format!(
            "reboot={:?} extra={:?}",
            options.reboot,
            options.extra.keys().collect::<Vec<_>>()
        ))
    }

    async fn get_deployment_boot_config(
        &self,
        _ctx: &CallContext<'_>,
        deployid: String,
        is_pending: bool,
    ) -> Result<BootConfig> {
        Ok(BootConfig::new()
            .options(format!("root=/dev/{deployid} pending={is_pending}"))
            .staged(false))
    }
}

#[tokio::test]
async fn typed_options_cross_the_wire_and_wrong_types_are_invalid_args() {
    let (_server, client) = crate::common::p2p_pair(|b| {
        b.serve_at("/org/projectatomic/rpmostree1/debian", OSInterface(Echo))
    })
    .await;
    let os = OSProxy::new(&client, "/org/projectatomic/rpmostree1/debian")
        .await
        .unwrap();
    let reply = os
        .upgrade(
            &UpgradeOptions::new()
                .reboot(true)
                .with_extra("x-new", OwnedVariant::from(1u8)),
        )
        .await
        .unwrap();
    assert_eq!(reply, "reboot=Some(true) extra=[\"x-new\"]");

    let config = os.get_deployment_boot_config("0", true).await.unwrap();
    assert_eq!(config.options.as_deref(), Some("root=/dev/0 pending=true"));
    assert_eq!(config.staged, Some(false));

    // A raw dictionary with `reboot` as a string: the daemon side rejects it with InvalidArgs
    // naming the key and the type.
    let mut bad: HashMap<&str, Variant<'_>> = HashMap::new();
    bad.insert("reboot", Variant::from("yes"));
    let err = os
        .inner()
        .call_method("Upgrade", &(bad,))
        .await
        .unwrap_err();
    let err = Error::from(err);
    assert_eq!(err.dbus_name(), "org.freedesktop.DBus.Error.InvalidArgs");
    assert!(
        err.message().contains("reboot") && err.message().contains("'b'"),
        "{err}"
    );
}
