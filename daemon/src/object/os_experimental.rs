//! The `OSExperimental` interface on each OS object. Only `Moo` is implemented; `LiveFs` and
//! `DownloadPackages` are authorized, then refused as not supported.

use std::sync::Arc;

use rpmostree_api::{CallContext, Error, OSExperimentalHandler, OSExperimentalMethod};

use crate::{authz, daemon::Daemon};

/// The OSExperimental object of one osname.
#[derive(Debug)]
pub(crate) struct OsExperimentalObject {
    d: Arc<Daemon>,
}

impl OsExperimentalObject {
    pub(crate) fn new(d: Arc<Daemon>, _osname: &str) -> Self {
        Self { d }
    }
}

impl OSExperimentalHandler for OsExperimentalObject {
    async fn on_unsupported(&self, ctx: &CallContext<'_>, member: &'static str) -> Error {
        let name = member.rsplit('.').next().unwrap_or(member);
        let Some(method) = OSExperimentalMethod::from_name(name) else {
            return Error::AccessDenied(format!("unknown method {member}"));
        };
        let needs = authz::os_experimental_method(method);
        match super::authorize(&self.d, ctx, "OSExperimental", name, needs, true).await {
            Ok(_) => Error::not_supported(member),
            Err(e) => e,
        }
    }

    async fn moo(&self, _ctx: &CallContext<'_>, utf8: bool) -> Result<String, Error> {
        Ok(if utf8 { "🐄\n" } else { "moo\n" }.to_owned())
    }
}
