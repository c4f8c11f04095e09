//! OBJECT LAYER: the D-Bus objects, implementing the generated handler traits on top of the
//! daemon's state. This is the only place where internal errors become D-Bus errors: every
//! `anyhow` error from below is turned into the API's wire error here.

mod convert;
mod os;
mod os_experimental;
mod sysroot;

pub(crate) use os::OsObject;
pub(crate) use os_experimental::OsExperimentalObject;
pub(crate) use sysroot::SysrootObject;

use std::sync::Arc;

use rpmostree_api::{CallContext, Error, dict::Dict};

use crate::{
    authz::{Caller, Needs},
    daemon::Daemon,
};

/// Authorizes a call of `interface.method` as the table says: a read needs nothing; a method
/// whose table entry is empty, or depends on its arguments but was not given them, is denied.
/// `interactive` lets polkit ask the user to authenticate.
pub(crate) async fn authorize(
    d: &Arc<Daemon>,
    ctx: &CallContext<'_>,
    interface: &str,
    method: &str,
    needs: Needs,
    interactive: bool,
) -> Result<Caller, Error> {
    let authorizer = d.authorizer();
    let actions = match needs {
        Needs::Nothing => return authorizer.caller(ctx.header()).await,
        Needs::Actions(actions) => actions,
        Needs::PerCall => Vec::new(),
    };
    authorizer
        .check(
            ctx.header(),
            &format!("{interface} operation {method}"),
            &actions,
            interactive,
        )
        .await
}

/// A canonical text of typed options: identical requests give identical text.
pub(crate) fn canonical<T: Dict>(options: &T) -> String {
    match options.to_variants() {
        Ok(mut entries) => {
            entries.sort_by(|a, b| a.0.cmp(b.0));
            entries
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(";")
        }
        Err(e) => format!("<unprintable: {e}>"),
    }
}

/// The longest string a client may send in one argument (refspecs, revisions, kernel arguments,
/// ids): far above any real one, small enough that a hostile caller cannot make the daemon hold
/// or log megabytes.
pub(crate) const MAX_STRING: usize = 4096;
/// The most items a client may send in one list.
pub(crate) const MAX_ITEMS: usize = 1024;

/// Refuses a string over [`MAX_STRING`] bytes, naming the argument.
pub(crate) fn bounded(what: &str, value: &str) -> Result<(), Error> {
    if value.len() > MAX_STRING {
        return Err(Error::InvalidArgs(format!(
            "{what} is too long ({} bytes; at most {MAX_STRING})",
            value.len()
        )));
    }
    Ok(())
}

/// Refuses a list over [`MAX_ITEMS`] items or with an item over [`MAX_STRING`] bytes.
pub(crate) fn bounded_list(what: &str, values: &[String]) -> Result<(), Error> {
    if values.len() > MAX_ITEMS {
        return Err(Error::InvalidArgs(format!(
            "{what} has too many items ({}; at most {MAX_ITEMS})",
            values.len()
        )));
    }
    values.iter().try_for_each(|v| bounded(what, v))
}

/// A transaction title from the client's command line: cut to a sane length on a character
/// boundary (it is shown to other clients and logged).
pub(crate) fn title(command_line: &Option<String>, default: &str) -> String {
    const MAX_TITLE: usize = 256;
    match command_line {
        Some(c) if !c.trim().is_empty() => {
            let mut end = c.len().min(MAX_TITLE);
            while !c.is_char_boundary(end) {
                end -= 1;
            }
            let mut t = c[..end].replace(|ch: char| ch.is_control(), " ");
            if end < c.len() {
                t.push('…');
            }
            t
        }
        _ => default.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_strings_are_bounded() {
        assert!(bounded("refspec", &"a".repeat(MAX_STRING)).is_ok());
        let err = bounded("refspec", &"a".repeat(MAX_STRING + 1)).unwrap_err();
        assert!(err.to_string().contains("refspec is too long"), "{err}");
        let many = vec!["x".to_owned(); MAX_ITEMS + 1];
        assert!(bounded_list("kernel arguments", &many).is_err());
        assert_eq!(
            title(&Some("rpm-ostree upgrade".into()), "d"),
            "rpm-ostree upgrade"
        );
        assert_eq!(title(&None, "upgrade"), "upgrade");
        let long = title(&Some("é".repeat(1000)), "d");
        assert!(
            long.len() <= 256 + '…'.len_utf8() && long.ends_with('…'),
            "{long}"
        );
        assert_eq!(title(&Some("a\nb".into()), "d"), "a b");
    }
}

#[cfg(test)]
mod tests_p2p;
