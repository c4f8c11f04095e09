//! `/org/projectatomic/rpmostree1/<osname>`: one stateroot's deployments and the methods that
//! change it. Every mutating method is authorized first, then validated, then turned into a
//! transaction request. Methods whose transaction kinds have not landed yet are still authorized
//! exactly like upstream, then refused with `NotSupported`.

use std::{collections::HashMap, sync::Arc};

use rpmostree_api::{
    AutomaticUpdateTriggerOptions, BootConfig, CachedUpdate, CallContext,
    ClearRollbackTargetOptions, DeployOptions, Deployment, Error, FinalizeDeploymentOptions,
    KernelArgsOptions, OSHandler, OSMethod, PackageInfo, PkgChangeOptions, RebaseOptions,
    RefreshMdOptions, RepoInfo, RollbackOptions, UpdateDeploymentModifiers,
    UpdateDeploymentOptions, UpdateDetails, UpgradeOptions, names,
};

use super::{authorize, bounded, bounded_list, canonical, convert, title};
use crate::{
    authz::{self, Caller},
    daemon::Daemon,
    rpm::{
        self,
        repos::{Query, RepoSetup},
    },
    sysroot::{
        deploy::{DeployRequest, PackageChanges},
        kargs::KargsChange,
        ops::CleanupElement,
        packages::{self, DiffTarget},
        refspec::parse_revision,
    },
    txn::{Request, kinds::Kind},
};

fn invalid(e: anyhow::Error) -> Error {
    Error::InvalidArgs(format!("{e:#}"))
}

fn failed(e: anyhow::Error) -> Error {
    Error::Failed(format!("{e:#}"))
}

/// The `a(sua{sv})` package diff of the diff methods.
type RpmDiff = Vec<(String, u32, HashMap<String, zbus::OwnedVariant>)>;

/// Runs package work that reads the sysroot off the executor, in the package queue.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Error> {
    rpm::run(f).await.map_err(failed)
}

/// The diff methods take packages a hypothetical deployment would layer: not supported yet.
fn no_packages(packages: &[String]) -> Result<(), Error> {
    if packages.is_empty() {
        Ok(())
    } else {
        Err(Error::NotSupported(
            "package diffs of a deployment with packages to layer are not supported yet".into(),
        ))
    }
}

/// Checks package requests from a caller: bounded, and each a plausible request (no
/// separators, whitespace or control characters, which would corrupt the origin file).
fn package_requests(what: &str, requests: &[String]) -> Result<(), Error> {
    bounded_list(what, requests)?;
    for r in requests {
        if r.is_empty()
            || r.chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == ';' || c == '=')
        {
            return Err(Error::InvalidArgs(format!(
                "{what}: invalid package request {r:?}"
            )));
        }
    }
    Ok(())
}

/// The daemon's private copies (in `tmp`) of the RPM files a modifier passes, if any.
async fn local_rpms(
    tmp: &std::path::Path,
    list: Option<&rpmostree_api::dict::UnixFdList>,
) -> Result<Vec<std::path::PathBuf>, Error> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let fds = list
        .0
        .iter()
        .map(|fd| fd.0.try_clone())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Failed(format!("duplicating a local package descriptor: {e}")))?;
    copy_local_rpms(tmp.to_owned(), fds).await
}

/// The most local packages one call may pass.
const MAX_LOCAL_RPMS: usize = 256;

/// Copies the RPM files a caller passed as descriptors into private files in `dir` (the
/// repository's `tmp/`), which the transaction imports and removes: the caller's files may
/// change or go away once the call returns. Only regular files are taken.
async fn copy_local_rpms(
    dir: std::path::PathBuf,
    fds: Vec<std::os::fd::OwnedFd>,
) -> Result<Vec<std::path::PathBuf>, Error> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::OpenOptionsExt;
    if fds.len() > MAX_LOCAL_RPMS {
        return Err(Error::InvalidArgs(format!(
            "too many local package descriptors ({}; at most {MAX_LOCAL_RPMS})",
            fds.len()
        )));
    }
    let copy = move || -> Result<Vec<std::path::PathBuf>, Error> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let mut out = Vec::new();
        let cleanup = |paths: &[std::path::PathBuf]| {
            for p in paths {
                let _ = std::fs::remove_file(p);
            }
        };
        for (i, fd) in fds.into_iter().enumerate() {
            let mut src = std::fs::File::from(fd);
            let regular = src.metadata().map(|m| m.is_file()).unwrap_or(false);
            if !regular {
                cleanup(&out);
                return Err(Error::InvalidArgs(format!(
                    "local packages: descriptor {i} is not a regular file"
                )));
            }
            let path = dir.join(format!(
                "rpmostree-local-{}-{}.rpm",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let result = (|| -> std::io::Result<()> {
                src.seek(SeekFrom::Start(0))?;
                let mut dst = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                std::io::copy(&mut src, &mut dst)?;
                Ok(())
            })();
            out.push(path);
            if let Err(e) = result {
                cleanup(&out);
                return Err(Error::Failed(format!(
                    "local packages: reading descriptor {i}: {e}"
                )));
            }
        }
        Ok(out)
    };
    tokio::task::spawn_blocking(copy)
        .await
        .map_err(|e| Error::Failed(format!("copying local packages: {e}")))?
}

fn exclusive(a: Option<bool>, an: &str, b: Option<bool>, bn: &str) -> Result<(), Error> {
    if a == Some(true) && b == Some(true) {
        return Err(Error::InvalidArgs(format!(
            "{an} and {bn} cannot be combined"
        )));
    }
    Ok(())
}

/// An OS object.
#[derive(Debug)]
pub(crate) struct OsObject {
    d: Arc<Daemon>,
    osname: String,
    path: String,
}

impl OsObject {
    pub(crate) fn new(d: Arc<Daemon>, osname: &str) -> Self {
        Self {
            d,
            osname: osname.to_owned(),
            path: names::os_path(osname).unwrap_or_default(),
        }
    }

    /// Authorizes `method` for the caller (upstream's method → action table).
    async fn authorize(&self, ctx: &CallContext<'_>, method: OSMethod) -> Result<Caller, Error> {
        authorize(
            &self.d,
            ctx,
            "OS",
            method.name(),
            authz::os_method(method),
            true,
        )
        .await
    }

    fn request(&self) -> DeployRequest {
        let config = self.d.config();
        DeployRequest {
            osname: self.osname.clone(),
            recommends: config.recommends,
            lock_layering: config.lock_layering,
            ..Default::default()
        }
    }

    /// A deploy-family request with the options every such method shares, checked first:
    /// cache-only and dry-run each exclude download-only, as upstream says.
    fn deploy_request(
        &self,
        cache_only: Option<bool>,
        download_only: Option<bool>,
        dry_run: Option<bool>,
        lock_finalization: Option<bool>,
    ) -> Result<DeployRequest, Error> {
        exclusive(cache_only, "cache-only", download_only, "download-only")?;
        exclusive(dry_run, "dry-run", download_only, "download-only")?;
        Ok(DeployRequest {
            cache_only: cache_only.unwrap_or(false),
            download_only: download_only.unwrap_or(false),
            dry_run: dry_run.unwrap_or(false),
            lock_finalization: lock_finalization.unwrap_or(false),
            ..self.request()
        })
    }

    /// The update driver a caller registers: its name, and the systemd unit the caller runs in
    /// (from its cgroup; empty when it runs outside a service).
    async fn driver(&self, caller: &Caller, name: Option<&str>) -> Option<(String, String)> {
        let name = name?.to_owned();
        let pid = async {
            let dbus = zbus::fdo::DBusProxy::new(self.d.bus()).await.ok()?;
            let sender = zbus::names::BusName::try_from(caller.sender.as_str()).ok()?;
            dbus.get_connection_unix_process_id(sender).await.ok()
        }
        .await;
        let unit = pid
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok())
            .and_then(|cgroup| {
                cgroup
                    .lines()
                    .flat_map(|l| l.rsplit('/'))
                    .find(|part| part.ends_with(".service"))
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        Some((name, unit))
    }

    /// Checks a rebase target against the current origin before any transaction exists.
    fn check_refspec(&self, refspec: &str) -> Result<(), Error> {
        let snapshot = self.d.snapshot()?;
        let current = snapshot.default_for(&self.osname);
        crate::sysroot::deploy::source_for(
            current.and_then(|d| d.refspec.as_deref()),
            current.and_then(|d| d.container_image_reference.as_deref()),
            Some(refspec),
        )
        .map(|_| ())
        .map_err(|e| Error::InvalidRefspec(format!("{e:#}")))
    }

    /// The rpm-md setup of this OS: the repositories of the booted deployment when it is of
    /// this OS, else of the first one (the merge deployment).
    fn repo_setup(&self) -> Result<RepoSetup, Error> {
        let snapshot = self.d.snapshot()?;
        let d = snapshot
            .booted()
            .filter(|b| b.osname == self.osname)
            .or_else(|| snapshot.default_for(&self.osname))
            .ok_or_else(|| {
                Error::Failed(format!("No deployments found for os '{}'", self.osname))
            })?;
        let path = self.d.sysroot_path();
        let root = packages::deployment_dir(path, &d.osname, &d.checksum, d.serial);
        Ok(packages::repo_setup(path, &self.osname, root))
    }

    /// Answers a package query from the cached rpm-md metadata.
    async fn query(&self, query: Query) -> Result<Vec<PackageInfo>, Error> {
        let setup = self.repo_setup()?;
        let found = rpm::run(move || rpm::repos::query(&setup, &query))
            .await
            .map_err(failed)?;
        Ok(found
            .into_iter()
            .map(|(key, p)| convert::package_info(key, &p))
            .collect())
    }

    /// A cached diff of this OS (no network).
    async fn cached_diff(&self, target: DiffTarget) -> Result<(RpmDiff, UpdateDetails), Error> {
        let path = self.d.sysroot_path().to_path_buf();
        let osname = self.osname.clone();
        let (diff, details) =
            blocking(move || packages::cached_diff(&path, &osname, &target)).await?;
        Ok((convert::rpm_diff(&diff), convert::update_details(&details)))
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
        let host: Arc<dyn crate::txn::Host> = Arc::clone(&self.d) as _;
        Ok(self.d.engine().begin(host, request).await?)
    }
}

impl OSHandler for OsObject {
    /// Methods whose kinds land later are authorized exactly like upstream first, so every
    /// caller learns the same thing a working method would tell them about permissions.
    async fn on_unsupported(&self, ctx: &CallContext<'_>, member: &'static str) -> Error {
        let name = member.rsplit('.').next().unwrap_or(member);
        let Some(method) = OSMethod::from_name(name) else {
            return Error::AccessDenied(format!("unknown method {member}"));
        };
        if let Err(e) = self.authorize(ctx, method).await {
            return e;
        }
        if let Err(e) = self.d.snapshot() {
            return e;
        }
        Error::not_supported(member)
    }

    async fn automatic_update_trigger(
        &self,
        ctx: &CallContext<'_>,
        options: AutomaticUpdateTriggerOptions,
    ) -> Result<(bool, String), Error> {
        let caller = self
            .authorize(ctx, OSMethod::AutomaticUpdateTrigger)
            .await?;
        let snapshot = self.d.snapshot()?;
        if let Some(b) = snapshot.booted()
            && b.osname != self.osname
        {
            return Err(Error::Failed(format!(
                "Cannot trigger auto-update for offline OS '{}'",
                self.osname
            )));
        }
        let configured = self.d.config().automatic_update_policy.as_str();
        let policy = match options.mode.as_deref().unwrap_or("auto") {
            "auto" => configured,
            "none" => "none",
            "check" => "check",
            "stage" | "ex-stage" => "stage",
            "apply" => "apply",
            other => {
                return Err(Error::InvalidArgs(format!(
                    "mode '{other}' is not one of auto, none, check, stage, apply"
                )));
            }
        };
        // With the fleetlock strategy an apply stages locked, and the fleet coordinator
        // reboots once a FleetLock server grants a slot.
        let fleet = policy == "apply"
            && self.d.config().fleet.strategy == crate::fleet::Strategy::FleetLock;
        let (kind, reboot) = match policy {
            "none" => return Ok((false, String::new())),
            "check" => (
                Kind::CheckUpdate {
                    osname: self.osname.clone(),
                },
                false,
            ),
            "stage" => (self.request().into(), false),
            _ if fleet => (
                DeployRequest {
                    lock_finalization: true,
                    ..self.request()
                }
                .into(),
                false,
            ),
            _ => (self.request().into(), true),
        };
        let address = self
            .begin(
                caller,
                "AutomaticUpdateTrigger",
                canonical(&options),
                &format!("automatic ({policy})"),
                kind,
                reboot,
            )
            .await?;
        if fleet {
            self.d.fleet().arm();
        }
        Ok((true, address))
    }

    async fn deploy(
        &self,
        ctx: &CallContext<'_>,
        revision: String,
        options: DeployOptions,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, OSMethod::Deploy).await?;
        let driver = self
            .driver(&caller, options.register_driver.as_deref())
            .await;
        bounded("revision", &revision)?;
        if options.no_pull_base == Some(true) && !revision.is_empty() {
            return Err(Error::InvalidArgs(
                "no-pull-base cannot be combined with a revision".into(),
            ));
        }
        if revision.is_empty() && driver.is_none() {
            return Err(Error::InvalidArgs(
                "Deploy needs a revision: a checksum or version (an empty one only registers an update driver)".into(),
            ));
        }
        let mut request = self.deploy_request(
            options.cache_only,
            options.download_only,
            options.dry_run,
            options.lock_finalization,
        )?;
        if !revision.is_empty() {
            request.revision = Some(parse_revision(&revision).map_err(invalid)?);
        }
        request.register_only = revision.is_empty();
        request.register_driver = driver;
        request.allow_downgrade = options.allow_downgrade.unwrap_or(true);
        let title = title(&options.initiating_command_line, "deploy");
        let args = format!("{revision}|{}", canonical(&options));
        let reboot = options.reboot.unwrap_or(false);
        self.begin(caller, "Deploy", args, &title, request.into(), reboot)
            .await
    }

    async fn upgrade(
        &self,
        ctx: &CallContext<'_>,
        options: UpgradeOptions,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, OSMethod::Upgrade).await?;
        let mut request = self.deploy_request(
            options.cache_only,
            options.download_only,
            options.dry_run,
            options.lock_finalization,
        )?;
        request.allow_downgrade = options.allow_downgrade.unwrap_or(false);
        let suffix = if request.cache_only {
            " (cache only)"
        } else if request.download_only {
            " (download only)"
        } else {
            ""
        };
        let title = title(
            &options.initiating_command_line,
            &format!("upgrade{suffix}"),
        );
        let reboot = options.reboot.unwrap_or(false);
        self.begin(
            caller,
            "Upgrade",
            canonical(&options),
            &title,
            request.into(),
            reboot,
        )
        .await
    }

    async fn rollback(
        &self,
        ctx: &CallContext<'_>,
        options: RollbackOptions,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, OSMethod::Rollback).await?;
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
        let caller = self.authorize(ctx, OSMethod::ClearRollbackTarget).await?;
        if options.reboot == Some(true) {
            return Err(Error::InvalidArgs(
                "ClearRollbackTarget does not reboot: removing the rollback deployment changes nothing that a reboot would apply".into(),
            ));
        }
        let kind = Kind::Cleanup {
            osname: self.osname.clone(),
            elements: vec![CleanupElement::RollbackDeploy],
        };
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
        options: RebaseOptions,
        refspec: String,
        packages: Vec<String>,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, OSMethod::Rebase).await?;
        package_requests("packages", &packages)?;
        if options.custom_origin.is_some() || options.register_driver.is_some() {
            return Err(Error::not_supported(
                "OS.Rebase with custom-origin or register-driver",
            ));
        }
        bounded("refspec", &refspec)?;
        self.check_refspec(&refspec)?;
        let mut request = self.deploy_request(
            options.cache_only,
            options.download_only,
            options.dry_run,
            options.lock_finalization,
        )?;
        request.rebase = Some(refspec.clone());
        request.packages.install = packages;
        if let Some(r) = options.revision.as_deref().filter(|r| !r.is_empty()) {
            request.revision = Some(parse_revision(r).map_err(invalid)?);
        }
        request.allow_downgrade = options.allow_downgrade.unwrap_or(true);
        request.skip_purge = options.skip_purge.unwrap_or(false);
        let title = title(&options.initiating_command_line, "rebase");
        let args = format!("{refspec}|{}", canonical(&options));
        let reboot = options.reboot.unwrap_or(false);
        self.begin(caller, "Rebase", args, &title, request.into(), reboot)
            .await
    }

    async fn kernel_args(
        &self,
        ctx: &CallContext<'_>,
        existing_kernel_arg_string: String,
        kernel_args_added: Vec<String>,
        kernel_args_replaced: Vec<String>,
        kernel_args_removed: Vec<String>,
        options: KernelArgsOptions,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, OSMethod::KernelArgs).await?;
        bounded("existing kernel arguments", &existing_kernel_arg_string)?;
        bounded_list("added kernel arguments", &kernel_args_added)?;
        bounded_list("replaced kernel arguments", &kernel_args_replaced)?;
        bounded_list("removed kernel arguments", &kernel_args_removed)?;
        bounded_list(
            "append-if-missing",
            options.append_if_missing.as_deref().unwrap_or_default(),
        )?;
        bounded_list(
            "delete-if-present",
            options.delete_if_present.as_deref().unwrap_or_default(),
        )?;
        bounded(
            "final-kernel-args",
            options.final_kernel_args.as_deref().unwrap_or_default(),
        )?;
        let change = KargsChange {
            final_args: options.final_kernel_args.clone(),
            added: kernel_args_added,
            replaced: kernel_args_replaced,
            removed: kernel_args_removed,
            append_if_missing: options.append_if_missing.clone().unwrap_or_default(),
            delete_if_present: options.delete_if_present.clone().unwrap_or_default(),
        };
        change.validate().map_err(invalid)?;
        // Refuse a change that cannot apply before any transaction exists.
        change.apply(&existing_kernel_arg_string).map_err(invalid)?;
        let args = format!(
            "{existing_kernel_arg_string}|{change:?}|{}",
            canonical(&options)
        );
        let mut request = self.request();
        request.lock_finalization = options.lock_finalization.unwrap_or(false);
        request.kargs = Some((existing_kernel_arg_string, change));
        let title = title(&options.initiating_command_line, "kargs");
        let reboot = options.reboot.unwrap_or(false);
        self.begin(caller, "KernelArgs", args, &title, request.into(), reboot)
            .await
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
        let caller = self.authorize(ctx, OSMethod::Cleanup).await?;
        bounded_list("cleanup elements", &elements)?;
        let mut parsed = Vec::new();
        for e in &elements {
            let element = CleanupElement::parse(e).ok_or_else(|| {
                Error::gio_failed(format!(
                    "Invalid cleanup type: {e} (expected base, pending-deploy, rollback-deploy or repomd)"
                ))
            })?;
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
        options: RefreshMdOptions,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, OSMethod::RefreshMd).await?;
        let title = if options.force == Some(true) {
            "refresh-md (force)"
        } else {
            "refresh-md"
        };
        let kind = Kind::RefreshMd {
            osname: self.osname.clone(),
            force: options.force == Some(true),
        };
        self.begin(caller, "RefreshMd", canonical(&options), title, kind, false)
            .await
    }

    async fn modify_yum_repo(
        &self,
        ctx: &CallContext<'_>,
        repo_id: String,
        settings: HashMap<String, String>,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, OSMethod::ModifyYumRepo).await?;
        bounded("repository id", &repo_id)?;
        // Checked before any transaction exists, with upstream's words (upstream checks in
        // the transaction).
        let mut enabled = None;
        for (key, value) in &settings {
            match (key.as_str(), value.as_str()) {
                ("enabled", "1") => enabled = Some(true),
                ("enabled", "0") => enabled = Some(false),
                ("enabled", _) => {
                    return Err(Error::gio_failed(
                        "Only '0' and '1' are allowed for the 'enabled' key",
                    ));
                }
                (other, _) => {
                    return Err(Error::gio_failed(format!(
                        "Changing '{other}' not allowed in yum .repo files"
                    )));
                }
            }
        }
        let setup = self.repo_setup()?;
        let known = rpm::run({
            let setup = setup.clone();
            move || rpm::repos::list(&setup)
        })
        .await
        .map_err(failed)?;
        if !known.iter().any(|r| r.id == repo_id) {
            return Err(Error::gio_failed(format!("Yum repo '{repo_id}' not found")));
        }
        let kind = Kind::ModifyYumRepo {
            osname: self.osname.clone(),
            repo: repo_id.clone(),
            enabled,
        };
        let args = format!("{repo_id}|{enabled:?}");
        self.begin(
            caller,
            "ModifyYumRepo",
            args,
            "modify-yum-repo",
            kind,
            false,
        )
        .await
    }

    async fn list_repos(&self, _ctx: &CallContext<'_>) -> Result<Vec<RepoInfo>, Error> {
        let setup = self.repo_setup()?;
        let repos = rpm::run(move || rpm::repos::list(&setup))
            .await
            .map_err(failed)?;
        Ok(repos.iter().map(convert::repo_info).collect())
    }

    async fn get_packages(
        &self,
        _ctx: &CallContext<'_>,
        names: Vec<String>,
    ) -> Result<Vec<PackageInfo>, Error> {
        bounded_list("package names", &names)?;
        self.query(Query::Names(names)).await
    }

    async fn what_provides(
        &self,
        _ctx: &CallContext<'_>,
        provides: Vec<String>,
    ) -> Result<Vec<PackageInfo>, Error> {
        bounded_list("provides", &provides)?;
        self.query(Query::Provides(provides)).await
    }

    async fn search(
        &self,
        _ctx: &CallContext<'_>,
        names: Vec<String>,
    ) -> Result<Vec<PackageInfo>, Error> {
        bounded_list("search terms", &names)?;
        if names.is_empty() {
            return Err(Error::Failed("Must specify a term for search".into()));
        }
        self.query(Query::Search(names)).await
    }

    async fn get_deployments_rpm_diff(
        &self,
        ctx: &CallContext<'_>,
        deployid0: String,
        deployid1: String,
    ) -> Result<RpmDiff, Error> {
        self.authorize(ctx, OSMethod::GetDeploymentsRpmDiff).await?;
        bounded("deployid0", &deployid0)?;
        bounded("deployid1", &deployid1)?;
        // The ids name deployments of the snapshot (clients call Reload() first); only the
        // repository is opened to read the two commits.
        let snapshot = self.d.snapshot()?;
        let checksum = |id: &str| -> Result<String, Error> {
            if id.is_empty() {
                return Err(Error::Failed("empty deployment ID".into()));
            }
            snapshot
                .deployments
                .iter()
                .find(|d| d.id() == id)
                .map(|d| d.checksum.clone())
                .ok_or_else(|| Error::Failed(format!("Deployment with id '{id}' not found")))
        };
        let (from, to) = (checksum(&deployid0)?, checksum(&deployid1)?);
        let path = self.d.sysroot_path().to_path_buf();
        let diff = blocking(move || packages::commits_diff(&path, &from, &to)).await?;
        Ok(convert::rpm_diff(&diff))
    }

    async fn get_cached_update_rpm_diff(
        &self,
        ctx: &CallContext<'_>,
        deployid: String,
    ) -> Result<(RpmDiff, UpdateDetails), Error> {
        self.authorize(ctx, OSMethod::GetCachedUpdateRpmDiff)
            .await?;
        bounded("deployid", &deployid)?;
        self.cached_diff(DiffTarget::Update(deployid)).await
    }

    async fn get_cached_rebase_rpm_diff(
        &self,
        ctx: &CallContext<'_>,
        refspec: String,
        packages: Vec<String>,
    ) -> Result<(RpmDiff, UpdateDetails), Error> {
        self.authorize(ctx, OSMethod::GetCachedRebaseRpmDiff)
            .await?;
        bounded("refspec", &refspec)?;
        no_packages(&packages)?;
        self.check_refspec(&refspec)?;
        self.cached_diff(DiffTarget::Rebase(refspec)).await
    }

    async fn get_cached_deploy_rpm_diff(
        &self,
        ctx: &CallContext<'_>,
        revision: String,
        packages: Vec<String>,
    ) -> Result<(RpmDiff, UpdateDetails), Error> {
        self.authorize(ctx, OSMethod::GetCachedDeployRpmDiff)
            .await?;
        bounded("revision", &revision)?;
        no_packages(&packages)?;
        if revision.is_empty() {
            return Err(Error::InvalidArgs("Missing revision".into()));
        }
        let revision = parse_revision(&revision).map_err(invalid)?;
        self.cached_diff(DiffTarget::Deploy(revision)).await
    }

    async fn download_update_rpm_diff(&self, ctx: &CallContext<'_>) -> Result<String, Error> {
        let caller = self.authorize(ctx, OSMethod::DownloadUpdateRpmDiff).await?;
        let kind = Kind::CheckUpdate {
            osname: self.osname.clone(),
        };
        self.begin(
            caller,
            "DownloadUpdateRpmDiff",
            String::new(),
            "package-diff",
            kind,
            false,
        )
        .await
    }

    async fn download_rebase_rpm_diff(
        &self,
        ctx: &CallContext<'_>,
        refspec: String,
        packages: Vec<String>,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, OSMethod::DownloadRebaseRpmDiff).await?;
        bounded("refspec", &refspec)?;
        no_packages(&packages)?;
        self.check_refspec(&refspec)?;
        let kind = Kind::PackageDiff {
            osname: self.osname.clone(),
            rebase: Some(refspec.clone()),
            revision: None,
        };
        self.begin(
            caller,
            "DownloadRebaseRpmDiff",
            refspec,
            "package-diff",
            kind,
            false,
        )
        .await
    }

    async fn download_deploy_rpm_diff(
        &self,
        ctx: &CallContext<'_>,
        revision: String,
        packages: Vec<String>,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, OSMethod::DownloadDeployRpmDiff).await?;
        bounded("revision", &revision)?;
        no_packages(&packages)?;
        if revision.is_empty() {
            return Err(Error::InvalidArgs("Missing revision".into()));
        }
        let kind = Kind::PackageDiff {
            osname: self.osname.clone(),
            rebase: None,
            revision: Some(parse_revision(&revision).map_err(invalid)?),
        };
        self.begin(
            caller,
            "DownloadDeployRpmDiff",
            revision,
            "package-diff",
            kind,
            false,
        )
        .await
    }

    async fn update_deployment(
        &self,
        ctx: &CallContext<'_>,
        modifiers: UpdateDeploymentModifiers,
        options: UpdateDeploymentOptions,
    ) -> Result<String, Error> {
        let actions = authz::update_deployment_actions(&modifiers, &options);
        let caller = self
            .d
            .authorizer()
            .check(
                ctx.header(),
                "OS operation UpdateDeployment",
                &actions,
                true,
            )
            .await?;
        self.d.snapshot()?;
        for (what, value) in [
            ("set-refspec", &modifiers.set_refspec),
            ("set-revision", &modifiers.set_revision),
            ("register-driver", &options.register_driver),
        ] {
            bounded(what, value.as_deref().unwrap_or_default())?;
        }
        let m = &modifiers;
        let layering = [
            (
                "install-local-fileoverride-packages",
                m.install_local_fileoverride_packages.is_some(),
            ),
            (
                "install-fileoverride-local-packages",
                m.install_fileoverride_local_packages.is_some(),
            ),
            ("install-modules", m.install_modules.is_some()),
            ("uninstall-modules", m.uninstall_modules.is_some()),
            ("enable-modules", m.enable_modules.is_some()),
            ("disable-modules", m.disable_modules.is_some()),
            (
                "override-replace-packages",
                m.override_replace_packages.is_some(),
            ),
            ("custom-origin", m.custom_origin.is_some()),
            ("treefile", m.treefile.is_some()),
            ("ex-local-repo-remote", m.ex_local_repo_remote.is_some()),
            ("ex-cliwrap", m.ex_cliwrap.is_some()),
            ("apply-live", options.apply_live == Some(true)),
        ];
        if let Some((key, _)) = layering.iter().find(|(_, set)| *set) {
            return Err(Error::NotSupported(format!(
                "UpdateDeployment: '{key}' is not supported yet by this rpm-ostreed (package layering lands later)"
            )));
        }
        let has_refspec = m.set_refspec.is_some();
        let has_revision = m.set_revision.as_deref().is_some_and(|r| !r.is_empty());
        if options.skip_purge == Some(true) && !has_refspec {
            return Err(Error::InvalidArgs(
                "skip-purge is only valid with set-refspec".into(),
            ));
        }
        if options.no_pull_base == Some(true) && (has_refspec || has_revision) {
            return Err(Error::InvalidArgs(
                "no-pull-base cannot be combined with set-refspec or set-revision".into(),
            ));
        }
        if let Some(r) = &m.set_refspec {
            self.check_refspec(r)?;
        }
        let mut request = self.deploy_request(
            options.cache_only,
            options.download_only,
            options.dry_run,
            options.lock_finalization,
        )?;
        request.rebase = m.set_refspec.clone();
        request.register_driver = self
            .driver(&caller, options.register_driver.as_deref())
            .await;
        request.register_only = request.register_driver.is_some()
            && m.set_revision.as_deref() == Some("")
            && !has_refspec;
        if has_revision {
            request.revision = Some(
                parse_revision(m.set_revision.as_deref().unwrap_or_default()).map_err(invalid)?,
            );
        }
        request.allow_downgrade = options.allow_downgrade.unwrap_or(has_refspec);
        request.skip_purge = options.skip_purge.unwrap_or(false);
        request.no_pull_base = options.no_pull_base.unwrap_or(false);
        let install = m.install_packages.clone().unwrap_or_default();
        let uninstall = m.uninstall_packages.clone().unwrap_or_default();
        package_requests("install-packages", &install)?;
        package_requests("uninstall-packages", &uninstall)?;
        let override_remove = m.override_remove_packages.clone().unwrap_or_default();
        let override_reset = m.override_reset_packages.clone().unwrap_or_default();
        package_requests("override-remove-packages", &override_remove)?;
        package_requests("override-reset-packages", &override_reset)?;
        let tmp = self.d.sysroot_path().join("ostree/repo/tmp");
        let install_local = local_rpms(&tmp, m.install_local_packages.as_ref()).await?;
        let override_replace_local =
            match local_rpms(&tmp, m.override_replace_local_packages.as_ref()).await {
                Ok(files) => files,
                Err(e) => {
                    for f in &install_local {
                        let _ = std::fs::remove_file(f);
                    }
                    return Err(e);
                }
            };
        request.packages = PackageChanges {
            install,
            uninstall,
            uninstall_all: options.no_layering == Some(true),
            idempotent: options.idempotent_layering == Some(true),
            allow_inactive: options.allow_inactive == Some(true)
                || options.allow_inactive_requests == Some(true),
            install_local,
            override_remove,
            override_replace_local,
            override_reset,
            no_overrides: options.no_overrides == Some(true),
            no_initramfs: options.no_initramfs == Some(true),
        };
        let default = if has_refspec {
            "rebase"
        } else if has_revision {
            "deploy"
        } else if !request.packages.is_empty() {
            "pkg-change"
        } else {
            "upgrade"
        };
        let title = title(&options.initiating_command_line, default);
        let args = format!("{}|{}", canonical(&modifiers), canonical(&options));
        let reboot = options.reboot.unwrap_or(false);
        let copies: Vec<_> = request
            .packages
            .install_local
            .iter()
            .chain(&request.packages.override_replace_local)
            .cloned()
            .collect();
        let started = self
            .begin(
                caller,
                "UpdateDeployment",
                args,
                &title,
                request.into(),
                reboot,
            )
            .await;
        if started.is_err() {
            // No transaction will import (and remove) the copies.
            for c in copies {
                let _ = std::fs::remove_file(c);
            }
        }
        started
    }

    async fn pkg_change(
        &self,
        ctx: &CallContext<'_>,
        options: PkgChangeOptions,
        packages_added: Vec<String>,
        packages_removed: Vec<String>,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, OSMethod::PkgChange).await?;
        self.d.snapshot()?;
        package_requests("packages_added", &packages_added)?;
        package_requests("packages_removed", &packages_removed)?;
        if options.apply_live == Some(true) {
            return Err(Error::NotSupported(
                "apply-live is not supported by this rpm-ostreed yet; the change needs a reboot"
                    .into(),
            ));
        }
        // Upstream's CLI sends PkgChange the options of UpdateDeployment too: `no-layering`
        // (`uninstall --all`) and `no-pull-base` are honoured, as upstream's daemon honours
        // them; `print-interactive` only shapes upstream's own output.
        let extra_bool = |key: &str| -> Result<Option<bool>, Error> {
            match options.extra.get(key) {
                None => Ok(None),
                Some(v) => v
                    .try_clone()
                    .ok()
                    .and_then(|v| bool::try_from(v).ok())
                    .map(Some)
                    .ok_or_else(|| {
                        Error::InvalidArgs(format!("option '{key}' must be a boolean (b)"))
                    }),
            }
        };
        let no_layering = extra_bool("no-layering")?.unwrap_or(false);
        let no_pull_base = extra_bool("no-pull-base")?.unwrap_or(true);
        extra_bool("print-interactive")?;
        let mut request = self.deploy_request(
            options.cache_only,
            options.download_only,
            options.dry_run,
            options.lock_finalization,
        )?;
        // A package change keeps the current base unless asked otherwise.
        request.no_pull_base = no_pull_base;
        request.packages = PackageChanges {
            install: packages_added,
            uninstall: packages_removed,
            uninstall_all: no_layering,
            idempotent: options.idempotent_layering == Some(true),
            allow_inactive: options.allow_inactive == Some(true),
            ..Default::default()
        };
        let title = title(&options.initiating_command_line, "pkg-change");
        let reboot = options.reboot.unwrap_or(false);
        self.begin(
            caller,
            "PkgChange",
            canonical(&options),
            &title,
            request.into(),
            reboot,
        )
        .await
    }

    async fn finalize_deployment(
        &self,
        ctx: &CallContext<'_>,
        options: FinalizeDeploymentOptions,
    ) -> Result<String, Error> {
        let caller = self.authorize(ctx, OSMethod::FinalizeDeployment).await?;
        let snapshot = self.d.snapshot()?;
        if !snapshot
            .deployments
            .first()
            .is_some_and(|d| d.staged && d.osname == self.osname)
        {
            return Err(Error::Failed(format!(
                "No staged deployment for OS '{}' to finalize",
                self.osname
            )));
        }
        let kind = Kind::Finalize {
            osname: self.osname.clone(),
            checksum: options.checksum.clone(),
            allow_missing_checksum: options.allow_missing_checksum.unwrap_or(false),
            allow_unlocked: options.allow_unlocked.unwrap_or(false),
        };
        let title = title(&options.initiating_command_line, "finalize-deployment");
        // Finalizing means rebooting into the staged deployment.
        self.begin(
            caller,
            "FinalizeDeployment",
            canonical(&options),
            &title,
            kind,
            true,
        )
        .await
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
        let snapshot = self.d.snapshot()?;
        Ok(snapshot
            .cached_update(&self.osname)
            .map(|u| convert::cached_update(&self.osname, u))
            .unwrap_or_default())
    }

    async fn has_cached_update_rpm_diff(&self) -> Result<bool, Error> {
        // Upstream's `upgrade --check` reads this first: whenever an update is cached, there
        // is something to show (its package diff is empty until the package side lands).
        let snapshot = self.d.snapshot()?;
        Ok(snapshot.cached_update(&self.osname).is_some())
    }

    async fn name(&self) -> Result<String, Error> {
        Ok(self.osname.clone())
    }
}
