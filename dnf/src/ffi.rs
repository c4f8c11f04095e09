//! The raw C interface: hand-written declarations of the libdnf 0.69, GLib/GObject and librpm
//! symbols this crate uses, plus the small owning handles and helpers that free them.
//!
//! Provenance: the signatures are transcribed from the Debian 12 headers
//! (`/usr/include/libdnf/*.h` from libdnf-dev 0.69.0, `/usr/include/glib-2.0`,
//! `/usr/include/rpm/{rpmlib,rpmmacro,rpmver,rpmts,rpmps,rpmprob,rpmio,header,rpmcallback}.h`
//! and `/usr/include/rpm/{rpmdb,rpmfi,rpmfiles,rpmtag,rpmtd,rpmds}.h` from librpm-dev 4.18.0);
//! enum values are copied from the same headers (`RPMSCRIPT_FLAG_EXPAND` from librpm's
//! uninstalled `lib/rpmscript.h`). Nothing outside this module and the wrapper modules
//! (`context`, `rpmdb`, `rpmdb_write`) touches a raw pointer.
//!
//! libdnf, libsolv and librpm keep process-global state (rpm macros, libdnf's main config,
//! the metadata lock) and are not thread-safe: every entry point of the safe API runs inside
//! [`locked`], which serialises them across threads.

use std::cell::Cell;
use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_ulong, c_void};
use std::ptr::NonNull;
use std::sync::{Mutex, OnceLock};

/// Declares zero-sized opaque C types that can only be used behind raw pointers.
macro_rules! opaque {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        $(
            $(#[$doc])*
            #[repr(C)]
            pub(crate) struct $name {
                _data: [u8; 0],
                _marker: std::marker::PhantomData<(*mut u8, std::marker::PhantomPinned)>,
            }
        )*
    };
}

opaque! {
    /// `DnfContext` (a GObject).
    DnfContext;
    /// `DnfRepo` (a GObject).
    DnfRepo;
    /// `DnfState` (a GObject).
    DnfState;
    /// `DnfSack` (a GObject).
    DnfSack;
    /// `DnfPackage` (a GObject).
    DnfPackage;
    /// `libdnf::Query` (`HyQuery` points to one).
    HyQueryImpl;
    /// `libdnf::Advisory` (freed with `dnf_advisory_free`).
    DnfAdvisory;
    /// `libdnf::AdvisoryRef` (freed with `dnf_advisoryref_free`).
    DnfAdvisoryRef;
    /// `libdnf::Repo` (`HyRepo` points to one).
    HyRepoImpl;
    /// librpm's `struct rpmver_s` (`rpmver` points to one).
    RpmVer;
    /// `libdnf::Goal` (`HyGoal` points to one).
    HyGoalImpl;
    /// `libdnf::Selector` (`HySelector` points to one).
    HySelectorImpl;
    /// librpm's `struct rpmts_s` (`rpmts` points to one).
    RpmTs;
    /// librpm's `struct headerToken_s` (`Header` points to one).
    RpmHeader;
    /// librpm's `struct _FD_s` (`FD_t` points to one).
    RpmFd;
    /// librpm's `struct rpmps_s` (`rpmps` points to one).
    RpmPs;
    /// librpm's `struct rpmpsi_s` (`rpmpsi` points to one).
    RpmPsi;
    /// librpm's `struct rpmProblem_s` (`rpmProblem` points to one).
    RpmProblem;
    /// librpm's `struct rpmdbMatchIterator_s` (`rpmdbMatchIterator` points to one).
    RpmDbMatchIterator;
    /// librpm's `struct rpmfi_s` (`rpmfi` points to one).
    RpmFi;
    /// librpm's `struct rpmtd_s` (`rpmtd` points to one; only used through `rpmtdNew`).
    RpmTd;
}

/// `GError`.
#[repr(C)]
pub(crate) struct GError {
    pub(crate) domain: u32,
    pub(crate) code: c_int,
    pub(crate) message: *mut c_char,
}

/// `GPtrArray` (its public fields).
#[repr(C)]
pub(crate) struct GPtrArray {
    pub(crate) pdata: *mut *mut c_void,
    pub(crate) len: c_uint,
}

/// `gboolean`.
pub(crate) type GBoolean = c_int;
/// `HyQuery`.
pub(crate) type HyQuery = *mut HyQueryImpl;
/// `HyRepo`.
pub(crate) type HyRepo = *mut HyRepoImpl;
/// `HyGoal`.
pub(crate) type HyGoal = *mut HyGoalImpl;
/// `HySelector`.
pub(crate) type HySelector = *mut HySelectorImpl;

/// `G_MAXUINT`.
pub(crate) const G_MAXUINT: c_uint = c_uint::MAX;

// DnfRepoEnabled
pub(crate) const DNF_REPO_ENABLED_NONE: c_int = 0;
pub(crate) const DNF_REPO_ENABLED_PACKAGES: c_int = 1;
// DnfRepoKind
pub(crate) const DNF_REPO_KIND_REMOTE: c_int = 0;
// DnfRepoUpdateFlags
pub(crate) const DNF_REPO_UPDATE_FLAG_FORCE: c_int = 1;
// DnfContextSetupSackFlags
pub(crate) const DNF_CONTEXT_SETUP_SACK_FLAG_SKIP_RPMDB: c_int = 1 << 1;
pub(crate) const DNF_CONTEXT_SETUP_SACK_FLAG_SKIP_FILELISTS: c_int = 1 << 2;
pub(crate) const DNF_CONTEXT_SETUP_SACK_FLAG_LOAD_UPDATEINFO: c_int = 1 << 3;
// DnfSackLoadFlags
pub(crate) const DNF_SACK_LOAD_FLAG_NONE: c_int = 0;
// enum DnfConfPriority
pub(crate) const DNF_CONF_COMMANDLINE: c_int = 70;
// DnfAdvisoryKind
pub(crate) const DNF_ADVISORY_KIND_SECURITY: c_int = 1;
// DnfAdvisoryRefKind
pub(crate) const DNF_REFERENCE_KIND_BUGZILLA: c_int = 1;
// _hy_key_name_e
pub(crate) const HY_PKG_ARCH: c_int = 2;
pub(crate) const HY_PKG_EVR: c_int = 6;
pub(crate) const HY_PKG_NAME: c_int = 8;
pub(crate) const HY_PKG_SUMMARY: c_int = 16;
// _hy_comparison_type_e
pub(crate) const HY_ICASE: c_int = 1 << 0;
pub(crate) const HY_EQ: c_int = 1 << 8;
pub(crate) const HY_SUBSTR: c_int = 1 << 11;
pub(crate) const HY_GLOB: c_int = 1 << 12;
// rpmmacro.h
pub(crate) const RMIL_CMDLINE: c_int = -7;
// DnfError (dnf-types.h)
pub(crate) const DNF_ERROR_NO_PACKAGES_TO_UPDATE: c_int = 27;
pub(crate) const DNF_ERROR_PACKAGE_NOT_FOUND: c_int = 8;
// DnfGoalActions (hy-goal.h)
pub(crate) const DNF_INSTALL: c_int = 1 << 4;
pub(crate) const DNF_ALLOW_UNINSTALL: c_int = 1 << 10;
pub(crate) const DNF_IGNORE_WEAK_DEPS: c_int = 1 << 13;
// _hy_key_name_e (more)
pub(crate) const HY_PKG_REPONAME: c_int = 13;
// hy-repo.h
pub(crate) const HY_SYSTEM_REPO_NAME: &str = "@System";
pub(crate) const HY_CMDLINE_REPO_NAME: &str = "@commandline";
// rpmts.h: enum rpmtransFlags_e
pub(crate) const RPMTRANS_FLAG_NOSCRIPTS: u32 = 1 << 2;
pub(crate) const RPMTRANS_FLAG_JUSTDB: u32 = 1 << 3;
pub(crate) const RPMTRANS_FLAG_NOTRIGGERS: u32 = 1 << 4;
pub(crate) const RPMTRANS_FLAG_NOPLUGINS: u32 = 1 << 7;
pub(crate) const RPMTRANS_FLAG_NOCONTEXTS: u32 = 1 << 8;
// rpmts.h: enum rpmVSFlags_e and the _RPMVSF_NODIGESTS / _RPMVSF_NOSIGNATURES masks
pub(crate) const RPMVSF_MASK_NODIGESTS: u32 = (1 << 8) | (1 << 9) | (1 << 16) | (1 << 17);
pub(crate) const RPMVSF_MASK_NOSIGNATURES: u32 = (1 << 10) | (1 << 11) | (1 << 18) | (1 << 19);
// rpmprob.h: enum rpmprobFilterFlags_e
pub(crate) const RPMPROB_FILTER_REPLACENEWFILES: u32 = 1 << 4;
pub(crate) const RPMPROB_FILTER_REPLACEOLDFILES: u32 = 1 << 5;
pub(crate) const RPMPROB_FILTER_OLDPACKAGE: u32 = 1 << 6;
pub(crate) const RPMPROB_FILTER_DISKSPACE: u32 = 1 << 7;
// rpmcallback.h: rpmCallbackType
pub(crate) const RPMCALLBACK_INST_OPEN_FILE: c_int = 1 << 2;
pub(crate) const RPMCALLBACK_INST_CLOSE_FILE: c_int = 1 << 3;
// rpmtypes.h: rpmRC
pub(crate) const RPMRC_OK: c_int = 0;
pub(crate) const RPMRC_NOTTRUSTED: c_int = 3;
pub(crate) const RPMRC_NOKEY: c_int = 4;
// rpmtag.h: rpmTag_e and rpmDbiTag_e
pub(crate) const RPMTAG_NAME: i32 = 1000;
pub(crate) const RPMTAG_VERSION: i32 = 1001;
pub(crate) const RPMTAG_RELEASE: i32 = 1002;
pub(crate) const RPMTAG_EPOCH: i32 = 1003;
pub(crate) const RPMTAG_ARCH: i32 = 1022;
pub(crate) const RPMTAG_BASENAMES: i32 = 1117;
pub(crate) const RPMTAG_TRANSFILETRIGGERSCRIPTS: i32 = 5076;
pub(crate) const RPMTAG_TRANSFILETRIGGERSCRIPTPROG: i32 = 5077;
pub(crate) const RPMTAG_TRANSFILETRIGGERSCRIPTFLAGS: i32 = 5078;
pub(crate) const RPMTAG_TRANSFILETRIGGERNAME: i32 = 5079;
pub(crate) const RPMTAG_TRANSFILETRIGGERINDEX: i32 = 5080;
pub(crate) const RPMTAG_TRANSFILETRIGGERFLAGS: i32 = 5082;
pub(crate) const RPMDBI_PACKAGES: i32 = 0;
// header.h: headerGetFlags
pub(crate) const HEADERGET_MINMEM: u32 = 1 << 0;
// rpmds.h: rpmsenseFlags
pub(crate) const RPMSENSE_TRIGGERIN: u64 = 1 << 16;
// lib/rpmscript.h: rpmscriptFlags
pub(crate) const RPMSCRIPT_FLAG_EXPAND: u64 = 1 << 0;
// rpmfiles.h: RPMFI_FLAGS_QUERY
pub(crate) const RPMFI_FLAGS_QUERY: u32 = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 15) | (1 << 16);

/// `rpmCallbackFunction`: librpm's transaction notification callback.
pub(crate) type RpmCallbackFn = unsafe extern "C" fn(
    h: *const c_void,
    what: c_int,
    amount: u64,
    total: u64,
    key: *const c_void,
    data: *mut c_void,
) -> *mut c_void;

/// `void (*)(DnfState *, guint, gpointer)`: the "percentage-changed" handler type.
pub(crate) type PercentageChangedFn = unsafe extern "C" fn(*mut DnfState, c_uint, *mut c_void);

unsafe extern "C" {
    pub(crate) fn g_free(mem: *mut c_void);
    pub(crate) fn g_error_free(error: *mut GError);
    pub(crate) fn g_ptr_array_unref(array: *mut GPtrArray);
    pub(crate) fn g_ptr_array_new() -> *mut GPtrArray;
    pub(crate) fn g_ptr_array_add(array: *mut GPtrArray, data: *mut c_void);
}

unsafe extern "C" {
    pub(crate) fn g_object_unref(object: *mut c_void);
    pub(crate) fn g_signal_connect_data(
        instance: *mut c_void,
        detailed_signal: *const c_char,
        c_handler: Option<PercentageChangedFn>,
        data: *mut c_void,
        destroy_data: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
        connect_flags: c_int,
    ) -> c_ulong;
    pub(crate) fn g_signal_handler_disconnect(instance: *mut c_void, handler_id: c_ulong);
}

unsafe extern "C" {
    // dnf-context.h
    pub(crate) fn dnf_context_globals_init(error: *mut *mut GError) -> GBoolean;
    pub(crate) fn dnf_context_new() -> *mut DnfContext;
    pub(crate) fn dnf_context_set_repo_dir(ctx: *mut DnfContext, repo_dir: *const c_char);
    pub(crate) fn dnf_context_set_cache_dir(ctx: *mut DnfContext, cache_dir: *const c_char);
    pub(crate) fn dnf_context_set_solv_dir(ctx: *mut DnfContext, solv_dir: *const c_char);
    pub(crate) fn dnf_context_set_lock_dir(ctx: *mut DnfContext, lock_dir: *const c_char);
    pub(crate) fn dnf_context_set_user_agent(ctx: *mut DnfContext, user_agent: *const c_char);
    pub(crate) fn dnf_context_set_write_history(ctx: *mut DnfContext, value: GBoolean);
    pub(crate) fn dnf_context_set_check_disk_space(ctx: *mut DnfContext, value: GBoolean);
    pub(crate) fn dnf_context_set_check_transaction(ctx: *mut DnfContext, value: GBoolean);
    pub(crate) fn dnf_context_set_plugins_dir(ctx: *mut DnfContext, dir: *const c_char);
    pub(crate) fn dnf_context_set_plugins_all_disabled(disabled: GBoolean);
    pub(crate) fn dnf_context_set_zchunk(ctx: *mut DnfContext, value: GBoolean);
    pub(crate) fn dnf_context_set_rpm_macro(
        ctx: *mut DnfContext,
        key: *const c_char,
        value: *const c_char,
    );
    pub(crate) fn dnf_context_set_release_ver(ctx: *mut DnfContext, release_ver: *const c_char);
    pub(crate) fn dnf_context_set_install_root(ctx: *mut DnfContext, root: *const c_char);
    pub(crate) fn dnf_context_set_source_root(ctx: *mut DnfContext, root: *const c_char);
    pub(crate) fn dnf_context_set_vars_dir(ctx: *mut DnfContext, vars_dir: *const *const c_char);
    pub(crate) fn dnf_context_set_enable_filelists(ctx: *mut DnfContext, value: GBoolean);
    pub(crate) fn dnf_context_set_cache_age(ctx: *mut DnfContext, cache_age: c_uint);
    pub(crate) fn dnf_context_setup(
        ctx: *mut DnfContext,
        cancellable: *mut c_void,
        error: *mut *mut GError,
    ) -> GBoolean;
    pub(crate) fn dnf_context_setup_sack_with_flags(
        ctx: *mut DnfContext,
        state: *mut DnfState,
        flags: c_int,
        error: *mut *mut GError,
    ) -> GBoolean;
    pub(crate) fn dnf_context_get_repos(ctx: *mut DnfContext) -> *mut GPtrArray;
    pub(crate) fn dnf_context_get_sack(ctx: *mut DnfContext) -> *mut DnfSack;
    pub(crate) fn dnf_context_get_goal(ctx: *mut DnfContext) -> HyGoal;
    pub(crate) fn dnf_context_install(
        ctx: *mut DnfContext,
        name: *const c_char,
        error: *mut *mut GError,
    ) -> GBoolean;

    // dnf-types.h
    pub(crate) fn dnf_error_quark() -> u32;

    // dnf-conf.h
    pub(crate) fn dnf_conf_add_setopt(
        key: *const c_char,
        priority: c_int,
        value: *const c_char,
        error: *mut *mut GError,
    ) -> GBoolean;

    // dnf-repo.h
    pub(crate) fn dnf_repo_get_id(repo: *mut DnfRepo) -> *const c_char;
    pub(crate) fn dnf_repo_get_location(repo: *mut DnfRepo) -> *const c_char;
    pub(crate) fn dnf_repo_get_filename(repo: *mut DnfRepo) -> *const c_char;
    pub(crate) fn dnf_repo_get_enabled(repo: *mut DnfRepo) -> c_int;
    pub(crate) fn dnf_repo_get_kind(repo: *mut DnfRepo) -> c_int;
    pub(crate) fn dnf_repo_get_description(repo: *mut DnfRepo) -> *mut c_char;
    pub(crate) fn dnf_repo_get_timestamp_generated(repo: *mut DnfRepo) -> u64;
    pub(crate) fn dnf_repo_get_n_solvables(repo: *mut DnfRepo) -> c_uint;
    pub(crate) fn dnf_repo_get_filename_md(
        repo: *mut DnfRepo,
        md_kind: *const c_char,
    ) -> *const c_char;
    pub(crate) fn dnf_repo_is_devel(repo: *mut DnfRepo) -> GBoolean;
    pub(crate) fn dnf_repo_is_source(repo: *mut DnfRepo) -> GBoolean;
    pub(crate) fn dnf_repo_set_enabled(repo: *mut DnfRepo, enabled: c_int);
    pub(crate) fn dnf_repo_set_data(
        repo: *mut DnfRepo,
        parameter: *const c_char,
        value: *const c_char,
        error: *mut *mut GError,
    ) -> GBoolean;
    pub(crate) fn dnf_repo_commit(repo: *mut DnfRepo, error: *mut *mut GError) -> GBoolean;
    pub(crate) fn dnf_repo_check(
        repo: *mut DnfRepo,
        permissible_cache_age: c_uint,
        state: *mut DnfState,
        error: *mut *mut GError,
    ) -> GBoolean;
    pub(crate) fn dnf_repo_update(
        repo: *mut DnfRepo,
        flags: c_int,
        state: *mut DnfState,
        error: *mut *mut GError,
    ) -> GBoolean;
    pub(crate) fn dnf_repo_download_packages(
        repo: *mut DnfRepo,
        packages: *mut GPtrArray,
        directory: *const c_char,
        state: *mut DnfState,
        error: *mut *mut GError,
    ) -> GBoolean;

    // dnf-state.h
    pub(crate) fn dnf_state_new() -> *mut DnfState;
    pub(crate) fn dnf_state_reset(state: *mut DnfState) -> GBoolean;

    // dnf-sack.h
    pub(crate) fn dnf_sack_new() -> *mut DnfSack;
    pub(crate) fn dnf_sack_set_cachedir(sack: *mut DnfSack, value: *const c_char);
    pub(crate) fn dnf_sack_set_rootdir(sack: *mut DnfSack, value: *const c_char);
    pub(crate) fn dnf_sack_setup(
        sack: *mut DnfSack,
        flags: c_int,
        error: *mut *mut GError,
    ) -> GBoolean;
    pub(crate) fn dnf_sack_set_installonly(sack: *mut DnfSack, installonly: *const *const c_char);
    pub(crate) fn dnf_sack_set_installonly_limit(sack: *mut DnfSack, limit: c_uint);
    pub(crate) fn dnf_sack_add_cmdline_package(
        sack: *mut DnfSack,
        path: *const c_char,
    ) -> *mut DnfPackage;
    pub(crate) fn dnf_sack_load_system_repo(
        sack: *mut DnfSack,
        repo: HyRepo,
        flags: c_int,
        error: *mut *mut GError,
    ) -> GBoolean;

    // hy-query.h
    pub(crate) fn hy_query_create(sack: *mut DnfSack) -> HyQuery;
    pub(crate) fn hy_query_free(q: HyQuery);
    pub(crate) fn hy_query_filter(
        q: HyQuery,
        keyname: c_int,
        cmp_type: c_int,
        matches: *const c_char,
    ) -> c_int;
    pub(crate) fn hy_query_filter_provides_in(q: HyQuery, reldep_strs: *mut *mut c_char) -> c_int;
    pub(crate) fn hy_query_filter_latest_per_arch(q: HyQuery, val: c_int);
    pub(crate) fn hy_query_run(q: HyQuery) -> *mut GPtrArray;
    pub(crate) fn hy_query_union(q: HyQuery, other: HyQuery);
    pub(crate) fn hy_query_intersection(q: HyQuery, other: HyQuery);

    // hy-goal.h, dnf-goal.h
    pub(crate) fn hy_goal_install(goal: HyGoal, pkg: *mut DnfPackage) -> c_int;
    pub(crate) fn hy_goal_create(sack: *mut DnfSack) -> HyGoal;
    pub(crate) fn hy_goal_free(goal: HyGoal);
    pub(crate) fn hy_goal_erase(goal: HyGoal, pkg: *mut DnfPackage) -> c_int;
    pub(crate) fn hy_goal_run_flags(goal: HyGoal, flags: c_int) -> c_int;
    pub(crate) fn hy_goal_lock(
        goal: HyGoal,
        pkg: *mut DnfPackage,
        error: *mut *mut GError,
    ) -> c_int;
    pub(crate) fn dnf_goal_depsolve(
        goal: HyGoal,
        flags: c_int,
        error: *mut *mut GError,
    ) -> GBoolean;
    pub(crate) fn hy_goal_list_erasures(goal: HyGoal, error: *mut *mut GError) -> *mut GPtrArray;
    pub(crate) fn hy_goal_list_installs(goal: HyGoal, error: *mut *mut GError) -> *mut GPtrArray;
    pub(crate) fn hy_goal_list_obsoleted(goal: HyGoal, error: *mut *mut GError) -> *mut GPtrArray;
    pub(crate) fn hy_goal_list_reinstalls(goal: HyGoal, error: *mut *mut GError) -> *mut GPtrArray;
    pub(crate) fn hy_goal_list_upgrades(goal: HyGoal, error: *mut *mut GError) -> *mut GPtrArray;
    pub(crate) fn hy_goal_list_downgrades(goal: HyGoal, error: *mut *mut GError) -> *mut GPtrArray;
    pub(crate) fn hy_goal_list_obsoleted_by_package(
        goal: HyGoal,
        pkg: *mut DnfPackage,
    ) -> *mut GPtrArray;

    // hy-subject.h, hy-selector.h (`HySubject` is a plain `char *`)
    pub(crate) fn hy_subject_get_best_selector(
        subject: *mut c_char,
        sack: *mut DnfSack,
        forms: *mut c_int,
        obsoletes: bool,
        reponame: *const c_char,
    ) -> HySelector;
    pub(crate) fn hy_selector_matches(selector: HySelector) -> *mut GPtrArray;
    pub(crate) fn hy_selector_free(selector: HySelector);

    // hy-util.h
    pub(crate) fn hy_chksum_name(chksum_type: c_int) -> *const c_char;
    pub(crate) fn hy_chksum_str(chksum: *const u8, chksum_type: c_int) -> *mut c_char;

    // hy-package.h, dnf-package.h
    pub(crate) fn dnf_package_get_nevra(pkg: *mut DnfPackage) -> *const c_char;
    pub(crate) fn dnf_package_get_chksum(
        pkg: *mut DnfPackage,
        chksum_type: *mut c_int,
    ) -> *const u8;
    pub(crate) fn dnf_package_set_repo(pkg: *mut DnfPackage, repo: *mut DnfRepo);
    pub(crate) fn dnf_package_get_filename(pkg: *mut DnfPackage) -> *const c_char;
    pub(crate) fn dnf_package_get_name(pkg: *mut DnfPackage) -> *const c_char;
    pub(crate) fn dnf_package_get_epoch(pkg: *mut DnfPackage) -> u64;
    pub(crate) fn dnf_package_get_version(pkg: *mut DnfPackage) -> *const c_char;
    pub(crate) fn dnf_package_get_release(pkg: *mut DnfPackage) -> *const c_char;
    pub(crate) fn dnf_package_get_arch(pkg: *mut DnfPackage) -> *const c_char;
    pub(crate) fn dnf_package_get_summary(pkg: *mut DnfPackage) -> *const c_char;
    pub(crate) fn dnf_package_get_reponame(pkg: *mut DnfPackage) -> *const c_char;
    pub(crate) fn dnf_package_get_advisories(
        pkg: *mut DnfPackage,
        cmp_type: c_int,
    ) -> *mut GPtrArray;

    // dnf-advisory.h, dnf-advisoryref.h
    pub(crate) fn dnf_advisory_get_id(advisory: *mut DnfAdvisory) -> *const c_char;
    pub(crate) fn dnf_advisory_get_kind(advisory: *mut DnfAdvisory) -> c_int;
    pub(crate) fn dnf_advisory_get_severity(advisory: *mut DnfAdvisory) -> *const c_char;
    pub(crate) fn dnf_advisory_get_references(advisory: *mut DnfAdvisory) -> *mut GPtrArray;
    pub(crate) fn dnf_advisoryref_get_kind(reference: *mut DnfAdvisoryRef) -> c_int;
    pub(crate) fn dnf_advisoryref_get_title(reference: *mut DnfAdvisoryRef) -> *const c_char;
    pub(crate) fn dnf_advisoryref_get_url(reference: *mut DnfAdvisoryRef) -> *const c_char;
}

unsafe extern "C" {
    pub(crate) fn rpmvercmp(a: *const c_char, b: *const c_char) -> c_int;
    pub(crate) fn rpmverParse(evr: *const c_char) -> *mut RpmVer;
    pub(crate) fn rpmverCmp(v1: *mut RpmVer, v2: *mut RpmVer) -> c_int;
    pub(crate) fn rpmverFree(rv: *mut RpmVer) -> *mut RpmVer;
    pub(crate) fn rpmPushMacro(
        mc: *mut c_void,
        name: *const c_char,
        opts: *const c_char,
        body: *const c_char,
        level: c_int,
    ) -> c_int;
    pub(crate) fn rpmPopMacro(mc: *mut c_void, name: *const c_char) -> c_int;
    /// Returns a `malloc`ed string; the argument list ends with a NULL.
    pub(crate) fn rpmExpand(arg: *const c_char, ...) -> *mut c_char;

    // rpmts.h
    pub(crate) fn rpmtsCreate() -> *mut RpmTs;
    pub(crate) fn rpmtsFree(ts: *mut RpmTs) -> *mut RpmTs;
    pub(crate) fn rpmtsSetRootDir(ts: *mut RpmTs, root_dir: *const c_char) -> c_int;
    pub(crate) fn rpmtsSetVSFlags(ts: *mut RpmTs, vsflags: u32) -> u32;
    pub(crate) fn rpmtsSetVfyLevel(ts: *mut RpmTs, vfylevel: c_int) -> c_int;
    pub(crate) fn rpmtsSetFlags(ts: *mut RpmTs, trans_flags: u32) -> u32;
    pub(crate) fn rpmtsSetNotifyCallback(
        ts: *mut RpmTs,
        notify: Option<RpmCallbackFn>,
        notify_data: *mut c_void,
    ) -> c_int;
    pub(crate) fn rpmtsAddInstallElement(
        ts: *mut RpmTs,
        h: *mut RpmHeader,
        key: *const c_void,
        upgrade: c_int,
        relocs: *mut c_void,
    ) -> c_int;
    pub(crate) fn rpmtsAddEraseElement(ts: *mut RpmTs, h: *mut RpmHeader, dboffset: c_int)
    -> c_int;
    pub(crate) fn rpmtsInitIterator(
        ts: *mut RpmTs,
        rpmtag: i32,
        keyp: *const c_void,
        keylen: usize,
    ) -> *mut RpmDbMatchIterator;
    pub(crate) fn rpmtsOrder(ts: *mut RpmTs) -> c_int;
    pub(crate) fn rpmtsRun(ts: *mut RpmTs, ok_probs: *mut RpmPs, ignore_set: u32) -> c_int;
    pub(crate) fn rpmtsProblems(ts: *mut RpmTs) -> *mut RpmPs;

    // rpmps.h, rpmprob.h
    pub(crate) fn rpmpsInitIterator(ps: *mut RpmPs) -> *mut RpmPsi;
    pub(crate) fn rpmpsiNext(psi: *mut RpmPsi) -> *mut RpmProblem;
    pub(crate) fn rpmpsFreeIterator(psi: *mut RpmPsi) -> *mut RpmPsi;
    pub(crate) fn rpmpsFree(ps: *mut RpmPs) -> *mut RpmPs;
    pub(crate) fn rpmProblemString(prob: *mut RpmProblem) -> *mut c_char;

    // rpmlib.h, header.h
    pub(crate) fn rpmReadPackageFile(
        ts: *mut RpmTs,
        fd: *mut RpmFd,
        file_name: *const c_char,
        hdrp: *mut *mut RpmHeader,
    ) -> c_int;
    pub(crate) fn headerFree(h: *mut RpmHeader) -> *mut RpmHeader;
    pub(crate) fn headerGetString(h: *mut RpmHeader, tag: i32) -> *const c_char;
    pub(crate) fn headerGetNumber(h: *mut RpmHeader, tag: i32) -> u64;
    pub(crate) fn headerGet(h: *mut RpmHeader, tag: i32, td: *mut RpmTd, flags: u32) -> c_int;

    // rpmtd.h
    pub(crate) fn rpmtdNew() -> *mut RpmTd;
    pub(crate) fn rpmtdFree(td: *mut RpmTd) -> *mut RpmTd;
    pub(crate) fn rpmtdCount(td: *mut RpmTd) -> u32;
    pub(crate) fn rpmtdSetIndex(td: *mut RpmTd, index: c_int) -> c_int;
    pub(crate) fn rpmtdGetString(td: *mut RpmTd) -> *const c_char;
    pub(crate) fn rpmtdGetNumber(td: *mut RpmTd) -> u64;

    // rpmdb.h
    pub(crate) fn rpmdbNextIterator(mi: *mut RpmDbMatchIterator) -> *mut RpmHeader;
    pub(crate) fn rpmdbGetIteratorOffset(mi: *mut RpmDbMatchIterator) -> c_uint;
    pub(crate) fn rpmdbFreeIterator(mi: *mut RpmDbMatchIterator) -> *mut RpmDbMatchIterator;

    // rpmfi.h
    pub(crate) fn rpmfiNew(ts: *mut RpmTs, h: *mut RpmHeader, tag_n: i32, flags: u32)
    -> *mut RpmFi;
    pub(crate) fn rpmfiNext(fi: *mut RpmFi) -> c_int;
    pub(crate) fn rpmfiFN(fi: *mut RpmFi) -> *const c_char;
    pub(crate) fn rpmfiFMode(fi: *mut RpmFi) -> u16;
    pub(crate) fn rpmfiFree(fi: *mut RpmFi) -> *mut RpmFi;

    // rpmio.h
    pub(crate) fn Fopen(path: *const c_char, fmode: *const c_char) -> *mut RpmFd;
    pub(crate) fn Fclose(fd: *mut RpmFd) -> c_int;
    pub(crate) fn Ferror(fd: *mut RpmFd) -> c_int;
    pub(crate) fn Fstrerror(fd: *mut RpmFd) -> *const c_char;
}

unsafe extern "C" {
    /// libc's `free`, for strings librpm allocates with `malloc` (`rpmProblemString`,
    /// `rpmExpand`).
    pub(crate) fn free(ptr: *mut c_void);
}

// ---------------------------------------------------------------------------------------------
// Serialisation and process-global initialisation.

static LOCK: Mutex<()> = Mutex::new(());

thread_local! {
    /// How deep this thread is inside [`locked`] (re-entry from a callback must not deadlock).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` while holding the process-wide libdnf lock (re-entrant on the same thread).
pub(crate) fn locked<R>(f: impl FnOnce() -> R) -> R {
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    let outer = DEPTH.with(|d| d.get()) == 0;
    let _guard = outer.then(|| LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    DEPTH.with(|d| d.set(d.get() + 1));
    let _depth = Depth;
    f()
}

/// One-time process setup: libdnf's globals (librepo, `rpmReadConfigFiles`), rpm's `_dbpath`
/// pointed at `/usr/share/rpm` (Debian's rpm defaults to `~/.rpmdb`), countme off and plugins
/// off. Call inside [`locked`].
pub(crate) fn global_init() -> Result<(), String> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        let mut error: *mut GError = std::ptr::null_mut();
        // SAFETY: `error` is a valid out-pointer; the function only sets it on failure.
        let ok = unsafe { dnf_context_globals_init(&mut error) };
        if ok == 0 {
            // SAFETY: on failure libdnf set `error` to an owned GError (or left it NULL).
            return Err(unsafe { take_error(error) });
        }
        // SAFETY: NULL selects rpm's global macro context; the strings are NUL-terminated
        // literals that rpm copies.
        unsafe {
            rpmPushMacro(
                std::ptr::null_mut(),
                c"_dbpath".as_ptr(),
                std::ptr::null(),
                c"/usr/share/rpm".as_ptr(),
                RMIL_CMDLINE,
            );
        }
        // SAFETY: valid NUL-terminated strings; a NULL error pointer is allowed.
        unsafe {
            dnf_conf_add_setopt(
                c"*.countme".as_ptr(),
                DNF_CONF_COMMANDLINE,
                c"false".as_ptr(),
                std::ptr::null_mut(),
            );
            dnf_context_set_plugins_all_disabled(1);
        }
        Ok(())
    })
    .clone()
}

// ---------------------------------------------------------------------------------------------
// Owning handles and string helpers.

/// An owned reference to a GObject, released with `g_object_unref`.
pub(crate) struct GObj<T>(NonNull<T>);

impl<T> GObj<T> {
    /// Takes ownership of a full reference; `None` for NULL.
    ///
    /// # Safety
    /// `ptr` must be NULL or a GObject instance of type `T` whose reference the caller owns.
    pub(crate) unsafe fn from_owned(ptr: *mut T) -> Option<Self> {
        NonNull::new(ptr).map(Self)
    }

    /// The raw pointer (still owned by `self`).
    pub(crate) fn as_ptr(&self) -> *mut T {
        self.0.as_ptr()
    }
}

impl<T> Drop for GObj<T> {
    fn drop(&mut self) {
        let ptr = self.0.as_ptr().cast();
        // SAFETY: we own one reference to a live GObject (see `from_owned`).
        locked(|| unsafe { g_object_unref(ptr) })
    }
}

impl<T> std::fmt::Debug for GObj<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GObj({:p})", self.0)
    }
}

/// An owned `GPtrArray` (freed with `g_ptr_array_unref`, which frees its elements through the
/// array's own free function).
pub(crate) struct PtrArray(NonNull<GPtrArray>);

impl PtrArray {
    /// Takes ownership of an array; `None` for NULL.
    ///
    /// # Safety
    /// `ptr` must be NULL or a `GPtrArray` whose reference the caller owns.
    pub(crate) unsafe fn from_owned(ptr: *mut GPtrArray) -> Option<Self> {
        NonNull::new(ptr).map(Self)
    }

    /// The raw array (still owned by `self`).
    pub(crate) fn as_ptr(&self) -> *mut GPtrArray {
        self.0.as_ptr()
    }

    /// The elements, borrowed from the array.
    pub(crate) fn items<T>(&self) -> Vec<*mut T> {
        // SAFETY: the array is live while `self` is; `pdata` holds `len` pointers.
        unsafe { borrowed_items(self.0.as_ptr()) }
    }
}

impl Drop for PtrArray {
    fn drop(&mut self) {
        let ptr = self.0.as_ptr();
        // SAFETY: we own one reference to a live array.
        locked(|| unsafe { g_ptr_array_unref(ptr) })
    }
}

/// The elements of an array that we do not own (e.g. `dnf_context_get_repos`).
///
/// # Safety
/// `array` must be NULL or a live `GPtrArray`.
pub(crate) unsafe fn borrowed_items<T>(array: *mut GPtrArray) -> Vec<*mut T> {
    if array.is_null() {
        return Vec::new();
    }
    // SAFETY: the caller guarantees `array` is live; GLib keeps `pdata` valid for `len` items.
    unsafe {
        let array = &*array;
        if array.pdata.is_null() || array.len == 0 {
            return Vec::new();
        }
        std::slice::from_raw_parts(array.pdata, array.len as usize)
            .iter()
            .map(|p| p.cast::<T>())
            .collect()
    }
}

/// An owned `HyQuery`, freed with `hy_query_free`.
pub(crate) struct Query(NonNull<HyQueryImpl>);

impl Query {
    /// A new query over every package of `sack`.
    ///
    /// # Safety
    /// `sack` must be a live `DnfSack` that outlives the query.
    pub(crate) unsafe fn new(sack: *mut DnfSack) -> Option<Self> {
        // SAFETY: the caller guarantees `sack` is live.
        NonNull::new(unsafe { hy_query_create(sack) }).map(Self)
    }

    /// The raw query (still owned by `self`).
    pub(crate) fn as_ptr(&self) -> HyQuery {
        self.0.as_ptr()
    }
}

impl Drop for Query {
    fn drop(&mut self) {
        let ptr = self.0.as_ptr();
        // SAFETY: we own the query.
        locked(|| unsafe { hy_query_free(ptr) })
    }
}

/// Copies a borrowed C string (`""` for NULL, invalid UTF-8 replaced).
///
/// # Safety
/// `ptr` must be NULL or a valid NUL-terminated string.
pub(crate) unsafe fn string(ptr: *const c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        // SAFETY: non-NULL and NUL-terminated per the caller.
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Copies and `g_free`s an owned C string (`""` for NULL).
///
/// # Safety
/// `ptr` must be NULL or a `g_malloc`ed NUL-terminated string that the caller owns.
pub(crate) unsafe fn take_string(ptr: *mut c_char) -> String {
    // SAFETY: as the caller guarantees.
    let s = unsafe { string(ptr) };
    if !ptr.is_null() {
        // SAFETY: owned and allocated by GLib.
        unsafe { g_free(ptr.cast()) }
    }
    s
}

/// Takes a `GError`'s message and frees it.
///
/// # Safety
/// `error` must be NULL or an owned `GError`.
pub(crate) unsafe fn take_error(error: *mut GError) -> String {
    if error.is_null() {
        return "unknown error (libdnf reported no details)".to_owned();
    }
    // SAFETY: a live GError; the message is NUL-terminated.
    let message = unsafe { string((*error).message) };
    // SAFETY: we own it.
    unsafe { g_error_free(error) };
    message
}

/// Whether `error` is libdnf's `DNF_ERROR` with this code.
///
/// # Safety
/// `error` must be NULL or a live `GError`.
pub(crate) unsafe fn is_dnf_error(error: *const GError, code: c_int) -> bool {
    // SAFETY: dnf_error_quark only registers/looks up a quark; `error` is live per the caller.
    !error.is_null() && unsafe { (*error).domain == dnf_error_quark() && (*error).code == code }
}

/// A C string from Rust text; an interior NUL becomes an error naming `what`.
pub(crate) fn cstring(what: &str, s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{what} contains a NUL byte: {s:?}"))
}
