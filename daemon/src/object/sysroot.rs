//! `/org/projectatomic/rpmostree1/Sysroot`: the sysroot's properties, client registration,
//! reloads and `GetOS`.

use std::sync::Arc;

use rpmostree_api::{
    CallContext, Deployment, Error, RegisterClientOptions, SysrootHandler, SysrootMethod,
    UnregisterClientOptions, names,
};
use zbus::OwnedObjectPath;

use super::convert;
use crate::{
    authz::{self, Caller},
    daemon::{Client, Daemon},
};

/// The Sysroot object.
#[derive(Debug)]
pub(crate) struct SysrootObject {
    d: Arc<Daemon>,
}

impl SysrootObject {
    pub(crate) fn new(d: Arc<Daemon>) -> Self {
        Self { d }
    }

    /// Authorizes `method` for the caller, as the table says.
    async fn authorize(
        &self,
        ctx: &CallContext<'_>,
        method: SysrootMethod,
        interactive: bool,
    ) -> Result<Caller, Error> {
        let needs = authz::sysroot_method(method);
        super::authorize(&self.d, ctx, "Sysroot", method.name(), needs, interactive).await
    }
}

fn object_path(p: &str) -> Result<OwnedObjectPath, Error> {
    OwnedObjectPath::try_from(p.to_owned())
        .map_err(|e| Error::Failed(format!("bad object path {p}: {e}")))
}

impl SysrootHandler for SysrootObject {
    async fn register_client(
        &self,
        ctx: &CallContext<'_>,
        options: RegisterClientOptions,
    ) -> Result<(), Error> {
        let caller = self
            .authorize(ctx, SysrootMethod::RegisterClient, false)
            .await?;
        if let Some(id) = &options.id
            && (id.len() > 256 || id.chars().any(char::is_control))
        {
            return Err(Error::InvalidArgs(format!(
                "client id is too long or has control characters ({} bytes; at most 256)",
                id.len()
            )));
        }
        self.d.add_client(
            &caller.sender,
            Client {
                id: options.id,
                uid: caller.uid,
            },
        )
    }

    async fn unregister_client(
        &self,
        ctx: &CallContext<'_>,
        _options: UnregisterClientOptions,
    ) -> Result<(), Error> {
        let caller = self
            .authorize(ctx, SysrootMethod::UnregisterClient, false)
            .await?;
        self.d.remove_client(&caller.sender);
        Ok(())
    }

    async fn reload(&self, _ctx: &CallContext<'_>) -> Result<(), Error> {
        self.d
            .reload_if_needed()
            .await
            .map_err(|e| Error::gio_failed(format!("Handling reload: {e:#}")))?;
        self.d.snapshot().map(|_| ())
    }

    async fn reload_config(&self, ctx: &CallContext<'_>) -> Result<(), Error> {
        self.authorize(ctx, SysrootMethod::ReloadConfig, true)
            .await?;
        self.d
            .reload_config()
            .await
            .map_err(|e| Error::gio_failed(format!("Handling config reload: {e:#}")))?;
        self.d
            .reload()
            .await
            .map_err(|e| Error::gio_failed(format!("Handling config reload: {e:#}")))?;
        Ok(())
    }

    async fn get_os(&self, _ctx: &CallContext<'_>, name: String) -> Result<OwnedObjectPath, Error> {
        let snapshot = self.d.snapshot()?;
        let osname = if name.is_empty() {
            match snapshot.booted() {
                Some(b) => b.osname.clone(),
                None => return object_path("/"),
            }
        } else {
            name
        };
        if !snapshot.osnames().contains(&osname) {
            return Err(Error::gio_not_found(format!(
                "OS name \"{osname}\" not found"
            )));
        }
        object_path(&names::os_path(&osname).unwrap_or_default())
    }

    async fn booted(&self) -> Result<OwnedObjectPath, Error> {
        let snapshot = self.d.snapshot()?;
        match snapshot.booted().and_then(|b| names::os_path(&b.osname)) {
            Some(p) => object_path(&p),
            None => object_path("/"),
        }
    }

    async fn path(&self) -> Result<String, Error> {
        Ok(self.d.sysroot_path().display().to_string())
    }

    async fn active_transaction(&self) -> Result<(String, String, String), Error> {
        Ok(match self.d.engine().active() {
            Some(t) if !t.is_over() => (
                t.request.method.clone(),
                t.request.sender.clone(),
                t.request.object_path.clone(),
            ),
            _ => Default::default(),
        })
    }

    async fn active_transaction_path(&self) -> Result<String, Error> {
        Ok(match self.d.engine().active() {
            Some(t) if !t.is_over() => t.address.clone(),
            _ => String::new(),
        })
    }

    async fn automatic_update_policy(&self) -> Result<String, Error> {
        Ok(self.d.config().automatic_update_policy.as_str().to_owned())
    }

    async fn deployments(&self) -> Result<Vec<Deployment>, Error> {
        let snapshot = self.d.snapshot()?;
        Ok(snapshot
            .deployments
            .iter()
            .map(convert::deployment)
            .collect())
    }
}
