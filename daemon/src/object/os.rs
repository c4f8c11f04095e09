//! `/org/projectatomic/rpmostree1/<osname>`: one stateroot's deployments and the methods that
//! change it. Every mutating method is authorized first, then validated, then turned into a
//! transaction request. Methods whose transaction kinds have not landed yet are still authorized
//! exactly like upstream, then refused with `NotSupported`.

use std::{collections::HashMap, sync::Arc};

use rpmostree_api::{
    AutomaticUpdateTriggerOptions, BootConfig, CachedUpdate, CallContext,
    ClearRollbackTargetOptions, DeployOptions, Deployment, Error, FinalizeDeploymentOptions,
    InitramfsEtcOptions, KernelArgsOptions, OSHandler, PkgChangeOptions, RebaseOptions,
    RefreshMdOptions, RollbackOptions, SetInitramfsStateOptions, UpdateDeploymentModifiers,
    UpdateDeploymentOptions, UpdateDetails, UpgradeOptions, names,
};
use zbus::OwnedVariant;

use super::{canonical, convert};
use crate::{
    authz::{self, Caller},
    daemon::Daemon,
    sysroot::ops::CleanupElement,
    txn::{Request, kinds::Kind},
};

/// An OS object.
#[derive(Debug)]
pub(crate) struct OsObject {
    d: Arc<Daemon>,
    osname: String,
    path: String,
}

type RpmDiff = Vec<(String, u32, HashMap<String, OwnedVariant>)>;

impl OsObject {
    pub(crate) fn new(d: Arc<Daemon>, osname: &str) -> Self {
        Self {
            d,
            osname: osname.to_owned(),
            path: names::os_path(osname).unwrap_or_default(),
        }
    }

    /// Authorizes `method` for the caller (upstream's method → action table).
    async fn authorize(&self, ctx: &CallContext<'_>, method: &str) -> Result<Caller, Error> {
        let actions = authz::os_method_actions(method).unwrap_or_default();
        self.d
            .authorizer()
            .check(
                ctx.header(),
                &format!("OS operation {method}"),
                &actions,
                true,
            )
            .await
    }

    /// Authorizes, then refuses: the method's transaction kind is not implemented yet.
    async fn not_yet<T>(&self, ctx: &CallContext<'_>, method: &str) -> Result<T, Error> {
        self.authorize(ctx, method).await?;
        self.d.snapshot()?;
        Err(Error::not_supported(&format!("OS.{method}")))
    }

    /// Starts (or joins) a transaction for an authorized caller.
    async fn begin(
        &self,
        caller: Caller,
        method: &str,
        arguments: String,
        title: &str,
        kind: Kind,
        reboot: bool,
    ) -> Result<String, Error> {
        self.d.snapshot()?;
        let request = Request {
            method: method.to_owned(),
            arguments,
            object_path: self.path.clone(),
            client_description: self.d.describe_client(&caller.sender, caller.uid),
            sender: caller.sender,
            uid: caller.uid,
            title: title.to_owned(),
            kind,
            reboot,
        };
        self.d.engine().begin(&self.d, request).await
    }
}

impl OSHandler for OsObject {
    async fn automatic_update_trigger(
        &self,
        ctx: &CallContext<'_>,
        _options: AutomaticUpdateTriggerOptions,
    ) -> Result<(bool, String), Error> {
        self.not_yet(ctx, "AutomaticUpdateTrigger").await
    }

    async fn get_deployments_rpm_diff(
        &self,
        ctx: &CallContext<'_>,
        _deployid0: String,
        _deployid1: String,
    ) -> Result<RpmDiff, Error> {
        self.not_yet(ctx, "GetDeploymentsRpmDiff").await
    }

    async fn deploy(
        &self,
        ctx: &CallContext<'_>,
        _revision: String,
        _options: DeployOptions,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "Deploy").await
    }

    async fn get_cached_deploy_rpm_diff(
        &self,
        ctx: &CallContext<'_>,
        _revision: String,
        _packages: Vec<String>,
    ) -> Result<(RpmDiff, UpdateDetails), Error> {
        self.not_yet(ctx, "GetCachedDeployRpmDiff").await
    }

    async fn download_deploy_rpm_diff(
        &self,
        ctx: &CallContext<'_>,
        _revision: String,
        _packages: Vec<String>,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "DownloadDeployRpmDiff").await
    }

    async fn upgrade(
        &self,
        ctx: &CallContext<'_>,
        _options: UpgradeOptions,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "Upgrade").await
    }

    async fn get_cached_update_rpm_diff(
        &self,
        ctx: &CallContext<'_>,
        _deployid: String,
    ) -> Result<(RpmDiff, UpdateDetails), Error> {
        self.not_yet(ctx, "GetCachedUpdateRpmDiff").await
    }

    async fn download_update_rpm_diff(&self, ctx: &CallContext<'_>) -> Result<String, Error> {
        self.not_yet(ctx, "DownloadUpdateRpmDiff").await
    }

    async fn rollback(
        &self,
        ctx: &CallContext<'_>,
        options: RollbackOptions,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, "Rollback").await?;
        let kind = Kind::Rollback {
            osname: self.osname.clone(),
        };
        let reboot = options.reboot.unwrap_or(false);
        self.begin(
            caller,
            "Rollback",
            canonical(&options),
            "rollback",
            kind,
            reboot,
        )
        .await
    }

    async fn clear_rollback_target(
        &self,
        ctx: &CallContext<'_>,
        options: ClearRollbackTargetOptions,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, "ClearRollbackTarget").await?;
        let kind = Kind::Cleanup {
            osname: self.osname.clone(),
            elements: vec![CleanupElement::RollbackDeploy],
        };
        // Upstream ignores `reboot` here.
        self.begin(
            caller,
            "ClearRollbackTarget",
            canonical(&options),
            "clear-rollback",
            kind,
            false,
        )
        .await
    }

    async fn rebase(
        &self,
        ctx: &CallContext<'_>,
        _options: RebaseOptions,
        _refspec: String,
        _packages: Vec<String>,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "Rebase").await
    }

    async fn get_cached_rebase_rpm_diff(
        &self,
        ctx: &CallContext<'_>,
        _refspec: String,
        _packages: Vec<String>,
    ) -> Result<(RpmDiff, UpdateDetails), Error> {
        self.not_yet(ctx, "GetCachedRebaseRpmDiff").await
    }

    async fn download_rebase_rpm_diff(
        &self,
        ctx: &CallContext<'_>,
        _refspec: String,
        _packages: Vec<String>,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "DownloadRebaseRpmDiff").await
    }

    async fn pkg_change(
        &self,
        ctx: &CallContext<'_>,
        _options: PkgChangeOptions,
        _packages_added: Vec<String>,
        _packages_removed: Vec<String>,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "PkgChange").await
    }

    async fn set_initramfs_state(
        &self,
        ctx: &CallContext<'_>,
        _regenerate: bool,
        _args: Vec<String>,
        _options: SetInitramfsStateOptions,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "SetInitramfsState").await
    }

    async fn initramfs_etc(
        &self,
        ctx: &CallContext<'_>,
        _track: Vec<String>,
        _untrack: Vec<String>,
        _untrack_all: bool,
        _force_sync: bool,
        _options: InitramfsEtcOptions,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "InitramfsEtc").await
    }

    async fn kernel_args(
        &self,
        ctx: &CallContext<'_>,
        _existing_kernel_arg_string: String,
        _kernel_args_added: Vec<String>,
        _kernel_args_replaced: Vec<String>,
        _kernel_args_removed: Vec<String>,
        _options: KernelArgsOptions,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "KernelArgs").await
    }

    async fn get_deployment_boot_config(
        &self,
        _ctx: &CallContext<'_>,
        deployid: String,
        is_pending: bool,
    ) -> Result<BootConfig, Error> {
        let snapshot = self.d.snapshot()?;
        let deployment = if deployid.is_empty() {
            let found = if is_pending {
                snapshot.default_for(&self.osname)
            } else {
                snapshot
                    .booted()
                    .filter(|b| b.osname == self.osname)
                    .or_else(|| snapshot.default_for(&self.osname))
            };
            found.ok_or_else(|| {
                Error::Failed(format!("No deployments found for os {}", self.osname))
            })?
        } else {
            let index: usize = deployid.parse().map_err(|_| {
                Error::Failed(format!(
                    "Invalid deployment index {deployid}, must be a number and >= 0"
                ))
            })?;
            snapshot.deployments.get(index).ok_or_else(|| {
                Error::Failed(format!(
                    "Out of range deployment index {index}, expected < {}",
                    snapshot.deployments.len()
                ))
            })?
        };
        Ok(convert::boot_config(deployment))
    }

    async fn cleanup(&self, ctx: &CallContext<'_>, elements: Vec<String>) -> Result<String, Error> {
        let caller = self.authorize(ctx, "Cleanup").await?;
        let mut parsed = Vec::new();
        for e in &elements {
            let element = CleanupElement::parse(e).ok_or_else(|| Error::invalid_cleanup(e))?;
            if !parsed.contains(&element) {
                parsed.push(element);
            }
        }
        if parsed.is_empty() {
            return Err(Error::InvalidArgs(
                "Cleanup needs at least one of base, pending-deploy, rollback-deploy, repomd"
                    .into(),
            ));
        }
        let kind = Kind::Cleanup {
            osname: self.osname.clone(),
            elements: parsed,
        };
        self.begin(
            caller,
            "Cleanup",
            elements.join(","),
            "cleanup",
            kind,
            false,
        )
        .await
    }

    async fn refresh_md(
        &self,
        ctx: &CallContext<'_>,
        _options: RefreshMdOptions,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "RefreshMd").await
    }

    async fn modify_yum_repo(
        &self,
        ctx: &CallContext<'_>,
        _repo_id: String,
        _settings: HashMap<String, String>,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "ModifyYumRepo").await
    }

    async fn update_deployment(
        &self,
        ctx: &CallContext<'_>,
        modifiers: UpdateDeploymentModifiers,
        options: UpdateDeploymentOptions,
    ) -> Result<String, Error> {
        let actions = authz::update_deployment_actions(&modifiers, &options);
        self.d
            .authorizer()
            .check(
                ctx.header(),
                "OS operation UpdateDeployment",
                &actions,
                true,
            )
            .await?;
        self.d.snapshot()?;
        Err(Error::not_supported("OS.UpdateDeployment"))
    }

    async fn finalize_deployment(
        &self,
        ctx: &CallContext<'_>,
        _options: FinalizeDeploymentOptions,
    ) -> Result<String, Error> {
        self.not_yet(ctx, "FinalizeDeployment").await
    }

    async fn booted_deployment(&self) -> Result<Deployment, Error> {
        let snapshot = self.d.snapshot()?;
        Ok(snapshot
            .booted()
            .filter(|b| b.osname == self.osname)
            .map(convert::deployment)
            .unwrap_or_default())
    }

    async fn default_deployment(&self) -> Result<Deployment, Error> {
        let snapshot = self.d.snapshot()?;
        Ok(snapshot
            .default_for(&self.osname)
            .map(convert::deployment)
            .unwrap_or_default())
    }

    async fn rollback_deployment(&self) -> Result<Deployment, Error> {
        let snapshot = self.d.snapshot()?;
        Ok(snapshot
            .rollback_for(&self.osname)
            .map(convert::deployment)
            .unwrap_or_default())
    }

    async fn cached_update(&self) -> Result<CachedUpdate, Error> {
        self.d.snapshot()?;
        Ok(CachedUpdate::default())
    }

    async fn has_cached_update_rpm_diff(&self) -> Result<bool, Error> {
        self.d.snapshot()?;
        Ok(false)
    }

    async fn name(&self) -> Result<String, Error> {
        Ok(self.osname.clone())
    }
}

trait InvalidCleanup {
    fn invalid_cleanup(element: &str) -> Error;
}

impl InvalidCleanup for Error {
    fn invalid_cleanup(element: &str) -> Error {
        Error::from_name(
            rpmostree_api::GIO_FAILED_ERROR_NAME,
            format!(
                "Invalid cleanup type: {element} (expected base, pending-deploy, rollback-deploy or repomd)"
            ),
        )
    }
}
