//! The `OSExperimental` interface on each OS object. Only `Moo` is implemented; `LiveFs` and
//! `DownloadPackages` are authorized, then refused as not supported.

use std::sync::Arc;

use rpmostree_api::{CallContext, Error, LiveFsOptions, OSExperimentalHandler};

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

    async fn not_yet<T>(&self, ctx: &CallContext<'_>, method: &str) -> Result<T, Error> {
        let actions = authz::os_method_actions(method).unwrap_or_default();
        self.d
            .authorizer()
            .check(
                ctx.header(),
                &format!("OSExperimental operation {method}"),
                &actions,
                true,
            )
            .await?;
        Err(Error::not_supported(&format!("OSExperimental.{method}")))
    }
}

impl OSExperimentalHandler for OsExperimentalObject {
    async fn moo(&self, _ctx: &CallContext<'_>, utf8: bool) -> Result<String, Error> {
        Ok(if utf8 { "🐄\n" } else { "moo\n" }.to_owned())
    }

    async fn live_fs(
        &self,
        ctx: &CallContext<'_>,
        _options: LiveFsOptions,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "LiveFs").await
    }

    async fn download_packages(
        &self,
        ctx: &CallContext<'_>,
        _queries: Vec<String>,
        _source: String,
    ) -> Result<(), Error> {
        self.not_yet(ctx, "DownloadPackages").await
    }
}
