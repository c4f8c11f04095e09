//! Property tests of the parsers that take what clients and files say: refspecs, revisions,
//! kernel arguments and origin files. Arbitrary input never panics; it parses, or the error says
//! what was wrong; what parses survives a round trip.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::{
    deploy::{origin_refspec, parse_keyfile},
    kargs::{self, KargsChange},
    refspec::{Refspec, parse_revision, rebase_target},
};

/// Strings that look like what a client might send: mostly refspec-ish characters, with the
/// odd space, quote, control character or non-ASCII letter.
fn clientish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9:/._=\"-]{0,40}",
        "[a-z]{1,8}:[a-z0-9/._-]{1,20}",
        ".{0,40}",
    ]
}

/// Kernel arguments: keys with optional plain or quoted values, sometimes malformed.
fn karg() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_.]{0,8}",
        "[a-z][a-z0-9_.]{0,8}=[a-zA-Z0-9=/,.]{0,10}",
        "[a-z][a-z0-9_.]{0,8}=\"[a-z =]{0,10}\"",
        ".{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn refspecs_parse_or_say_why(s in clientish()) {
        match Refspec::parse(&s) {
            Ok(r) => prop_assert_eq!(Refspec::parse(&r.to_string()).unwrap(), r),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn rebase_targets_parse_or_say_why(current in proptest::option::of(clientish()), requested in clientish()) {
        match rebase_target(current.as_deref(), &requested) {
            Ok(r) => prop_assert!(Refspec::parse(&r.to_string()).is_ok()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn revisions_parse_or_say_why(s in prop_oneof!["(revision=|version=)?[0-9a-f]{0,64}", ".{0,70}"]) {
        if let Err(e) = parse_revision(&s) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn command_lines_split_and_join_stably(line in ".{0,80}") {
        let args = kargs::split(&line);
        prop_assert!(args.iter().all(|a| !a.is_empty()));
        prop_assert_eq!(kargs::split(&kargs::join(&args)), args);
    }

    #[test]
    fn kernel_argument_changes_apply_or_say_why(
        existing in proptest::collection::vec(karg(), 0..6),
        added in proptest::collection::vec(karg(), 0..3),
        replaced in proptest::collection::vec(karg(), 0..2),
        removed in proptest::collection::vec(karg(), 0..2),
    ) {
        let change = KargsChange {
            added: added.clone(),
            replaced,
            removed,
            ..Default::default()
        };
        match change.apply(&existing.join(" ")) {
            Ok(result) => {
                // Every argument kept is a single valid one; every addition is there.
                for a in &result {
                    prop_assert_eq!(kargs::split(a), vec![a.clone()]);
                }
                for a in &added {
                    prop_assert!(result.contains(a), "{a:?} missing from {result:?}");
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn origin_files_parse_or_say_why(
        refspec in clientish(),
        junk in ".{0,60}",
        group in prop_oneof![Just("origin".to_owned()), Just("packages".to_owned()), "[a-z]{1,6}"],
    ) {
        let text = format!("[{group}]\nrefspec={refspec}\n{junk}\n");
        match parse_keyfile(&text) {
            Ok(kf) => {
                if let Some(r) = origin_refspec(&kf)
                    && let Err(e) = Refspec::parse(&r)
                {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            Err(e) => {
                let text = format!("{e:#}");
                prop_assert!(!text.is_empty());
            }
        }
    }
}
