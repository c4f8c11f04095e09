//! One libdnf `DnfContext` set up the way rpm-ostree's client side sets it up, and the
//! repo, refresh, query and depsolve operations of the daemon on top of it.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::{CString, c_char, c_int, c_uint, c_void};
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use crate::ffi::{self, DnfAdvisory, DnfAdvisoryRef, DnfContext, DnfRepo, DnfState, GError, GObj};
use crate::ffi::{DnfPackage, HyGoal, PtrArray, Query};
use crate::rpmdb::{RPMDB_DIR, SystemSack, check_dbpath, package_from, run_query};
use crate::tmp::{CacheBackup, DirSnapshot, PrivateDir};
use crate::{Error, Package, text};

/// At most this many distinct names per search group (as upstream).
const SEARCH_LIMIT: usize = 50;

/// Where and how a [`Context`] finds its configuration and keeps its caches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContextOptions {
    /// The `.repo` directory, normally `<deployment>/etc/yum.repos.d`.
    pub repos_dir: PathBuf,
    /// The deployment root: `$releasever` comes from its rpmdb's `system-release(releasever)`
    /// or its os-release `VERSION_ID`; `$vars` from its `etc/dnf/vars` and `etc/yum/vars`.
    pub source_root: PathBuf,
    /// The rpm-md cache, e.g. `/var/cache/rpm-ostree/repomd`.
    pub cache_dir: PathBuf,
    /// The libsolv cache, e.g. `/var/cache/rpm-ostree/solv`.
    pub solv_dir: PathBuf,
    /// The lock directory, e.g. `/run/rpm-ostree/lock`.
    pub lock_dir: PathBuf,
    /// Overrides `$releasever` detection.
    pub releasever: Option<String>,
}

/// A configured rpm-md repo (`ListRepos`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepoInfo {
    /// The repo id (the `.repo` section name).
    pub id: String,
    /// `name=` with `$vars` substituted.
    pub description: String,
    /// Whether `DNF_REPO_ENABLED_PACKAGES` is set.
    pub enabled: bool,
    /// libdnf's `dnf_repo_is_devel` (id ends in `-debuginfo`, `-debug` or `-development`).
    pub devel: bool,
    /// libdnf's `dnf_repo_is_source` (id ends in `-source`).
    pub source: bool,
}

/// How [`Context::update_metadata`] treats cached metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CachePolicy {
    /// Respect each repo's `metadata_expire` (cache age `G_MAXUINT - 1`).
    Default,
    /// Force: download every remote repo's metadata again (cache age 0).
    Never,
}

/// The outcome of refreshing one repo.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepoUpdate {
    /// The repo id.
    pub id: String,
    /// Whether metadata was downloaded (never for `file://` repos, which libdnf reads in place).
    pub updated: bool,
    /// The repomd `revision`/generated timestamp (seconds since the epoch).
    pub timestamp: u64,
}

/// A security advisory covering some of the given packages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Advisory {
    /// The advisory id, e.g. `FEDORA-2026-abcdef`.
    pub id: String,
    /// The `DnfAdvisoryKind` (always 1, security, here).
    pub kind: u32,
    /// 0 none/unknown, 1 low, 2 moderate, 3 important, 4 critical.
    pub severity: u32,
    /// The NEVRAs of the given packages it covers, sorted.
    pub nevras: Vec<String>,
    /// `(url, title)` of the bugzilla references, sorted by url, that name a CVE not named by
    /// an earlier one (upstream's rule for `cve_references`).
    pub cve_references: Vec<(String, String)>,
}

/// How [`Context::depsolve`] resolves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DepsolveOptions {
    /// Also install weak dependencies (`Recommends`); without, the goal runs with
    /// `DNF_IGNORE_WEAK_DEPS` (upstream's `recommends: false`).
    pub weak_deps: bool,
    /// Never go to the network: only cached metadata, and remote packages only when they are
    /// already in the download cache.
    pub cache_only: bool,
}

/// One package a depsolve chose to install.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resolved {
    /// The package (its `reponame` is the repo id, or `@commandline` for a local package).
    pub package: Package,
    /// The repo id, or `@commandline` for a local package.
    pub repo: String,
    /// A local file holding the full RPM: the package in a `file://` repo, the download cache
    /// of a remote repo, or the given path of a local package.
    pub path: PathBuf,
    /// `<type>:<hex>`, e.g. `sha256:…`: the repodata checksum of the package (upstream's
    /// pkgcache key), or the sha256 of a local package's file.
    pub checksum: String,
    /// Whether the package came from the base; always `false` in a depsolve result (base
    /// packages are locked), for callers that merge lists.
    pub from_base: bool,
}

/// What a depsolve found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resolution {
    /// The packages to install, sorted by name (then arch); never a replacement (those are in
    /// [`Resolution::replaced`]).
    pub packages: Vec<Resolved>,
    /// `(request, NEVRA)` for every request that a base package (or a given local package)
    /// already satisfies, in request order (upstream's inactive requests): not installed.
    pub inactive: Vec<(String, String)>,
    /// The base packages erased by [`Overrides::remove`] (reponame `@System`), sorted.
    #[serde(default)]
    pub removed: Vec<Package>,
    /// `(base package, replacement)` for each [`Overrides::replace_local`] package, sorted by
    /// name: the replaced base package (reponame `@System`) and the local package that
    /// upgrades or downgrades it (repo `@commandline`, its given path and sha256).
    #[serde(default)]
    pub replaced: Vec<(Package, Resolved)>,
}

/// Base-package overrides for [`Context::depsolve_with_overrides`] (upstream's `[overrides]`
/// of the origin: `rpm-ostree override remove` and `override replace` with local RPMs). The
/// base packages they name are not locked.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Overrides {
    /// Names of base packages to erase (`[overrides] remove`); every installed package of
    /// such a name goes.
    pub remove: Vec<String>,
    /// Local RPM files that replace the base package of the same name (`replace-local`),
    /// newer or older: installed as an upgrade or downgrade of it.
    pub replace_local: Vec<PathBuf>,
}

/// A local package added to the sack for a depsolve.
struct LocalPackage {
    pkg: GObj<DnfPackage>,
    nevra: String,
    name: String,
    path: PathBuf,
    checksum: String,
}

impl LocalPackage {
    /// The package as a depsolve result (repo `@commandline`).
    fn resolved(&self) -> Resolved {
        // SAFETY: a live package (owned by `self`).
        let package = unsafe { package_from(self.pkg.as_ptr()) };
        Resolved {
            package,
            repo: ffi::HY_CMDLINE_REPO_NAME.to_owned(),
            path: self.path.clone(),
            checksum: self.checksum.clone(),
            from_base: false,
        }
    }
}

/// An owned `HySelector`, freed with `hy_selector_free`.
struct Selector(ffi::HySelector);

impl Drop for Selector {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a selector we own.
            unsafe { ffi::hy_selector_free(self.0) }
        }
    }
}

/// One libdnf context.
///
/// Not `Send` or `Sync`: libdnf and rpm macros are process-global and not thread-safe, so the
/// daemon drives all of this from one dedicated thread.
#[derive(Debug)]
pub struct Context {
    ctx: GObj<DnfContext>,
    /// The install root: its rpmdb is the `@System` repo of [`Context::depsolve`].
    install_root: PathBuf,
    /// The empty private install root of [`Context::new`] (so nothing of the host's or the
    /// deployment's rpmdb is loaded), removed on drop.
    _private_root: Option<PrivateDir>,
    loaded: bool,
    /// The libsolv cache directory given in the options.
    solv_dir: PathBuf,
    download_filelists: bool,
    /// Whether a repo was downloaded without filelists (libdnf then keeps excluding them on
    /// that repo's librepo handle for the rest of the context's life).
    downloaded_without_filelists: bool,
}

fn path_c(what: &str, p: &Path) -> Result<CString, Error> {
    ffi::cstring(what, &p.to_string_lossy()).map_err(Error::new)
}

/// The error of a failed call, prefixed.
///
/// # Safety
/// `error` must be NULL or an owned `GError`.
unsafe fn gerror(prefix: impl std::fmt::Display, error: *mut GError) -> Error {
    // SAFETY: per the caller.
    Error::new(format!("{prefix}: {}", unsafe { ffi::take_error(error) }))
}

/// Cancels `root` with `/..` components so that libdnf's `install_root + vars_dir` string
/// concatenation reaches `target` (upstream's vars-dir workaround, aimed at the source root).
fn vars_dir_through(root: &Path, target: &Path) -> PathBuf {
    let ups = root.components().skip(1).count();
    let mut s = String::new();
    for _ in 0..ups {
        s.push_str("/..");
    }
    s.push_str(&target.to_string_lossy());
    PathBuf::from(s)
}

/// The user data of the "percentage-changed" handler.
struct Progress<'a> {
    id: &'a str,
    callback: &'a mut dyn FnMut(&str, u32),
    panic: Option<Box<dyn Any + Send>>,
}

unsafe extern "C" fn on_percentage_changed(
    _state: *mut DnfState,
    value: c_uint,
    data: *mut c_void,
) {
    // SAFETY: `data` is the `Progress` registered in `connect_progress`, which outlives the
    // handler (it is disconnected before the `Progress` goes away).
    let progress = unsafe { &mut *data.cast::<Progress<'_>>() };
    if progress.panic.is_some() {
        return;
    }
    let (id, callback) = (progress.id, &mut progress.callback);
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| callback(id, value))) {
        progress.panic = Some(panic);
    }
}

/// Disconnects a signal handler on drop.
struct Handler {
    instance: *mut c_void,
    id: std::ffi::c_ulong,
}

impl Drop for Handler {
    fn drop(&mut self) {
        if self.id != 0 {
            // SAFETY: `instance` is still alive (the owner drops the handler first) and `id`
            // was returned by g_signal_connect_data for it.
            unsafe { ffi::g_signal_handler_disconnect(self.instance, self.id) }
        }
    }
}

/// Connects `progress` to `state`'s "percentage-changed" signal.
///
/// # Safety
/// `state` must be live, and `progress` must outlive the returned handler.
unsafe fn connect_progress(state: &GObj<DnfState>, progress: *mut Progress<'_>) -> Handler {
    let instance = state.as_ptr().cast::<c_void>();
    // SAFETY: a live GObject instance, a valid signal name, a handler with the signal's
    // signature and user data that outlives the connection (per the caller).
    let id = unsafe {
        ffi::g_signal_connect_data(
            instance,
            c"percentage-changed".as_ptr(),
            Some(on_percentage_changed),
            progress.cast(),
            None,
            0,
        )
    };
    Handler { instance, id }
}

fn new_state() -> Result<GObj<DnfState>, Error> {
    // SAFETY: dnf_state_new returns a new owned GObject.
    unsafe { GObj::from_owned(ffi::dnf_state_new()) }
        .ok_or_else(|| Error::new("dnf_state_new failed"))
}

/// Runs `call` (a libdnf call given a fresh, reset state and an error out-pointer) while
/// `progress(id, percent)` follows the state's "percentage-changed" signal. `Ok(Err(message))`
/// is the call's failure; a panic in `progress`, caught at the C boundary, is re-raised here.
fn with_progress(
    id: &str,
    progress: &mut dyn FnMut(&str, u32),
    call: impl FnOnce(*mut DnfState, *mut *mut GError) -> bool,
) -> Result<Result<(), String>, Error> {
    let state = new_state()?;
    let mut data = Progress {
        id,
        callback: progress,
        panic: None,
    };
    let mut error: *mut GError = std::ptr::null_mut();
    let ok = {
        // SAFETY: `state` and `data` outlive the handler, which is dropped (and so
        // disconnected) at the end of this block.
        let _handler = unsafe { connect_progress(&state, &mut data) };
        // SAFETY: a live state.
        unsafe { ffi::dnf_state_reset(state.as_ptr()) };
        call(state.as_ptr(), &mut error)
    };
    let failure = (!ok).then(|| {
        // SAFETY: set by the failed call.
        unsafe { ffi::take_error(error) }
    });
    if let Some(panic) = data.panic.take() {
        std::panic::resume_unwind(panic);
    }
    Ok(failure.map_or(Ok(()), Err))
}

/// A borrowed repo of the context.
#[derive(Clone, Copy)]
struct Repo(*mut DnfRepo);

impl Repo {
    fn id(self) -> String {
        // SAFETY: the repo is live (owned by the context's repo list).
        unsafe { ffi::string(ffi::dnf_repo_get_id(self.0)) }
    }

    fn enabled(self) -> bool {
        // SAFETY: as above.
        let e = unsafe { ffi::dnf_repo_get_enabled(self.0) };
        e & ffi::DNF_REPO_ENABLED_PACKAGES != 0
    }

    fn is_remote(self) -> bool {
        // SAFETY: as above.
        unsafe { ffi::dnf_repo_get_kind(self.0) == ffi::DNF_REPO_KIND_REMOTE }
    }

    fn location(self) -> PathBuf {
        // SAFETY: as above.
        PathBuf::from(unsafe { ffi::string(ffi::dnf_repo_get_location(self.0)) })
    }

    /// Whether the last successful check found filelists metadata in the repo's cache.
    fn has_filelists(self) -> bool {
        // SAFETY: a live repo; the result is borrowed (or NULL).
        !unsafe { ffi::dnf_repo_get_filename_md(self.0, c"filelists".as_ptr()) }.is_null()
    }

    fn check(self, cache_age: c_uint) -> Result<(), String> {
        let state = new_state().map_err(|e| e.message().to_owned())?;
        let mut error: *mut GError = std::ptr::null_mut();
        // SAFETY: live repo and state; `error` is a valid out-pointer.
        let ok = unsafe { ffi::dnf_repo_check(self.0, cache_age, state.as_ptr(), &mut error) };
        if ok != 0 {
            Ok(())
        } else {
            // SAFETY: set by the failed call.
            Err(unsafe { ffi::take_error(error) })
        }
    }
}

impl Context {
    /// `dnf_context_new`, the setters upstream's `rpmostree_context_new_client` and
    /// `rpmostree_context_setup` use, then `dnf_context_setup`. An unreadable repos dir or a
    /// broken `.repo` file gives an error naming it.
    pub fn new(opts: &ContextOptions) -> Result<Context, Error> {
        ffi::locked(|| Self::new_locked(opts, None))
    }

    /// Like [`Context::new`], with `root` as libdnf's install root instead of an empty private
    /// directory: the rpmdb at `root/usr/share/rpm` becomes the `@System` repo that
    /// [`Context::depsolve`] resolves against (upstream sets the base checkout here). Nothing
    /// is read from it until then.
    pub fn with_install_root(opts: &ContextOptions, root: &Path) -> Result<Context, Error> {
        let root = fs::canonicalize(root)
            .map_err(|e| Error::new(format!("Resolving install root {}: {e}", root.display())))?;
        if !root.is_dir() {
            return Err(Error::new(format!(
                "Install root {} is not a directory",
                root.display()
            )));
        }
        ffi::locked(|| Self::new_locked(opts, Some(root)))
    }

    fn new_locked(opts: &ContextOptions, root: Option<PathBuf>) -> Result<Context, Error> {
        ffi::global_init().map_err(|e| Error::new(format!("Initializing libdnf: {e}")))?;
        // libdnf skips a repos dir it cannot open without a word; we do not.
        match fs::read_dir(&opts.repos_dir) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::new(format!(
                    "Reading repos dir {}: {e}",
                    opts.repos_dir.display()
                )));
            }
        }
        let (install_root, private_root) = match root {
            Some(root) => (root, None),
            None => {
                let private = PrivateDir::new("root")?;
                (private.path().to_owned(), Some(private))
            }
        };
        let repos_dir = path_c("repos dir", &opts.repos_dir)?;
        let cache_dir = path_c("cache dir", &opts.cache_dir)?;
        let solv_dir = path_c("solv dir", &opts.solv_dir)?;
        let lock_dir = path_c("lock dir", &opts.lock_dir)?;
        let source_root = path_c("source root", &opts.source_root)?;
        let install_root_c = path_c("install root", &install_root)?;
        let releasever = opts
            .releasever
            .as_deref()
            .map(|r| ffi::cstring("releasever", r))
            .transpose()
            .map_err(Error::new)?;
        let vars_dirs = ["etc/dnf/vars", "etc/yum/vars"]
            .map(|d| vars_dir_through(&install_root, &opts.source_root.join(d)));
        let vars_dirs_c = vars_dirs
            .iter()
            .map(|d| path_c("vars dir", d))
            .collect::<Result<Vec<_>, _>>()?;
        let mut vars_ptrs: Vec<*const c_char> = vars_dirs_c.iter().map(|c| c.as_ptr()).collect();
        vars_ptrs.push(std::ptr::null());
        let user_agent = CString::new(concat!("rpm-ostree/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| Error::new(e.to_string()))?;

        // SAFETY: dnf_context_new returns a new owned GObject.
        let ctx = unsafe { GObj::from_owned(ffi::dnf_context_new()) }
            .ok_or_else(|| Error::new("dnf_context_new failed"))?;
        let c = ctx.as_ptr();
        // SAFETY: `c` is live; every string is NUL-terminated and copied by libdnf (the vars
        // array is NULL-terminated and deep-copied with g_strdupv).
        unsafe {
            ffi::dnf_context_set_repo_dir(c, repos_dir.as_ptr());
            ffi::dnf_context_set_cache_dir(c, cache_dir.as_ptr());
            ffi::dnf_context_set_solv_dir(c, solv_dir.as_ptr());
            ffi::dnf_context_set_lock_dir(c, lock_dir.as_ptr());
            ffi::dnf_context_set_user_agent(c, user_agent.as_ptr());
            ffi::dnf_context_set_write_history(c, 0);
            ffi::dnf_context_set_check_disk_space(c, 0);
            ffi::dnf_context_set_check_transaction(c, 0);
            ffi::dnf_context_set_plugins_dir(c, std::ptr::null());
            ffi::dnf_context_set_zchunk(c, 0);
            ffi::dnf_context_set_rpm_macro(c, c"_dbpath".as_ptr(), c"/usr/share/rpm".as_ptr());
            if let Some(r) = &releasever {
                ffi::dnf_context_set_release_ver(c, r.as_ptr());
            }
            ffi::dnf_context_set_install_root(c, install_root_c.as_ptr());
            ffi::dnf_context_set_source_root(c, source_root.as_ptr());
            ffi::dnf_context_set_vars_dir(c, vars_ptrs.as_ptr());
            ffi::dnf_context_set_enable_filelists(c, 0);
        }
        // Without a releasever libdnf opens the source root's rpmdb to look for
        // system-release(releasever): keep that database directory as it is.
        let snapshot = DirSnapshot::take(&opts.source_root.join("usr/share/rpm"));
        let mut error: *mut GError = std::ptr::null_mut();
        // SAFETY: live context; NULL cancellable; valid out-pointer.
        let ok = unsafe { ffi::dnf_context_setup(c, std::ptr::null_mut(), &mut error) };
        snapshot.restore();
        if ok == 0 {
            // SAFETY: set by the failed call.
            return Err(unsafe {
                gerror(
                    format_args!("Loading rpm-md repos from {}", opts.repos_dir.display()),
                    error,
                )
            });
        }
        Ok(Context {
            ctx,
            install_root,
            _private_root: private_root,
            loaded: false,
            solv_dir: opts.solv_dir.clone(),
            download_filelists: false,
            downloaded_without_filelists: false,
        })
    }

    /// The context's repos (borrowed; valid while the context lives).
    fn all_repos(&self) -> Vec<Repo> {
        // SAFETY: the context is live; the array is owned by it (transfer none).
        unsafe { ffi::borrowed_items::<DnfRepo>(ffi::dnf_context_get_repos(self.ctx.as_ptr())) }
            .into_iter()
            .map(Repo)
            .collect()
    }

    fn enabled_repos(&self) -> Vec<Repo> {
        self.all_repos()
            .into_iter()
            .filter(|r| r.enabled())
            .collect()
    }

    /// Every configured repo (enabled or not), in libdnf's order.
    pub fn repos(&self) -> Vec<RepoInfo> {
        ffi::locked(|| {
            self.all_repos()
                .into_iter()
                .map(|r| {
                    // SAFETY: a live repo; the description is an owned string (or NULL).
                    let (description, devel, source) = unsafe {
                        (
                            ffi::take_string(ffi::dnf_repo_get_description(r.0)),
                            ffi::dnf_repo_is_devel(r.0) != 0,
                            ffi::dnf_repo_is_source(r.0) != 0,
                        )
                    };
                    RepoInfo {
                        id: r.id(),
                        description,
                        enabled: r.enabled(),
                        devel,
                        source,
                    }
                })
                .collect()
        })
    }

    /// `ModifyYumRepo`: sets `enabled` and rewrites the repo's `.repo` file. Unknown id:
    /// `Yum repo '<id>' not found`.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), Error> {
        ffi::locked(|| {
            let repo = self
                .all_repos()
                .into_iter()
                .find(|r| r.id() == id)
                .ok_or_else(|| Error::new(format!("Yum repo '{id}' not found")))?;
            // SAFETY: a live repo.
            let file = unsafe { ffi::string(ffi::dnf_repo_get_filename(repo.0)) };
            let value = if enabled { c"1" } else { c"0" };
            let mut error: *mut GError = std::ptr::null_mut();
            // SAFETY: a live repo; valid strings (copied into the keyfile); valid out-pointer.
            // dnf_repo_set_enabled alone only changes the in-memory state; the keyfile entry is
            // what dnf_repo_commit writes (upstream's ModifyYumRepo uses set_data too).
            let ok = unsafe {
                ffi::dnf_repo_set_enabled(
                    repo.0,
                    if enabled {
                        ffi::DNF_REPO_ENABLED_PACKAGES
                    } else {
                        ffi::DNF_REPO_ENABLED_NONE
                    },
                );
                ffi::dnf_repo_set_data(repo.0, c"enabled".as_ptr(), value.as_ptr(), &mut error) != 0
                    && ffi::dnf_repo_commit(repo.0, &mut error) != 0
            };
            if ok {
                Ok(())
            } else {
                // SAFETY: set by the failed call.
                Err(unsafe { gerror(format_args!("Writing repo '{id}' to {file}"), error) })
            }
        })
    }

    /// `RefreshMd`: for each enabled repo, `dnf_repo_check` with the policy's cache age and,
    /// if that fails (or the policy is [`CachePolicy::Never`] and the repo is remote),
    /// `dnf_repo_update(FORCE)`. `progress(repo_id, percent)` follows libdnf's
    /// "percentage-changed" signal. A failing repo gives `Updating rpm-md repo '<id>': ...`
    /// and its previous cache stays usable.
    pub fn update_metadata(
        &mut self,
        policy: CachePolicy,
        progress: &mut dyn FnMut(&str, u32),
    ) -> Result<Vec<RepoUpdate>, Error> {
        ffi::locked(|| {
            let filelists = self.download_filelists;
            if filelists && self.downloaded_without_filelists {
                return Err(Error::new(
                    "Downloading filelists: this context already refreshed metadata without them \
                     (libdnf keeps excluding them); use a new context",
                ));
            }
            // SAFETY: a live context; this decides whether checks require filelists and
            // whether updates download them.
            unsafe {
                ffi::dnf_context_set_enable_filelists(self.ctx.as_ptr(), c_int::from(filelists))
            };
            let mut updates = Vec::new();
            for repo in self.enabled_repos() {
                let update = Self::update_repo(repo, policy, filelists, &mut *progress);
                // Even a failed download may have set the exclusion.
                if !filelists && update.as_ref().map_or(true, |u| u.updated) {
                    self.downloaded_without_filelists = true;
                }
                updates.push(update?);
            }
            Ok(updates)
        })
    }

    /// Whether [`Context::update_metadata`] also downloads `filelists.xml` (default: no, like
    /// upstream without `DOWNLOAD_FILELISTS=true`); a cache without them then counts as
    /// stale. Needed before `load_cached(true)` for remote repos. Set it on a new context:
    /// once a repo was downloaded without filelists, libdnf keeps excluding them from that
    /// repo's downloads, so a later filelists refresh on the same context is refused.
    pub fn set_download_filelists(&mut self, enabled: bool) {
        self.download_filelists = enabled;
    }

    fn update_repo(
        repo: Repo,
        policy: CachePolicy,
        filelists: bool,
        progress: &mut dyn FnMut(&str, u32),
    ) -> Result<RepoUpdate, Error> {
        let id = repo.id();
        let cache_age = match policy {
            CachePolicy::Default => ffi::G_MAXUINT - 1,
            CachePolicy::Never => 0,
        };
        // libdnf's check passes for a cache without filelists even when they are wanted.
        let fresh = repo.check(cache_age).is_ok() && (!filelists || repo.has_filelists());
        // libdnf measures the cache age in whole seconds, so a cache written within the same
        // second passes a check with age 0: force remote repos explicitly.
        let force = policy == CachePolicy::Never && repo.is_remote();
        let mut updated = false;
        if !fresh || force {
            let backup = repo.is_remote().then(|| CacheBackup::new(repo.location()));
            let result = with_progress(&id, progress, |state, error| {
                // SAFETY: live repo and state; valid out-pointer.
                unsafe {
                    ffi::dnf_repo_update(repo.0, ffi::DNF_REPO_UPDATE_FLAG_FORCE, state, error) != 0
                }
            })?;
            if let Some(backup) = backup {
                backup.finish(result.is_ok());
            }
            result.map_err(|e| Error::new(format!("Updating rpm-md repo '{id}': {e}")))?;
            updated = repo.is_remote();
        }
        // SAFETY: a live repo.
        let timestamp = unsafe { ffi::dnf_repo_get_timestamp_generated(repo.0) };
        Ok(RepoUpdate {
            id,
            updated,
            timestamp,
        })
    }

    /// Loads the sack from cached metadata only (never the network): every enabled repo must
    /// pass `dnf_repo_check` with cache age `G_MAXUINT`; then
    /// `dnf_context_setup_sack_with_flags(SKIP_RPMDB | LOAD_UPDATEINFO [| SKIP_FILELISTS])`.
    pub fn load_cached(&mut self, filelists: bool) -> Result<(), Error> {
        self.load(filelists, false)
    }

    /// [`Context::load_cached`], with the install root's rpmdb as `@System` (`rpmdb`, without
    /// updateinfo) or without it (with updateinfo).
    fn load(&mut self, filelists: bool, rpmdb: bool) -> Result<(), Error> {
        ffi::locked(|| {
            let c = self.ctx.as_ptr();
            // SAFETY: a live context. The check below lists filelists among the required
            // metadata exactly when they are enabled.
            unsafe { ffi::dnf_context_set_enable_filelists(c, c_int::from(filelists)) };
            for repo in self.enabled_repos() {
                if let Err(e) = repo.check(ffi::G_MAXUINT) {
                    let id = repo.id();
                    // file:// repos have no cache: libdnf reads them in place.
                    return Err(Error::new(if repo.is_remote() {
                        format!(
                            "rpm-md repo '{id}' has no cached metadata; run `rpm-ostree refresh-md`"
                        )
                    } else {
                        format!("rpm-md repo '{id}': {e}")
                    }));
                }
                if filelists && !repo.has_filelists() {
                    let id = repo.id();
                    return Err(Error::new(format!(
                        "rpm-md repo '{id}' has no cached filelists; refresh its metadata with filelists enabled"
                    )));
                }
            }
            let mut flags = if rpmdb {
                0
            } else {
                ffi::DNF_CONTEXT_SETUP_SACK_FLAG_SKIP_RPMDB
                    | ffi::DNF_CONTEXT_SETUP_SACK_FLAG_LOAD_UPDATEINFO
            };
            if !filelists {
                flags |= ffi::DNF_CONTEXT_SETUP_SACK_FLAG_SKIP_FILELISTS;
            }
            // A `.solv` cache written without filelists records its file provides as
            // complete, and libsolv then never adds the ones filelists would give: keep the
            // caches of the two kinds of loads apart.
            let solv_dir = if filelists {
                self.solv_dir.join("filelists")
            } else {
                self.solv_dir.clone()
            };
            fs::create_dir_all(&solv_dir)
                .map_err(|e| Error::new(format!("Creating {}: {e}", solv_dir.display())))?;
            let solv_dir_c = path_c("solv dir", &solv_dir)?;
            let state = new_state()?;
            let mut error: *mut GError = std::ptr::null_mut();
            // SAFETY: live context and state; a valid string (copied); valid out-pointer.
            let ok = unsafe {
                ffi::dnf_context_set_solv_dir(c, solv_dir_c.as_ptr());
                ffi::dnf_context_set_cache_age(c, ffi::G_MAXUINT);
                ffi::dnf_context_setup_sack_with_flags(c, state.as_ptr(), flags, &mut error)
            };
            if ok == 0 {
                self.loaded = false;
                // SAFETY: set by the failed call.
                return Err(unsafe { gerror("Loading cached rpm-md", error) });
            }
            self.loaded = true;
            Ok(())
        })
    }

    /// Each enabled repo's id, repomd timestamp and solvable count (after
    /// [`Context::load_cached`]).
    pub fn loaded_repos(&self) -> Vec<(String, u64, u32)> {
        ffi::locked(|| {
            self.enabled_repos()
                .into_iter()
                .map(|r| {
                    // SAFETY: a live repo.
                    let (ts, n) = unsafe {
                        (
                            ffi::dnf_repo_get_timestamp_generated(r.0),
                            ffi::dnf_repo_get_n_solvables(r.0),
                        )
                    };
                    (r.id(), ts, n)
                })
                .collect()
        })
    }

    /// A query over the loaded sack.
    fn query(&self) -> Result<Query, Error> {
        if !self.loaded {
            return Err(Error::new("metadata not loaded"));
        }
        // SAFETY: the context is live and owns the sack, which outlives the query (queries
        // never leave `&self` methods).
        let sack = unsafe { ffi::dnf_context_get_sack(self.ctx.as_ptr()) };
        if sack.is_null() {
            return Err(Error::new("metadata not loaded"));
        }
        // SAFETY: as above.
        unsafe { Query::new(sack) }.ok_or_else(|| Error::new("hy_query_create failed"))
    }

    /// A query with one string filter per `(key, cmp, value)`.
    fn filtered(&self, filters: &[(c_int, c_int, &str)]) -> Result<Query, Error> {
        let q = self.query()?;
        for &(key, cmp, value) in filters {
            let v = ffi::cstring("query term", value).map_err(Error::new)?;
            // SAFETY: a live query; the string is copied by libdnf.
            let rc = unsafe { ffi::hy_query_filter(q.as_ptr(), key, cmp, v.as_ptr()) };
            if rc != 0 {
                return Err(Error::new(format!(
                    "Invalid query for {value:?} (libdnf error {rc})"
                )));
            }
        }
        Ok(q)
    }

    fn latest_per_arch(q: &Query) {
        // SAFETY: a live query.
        unsafe { ffi::hy_query_filter_latest_per_arch(q.as_ptr(), 1) }
    }

    /// `GetPackages`: per name, `HY_PKG_NAME HY_EQ` and the latest per arch; returns
    /// `(queried name, package)` pairs in input order.
    pub fn packages_by_name(&self, names: &[String]) -> Result<Vec<(String, Package)>, Error> {
        ffi::locked(|| {
            let mut out = Vec::new();
            for name in names {
                let q = self.filtered(&[(ffi::HY_PKG_NAME, ffi::HY_EQ, name)])?;
                Self::latest_per_arch(&q);
                out.extend(run_query(&q).into_iter().map(|p| (name.clone(), p)));
            }
            Ok(out)
        })
    }

    /// `WhatProvides`: `hy_query_filter_provides_in` and the latest per arch. An unparsable
    /// reldep gives an error naming it.
    pub fn what_provides(&self, provides: &[String]) -> Result<Vec<Package>, Error> {
        ffi::locked(|| {
            let strings = provides
                .iter()
                .map(|p| ffi::cstring("provide", p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(Error::new)?;
            // libdnf rejects the whole list on the first bad reldep without saying which;
            // try each alone first to name it.
            for (s, text) in strings.iter().zip(provides) {
                let q = self.query()?;
                let mut one = [s.as_ptr().cast_mut(), std::ptr::null_mut()];
                // SAFETY: a live query and a NULL-terminated array of valid strings that
                // libdnf only reads.
                if unsafe { ffi::hy_query_filter_provides_in(q.as_ptr(), one.as_mut_ptr()) } != 0 {
                    return Err(Error::new(format!("Invalid provide {text:?}")));
                }
            }
            let q = self.query()?;
            let mut all: Vec<*mut c_char> = strings.iter().map(|s| s.as_ptr().cast_mut()).collect();
            all.push(std::ptr::null_mut());
            // SAFETY: as above.
            let rc = unsafe { ffi::hy_query_filter_provides_in(q.as_ptr(), all.as_mut_ptr()) };
            if rc != 0 {
                return Err(Error::new(format!("Invalid provides {provides:?}")));
            }
            Self::latest_per_arch(&q);
            Ok(run_query(&q))
        })
    }

    /// Upstream's `apply_search_filter`: case-insensitive, `HY_GLOB` for glob patterns.
    fn search_filter(key: c_int, term: &str, cmp: c_int) -> (c_int, c_int, &str) {
        if text::is_glob(term) {
            (key, ffi::HY_GLOB | ffi::HY_ICASE, term)
        } else {
            (key, cmp | ffi::HY_ICASE, term)
        }
    }

    /// Packages matching `term` on `key` exactly or as a substring.
    fn eq_or_substr(&self, key: c_int, term: &str) -> Result<Query, Error> {
        let q = self.filtered(&[Self::search_filter(key, term, ffi::HY_EQ)])?;
        let substr = self.filtered(&[Self::search_filter(key, term, ffi::HY_SUBSTR)])?;
        // SAFETY: two live queries over the same sack; `q` becomes the union.
        unsafe { ffi::hy_query_union(q.as_ptr(), substr.as_ptr()) };
        Ok(q)
    }

    /// `Search`: upstream's three groups, each at most 50 distinct names, as `(key, package)`:
    /// `match_group_a` (name and summary: for one term, name matches that also match in the
    /// summary; for several, packages where every term matches name or summary),
    /// `match_group_b` (every term in the name: exact, then substring) and `match_group_c`
    /// (the same on the summary). Case-insensitive; glob terms use `HY_GLOB`.
    pub fn search(&self, terms: &[String]) -> Result<Vec<(String, Package)>, Error> {
        if terms.is_empty() {
            return Err(Error::new("Must specify a term for search"));
        }
        ffi::locked(|| {
            let mut out = Vec::new();
            let mut collect = |key: &str, q: &Query, seen: &mut HashSet<String>| {
                for p in run_query(q) {
                    if seen.len() >= SEARCH_LIMIT {
                        break;
                    }
                    if seen.insert(p.name.clone()) {
                        out.push((key.to_owned(), p));
                    }
                }
            };

            // Group a: name AND summary.
            let mut seen = HashSet::new();
            let mut group_a: Option<Query> = None;
            if terms.len() >= 2 {
                for term in terms {
                    let q = self.eq_or_substr(ffi::HY_PKG_NAME, term)?;
                    let summary = self.eq_or_substr(ffi::HY_PKG_SUMMARY, term)?;
                    // SAFETY: live queries over the same sack.
                    unsafe { ffi::hy_query_union(q.as_ptr(), summary.as_ptr()) };
                    group_a = Some(match group_a {
                        None => q,
                        Some(acc) => {
                            // SAFETY: as above; `acc` becomes the intersection.
                            unsafe { ffi::hy_query_intersection(acc.as_ptr(), q.as_ptr()) };
                            acc
                        }
                    });
                }
            } else {
                let q = self.eq_or_substr(ffi::HY_PKG_NAME, &terms[0])?;
                let summary = self.eq_or_substr(ffi::HY_PKG_SUMMARY, &terms[0])?;
                // SAFETY: as above.
                unsafe { ffi::hy_query_intersection(q.as_ptr(), summary.as_ptr()) };
                group_a = Some(q);
            }
            if let Some(q) = &group_a {
                collect("match_group_a", q, &mut seen);
            }

            // Groups b and c: every term on one key, exact then substring.
            for (group, key) in [
                ("match_group_b", ffi::HY_PKG_NAME),
                ("match_group_c", ffi::HY_PKG_SUMMARY),
            ] {
                let mut seen = HashSet::new();
                for cmp in [ffi::HY_EQ, ffi::HY_SUBSTR] {
                    let filters: Vec<_> = terms
                        .iter()
                        .map(|t| Self::search_filter(key, t, cmp))
                        .collect();
                    let q = self.filtered(&filters)?;
                    collect(group, &q, &mut seen);
                }
            }
            Ok(out)
        })
    }

    /// The newest available package with this name and arch, if any.
    pub fn newest(&self, name: &str, arch: &str) -> Result<Option<Package>, Error> {
        ffi::locked(|| {
            let q = self.filtered(&[
                (ffi::HY_PKG_NAME, ffi::HY_EQ, name),
                (ffi::HY_PKG_ARCH, ffi::HY_EQ, arch),
            ])?;
            Self::latest_per_arch(&q);
            Ok(run_query(&q)
                .into_iter()
                .max_by(|a, b| crate::librpm_evr_cmp(&a.evr(), &b.evr())))
        })
    }

    /// Security advisories covering exactly these packages (matched by name, evr and arch in
    /// the sack, then `dnf_package_get_advisories(pkg, HY_EQ)`), sorted by id. Packages not in
    /// the sack are skipped.
    pub fn advisories(&self, pkgs: &[Package]) -> Result<Vec<Advisory>, Error> {
        ffi::locked(|| {
            let mut found: BTreeMap<String, Advisory> = BTreeMap::new();
            let mut covered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for pkg in pkgs {
                let evr = pkg.evr();
                let q = self.filtered(&[
                    (ffi::HY_PKG_NAME, ffi::HY_EQ, &pkg.name),
                    (ffi::HY_PKG_EVR, ffi::HY_EQ, &evr),
                    (ffi::HY_PKG_ARCH, ffi::HY_EQ, &pkg.arch),
                ])?;
                // SAFETY: a live query; the result is an owned array of owned packages.
                let Some(matches) =
                    (unsafe { PtrArray::from_owned(ffi::hy_query_run(q.as_ptr())) })
                else {
                    continue;
                };
                for sack_pkg in matches.items::<ffi::DnfPackage>() {
                    // SAFETY: a live package (owned by `matches`); the result is an owned
                    // array of owned advisories.
                    let Some(advs) = (unsafe {
                        PtrArray::from_owned(ffi::dnf_package_get_advisories(sack_pkg, ffi::HY_EQ))
                    }) else {
                        continue;
                    };
                    for adv in advs.items::<DnfAdvisory>() {
                        // SAFETY: a live advisory owned by `advs`.
                        let kind = unsafe { ffi::dnf_advisory_get_kind(adv) };
                        if kind != ffi::DNF_ADVISORY_KIND_SECURITY {
                            continue;
                        }
                        // SAFETY: as above.
                        let id = unsafe { ffi::string(ffi::dnf_advisory_get_id(adv)) };
                        if !found.contains_key(&id) {
                            // SAFETY: as above.
                            let advisory = unsafe { advisory_from(adv, id.clone(), kind) };
                            found.insert(id.clone(), advisory);
                        }
                        covered.entry(id).or_default().insert(pkg.nevra());
                    }
                }
            }
            Ok(found
                .into_values()
                .map(|mut a| {
                    a.nevras = covered
                        .remove(&a.id)
                        .unwrap_or_default()
                        .into_iter()
                        .collect();
                    a
                })
                .collect())
        })
    }
}

/// A `hy_goal_list_*` function.
type GoalList = unsafe extern "C" fn(HyGoal, *mut *mut GError) -> *mut ffi::GPtrArray;

/// Runs one `hy_goal_list_*` on a solved goal.
///
/// # Safety
/// `goal` must be a live goal that was solved.
unsafe fn goal_list(goal: HyGoal, list: GoalList, what: &str) -> Result<PtrArray, Error> {
    let mut error: *mut GError = std::ptr::null_mut();
    // SAFETY: per the caller; the result is an owned array of owned packages (or NULL with
    // `error` set).
    let array = unsafe { list(goal, &mut error) };
    // SAFETY: as above.
    unsafe { PtrArray::from_owned(array) }
        // SAFETY: set by the failed call.
        .ok_or_else(|| unsafe { gerror(format_args!("Listing the {what} of the solution"), error) })
}

/// A package's NEVRA as libdnf spells it.
///
/// # Safety
/// `pkg` must be a live `DnfPackage`.
unsafe fn nevra_of(pkg: *mut DnfPackage) -> String {
    // SAFETY: per the caller; the string is cached in the package.
    unsafe { ffi::string(ffi::dnf_package_get_nevra(pkg)) }
}

/// `<type>:<hex>` of the repodata checksum of a package, if it has one.
///
/// # Safety
/// `pkg` must be a live `DnfPackage`.
unsafe fn repodata_checksum(pkg: *mut DnfPackage) -> Option<String> {
    let mut kind: c_int = 0;
    // SAFETY: per the caller; the bytes are borrowed from the pool, `kind` is an out-pointer.
    let raw = unsafe { ffi::dnf_package_get_chksum(pkg, &mut kind) };
    if raw.is_null() {
        return None;
    }
    // SAFETY: a static string (or NULL for an unknown type).
    let name = unsafe { ffi::hy_chksum_name(kind) };
    if name.is_null() {
        return None;
    }
    // SAFETY: `raw` holds the digest of type `kind`; the hex string is g_malloc'ed and ours.
    let hex = unsafe { ffi::take_string(ffi::hy_chksum_str(raw, kind)) };
    // SAFETY: non-NULL, NUL-terminated.
    let name = unsafe { ffi::string(name) };
    (!hex.is_empty()).then(|| format!("{name}:{hex}"))
}

/// `sha256:<hex>` of a file's content.
fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut file = fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("sha256:{:x}", hasher.finalize()))
}

/// Whether `path` holds the content of `checksum` (`<type>:<hex>`): `None` when the file
/// exists but the type is one this crate cannot compute (md5, sha1).
fn holds(path: &Path, checksum: &str) -> Option<bool> {
    use sha2::Digest;
    fn digest<D: Digest + std::io::Write>(path: &Path) -> Option<String> {
        let mut file = fs::File::open(path).ok()?;
        let mut hasher = D::new();
        std::io::copy(&mut file, &mut hasher).ok()?;
        Some(
            hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
    if !path.is_file() {
        return Some(false);
    }
    let (kind, hex) = checksum.split_once(':')?;
    let actual = match kind {
        "sha256" => digest::<sha2::Sha256>(path),
        "sha384" => digest::<sha2::Sha384>(path),
        "sha512" => digest::<sha2::Sha512>(path),
        _ => return None,
    };
    Some(actual.is_some_and(|a| a.eq_ignore_ascii_case(hex)))
}

impl Context {
    /// Resolves `requests` (package names, NEVRA forms, globs, provides or file paths, as
    /// `dnf install` takes them) and the `local` RPM files against the enabled repos, with
    /// every package of the install root's rpmdb (see [`Context::with_install_root`]) locked
    /// (upstream's `rpmostree_context_prepare` for layering):
    ///
    /// - unless `cache_only`, stale metadata is refreshed first like
    ///   [`Context::update_metadata`] with [`CachePolicy::Default`] (also downloading
    ///   filelists when a request contains `/`); `progress(repo, percent)` follows metadata
    ///   and package downloads;
    /// - a request that a base package (or one of the local packages) already satisfies, as
    ///   libdnf's subject matching sees it on a sack of just those, is inactive: reported, not
    ///   installed (upstream's `finalize_overlays`);
    /// - `installonly` is off; the goal runs with `DNF_INSTALL | DNF_ALLOW_UNINSTALL` (and
    ///   `DNF_IGNORE_WEAK_DEPS` without `weak_deps`);
    /// - remote packages are downloaded into the repo's package cache (with `cache_only` they
    ///   must be there already).
    ///
    /// The install root's database directory is left as it was found. A context can depsolve
    /// repeatedly (each run loads a fresh sack), but, as with [`Context::set_download_filelists`],
    /// a remote repo refreshed without filelists cannot be refreshed with them by the same
    /// context: use a new one per request.
    ///
    /// Errors: `Packages not found: a, b` (every request nothing provides); libdnf's
    /// `Could not depsolve transaction; …` naming the unsatisfiable requirement;
    /// `Package '<nevra>' is already in the base` (a local package); `Base packages would be
    /// removed: …`; `Some base packages would be replaced: …`; a failed download names the
    /// packages and the repo.
    pub fn depsolve(
        &mut self,
        requests: &[String],
        local: &[PathBuf],
        options: DepsolveOptions,
        progress: &mut dyn FnMut(&str, u32),
    ) -> Result<Resolution, Error> {
        self.depsolve_with_overrides(requests, local, &Overrides::default(), options, progress)
    }

    /// [`Context::depsolve`] with base overrides (upstream's `rpmostree_context_prepare` with
    /// `[overrides]`). The base packages that `overrides` names are not locked:
    ///
    /// - every installed package named in [`Overrides::remove`] is erased (`hy_goal_erase`);
    ///   they come back in [`Resolution::removed`];
    /// - each [`Overrides::replace_local`] file is added to the sack as a command-line package
    ///   and installed (`hy_goal_install`), which libsolv turns into an upgrade or downgrade
    ///   of the base package of the same name; the pairs come back in
    ///   [`Resolution::replaced`], not in [`Resolution::packages`].
    ///
    /// Upstream's `check_goal_solution` then allows exactly these: any other base package the
    /// solution would remove or obsolete, or replace (also a reinstall), is an error.
    ///
    /// Errors, besides those of [`Context::depsolve`]: `Package "<name>" not found` (a removal
    /// that names no base package; upstream's text); `Package '<name>' is not in the base; use
    /// install to layer it` and `Package '<nevra>' is already in the base` (a replacement);
    /// `Package '<name>' is both removed and replaced`; `Package '<name>' is replaced twice:
    /// <nevra>, <nevra>`; `Cannot request '<request>' provided by removed package '<nevra>'`
    /// (upstream's text: a request only a removed base package satisfies); `Base packages
    /// would be removed: …` (e.g. a base package that requires a removed one: libsolv reports
    /// that as an unsatisfiable lock, which is rephrased so).
    pub fn depsolve_with_overrides(
        &mut self,
        requests: &[String],
        local: &[PathBuf],
        overrides: &Overrides,
        options: DepsolveOptions,
        progress: &mut dyn FnMut(&str, u32),
    ) -> Result<Resolution, Error> {
        ffi::locked(|| {
            check_dbpath(&self.install_root).map_err(|e| {
                Error::new(format!(
                    "Reading the rpmdb of {}: {}",
                    self.install_root.display(),
                    e.message()
                ))
            })?;
            /// Restores the snapshot on drop, also when a progress callback panics.
            struct Restore(DirSnapshot);
            impl Drop for Restore {
                fn drop(&mut self) {
                    self.0.restore();
                }
            }
            // Reading the database (twice: the context's sack and the inactive-request sack)
            // leaves sqlite's -shm/-wal files behind.
            let _restore = Restore(DirSnapshot::take(&self.install_root.join(RPMDB_DIR)));
            self.depsolve_locked(requests, local, overrides, options, progress)
        })
    }

    /// Adds local RPM files to the sack as command-line packages (before anything is marked
    /// for install: libdnf issue 700).
    fn add_locals(sack: *mut ffi::DnfSack, paths: &[PathBuf]) -> Result<Vec<LocalPackage>, Error> {
        let mut locals = Vec::new();
        for path in paths {
            let checksum = sha256_file(path).map_err(|e| {
                Error::new(format!("Reading local package {}: {e}", path.display()))
            })?;
            let path_c = path_c("local package path", path)?;
            // SAFETY: a live sack; a valid path; the result is a new owned package (or NULL).
            let pkg = unsafe {
                GObj::from_owned(ffi::dnf_sack_add_cmdline_package(sack, path_c.as_ptr()))
            }
            .ok_or_else(|| {
                Error::new(format!(
                    "Reading local package {}: not a readable RPM file",
                    path.display()
                ))
            })?;
            // SAFETY: a live package.
            let (nevra, name) =
                unsafe { (nevra_of(pkg.as_ptr()), package_from(pkg.as_ptr()).name) };
            locals.push(LocalPackage {
                pkg,
                nevra,
                name,
                path: path.clone(),
                checksum,
            });
        }
        Ok(locals)
    }

    fn depsolve_locked(
        &mut self,
        requests: &[String],
        local: &[PathBuf],
        overrides: &Overrides,
        options: DepsolveOptions,
        progress: &mut dyn FnMut(&str, u32),
    ) -> Result<Resolution, Error> {
        let filelists = requests.iter().any(|r| r.contains('/'));
        if !options.cache_only {
            self.set_download_filelists(filelists);
            self.update_metadata(CachePolicy::Default, &mut *progress)?;
        }
        self.load(filelists, true)?;
        let c = self.ctx.as_ptr();
        // SAFETY: a live context with a loaded sack; both are owned by the context.
        let (sack, goal) = unsafe { (ffi::dnf_context_get_sack(c), ffi::dnf_context_get_goal(c)) };
        if sack.is_null() || goal.is_null() {
            return Err(Error::new("metadata not loaded"));
        }
        // One kernel per tree: ostree binds kernel and userspace.
        // SAFETY: a live sack; NULL clears the list.
        unsafe {
            ffi::dnf_sack_set_installonly(sack, std::ptr::null());
            ffi::dnf_sack_set_installonly_limit(sack, 0);
        }

        let base_query =
            self.filtered(&[(ffi::HY_PKG_REPONAME, ffi::HY_EQ, ffi::HY_SYSTEM_REPO_NAME)])?;
        // SAFETY: a live query; the result is an owned array of owned packages.
        let base = unsafe { PtrArray::from_owned(ffi::hy_query_run(base_query.as_ptr())) }
            .ok_or_else(|| Error::new("Querying the base packages failed"))?;
        let base_pkgs = base.items::<DnfPackage>();
        // (name, NEVRA, package) of each base package.
        let base_named: Vec<(String, String, *mut DnfPackage)> = base_pkgs
            .iter()
            // SAFETY: live packages owned by `base`.
            .map(|&p| unsafe { (package_from(p).name, nevra_of(p), p) })
            .collect();
        let base_nevras: HashSet<&str> = base_named.iter().map(|(_, n, _)| n.as_str()).collect();
        let base_names: HashSet<&str> = base_named.iter().map(|(n, _, _)| n.as_str()).collect();

        // Removals: names of base packages (upstream canonicalizes to names before this).
        let remove: BTreeSet<&str> = overrides.remove.iter().map(String::as_str).collect();
        if let Some(name) = remove.iter().find(|n| !base_names.contains(**n)) {
            return Err(Error::new(format!("Package \"{name}\" not found")));
        }

        // Replacements first, then the other local packages (as upstream orders them).
        let replacements = Self::add_locals(sack, &overrides.replace_local)?;
        let mut replaced_names: BTreeMap<&str, &str> = BTreeMap::new();
        for r in &replacements {
            if !base_names.contains(r.name.as_str()) {
                return Err(Error::new(format!(
                    "Package '{}' is not in the base; use install to layer it",
                    r.name
                )));
            }
            if base_nevras.contains(r.nevra.as_str()) {
                return Err(Error::new(format!(
                    "Package '{}' is already in the base",
                    r.nevra
                )));
            }
            if remove.contains(r.name.as_str()) {
                return Err(Error::new(format!(
                    "Package '{}' is both removed and replaced",
                    r.name
                )));
            }
            if let Some(other) = replaced_names.insert(&r.name, &r.nevra) {
                return Err(Error::new(format!(
                    "Package '{}' is replaced twice: {other}, {}",
                    r.name, r.nevra
                )));
            }
        }
        let locals = Self::add_locals(sack, local)?;
        if let Some(l) = locals
            .iter()
            .find(|l| base_nevras.contains(l.nevra.as_str()))
        {
            return Err(Error::new(format!(
                "Package '{}' is already in the base",
                l.nevra
            )));
        }

        let inactive = self.inactive_requests(requests, local, &remove)?;
        let active: Vec<&String> = requests
            .iter()
            .filter(|r| !inactive.iter().any(|(q, _)| q == *r))
            .collect();

        for (name, _, pkg) in &base_named {
            if remove.contains(name.as_str()) {
                // SAFETY: a live goal; a live package owned by `base`.
                unsafe { ffi::hy_goal_erase(goal, *pkg) };
            }
        }
        for l in replacements.iter().chain(&locals) {
            // SAFETY: a live goal and package.
            unsafe { ffi::hy_goal_install(goal, l.pkg.as_ptr()) };
        }
        let mut missing = Vec::new();
        for name in &active {
            let name_c = ffi::cstring("package request", name).map_err(Error::new)?;
            let mut error: *mut GError = std::ptr::null_mut();
            // SAFETY: a live context whose sack is loaded; a valid string; an out-pointer.
            let ok = unsafe { ffi::dnf_context_install(c, name_c.as_ptr(), &mut error) } != 0;
            if ok {
                continue;
            }
            // SAFETY: set by the failed call.
            if unsafe { ffi::is_dnf_error(error, ffi::DNF_ERROR_PACKAGE_NOT_FOUND) } {
                // SAFETY: as above; only the fact matters.
                let _ = unsafe { ffi::take_error(error) };
                missing.push(name.as_str());
            } else {
                // SAFETY: as above.
                return Err(unsafe { gerror(format_args!("Requesting '{name}'"), error) });
            }
        }
        if !missing.is_empty() {
            return Err(Error::new(format!(
                "Packages not found: {}",
                missing.join(", ")
            )));
        }

        for (name, nevra, pkg) in &base_named {
            if remove.contains(name.as_str()) || replaced_names.contains_key(name.as_str()) {
                continue;
            }
            let mut error: *mut GError = std::ptr::null_mut();
            // SAFETY: a live goal; a live package owned by `base`; an out-pointer.
            if unsafe { ffi::hy_goal_lock(goal, *pkg, &mut error) } != 0 {
                // SAFETY: `error` was set by the failed call.
                return Err(unsafe {
                    gerror(format_args!("Locking base package '{nevra}'"), error)
                });
            }
        }

        let nothing = || Resolution {
            inactive: inactive.clone(),
            ..Resolution::default()
        };
        if active.is_empty() && locals.is_empty() && replacements.is_empty() && remove.is_empty() {
            return Ok(nothing());
        }
        let mut actions = ffi::DNF_INSTALL | ffi::DNF_ALLOW_UNINSTALL;
        if !options.weak_deps {
            actions |= ffi::DNF_IGNORE_WEAK_DEPS;
        }
        let mut error: *mut GError = std::ptr::null_mut();
        // SAFETY: a live goal over the loaded sack; an out-pointer.
        if unsafe { ffi::dnf_goal_depsolve(goal, actions, &mut error) } == 0 {
            // SAFETY: set by the failed call.
            if unsafe { ffi::is_dnf_error(error, ffi::DNF_ERROR_NO_PACKAGES_TO_UPDATE) } {
                // SAFETY: as above.
                let _ = unsafe { ffi::take_error(error) };
                return Ok(nothing());
            }
            // SAFETY: as above.
            let message = unsafe { ffi::take_error(error) };
            if !remove.is_empty() {
                let dependents =
                    Self::removal_dependents(sack, &base_named, &remove, &replacements)?;
                if !dependents.is_empty() {
                    return Err(Error::new(format!(
                        "Base packages would be removed: {}",
                        dependents.join(", ")
                    )));
                }
            }
            return Err(Error::new(message));
        }
        // SAFETY: a live, solved goal.
        let Overridden { removed, replaced } =
            unsafe { check_solution(goal, &remove, &replaced_names)? };

        // SAFETY: as above.
        let installs = unsafe { goal_list(goal, ffi::hy_goal_list_installs, "installs")? };
        let replacement_nevras: HashSet<&str> =
            replaced.iter().map(|(_, new)| new.as_str()).collect();
        let installs: Vec<*mut DnfPackage> = installs
            .items::<DnfPackage>()
            .into_iter()
            // SAFETY: live packages owned by `installs`.
            .filter(|&p| !replacement_nevras.contains(unsafe { nevra_of(p) }.as_str()))
            .collect();
        let packages = self.resolved(&installs, &locals, options.cache_only, progress)?;
        let mut replaced = replaced
            .into_iter()
            .map(|(old, new)| {
                let r = replacements
                    .iter()
                    .find(|r| r.nevra == new)
                    .ok_or_else(|| {
                        Error::new(format!("Local package '{new}' went missing from the sack"))
                    })?;
                Ok((old, r.resolved()))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        replaced.sort_by(|a, b| (&a.0.name, &a.0.arch).cmp(&(&b.0.name, &b.0.arch)));
        Ok(Resolution {
            packages,
            inactive,
            removed,
            replaced,
        })
    }

    /// The base packages that need a removed one (transitively), other than the removed and
    /// replaced ones: why libsolv could not keep them locked. Found by solving a second goal
    /// over the same sack without locks and listing what it would erase besides the removals.
    fn removal_dependents(
        sack: *mut ffi::DnfSack,
        base_named: &[(String, String, *mut DnfPackage)],
        remove: &BTreeSet<&str>,
        replacements: &[LocalPackage],
    ) -> Result<Vec<String>, Error> {
        /// An owned `HyGoal`, freed with `hy_goal_free`.
        struct Goal(HyGoal);
        impl Drop for Goal {
            fn drop(&mut self) {
                // SAFETY: a goal we own.
                unsafe { ffi::hy_goal_free(self.0) }
            }
        }
        // SAFETY: a live sack (owned by the context), which outlives the goal; the goal is ours.
        let goal = Goal(unsafe { ffi::hy_goal_create(sack) });
        for (name, _, pkg) in base_named {
            if remove.contains(name.as_str()) {
                // SAFETY: a live goal and package.
                unsafe { ffi::hy_goal_erase(goal.0, *pkg) };
            }
        }
        for r in replacements {
            // SAFETY: as above.
            unsafe { ffi::hy_goal_install(goal.0, r.pkg.as_ptr()) };
        }
        // SAFETY: a live goal.
        if unsafe { ffi::hy_goal_run_flags(goal.0, ffi::DNF_ALLOW_UNINSTALL) } != 0 {
            return Ok(Vec::new());
        }
        // SAFETY: a live, solved goal.
        let erased = unsafe { goal_list(goal.0, ffi::hy_goal_list_erasures, "erasures")? };
        let mut dependents: Vec<String> = erased
            .items::<DnfPackage>()
            .into_iter()
            // SAFETY: live packages owned by `erased`.
            .map(|p| unsafe { (package_from(p).name, nevra_of(p)) })
            .filter(|(name, _)| !remove.contains(name.as_str()))
            .map(|(_, nevra)| nevra)
            .collect();
        dependents.sort();
        dependents.dedup();
        Ok(dependents)
    }

    /// Upstream's `finalize_overlays`: `(request, NEVRA)` for each request that libdnf's subject
    /// matching (`hy_subject_get_best_selector`, as `dnf_context_install` uses it) finds on a
    /// sack of only the base rpmdb and the local packages. A request matching a base package
    /// named in `remove` is an error (upstream's: use a replacement, not remove + install).
    fn inactive_requests(
        &self,
        requests: &[String],
        local: &[PathBuf],
        remove: &BTreeSet<&str>,
    ) -> Result<Vec<(String, String)>, Error> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let base = SystemSack::load(&self.install_root).map_err(|e| {
            Error::new(format!(
                "Reading the rpmdb of {}: {}",
                self.install_root.display(),
                e.message()
            ))
        })?;
        for path in local {
            let path_c = path_c("local package path", path)?;
            // SAFETY: a live sack; a valid path; the package reference is released at once
            // (the sack keeps the solvable).
            drop(unsafe {
                GObj::from_owned(ffi::dnf_sack_add_cmdline_package(
                    base.as_ptr(),
                    path_c.as_ptr(),
                ))
            });
        }
        let mut inactive = Vec::new();
        for request in requests {
            let subject = ffi::cstring("package request", request).map_err(Error::new)?;
            // SAFETY: a live sack; the subject string is only read; NULL forms select libdnf's
            // default order; no obsoletes, no repo restriction.
            let selector = Selector(unsafe {
                ffi::hy_subject_get_best_selector(
                    subject.as_ptr().cast_mut(),
                    base.as_ptr(),
                    std::ptr::null_mut(),
                    false,
                    std::ptr::null(),
                )
            });
            if selector.0.is_null() {
                continue;
            }
            // SAFETY: a live selector; the result is an owned array of owned packages.
            let Some(matches) =
                (unsafe { PtrArray::from_owned(ffi::hy_selector_matches(selector.0)) })
            else {
                continue;
            };
            let matches = matches.items::<DnfPackage>();
            for &pkg in &matches {
                // SAFETY: a live package owned by `matches`.
                let package = unsafe { package_from(pkg) };
                if package.reponame != ffi::HY_CMDLINE_REPO_NAME
                    && remove.contains(package.name.as_str())
                {
                    return Err(Error::new(format!(
                        "Cannot request '{request}' provided by removed package '{}'",
                        package.nevra()
                    )));
                }
            }
            if let Some(&first) = matches.first() {
                // SAFETY: as above.
                inactive.push((request.clone(), unsafe { nevra_of(first) }));
            }
        }
        Ok(inactive)
    }

    /// The chosen packages (borrowed from a list the caller owns) with their repo, checksum
    /// and a local file holding each (remote ones downloaded, grouped per repo), sorted by
    /// name.
    fn resolved(
        &self,
        installs: &[*mut DnfPackage],
        locals: &[LocalPackage],
        cache_only: bool,
        progress: &mut dyn FnMut(&str, u32),
    ) -> Result<Vec<Resolved>, Error> {
        let repos: BTreeMap<String, Repo> =
            self.all_repos().into_iter().map(|r| (r.id(), r)).collect();
        let mut out = Vec::new();
        // Remote packages per repo id: (index in `out`, package).
        let mut downloads: BTreeMap<String, Vec<(usize, *mut DnfPackage)>> = BTreeMap::new();
        for &pkg in installs {
            // SAFETY: a live package (owned by the caller's list).
            let (package, nevra) = unsafe { (package_from(pkg), nevra_of(pkg)) };
            let repo_id = package.reponame.clone();
            if repo_id == ffi::HY_CMDLINE_REPO_NAME {
                let l = locals.iter().find(|l| l.nevra == nevra).ok_or_else(|| {
                    Error::new(format!(
                        "Local package '{nevra}' went missing from the sack"
                    ))
                })?;
                out.push(l.resolved());
                continue;
            }
            let repo = *repos.get(&repo_id).ok_or_else(|| {
                Error::new(format!(
                    "Package '{nevra}' is from unknown repo '{repo_id}'"
                ))
            })?;
            // SAFETY: a live package and repo (the repo outlives the package: both are
            // borrowed from the context); the filename needs the repo set (libdnf computes it
            // from the repo's location or package cache).
            let (checksum, filename) = unsafe {
                ffi::dnf_package_set_repo(pkg, repo.0);
                (
                    repodata_checksum(pkg),
                    ffi::string(ffi::dnf_package_get_filename(pkg)),
                )
            };
            let checksum = checksum.ok_or_else(|| {
                Error::new(format!(
                    "Package '{nevra}' has no checksum in rpm-md repo '{repo_id}'"
                ))
            })?;
            if filename.is_empty() {
                return Err(Error::new(format!(
                    "Package '{nevra}' of rpm-md repo '{repo_id}' has no file name"
                )));
            }
            let path = PathBuf::from(filename);
            if repo.is_remote() {
                downloads
                    .entry(repo_id.clone())
                    .or_default()
                    .push((out.len(), pkg));
            } else if !path.is_file() {
                return Err(Error::new(format!(
                    "Package '{nevra}' of rpm-md repo '{repo_id}' is missing: {} does not exist",
                    path.display()
                )));
            }
            out.push(Resolved {
                package,
                repo: repo_id,
                path,
                checksum,
                from_base: false,
            });
        }
        for (repo_id, pkgs) in &downloads {
            let repo = repos[repo_id];
            if cache_only {
                // A file whose checksum this crate cannot compute is trusted if it exists.
                let missing = pkgs
                    .iter()
                    .map(|&(i, _)| &out[i])
                    .find(|r| holds(&r.path, &r.checksum) == Some(false));
                if let Some(r) = missing {
                    return Err(Error::new(format!(
                        "Package '{}' of rpm-md repo '{repo_id}' is not in the download cache (cache only)",
                        r.package.nevra()
                    )));
                }
            } else {
                // Only what is not already in the cache (so that the progress, which libdnf
                // measures over all given packages, goes to 100); librepo checks the rest.
                let wanted: Vec<_> = pkgs
                    .iter()
                    .copied()
                    .filter(|&(i, _)| holds(&out[i].path, &out[i].checksum) != Some(true))
                    .collect();
                if !wanted.is_empty() {
                    Self::download(repo, &wanted, &out, &mut *progress)?;
                }
            }
        }
        out.sort_by(|a, b| {
            (&a.package.name, &a.package.arch).cmp(&(&b.package.name, &b.package.arch))
        });
        Ok(out)
    }

    /// Downloads one repo's packages into its package cache (librepo skips files that are
    /// already there with the right checksum), reporting 100% at the end.
    fn download(
        repo: Repo,
        pkgs: &[(usize, *mut DnfPackage)],
        out: &[Resolved],
        progress: &mut dyn FnMut(&str, u32),
    ) -> Result<(), Error> {
        let id = repo.id();
        // SAFETY: g_ptr_array_new returns an owned array without a free function: dropping it
        // leaves the (borrowed) packages alone.
        let array = unsafe { PtrArray::from_owned(ffi::g_ptr_array_new()) }
            .ok_or_else(|| Error::new("g_ptr_array_new failed"))?;
        for &(_, pkg) in pkgs {
            // SAFETY: a live array; the package outlives it (owned by the caller's list).
            unsafe { ffi::g_ptr_array_add(array.as_ptr(), pkg.cast()) };
        }
        let result = with_progress(&id, &mut *progress, |state, error| {
            // SAFETY: live repo, array (of packages of this repo) and state; NULL selects the
            // repo's package cache; valid out-pointer.
            unsafe {
                ffi::dnf_repo_download_packages(
                    repo.0,
                    array.as_ptr(),
                    std::ptr::null(),
                    state,
                    error,
                ) != 0
            }
        })?;
        let nevras = |only_missing: bool| {
            pkgs.iter()
                .map(|&(i, _)| &out[i])
                .filter(|r| !only_missing || !r.path.is_file())
                .map(|r| r.package.nevra())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Err(failure) = result {
            // A failed download may leave a partial file: name every package of the batch.
            return Err(Error::new(format!(
                "Downloading {} from rpm-md repo '{id}': {failure}",
                nevras(false)
            )));
        }
        let missing = nevras(true);
        if !missing.is_empty() {
            return Err(Error::new(format!(
                "Downloading {missing} from rpm-md repo '{id}': no file in the package cache afterwards"
            )));
        }
        progress(&id, 100);
        Ok(())
    }
}

/// The base overrides a solution carries out (see [`check_solution`]).
struct Overridden {
    /// The removed base packages, sorted.
    removed: Vec<Package>,
    /// `(base package, NEVRA of its local replacement)`.
    replaced: Vec<(Package, String)>,
}

/// Upstream's `check_goal_solution`: the base packages the solution removes or obsoletes must
/// be exactly those named in `remove`, and those it replaces (upgrades or downgrades) exactly
/// those named in `replace` (`name -> NEVRA of the local replacement`); nothing is
/// reinstalled.
///
/// # Safety
/// `goal` must be a live goal that was solved.
unsafe fn check_solution(
    goal: HyGoal,
    remove: &BTreeSet<&str>,
    replace: &BTreeMap<&str, &str>,
) -> Result<Overridden, Error> {
    let nevras = |array: &PtrArray| -> Vec<String> {
        array
            .items::<DnfPackage>()
            .into_iter()
            // SAFETY: live packages owned by `array`.
            .map(|p| unsafe { nevra_of(p) })
            .collect()
    };
    // SAFETY: per the caller.
    let (erasures, obsoleted) = unsafe {
        (
            goal_list(goal, ffi::hy_goal_list_erasures, "erasures")?,
            goal_list(goal, ffi::hy_goal_list_obsoleted, "obsoleted packages")?,
        )
    };
    let mut removed = Vec::new();
    let mut forbidden = Vec::new();
    for pkg in erasures
        .items::<DnfPackage>()
        .into_iter()
        .chain(obsoleted.items::<DnfPackage>())
    {
        // SAFETY: a live package owned by one of the lists.
        let package = unsafe { package_from(pkg) };
        if remove.contains(package.name.as_str()) {
            removed.push(package);
        } else {
            forbidden.push(package.nevra());
        }
    }
    if !forbidden.is_empty() {
        forbidden.sort();
        forbidden.dedup();
        return Err(Error::new(format!(
            "Base packages would be removed: {}",
            forbidden.join(", ")
        )));
    }
    removed.sort();
    removed.dedup();
    let kept: Vec<&str> = remove
        .iter()
        .copied()
        .filter(|name| !removed.iter().any(|p| p.name == *name))
        .collect();
    if !kept.is_empty() {
        return Err(Error::new(format!(
            "Base packages not marked to be removed: {}",
            kept.join(", ")
        )));
    }

    // SAFETY: per the caller.
    let (reinstalls, upgrades, downgrades) = unsafe {
        (
            goal_list(goal, ffi::hy_goal_list_reinstalls, "reinstalls")?,
            goal_list(goal, ffi::hy_goal_list_upgrades, "upgrades")?,
            goal_list(goal, ffi::hy_goal_list_downgrades, "downgrades")?,
        )
    };
    let mut forbidden = nevras(&reinstalls);
    let mut replaced = Vec::new();
    for pkg in upgrades
        .items::<DnfPackage>()
        .into_iter()
        .chain(downgrades.items::<DnfPackage>())
    {
        // SAFETY: a live goal and package; the result is an owned array of owned packages.
        let old =
            unsafe { PtrArray::from_owned(ffi::hy_goal_list_obsoleted_by_package(goal, pkg)) };
        // SAFETY: a live package.
        let (new, nevra) = unsafe { (package_from(pkg), nevra_of(pkg)) };
        let same_name = old.as_ref().and_then(|old| {
            old.items::<DnfPackage>()
                .into_iter()
                // SAFETY: live packages owned by `old`.
                .map(|o| unsafe { package_from(o) })
                .find(|o| o.name == new.name)
        });
        match same_name {
            Some(old)
                if new.reponame == ffi::HY_CMDLINE_REPO_NAME
                    && replace.get(new.name.as_str()) == Some(&nevra.as_str()) =>
            {
                replaced.push((old, nevra));
            }
            Some(old) => forbidden.push(old.nevra()),
            None => forbidden.push(nevra),
        }
    }
    if !forbidden.is_empty() {
        forbidden.sort();
        forbidden.dedup();
        return Err(Error::new(format!(
            "Some base packages would be replaced: {}",
            forbidden.join(", ")
        )));
    }
    let kept: Vec<&str> = replace
        .keys()
        .copied()
        .filter(|name| !replaced.iter().any(|(p, _)| p.name == *name))
        .collect();
    if !kept.is_empty() {
        return Err(Error::new(format!(
            "Base packages not marked to be replaced: {}",
            kept.join(", ")
        )));
    }
    Ok(Overridden { removed, replaced })
}

/// Reads one advisory (upstream's `advisory_variant_new`, minus the packages).
///
/// # Safety
/// `adv` must be a live `DnfAdvisory`.
unsafe fn advisory_from(adv: *mut DnfAdvisory, id: String, kind: c_int) -> Advisory {
    // SAFETY: per the caller; the severity string is borrowed from the advisory.
    let severity_ptr = unsafe { ffi::dnf_advisory_get_severity(adv) };
    let severity = if severity_ptr.is_null() {
        text::severity(None)
    } else {
        // SAFETY: non-NULL, NUL-terminated.
        text::severity(Some(&unsafe { ffi::string(severity_ptr) }))
    };
    let mut refs = Vec::new();
    // SAFETY: per the caller; the result is an owned array of owned references.
    if let Some(array) = unsafe { PtrArray::from_owned(ffi::dnf_advisory_get_references(adv)) } {
        for r in array.items::<DnfAdvisoryRef>() {
            let opt = |p: *const c_char| {
                // SAFETY: NULL or a string borrowed from the live reference.
                (!p.is_null()).then(|| unsafe { ffi::string(p) })
            };
            // SAFETY: a live reference owned by `array`.
            let (kind, url, title) = unsafe {
                (
                    ffi::dnf_advisoryref_get_kind(r),
                    opt(ffi::dnf_advisoryref_get_url(r)),
                    opt(ffi::dnf_advisoryref_get_title(r)),
                )
            };
            refs.push(text::Reference {
                bugzilla: kind == ffi::DNF_REFERENCE_KIND_BUGZILLA,
                url,
                title,
            });
        }
    }
    let cve_references = text::cve_references(refs);
    Advisory {
        id,
        kind: u32::try_from(kind).unwrap_or_default(),
        severity,
        nevras: Vec::new(),
        cve_references,
    }
}
