//! Property tests of options-dict decoding: whatever keys and values a client sends, decoding
//! never panics; it either gives the typed value, with every well-typed known key set and every
//! unknown key kept, or an error naming a key that was sent with a value of the wrong type.

use std::collections::HashMap;

use proptest::prelude::*;
use rpmostree_api::dict::Dict;
use rpmostree_api::*;
use zbus::{OwnedVariant, Variant};

/// A value of one of the shapes clients send.
fn value() -> impl Strategy<Value = OwnedVariant> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(OwnedVariant::from),
        any::<u32>().prop_map(OwnedVariant::from),
        any::<i32>().prop_map(OwnedVariant::from),
        any::<i64>().prop_map(OwnedVariant::from),
        any::<u64>().prop_map(OwnedVariant::from),
        ".{0,20}".prop_map(|s| Variant::from(s).try_into().unwrap()),
        proptest::collection::vec(".{0,8}", 0..4)
            .prop_map(|v| Variant::from(v).try_into().unwrap()),
    ];
    prop_oneof![
        4 => leaf.clone(),
        1 => leaf.prop_map(|v| Variant::new(Variant::from(v)).try_into().unwrap()),
    ]
}

/// Entries: mostly the dictionary's own keys, sometimes unknown ones.
fn entries<D: Dict>() -> impl Strategy<Value = HashMap<String, OwnedVariant>> {
    let known: Vec<String> = D::KEYS.iter().map(|k| k.key.to_owned()).collect();
    let key = prop_oneof![
        3 => proptest::sample::select(known),
        1 => "[a-z-]{1,12}",
    ];
    proptest::collection::hash_map(key, value(), 0..8)
}

fn check<D: Dict>(sent: HashMap<String, OwnedVariant>) -> Result<(), TestCaseError> {
    match D::from_dict(sent.clone()) {
        Ok(typed) => {
            let back = typed.to_dict().unwrap();
            // Nothing is lost: every key sent comes back (known keys decoded, unknown kept).
            for key in sent.keys() {
                prop_assert!(back.contains_key(key), "{key} was dropped");
            }
        }
        Err(e) => {
            prop_assert!(
                sent.contains_key(&e.key),
                "{e} names a key that was not sent"
            );
            let quoted = format!("'{}'", e.key);
            prop_assert!(e.to_string().contains(&quoted));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn upgrade_options(sent in entries::<UpgradeOptions>()) { check::<UpgradeOptions>(sent)?; }

    #[test]
    fn deploy_options(sent in entries::<DeployOptions>()) { check::<DeployOptions>(sent)?; }

    #[test]
    fn rebase_options(sent in entries::<RebaseOptions>()) { check::<RebaseOptions>(sent)?; }

    #[test]
    fn kernel_args_options(sent in entries::<KernelArgsOptions>()) {
        check::<KernelArgsOptions>(sent)?;
    }

    #[test]
    fn update_deployment_modifiers(sent in entries::<UpdateDeploymentModifiers>()) {
        check::<UpdateDeploymentModifiers>(sent)?;
    }

    #[test]
    fn update_deployment_options(sent in entries::<UpdateDeploymentOptions>()) {
        check::<UpdateDeploymentOptions>(sent)?;
    }

    #[test]
    fn automatic_update_trigger_options(sent in entries::<AutomaticUpdateTriggerOptions>()) {
        check::<AutomaticUpdateTriggerOptions>(sent)?;
    }

    #[test]
    fn finalize_deployment_options(sent in entries::<FinalizeDeploymentOptions>()) {
        check::<FinalizeDeploymentOptions>(sent)?;
    }
}
