//! AUTHORIZATION: which polkit actions a call needs, and asking polkit.
//!
//! The mapping is upstream's (method, and for `UpdateDeployment` its modifiers and options, to
//! action ids). Decisions: the caller's uid comes from the bus; uid 0 is allowed without a polkit
//! round trip; everyone else needs polkit's yes for every action, asked with the caller's bus name
//! as subject. If polkit cannot be asked, the answer is no, and the error says why. This module
//! returns the API's wire error so the object layer can pass it on unchanged.

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;

use rpmostree_api::{
    Error, OSExperimentalMethod, OSMethod, SysrootMethod, UpdateDeploymentModifiers,
    UpdateDeploymentOptions,
};
use zbus::{Connection, message::Header};
use zbus_polkit::policykit1::{AuthorityProxy, CheckAuthorizationFlags, Subject};

/// A polkit action of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Layering: install or remove packages.
    InstallUninstallPackages,
    /// Layering local packages.
    InstallLocalPackages,
    /// Base package overrides.
    Override,
    /// Deploy a given revision.
    Deploy,
    /// Upgrade.
    Upgrade,
    /// Switch to another refspec.
    Rebase,
    /// Roll back.
    Rollback,
    /// Kernel arguments and initramfs.
    Bootconfig,
    /// Reload the daemon's configuration.
    ReloadDaemon,
    /// Clean up.
    Cleanup,
    /// Refresh metadata, compute diffs.
    RepoRefresh,
    /// Change repository configuration.
    RepoModify,
    /// Register and unregister clients.
    ClientManagement,
    /// Finalize a staged deployment.
    FinalizeDeployment,
}

impl Action {
    /// The polkit action id.
    pub(crate) fn id(self) -> &'static str {
        match self {
            Self::InstallUninstallPackages => {
                "org.projectatomic.rpmostree1.install-uninstall-packages"
            }
            Self::InstallLocalPackages => "org.projectatomic.rpmostree1.install-local-packages",
            Self::Override => "org.projectatomic.rpmostree1.override",
            Self::Deploy => "org.projectatomic.rpmostree1.deploy",
            Self::Upgrade => "org.projectatomic.rpmostree1.upgrade",
            Self::Rebase => "org.projectatomic.rpmostree1.rebase",
            Self::Rollback => "org.projectatomic.rpmostree1.rollback",
            Self::Bootconfig => "org.projectatomic.rpmostree1.bootconfig",
            Self::ReloadDaemon => "org.projectatomic.rpmostree1.reload-daemon",
            Self::Cleanup => "org.projectatomic.rpmostree1.cleanup",
            Self::RepoRefresh => "org.projectatomic.rpmostree1.repo-refresh",
            Self::RepoModify => "org.projectatomic.rpmostree1.repo-modify",
            Self::ClientManagement => "org.projectatomic.rpmostree1.client-management",
            Self::FinalizeDeployment => "org.projectatomic.rpmostree1.finalize-deployment",
        }
    }
}

/// What one method needs before it may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Nothing: a read anyone on the bus may make.
    Nothing,
    /// Every one of these actions.
    Actions(Vec<Action>),
    /// It depends on the call's arguments ([`update_deployment_actions`]).
    PerCall,
}

fn one(action: Action) -> Needs {
    Needs::Actions(vec![action])
}

/// What each `OS` method needs: upstream's table, as a `match` the compiler checks to cover
/// every method of the interface.
pub(crate) fn os_method(method: OSMethod) -> Needs {
    use Action::*;
    use OSMethod as M;
    match method {
        M::GetDeploymentsRpmDiff
        | M::GetCachedDeployRpmDiff
        | M::DownloadDeployRpmDiff
        | M::GetCachedUpdateRpmDiff
        | M::DownloadUpdateRpmDiff
        | M::GetCachedRebaseRpmDiff
        | M::DownloadRebaseRpmDiff
        | M::RefreshMd => one(RepoRefresh),
        M::ModifyYumRepo => one(RepoModify),
        M::Deploy => one(Deploy),
        M::Upgrade | M::AutomaticUpdateTrigger => one(Upgrade),
        M::Rebase => one(Rebase),
        M::SetInitramfsState | M::KernelArgs | M::InitramfsEtc => one(Bootconfig),
        M::Cleanup => one(Cleanup),
        M::Rollback | M::ClearRollbackTarget => one(Rollback),
        M::PkgChange => one(InstallUninstallPackages),
        M::FinalizeDeployment => one(FinalizeDeployment),
        M::UpdateDeployment => Needs::PerCall,
        M::GetDeploymentBootConfig
        | M::ListRepos
        | M::WhatProvides
        | M::GetPackages
        | M::Search => Needs::Nothing,
    }
}

/// What each `OSExperimental` method needs. Upstream checks nothing here; the daemon asks for
/// the closest action instead.
pub(crate) fn os_experimental_method(method: OSExperimentalMethod) -> Needs {
    use OSExperimentalMethod as M;
    match method {
        M::Moo => Needs::Nothing,
        M::LiveFs => one(Action::InstallUninstallPackages),
        M::DownloadPackages => one(Action::RepoRefresh),
    }
}

/// What each `Sysroot` method needs.
pub(crate) fn sysroot_method(method: SysrootMethod) -> Needs {
    use SysrootMethod as M;
    match method {
        M::RegisterClient | M::UnregisterClient => one(Action::ClientManagement),
        M::ReloadConfig => one(Action::ReloadDaemon),
        M::Reload | M::GetOS => Needs::Nothing,
    }
}

/// The actions an `UpdateDeployment` call needs: all of them must be granted. The base part is
/// what the call runs: a rebase, a deploy (a revision, or `""` with `register-driver`, which
/// only registers the driver, as `Deploy("")` does), or otherwise an upgrade unless
/// `no-pull-base`.
pub(crate) fn update_deployment_actions(
    modifiers: &UpdateDeploymentModifiers,
    options: &UpdateDeploymentOptions,
) -> Vec<Action> {
    use Action::*;
    let mut actions = Vec::new();
    if options.no_initramfs == Some(true) {
        actions.push(Bootconfig);
    }
    let revision = modifiers.set_revision.as_deref();
    if modifiers.set_refspec.is_some() {
        actions.push(Rebase);
    } else if revision.is_some_and(|r| !r.is_empty())
        || (revision == Some("") && options.register_driver.is_some())
    {
        actions.push(Deploy);
    } else if options.no_pull_base != Some(true) {
        actions.push(Upgrade);
    }
    let has = |v: &Option<Vec<String>>| v.is_some();
    if has(&modifiers.install_packages)
        || has(&modifiers.uninstall_packages)
        || has(&modifiers.install_modules)
        || has(&modifiers.uninstall_modules)
        || has(&modifiers.enable_modules)
        || has(&modifiers.disable_modules)
        || options.no_layering == Some(true)
    {
        actions.push(InstallUninstallPackages);
    }
    let fds =
        |v: &Option<rpmostree_api::dict::UnixFdList>| v.as_ref().is_some_and(|l| !l.0.is_empty());
    if fds(&modifiers.install_local_packages)
        || fds(&modifiers.install_local_fileoverride_packages)
        || fds(&modifiers.install_fileoverride_local_packages)
    {
        actions.push(InstallLocalPackages);
    }
    if has(&modifiers.override_replace_packages)
        || has(&modifiers.override_remove_packages)
        || has(&modifiers.override_reset_packages)
        || fds(&modifiers.override_replace_local_packages)
        || options.no_overrides == Some(true)
    {
        actions.push(Override);
    }
    if actions.is_empty() {
        actions.push(Override);
    }
    actions
}

/// Who called, as far as the decision is concerned.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Unique bus name.
    pub(crate) sender: String,
    /// Unix uid.
    pub(crate) uid: u32,
}

/// polkit's answer about one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Granted.
    pub(crate) granted: bool,
    /// Not granted, but would be after authentication.
    pub(crate) challenge: bool,
}

/// Where decisions come from: polkit on the system bus ([`Polkit`]), or a fixed table in tests
/// of the object layer over a peer-to-peer connection.
pub(crate) trait Authority: Send + Sync + std::fmt::Debug + 'static {
    /// Identifies the sender of a call.
    fn caller<'a>(&'a self, header: &'a Header<'_>) -> BoxFuture<'a, Result<Caller, Error>>;
    /// Asks about one action for the caller of `header`; `Err` when the authority cannot be
    /// asked (then the answer is no).
    fn ask<'a>(
        &'a self,
        header: &'a Header<'_>,
        action: Action,
        interactive: bool,
    ) -> BoxFuture<'a, Result<Answer, String>>;
}

/// polkit, asked over the daemon's system bus connection.
#[derive(Debug, Clone)]
pub(crate) struct Polkit {
    bus: Connection,
}

impl Polkit {
    /// polkit on `bus`.
    pub(crate) fn new(bus: Connection) -> Self {
        Self { bus }
    }
}

impl Authority for Polkit {
    fn caller<'a>(&'a self, header: &'a Header<'_>) -> BoxFuture<'a, Result<Caller, Error>> {
        Box::pin(async move {
            let sender = header
                .sender()
                .ok_or_else(|| Error::AccessDenied("the call has no sender".into()))?
                .to_string();
            let dbus = zbus::fdo::DBusProxy::new(&self.bus)
                .await
                .map_err(|e| Error::Failed(format!("cannot ask the bus who called: {e}")))?;
            let name = zbus::names::BusName::try_from(sender.as_str())
                .map_err(|e| Error::Failed(format!("bad sender name {sender}: {e}")))?;
            let uid = dbus
                .get_connection_unix_user(name)
                .await
                .map_err(|e| Error::Failed(format!("cannot find the uid of {sender}: {e}")))?;
            Ok(Caller { sender, uid })
        })
    }

    fn ask<'a>(
        &'a self,
        header: &'a Header<'_>,
        action: Action,
        interactive: bool,
    ) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            let subject = Subject::new_for_message_header(header)
                .map_err(|e| format!("cannot identify the caller: {e}"))?;
            let authority = AuthorityProxy::builder(&self.bus)
                .cache_properties(zbus::proxy::CacheProperties::No)
                .build()
                .await
                .map_err(|e| e.to_string())?;
            let flags = if interactive {
                CheckAuthorizationFlags::ALLOW_USER_INTERACTION
            } else {
                CheckAuthorizationFlags::empty()
            };
            let limit = polkit_timeout(interactive);
            let details = Default::default();
            let asked = authority.check_authorization(&subject, action.id(), &details, flags, "");
            let result = tokio::time::timeout(limit, asked)
                .await
                .map_err(|_| format!("polkit did not answer within {} s", limit.as_secs()))?
                .map_err(|e| e.to_string())?;
            Ok(Answer {
                granted: result.is_authorized,
                challenge: result.is_challenge,
            })
        })
    }
}

/// Decides calls: the caller from the authority, root without asking, everyone else only with
/// every action granted; an empty action list, or an authority that cannot be asked, means no.
#[derive(Debug, Clone)]
pub(crate) struct Authorizer {
    authority: Arc<dyn Authority>,
}

impl Authorizer {
    /// An authorizer asking `authority`.
    pub(crate) fn new(authority: Arc<dyn Authority>) -> Self {
        Self { authority }
    }

    /// Identifies the sender of a call.
    pub(crate) async fn caller(&self, header: &Header<'_>) -> Result<Caller, Error> {
        self.authority.caller(header).await
    }

    /// Checks that the caller may do every action in `actions`. `what` names the operation in
    /// denials (e.g. `OS operation Upgrade`).
    pub(crate) async fn check(
        &self,
        header: &Header<'_>,
        what: &str,
        actions: &[Action],
        interactive: bool,
    ) -> Result<Caller, Error> {
        let caller = self.caller(header).await?;
        if actions.is_empty() {
            // A table entry that names no action is a bug; it must not open the door.
            tracing::error!("no polkit action is defined for {what}; denying it");
            return Err(Error::AccessDenied(format!(
                "rpmostreed {what} not allowed: no polkit action is defined for it"
            )));
        }
        if caller.uid == 0 {
            return Ok(caller);
        }
        for action in actions {
            let answer = self
                .authority
                .ask(header, *action, interactive)
                .await
                .map_err(|e| unreachable(what, *action, &e))?;
            if !answer.granted {
                tracing::info!(
                    "denied {what} to {} (uid {}): polkit action {}",
                    caller.sender,
                    caller.uid,
                    action.id()
                );
                return Err(Error::AccessDenied(format!(
                    "rpmostreed {what} not allowed for user: polkit action {} was not granted{}",
                    action.id(),
                    if answer.challenge {
                        " (authentication is required and no agent answered)"
                    } else {
                        ""
                    }
                )));
            }
        }
        Ok(caller)
    }
}

/// How long polkit may take to answer. An interactive check waits for a person to type a
/// password in an authentication agent, so it gets longer. `RPMOSTREED_POLKIT_TIMEOUT_SECS`
/// (set only by root in the daemon's environment, for tests) overrides both.
fn polkit_timeout(interactive: bool) -> Duration {
    if let Some(secs) = std::env::var("RPMOSTREED_POLKIT_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Duration::from_secs(secs);
    }
    Duration::from_secs(if interactive { 120 } else { 25 })
}

fn unreachable(what: &str, action: Action, e: &str) -> Error {
    tracing::warn!("polkit could not be asked about {}: {e}", action.id());
    Error::AccessDenied(format!(
        "Authorization error: polkit could not be asked whether {what} is allowed (action {}), so it is denied: {e}",
        action.id()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_deployment_needs_every_relevant_action() {
        let m = UpdateDeploymentModifiers::new()
            .set_refspec("origin:other")
            .install_packages(vec!["vim".into()]);
        let o = UpdateDeploymentOptions::new().no_initramfs(true);
        assert_eq!(
            update_deployment_actions(&m, &o),
            vec![
                Action::Bootconfig,
                Action::Rebase,
                Action::InstallUninstallPackages
            ]
        );
        let none = update_deployment_actions(
            &UpdateDeploymentModifiers::new(),
            &UpdateDeploymentOptions::new().no_pull_base(true),
        );
        assert_eq!(none, vec![Action::Override]);
        assert_eq!(
            update_deployment_actions(
                &UpdateDeploymentModifiers::new(),
                &UpdateDeploymentOptions::new()
            ),
            vec![Action::Upgrade]
        );
    }

    #[test]
    fn an_empty_revision_is_authorized_as_what_it_runs() {
        // An upgrade...
        assert_eq!(
            update_deployment_actions(
                &UpdateDeploymentModifiers::new().set_revision(""),
                &UpdateDeploymentOptions::new()
            ),
            vec![Action::Upgrade]
        );
        // ...or, with register-driver, only the registration, which Deploy("") also does.
        assert_eq!(
            update_deployment_actions(
                &UpdateDeploymentModifiers::new().set_revision(""),
                &UpdateDeploymentOptions::new().register_driver("zincati")
            ),
            vec![Action::Deploy]
        );
        assert_eq!(
            update_deployment_actions(
                &UpdateDeploymentModifiers::new().set_revision("version=2"),
                &UpdateDeploymentOptions::new()
            ),
            vec![Action::Deploy]
        );
    }

    #[test]
    fn every_method_has_an_entry_and_only_reads_need_nothing() {
        let reads = [
            "GetDeploymentBootConfig",
            "ListRepos",
            "WhatProvides",
            "GetPackages",
            "Search",
        ];
        for m in OSMethod::ALL {
            match os_method(*m) {
                Needs::Nothing => assert!(reads.contains(&m.name()), "{m:?} needs nothing"),
                Needs::Actions(a) => assert!(!a.is_empty(), "{m:?}"),
                Needs::PerCall => assert_eq!(*m, OSMethod::UpdateDeployment),
            }
            assert_eq!(OSMethod::from_name(m.name()), Some(*m));
        }
        assert_eq!(OSMethod::from_name("NoSuchMethod"), None);
        assert_eq!(
            os_method(OSMethod::AutomaticUpdateTrigger),
            one(Action::Upgrade)
        );
        assert_eq!(
            os_method(OSMethod::ClearRollbackTarget),
            one(Action::Rollback)
        );
        assert_eq!(
            sysroot_method(SysrootMethod::RegisterClient),
            one(Action::ClientManagement)
        );
        assert_eq!(
            os_experimental_method(OSExperimentalMethod::LiveFs),
            one(Action::InstallUninstallPackages)
        );
        assert_eq!(
            Action::ClientManagement.id(),
            "org.projectatomic.rpmostree1.client-management"
        );
    }
}
