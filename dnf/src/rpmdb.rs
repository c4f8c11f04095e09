//! Reading the rpmdb of a tree (through a private libdnf sack) and librpm's version
//! comparison.

use std::cmp::Ordering;
use std::ffi::{CString, c_char};
use std::path::Path;

use crate::ffi::{self, DnfPackage, DnfSack, GError, GObj, PtrArray, Query};
use crate::tmp::{DirSnapshot, PrivateDir};
use crate::{Error, Package};

/// Where rpm-ostree keeps the rpmdb, relative to a tree's root.
pub(crate) const RPMDB_DIR: &str = "usr/share/rpm";
/// The database files librpm's backends use (sqlite, bdb, ndb, lmdb).
const DB_FILES: [&str; 4] = ["rpmdb.sqlite", "Packages", "Packages.db", "data.mdb"];

/// librpm's own `rpmvercmp` (what [`crate::vercmp`] reimplements; for cross-checks):
/// `~` sorts before anything, `^` after the base version, digit runs numerically.
pub fn librpm_vercmp(a: &str, b: &str) -> Ordering {
    // C strings end at the first NUL, as they would for rpm itself.
    let c = |s: &str| CString::new(s.split('\0').next().unwrap_or_default()).unwrap_or_default();
    let (a, b) = (c(a), c(b));
    // SAFETY: two valid NUL-terminated strings; rpmvercmp only reads them and uses no
    // global state.
    let r = unsafe { ffi::rpmvercmp(a.as_ptr(), b.as_ptr()) };
    r.cmp(&0)
}

/// librpm's own `E:V-R` comparison, `rpmverParse` + `rpmverCmp` (what [`crate::evr_cmp`]
/// reimplements; for cross-checks):
/// the epoch (missing = 0; only digits before the first `:` are an epoch), then the version,
/// then the release, each with [`librpm_vercmp`]; a missing release sorts before any release
/// (`1.0` < `1.0-1`). A string rpm cannot parse (the empty one) sorts first.
pub fn librpm_evr_cmp(a: &str, b: &str) -> Ordering {
    /// An owned `rpmver`.
    struct Ver(*mut ffi::RpmVer);
    impl Drop for Ver {
        fn drop(&mut self) {
            if !self.0.is_null() {
                // SAFETY: an rpmver returned by rpmverParse that we own.
                unsafe { ffi::rpmverFree(self.0) };
            }
        }
    }
    let parse = |s: &str| {
        let c = CString::new(s.split('\0').next().unwrap_or_default()).unwrap_or_default();
        // SAFETY: a valid NUL-terminated string; rpmverParse copies what it keeps and uses
        // no global state.
        Ver(unsafe { ffi::rpmverParse(c.as_ptr()) })
    };
    let (va, vb) = (parse(a), parse(b));
    match (va.0.is_null(), vb.0.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        // SAFETY: two live rpmver objects.
        (false, false) => unsafe { ffi::rpmverCmp(va.0, vb.0) }.cmp(&0),
    }
}

/// libsolv picks the database directory itself: `var/lib/rpm` wins whenever it exists and is
/// writable. Refuses (naming both) a root where that is not `usr/share/rpm`, rather than
/// silently reading another database than the one asked for.
pub(crate) fn check_dbpath(root: &Path) -> Result<(), Error> {
    let dbdir = root.join(RPMDB_DIR);
    let varlib = root.join("var/lib/rpm");
    if varlib.exists() {
        let same = match (varlib.canonicalize(), dbdir.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same {
            return Err(Error::new(format!(
                "{} exists and is not {}; libsolv would read it instead",
                varlib.display(),
                dbdir.display()
            )));
        }
    }
    Ok(())
}

/// A private sack holding only the rpmdb of a root (the `@System` repo), with its own
/// throw-away libsolv cache. Create and use it inside [`ffi::locked`].
#[derive(Debug)]
pub(crate) struct SystemSack {
    // Dropped before the cache directory.
    sack: GObj<DnfSack>,
    _cache: PrivateDir,
}

impl SystemSack {
    /// Loads the rpmdb under `root` (a root without one gives an empty sack).
    pub(crate) fn load(root: &Path) -> Result<Self, Error> {
        ffi::global_init().map_err(|e| Error::new(format!("initializing libdnf: {e}")))?;
        let root = ffi::cstring("root path", &root.to_string_lossy()).map_err(Error::new)?;
        let cache = PrivateDir::new("sack")?;
        let cache_c =
            ffi::cstring("cache path", &cache.path().to_string_lossy()).map_err(Error::new)?;
        // SAFETY: dnf_sack_new returns a new owned GObject.
        let sack = unsafe { GObj::from_owned(ffi::dnf_sack_new()) }
            .ok_or_else(|| Error::new("dnf_sack_new failed"))?;
        let mut error: *mut GError = std::ptr::null_mut();
        // SAFETY: `sack` is live; the strings are valid and copied by libdnf/libsolv; `error`
        // is a valid out-pointer that is only set when the call fails.
        let ok = unsafe {
            ffi::dnf_sack_set_rootdir(sack.as_ptr(), root.as_ptr());
            ffi::dnf_sack_set_cachedir(sack.as_ptr(), cache_c.as_ptr());
            ffi::dnf_sack_setup(sack.as_ptr(), 0, &mut error) != 0
                && ffi::dnf_sack_load_system_repo(
                    sack.as_ptr(),
                    std::ptr::null_mut(),
                    ffi::DNF_SACK_LOAD_FLAG_NONE,
                    &mut error,
                ) != 0
        };
        if !ok {
            // SAFETY: on failure `error` is an owned GError (or NULL).
            return Err(Error::new(unsafe { ffi::take_error(error) }));
        }
        Ok(Self {
            sack,
            _cache: cache,
        })
    }

    /// The raw sack (still owned by `self`).
    pub(crate) fn as_ptr(&self) -> *mut DnfSack {
        self.sack.as_ptr()
    }
}

/// The packages of the rpmdb under `root` (the database at `root/usr/share/rpm`, rpm-ostree's
/// location), sorted by (name, arch, evr). A root without a database gives an empty list,
/// not an error. The root is left exactly as it was found (librpm's read-only open creates
/// sqlite `-shm`/`-wal` files next to the database; they are removed again).
pub fn rpmdb_packages(root: &Path) -> Result<Vec<Package>, Error> {
    let dbdir = root.join(RPMDB_DIR);
    if !DB_FILES.iter().any(|f| dbdir.join(f).is_file()) {
        return Ok(Vec::new());
    }
    check_dbpath(root).map_err(|e| {
        Error::new(format!(
            "Reading the rpmdb of {}: {}",
            root.display(),
            e.message()
        ))
    })?;
    // Under the lock, so that no other open of the same database overlaps with the cleanup.
    let result = ffi::locked(|| {
        let snapshot = DirSnapshot::take(&dbdir);
        let result = load(root);
        snapshot.restore();
        result
    });
    let mut pkgs = result.map_err(|e| {
        Error::new(format!(
            "Reading the rpmdb of {}: {}",
            root.display(),
            e.message()
        ))
    })?;
    pkgs.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.arch.cmp(&b.arch))
            .then_with(|| crate::evr_cmp(&a.evr(), &b.evr()))
    });
    Ok(pkgs)
}

fn load(root: &Path) -> Result<Vec<Package>, Error> {
    let sack = SystemSack::load(root)?;
    // SAFETY: the sack is live and outlives the query (dropped first, below).
    let query =
        unsafe { Query::new(sack.as_ptr()) }.ok_or_else(|| Error::new("hy_query_create failed"))?;
    let pkgs = run_query(&query);
    drop(query);
    drop(sack);
    Ok(pkgs)
}

/// Runs a query and converts its packages.
pub(crate) fn run_query(query: &Query) -> Vec<Package> {
    // SAFETY: the query is live; hy_query_run returns an owned array of owned packages.
    let Some(array) = (unsafe { PtrArray::from_owned(ffi::hy_query_run(query.as_ptr())) }) else {
        return Vec::new();
    };
    array
        .items::<DnfPackage>()
        .into_iter()
        // SAFETY: each element is a live DnfPackage owned by `array`.
        .map(|p| unsafe { package_from(p) })
        .collect()
}

/// Copies a package's fields.
///
/// # Safety
/// `pkg` must be a live `DnfPackage`.
pub(crate) unsafe fn package_from(pkg: *mut DnfPackage) -> Package {
    let s = |p: *const c_char| {
        // SAFETY: libdnf returns NULL or strings borrowed from the pool, valid during this call.
        unsafe { ffi::string(p) }
    };
    // SAFETY: `pkg` is live per the caller; the getters only read it.
    unsafe {
        Package {
            name: s(ffi::dnf_package_get_name(pkg)),
            epoch: ffi::dnf_package_get_epoch(pkg),
            version: s(ffi::dnf_package_get_version(pkg)),
            release: s(ffi::dnf_package_get_release(pkg)),
            arch: s(ffi::dnf_package_get_arch(pkg)),
            summary: s(ffi::dnf_package_get_summary(pkg)),
            reponame: s(ffi::dnf_package_get_reponame(pkg)),
        }
    }
}
