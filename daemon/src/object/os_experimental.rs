//! The `OSExperimental` interface on each OS object. Only `Moo` is implemented; `LiveFs` and
//! `DownloadPackages` are authorized, then refused as not supported.

use std::sync::Arc;

use rpmostree_api::{CallContext, Error, OSExperimentalHandler};

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
        let method = member.rsplit('.').next().unwrap_or(member);
        let actions = authz::os_method_actions(method).unwrap_or_default();
        match self
            .d
            .authorizer()
            .check(
                ctx.header(),
                &format!("OSExperimental operation {method}"),
                &actions,
                true,
            )
            .await
        {
            Ok(_) => Error::not_supported(member),
            Err(e) => e,
        }
    }

    async fn moo(&self, _ctx: &CallContext<'_>, utf8: bool) -> Result<String, Error> {
        Ok(if utf8 { "🐄\n" } else { "moo\n" }.to_owned())
    }
}
