//! librpm transaction sets over the rpmdb of a tree: changing it with a `--justdb`
//! transaction (upstream's `write_rpmdb`: packages added from full RPMs or from header-only
//! files, i.e. lead + signature + header without payload, upstream's "metarpm" files;
//! replacements added as upgrades; removals as erasures), and reading the file lists and
//! `%transfiletriggerin` scriptlets of installed packages.

use std::collections::BTreeMap;
use std::ffi::{CString, c_char, c_int, c_uint, c_void};
use std::fs;
use std::path::{Path, PathBuf};

use crate::ffi::{self, RpmDbMatchIterator, RpmFd, RpmHeader, RpmTd, RpmTs};
use crate::rpmdb::RPMDB_DIR;
use crate::tmp::DirSnapshot;
use crate::{Error, FileTrigger};

/// What librpm leaves next to a database after a write (upstream's
/// `postprocess_cleanup_rpmdb`).
const LEFTOVERS: [&str; 4] = [
    ".rpm.lock",
    ".dbenv.lock",
    "rpmdb.sqlite-shm",
    "rpmdb.sqlite-wal",
];

/// Adds `packages` (full or header-only `.rpm` files) to the rpm database at
/// `root/usr/share/rpm`, like `rpm --justdb --noscripts --notriggers --nosignature --nodigest
/// -i`, and removes the lock and sqlite `-shm`/`-wal` files afterwards.
///
/// The caller must have made every file of that directory a private copy (librpm rewrites
/// the database in place, which would corrupt hardlinked ostree objects). As upstream does,
/// the transaction runs with root `/` and `_dbpath` set to the absolute database directory:
/// a transaction root other than `/` makes librpm `chroot(2)` the whole process during the
/// run. Nothing outside the database directory is written; the host's rpmdb is never opened.
///
/// Errors name the package file librpm could not read, or carry librpm's problem texts.
pub fn write_rpmdb(root: &Path, packages: &[PathBuf]) -> Result<(), Error> {
    edit_rpmdb(root, packages, &[], &[])
}

/// [`write_rpmdb`] with base overrides, all in one transaction: `packages` are added as
/// installs (`rpmtsAddInstallElement(.., upgrade = 0, ..)`), `upgrades` as upgrades (`upgrade
/// = 1`: librpm also erases every installed package of the same name, older or newer, so a
/// replacement's base version goes away; upstream's `replace-local`), and the installed
/// packages whose NEVRA (`N-[E:]V-R.A`, the epoch only when not 0, as libdnf spells it; an
/// explicit `0:` is accepted too) is in `erase` are erased (`rpmtsAddEraseElement`;
/// upstream's `[overrides] remove`). Erasing also drops the packages' file records; nothing
/// outside the database directory is touched.
///
/// Errors: as [`write_rpmdb`], and `Packages not in the rpmdb: <nevra>, …` naming every
/// `erase` entry that no installed package matches (the database is then left unchanged).
pub fn edit_rpmdb(
    root: &Path,
    packages: &[PathBuf],
    upgrades: &[PathBuf],
    erase: &[String],
) -> Result<(), Error> {
    let dbdir = db_dir(root, "Writing")?;
    let result = ffi::locked(|| write_locked(&dbdir, packages, upgrades, erase));
    // Also after a failure: a failed run leaves the same files behind.
    for leftover in LEFTOVERS {
        let _ = fs::remove_file(dbdir.join(leftover));
    }
    result.map_err(|e| {
        Error::new(format!(
            "Writing the rpmdb of {}: {}",
            root.display(),
            e.message()
        ))
    })
}

/// The canonical `root/usr/share/rpm`, which must be a directory; errors start with
/// `<verb> the rpmdb of <root>`.
fn db_dir(root: &Path, verb: &str) -> Result<PathBuf, Error> {
    let dbdir = root.join(RPMDB_DIR);
    let dbdir = fs::canonicalize(&dbdir).map_err(|e| {
        Error::new(format!(
            "{verb} the rpmdb of {}: {}: {e}",
            root.display(),
            dbdir.display()
        ))
    })?;
    if !dbdir.is_dir() {
        return Err(Error::new(format!(
            "{verb} the rpmdb of {}: {} is not a directory",
            root.display(),
            dbdir.display()
        )));
    }
    Ok(dbdir)
}

/// An owned `rpmts`, freed with `rpmtsFree` (which also closes its database).
struct Ts(*mut RpmTs);

impl Drop for Ts {
    fn drop(&mut self) {
        // SAFETY: a transaction set from rpmtsCreate that we own.
        unsafe { ffi::rpmtsFree(self.0) };
    }
}

impl Ts {
    /// `rpmtsCreate` with root `/` and signature and digest checks off (the database's
    /// headers were checked when they were written).
    fn new() -> Result<Self, Error> {
        // SAFETY: rpmtsCreate returns a new transaction set that we own (rpmtsFree accepts
        // NULL).
        let ts = Ts(unsafe { ffi::rpmtsCreate() });
        if ts.0.is_null() {
            return Err(Error::new("rpmtsCreate failed"));
        }
        // SAFETY: a live transaction set; "/" is a valid string (copied).
        unsafe {
            ffi::rpmtsSetRootDir(ts.0, c"/".as_ptr());
            ffi::rpmtsSetVSFlags(
                ts.0,
                ffi::RPMVSF_MASK_NOSIGNATURES | ffi::RPMVSF_MASK_NODIGESTS,
            );
        }
        Ok(ts)
    }

    /// Every installed package, in database order: `(header, database offset)` with the
    /// header borrowed until the next call. An unreadable or empty database gives none.
    fn installed(&self) -> Installed<'_> {
        // SAFETY: a live transaction set; a NULL key with length 0 selects sequential access
        // over all headers; the iterator is owned by the result.
        let mi =
            unsafe { ffi::rpmtsInitIterator(self.0, ffi::RPMDBI_PACKAGES, std::ptr::null(), 0) };
        Installed {
            mi,
            _ts: std::marker::PhantomData,
        }
    }
}

/// An owned `rpmdbMatchIterator` over a transaction set's database, freed with
/// `rpmdbFreeIterator`.
struct Installed<'a> {
    /// NULL when the database could not be opened (or is empty).
    mi: *mut RpmDbMatchIterator,
    _ts: std::marker::PhantomData<&'a Ts>,
}

impl Installed<'_> {
    /// The next header (borrowed from the iterator until the following call) and its
    /// database offset (`rpmdbGetIteratorOffset`).
    fn next(&mut self) -> Option<(*mut RpmHeader, c_uint)> {
        if self.mi.is_null() {
            return None;
        }
        // SAFETY: a live iterator; the header is owned by it.
        let h = unsafe { ffi::rpmdbNextIterator(self.mi) };
        // SAFETY: as above.
        (!h.is_null()).then(|| (h, unsafe { ffi::rpmdbGetIteratorOffset(self.mi) }))
    }
}

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        if !self.mi.is_null() {
            // SAFETY: an iterator we own; its transaction set is still alive (borrowed).
            unsafe { ffi::rpmdbFreeIterator(self.mi) };
        }
    }
}

/// The NEVRAs a header answers to: as libdnf spells it (`N-[E:]V-R.A`, the epoch only when
/// not 0), and with an explicit `0:` epoch when the epoch is 0.
struct HeaderNevra {
    nevra: String,
    zero_epoch: Option<String>,
}

impl HeaderNevra {
    /// Reads the header's name, epoch, version, release and arch.
    ///
    /// # Safety
    /// `h` must be a live header.
    unsafe fn of(h: *mut RpmHeader) -> Self {
        // SAFETY: per the caller; the strings are borrowed from the header (or NULL).
        let (name, epoch, version, release, arch) = unsafe {
            (
                ffi::string(ffi::headerGetString(h, ffi::RPMTAG_NAME)),
                ffi::headerGetNumber(h, ffi::RPMTAG_EPOCH),
                ffi::string(ffi::headerGetString(h, ffi::RPMTAG_VERSION)),
                ffi::string(ffi::headerGetString(h, ffi::RPMTAG_RELEASE)),
                ffi::string(ffi::headerGetString(h, ffi::RPMTAG_ARCH)),
            )
        };
        if epoch == 0 {
            Self {
                nevra: format!("{name}-{version}-{release}.{arch}"),
                zero_epoch: Some(format!("{name}-0:{version}-{release}.{arch}")),
            }
        } else {
            Self {
                nevra: format!("{name}-{epoch}:{version}-{release}.{arch}"),
                zero_epoch: None,
            }
        }
    }

    /// Whether `wanted` names this header.
    fn is(&self, wanted: &str) -> bool {
        wanted == self.nevra || self.zero_epoch.as_deref() == Some(wanted)
    }
}

/// An owned `Header`, released with `headerFree`.
struct Header(*mut RpmHeader);

impl Drop for Header {
    fn drop(&mut self) {
        // SAFETY: a header reference that we own (headerFree accepts NULL).
        unsafe { ffi::headerFree(self.0) };
    }
}

/// An open librpm file, closed with `Fclose`.
struct Fd(*mut RpmFd);

impl Fd {
    /// `Fopen(path, "r.ufdio")`; an error names the file.
    fn open(path: &CString, shown: &Path) -> Result<Self, Error> {
        // SAFETY: valid NUL-terminated strings that librpm only reads.
        let fd = unsafe { ffi::Fopen(path.as_ptr(), c"r.ufdio".as_ptr()) };
        // SAFETY: Ferror accepts NULL (and reports it as an error); `fd` is otherwise live.
        if fd.is_null() || unsafe { ffi::Ferror(fd) } != 0 {
            let reason = if fd.is_null() {
                "cannot open".to_owned()
            } else {
                // SAFETY: a live fd; the message is borrowed from it and copied here.
                let reason = unsafe { ffi::string(ffi::Fstrerror(fd)) };
                // SAFETY: we own `fd` and give it up here.
                unsafe { ffi::Fclose(fd) };
                reason
            };
            return Err(Error::new(format!("Opening {}: {reason}", shown.display())));
        }
        Ok(Self(fd))
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: an fd from Fopen that we own.
        unsafe { ffi::Fclose(self.0) };
    }
}

/// The transaction's notification data: the file librpm is reading from.
struct Notify {
    current: *mut RpmFd,
}

/// `rpmCallbackFunction`: opens a package file when librpm asks for it (the key given to
/// `rpmtsAddInstallElement` is the path) and closes it again. Everything else is ignored.
unsafe extern "C" fn notify(
    _h: *const c_void,
    what: c_int,
    _amount: u64,
    _total: u64,
    key: *const c_void,
    data: *mut c_void,
) -> *mut c_void {
    // SAFETY: `data` is the `Notify` registered with rpmtsSetNotifyCallback, which lives
    // until the transaction set is freed.
    let notify = unsafe { &mut *data.cast::<Notify>() };
    match what {
        ffi::RPMCALLBACK_INST_OPEN_FILE if !key.is_null() => {
            if !notify.current.is_null() {
                // SAFETY: an fd we opened below and still own.
                unsafe { ffi::Fclose(notify.current) };
            }
            // SAFETY: the key is one of the NUL-terminated paths kept alive by
            // `write_locked` for the transaction's lifetime.
            notify.current = unsafe { ffi::Fopen(key.cast::<c_char>(), c"r.ufdio".as_ptr()) };
            notify.current.cast()
        }
        ffi::RPMCALLBACK_INST_CLOSE_FILE => {
            if !notify.current.is_null() {
                // SAFETY: as above.
                unsafe { ffi::Fclose(notify.current) };
                notify.current = std::ptr::null_mut();
            }
            std::ptr::null_mut()
        }
        _ => std::ptr::null_mut(),
    }
}

/// Pushes `_dbpath` for the duration of the write and pops it again.
struct DbPath;

impl DbPath {
    fn push(dbdir: &Path) -> Result<Self, Error> {
        // rpm expands macros in the body: keep a `%` in the path literal.
        let body = dbdir.to_string_lossy().replace('%', "%%");
        let body = ffi::cstring("database path", &body).map_err(Error::new)?;
        // SAFETY: NULL selects the global macro context; the strings are copied by rpm.
        unsafe {
            ffi::rpmPushMacro(
                std::ptr::null_mut(),
                c"_dbpath".as_ptr(),
                std::ptr::null(),
                body.as_ptr(),
                ffi::RMIL_CMDLINE,
            )
        };
        Ok(Self)
    }
}

impl Drop for DbPath {
    fn drop(&mut self) {
        // SAFETY: pops the definition pushed in `push` (the one on top of the stack).
        unsafe { ffi::rpmPopMacro(std::ptr::null_mut(), c"_dbpath".as_ptr()) };
    }
}

/// The transaction proper; runs inside [`ffi::locked`].
fn write_locked(
    dbdir: &Path,
    packages: &[PathBuf],
    upgrades: &[PathBuf],
    erase: &[String],
) -> Result<(), Error> {
    // rpmReadConfigFiles runs once per process here (dnf_context_globals_init); reading the
    // config again would put Debian's `~/.rpmdb` `_dbpath` back on top of the macro stack.
    ffi::global_init().map_err(|e| Error::new(format!("initializing librpm: {e}")))?;
    let elements: Vec<(&Path, bool)> = packages
        .iter()
        .map(|p| (p.as_path(), false))
        .chain(upgrades.iter().map(|p| (p.as_path(), true)))
        .collect();
    let paths = elements
        .iter()
        .map(|(p, _)| {
            let absolute = std::path::absolute(p)
                .map_err(|e| Error::new(format!("Resolving {}: {e}", p.display())))?;
            ffi::cstring("package path", &absolute.to_string_lossy()).map_err(Error::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let _dbpath = DbPath::push(dbdir)?;

    // The callback data outlives the transaction set (locals drop in reverse order), which
    // keeps a pointer to it until it is freed.
    let mut data = Box::new(Notify {
        current: std::ptr::null_mut(),
    });
    let ts = Ts::new()?;
    let data_ptr: *mut Notify = &mut *data;
    // SAFETY: a live transaction set; the callback matches rpmCallbackFunction and its data
    // outlives the set.
    unsafe {
        ffi::rpmtsSetVfyLevel(ts.0, 0);
        ffi::rpmtsSetFlags(
            ts.0,
            ffi::RPMTRANS_FLAG_JUSTDB
                | ffi::RPMTRANS_FLAG_NOCONTEXTS
                | ffi::RPMTRANS_FLAG_NOSCRIPTS
                | ffi::RPMTRANS_FLAG_NOTRIGGERS
                | ffi::RPMTRANS_FLAG_NOPLUGINS,
        );
        ffi::rpmtsSetNotifyCallback(ts.0, Some(notify), data_ptr.cast());
    }
    let result = add_erasures(&ts, erase).and_then(|()| add_and_run(&ts, &elements, &paths));
    // Free the set (closing the database and any file the callback still holds) while the
    // paths and the callback data are alive.
    drop(ts);
    if !data.current.is_null() {
        // SAFETY: an fd the callback opened and did not close.
        unsafe { ffi::Fclose(data.current) };
    }
    drop(data);
    result
}

/// Adds an erase element for each installed package named in `erase`; all of them must be
/// installed.
fn add_erasures(ts: &Ts, erase: &[String]) -> Result<(), Error> {
    if erase.is_empty() {
        return Ok(());
    }
    let mut found = vec![false; erase.len()];
    let mut installed = ts.installed();
    while let Some((h, offset)) = installed.next() {
        // SAFETY: a live header, borrowed from the iterator.
        let header = unsafe { HeaderNevra::of(h) };
        let mut hit = false;
        for (f, e) in found.iter_mut().zip(erase) {
            if header.is(e) {
                *f = true;
                hit = true;
            }
        }
        if !hit {
            continue;
        }
        let nevra = &header.nevra;
        let offset = c_int::try_from(offset)
            .map_err(|_| Error::new(format!("Erasing {nevra}: database offset {offset}")))?;
        // SAFETY: a live set and a header read from its database (the element takes its own
        // reference).
        let rc = unsafe { ffi::rpmtsAddEraseElement(ts.0, h, offset) };
        if rc != 0 {
            return Err(Error::new(format!(
                "Adding the erasure of {nevra} to the transaction (rpmtsAddEraseElement returned {rc})"
            )));
        }
    }
    let missing: Vec<&str> = erase
        .iter()
        .zip(&found)
        .filter(|(_, f)| !**f)
        .map(|(e, _)| e.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::new(format!(
            "Packages not in the rpmdb: {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

fn add_and_run(ts: &Ts, elements: &[(&Path, bool)], paths: &[CString]) -> Result<(), Error> {
    for (&(shown, upgrade), path) in elements.iter().zip(paths) {
        let fd = Fd::open(path, shown)?;
        let mut h: *mut RpmHeader = std::ptr::null_mut();
        // SAFETY: a live transaction set and fd; a valid name; `h` is a valid out-pointer
        // that receives an owned header reference on success.
        let rc = unsafe { ffi::rpmReadPackageFile(ts.0, fd.0, path.as_ptr(), &mut h) };
        let header = Header(h);
        drop(fd);
        if !matches!(rc, ffi::RPMRC_OK | ffi::RPMRC_NOTTRUSTED | ffi::RPMRC_NOKEY)
            || header.0.is_null()
        {
            return Err(Error::new(format!(
                "Reading the package header of {} (rpmReadPackageFile returned {rc})",
                shown.display()
            )));
        }
        // SAFETY: a live set and header; the key is a NUL-terminated path that outlives the
        // set (see `write_locked`); no relocations.
        let rc = unsafe {
            ffi::rpmtsAddInstallElement(
                ts.0,
                header.0,
                path.as_ptr().cast(),
                c_int::from(upgrade),
                std::ptr::null_mut(),
            )
        };
        if rc != 0 {
            return Err(Error::new(format!(
                "Adding {} to the transaction (rpmtsAddInstallElement returned {rc})",
                shown.display()
            )));
        }
    }
    // SAFETY: a live transaction set.
    unsafe { ffi::rpmtsOrder(ts.0) };
    let filter = ffi::RPMPROB_FILTER_DISKSPACE
        | ffi::RPMPROB_FILTER_OLDPACKAGE
        | ffi::RPMPROB_FILTER_REPLACENEWFILES
        | ffi::RPMPROB_FILTER_REPLACEOLDFILES;
    // SAFETY: a live transaction set; `okProbs` is unused and may be NULL.
    let rc = unsafe { ffi::rpmtsRun(ts.0, std::ptr::null_mut(), filter) };
    if rc == 0 {
        return Ok(());
    }
    let problems = problems(ts);
    Err(Error::new(if problems.is_empty() {
        format!("rpmtsRun failed (code {rc})")
    } else {
        format!("rpmtsRun failed: {}", problems.join("; "))
    }))
}

/// The texts of the transaction's problems.
fn problems(ts: &Ts) -> Vec<String> {
    let mut out = Vec::new();
    // SAFETY: a live transaction set; the result is an owned problem set (or NULL).
    let ps = unsafe { ffi::rpmtsProblems(ts.0) };
    if ps.is_null() {
        return out;
    }
    // SAFETY: a live problem set; the iterator is owned and freed below.
    let psi = unsafe { ffi::rpmpsInitIterator(ps) };
    loop {
        // SAFETY: a live iterator; the problem is borrowed from the set.
        let problem = unsafe { ffi::rpmpsiNext(psi) };
        if problem.is_null() {
            break;
        }
        // SAFETY: a live problem; the string is malloc'ed and ours to free.
        let text = unsafe { ffi::rpmProblemString(problem) };
        if !text.is_null() {
            // SAFETY: a valid NUL-terminated string, freed right after copying.
            unsafe {
                out.push(ffi::string(text));
                ffi::free(text.cast());
            }
        }
    }
    // SAFETY: we own both.
    unsafe {
        ffi::rpmpsFreeIterator(psi);
        ffi::rpmpsFree(ps);
    }
    out
}

/// `S_IFMT`: the file type bits of a mode.
const S_IFMT: u16 = 0o170_000;
/// `S_IFDIR`, one of the file types [`package_files`] keeps.
const S_IFDIR: u16 = 0o040_000;
/// `S_IFREG`, one of the file types [`package_files`] keeps.
const S_IFREG: u16 = 0o100_000;
/// `S_IFLNK`, one of the file types [`package_files`] keeps.
const S_IFLNK: u16 = 0o120_000;

/// For each NEVRA (`N-[E:]V-R.A`, the epoch only when not 0, as libdnf spells it; an explicit
/// `0:` is accepted too), in the given order, the absolute paths of the regular files,
/// directories and symlinks the installed package owns in the rpm database at
/// `root/usr/share/rpm` (`rpm -ql`, in the header's order, without other file types),
/// including `%ghost` entries and paths other packages own too: what upstream's
/// `delete_package_from_root` walks before it skips shared paths and keeps only `/usr`.
///
/// Read-only, like [`crate::rpmdb_packages`]: the host's rpmdb is never opened, and the
/// sqlite `-shm`/`-wal` (and lock) files the open creates are removed again.
///
/// Errors: `Reading the rpmdb of <root>: …` for a root without a database directory, and
/// `Reading the rpmdb of <root>: packages not in it: <nevra>, …` naming every NEVRA that no
/// installed package matches.
pub fn package_files(root: &Path, nevras: &[String]) -> Result<Vec<(String, Vec<String>)>, Error> {
    read_db(root, |dbdir| files_locked(dbdir, nevras))
}

/// Runs `read` on the database directory of `root` under [`ffi::locked`], leaving the
/// directory as it was (sqlite's side files removed); errors say `Reading the rpmdb of
/// <root>: …`.
fn read_db<T>(root: &Path, read: impl FnOnce(&Path) -> Result<T, Error>) -> Result<T, Error> {
    let dbdir = db_dir(root, "Reading")?;
    let result = ffi::locked(|| {
        let snapshot = DirSnapshot::take(&dbdir);
        let result = read(&dbdir);
        snapshot.restore();
        result
    });
    result.map_err(|e| {
        Error::new(format!(
            "Reading the rpmdb of {}: {}",
            root.display(),
            e.message()
        ))
    })
}

/// The reading proper; runs inside [`ffi::locked`].
fn files_locked(dbdir: &Path, nevras: &[String]) -> Result<Vec<(String, Vec<String>)>, Error> {
    ffi::global_init().map_err(|e| Error::new(format!("initializing librpm: {e}")))?;
    let _dbpath = DbPath::push(dbdir)?;
    let ts = Ts::new()?;
    let mut files: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    if !nevras.is_empty() {
        let mut installed = ts.installed();
        while let Some((h, _)) = installed.next() {
            // SAFETY: a live header, borrowed from the iterator.
            let header = unsafe { HeaderNevra::of(h) };
            let wanted: Vec<&str> = nevras
                .iter()
                .map(String::as_str)
                .filter(|n| header.is(n))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            // SAFETY: as above.
            let paths = unsafe { header_files(&ts, h) }.ok_or_else(|| {
                Error::new(format!(
                    "the file list of {} is broken (rpmfiNew failed)",
                    header.nevra
                ))
            })?;
            for n in wanted {
                files.insert(n, paths.clone());
            }
        }
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for nevra in nevras {
        // A NEVRA given twice is answered twice.
        match files.get(nevra.as_str()) {
            Some(paths) => out.push((nevra.clone(), paths.clone())),
            None => missing.push(nevra.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(Error::new(format!(
            "packages not in it: {}",
            missing.join(", ")
        )));
    }
    Ok(out)
}

/// The regular files, directories and symlinks of a header's file list, or `None` when
/// librpm finds the list broken.
///
/// # Safety
/// `h` must be a live header.
unsafe fn header_files(ts: &Ts, h: *mut RpmHeader) -> Option<Vec<String>> {
    /// An owned `rpmfi`, freed with `rpmfiFree`.
    struct Fi(*mut ffi::RpmFi);
    impl Drop for Fi {
        fn drop(&mut self) {
            // SAFETY: a file iterator we own (rpmfiFree accepts NULL).
            unsafe { ffi::rpmfiFree(self.0) };
        }
    }
    // SAFETY: a live set (librpm 4.18 does not even look at it) and header (per the caller);
    // the iterator copies what it needs from the header.
    let fi = Fi(unsafe { ffi::rpmfiNew(ts.0, h, ffi::RPMTAG_BASENAMES, ffi::RPMFI_FLAGS_QUERY) });
    if fi.0.is_null() {
        // Broken file data (a package without files gives an empty iterator).
        return None;
    }
    let mut paths = Vec::new();
    // SAFETY: a live file iterator; the path is borrowed from it until the next call.
    while unsafe { ffi::rpmfiNext(fi.0) } >= 0 {
        // SAFETY: as above.
        let (path, mode) = unsafe { (ffi::string(ffi::rpmfiFN(fi.0)), ffi::rpmfiFMode(fi.0)) };
        if matches!(mode & S_IFMT, S_IFREG | S_IFDIR | S_IFLNK) {
            paths.push(path);
        }
    }
    Some(paths)
}

/// The `%transfiletriggerin` scriptlets of every package installed in the rpm database at
/// `root/usr/share/rpm`, as upstream's `rpmostree_transfiletriggers_run_sync` reads them
/// before running them: per script of a header's `RPMTAG_TRANSFILETRIGGERSCRIPTS`, its
/// interpreter (`RPMTAG_TRANSFILETRIGGERSCRIPTPROG`, `/bin/sh` when missing; librpm keeps
/// only the program, no arguments), its body (macro-expanded with `rpmExpand` when its
/// script flags have `RPMSCRIPT_FLAG_EXPAND`, i.e. it was built with `-e`), and its path
/// prefixes: the `RPMTAG_TRANSFILETRIGGERNAME` entries whose index points at the script and
/// whose flags have `RPMSENSE_TRIGGERIN` (so `%transfiletriggerun`/`postun` are left out),
/// absolute as rpm stores them. Entries that are only slashes are dropped, as upstream
/// ignores them, and a script left without a prefix (or without a body) is skipped; packages
/// without such scripts give nothing. Sorted by package name, then script index.
///
/// Read-only, like [`package_files`]: the host's rpmdb is never opened, and the sqlite
/// `-shm`/`-wal` (and lock) files the open creates are removed again. Nothing is run.
///
/// Errors: `Reading the rpmdb of <root>: …` for a root without a database directory.
pub fn file_triggers(root: &Path) -> Result<Vec<FileTrigger>, Error> {
    read_db(root, triggers_locked)
}

/// The reading proper; runs inside [`ffi::locked`].
fn triggers_locked(dbdir: &Path) -> Result<Vec<FileTrigger>, Error> {
    ffi::global_init().map_err(|e| Error::new(format!("initializing librpm: {e}")))?;
    let _dbpath = DbPath::push(dbdir)?;
    let ts = Ts::new()?;
    // (name, NEVRA, script index) keeps packages of the same name apart and in order.
    let mut found: BTreeMap<(String, String, u32), FileTrigger> = BTreeMap::new();
    let mut installed = ts.installed();
    while let Some((h, _)) = installed.next() {
        // SAFETY: a live header, borrowed from the iterator until the next call (the tag
        // data read from it are dropped before that).
        for (index, trigger) in unsafe { header_triggers(h) }? {
            let key = (trigger.package.clone(), trigger.nevra.clone(), index);
            found.insert(key, trigger);
        }
    }
    Ok(found.into_values().collect())
}

/// An owned `rpmtd` holding one tag of a header, freed (with its data) by `rpmtdFree`.
struct TagData(*mut RpmTd);

impl TagData {
    /// `headerGet(h, tag, .., HEADERGET_MINMEM)`: a missing tag gives no entries.
    ///
    /// # Safety
    /// `h` must be a live header that outlives the result (its strings point into it).
    unsafe fn get(h: *mut RpmHeader, tag: i32) -> Result<Self, Error> {
        // SAFETY: rpmtdNew returns a new, empty container that we own.
        let td = TagData(unsafe { ffi::rpmtdNew() });
        if td.0.is_null() {
            return Err(Error::new("rpmtdNew failed"));
        }
        // SAFETY: a live header (per the caller) and container; a missing tag leaves the
        // container empty, which is all the return value says.
        unsafe { ffi::headerGet(h, tag, td.0, ffi::HEADERGET_MINMEM) };
        Ok(td)
    }

    /// The number of entries.
    fn len(&self) -> u32 {
        // SAFETY: a live container.
        unsafe { ffi::rpmtdCount(self.0) }
    }

    /// Entry `i` of a string array, `None` when out of range or not a string.
    fn string(&self, i: u32) -> Option<String> {
        let i = c_int::try_from(i).ok()?;
        // SAFETY: a live container; rpmtdSetIndex checks the range; the string is borrowed
        // from the header (alive per `get`) and copied.
        unsafe {
            if ffi::rpmtdSetIndex(self.0, i) < 0 {
                return None;
            }
            let p = ffi::rpmtdGetString(self.0);
            (!p.is_null()).then(|| ffi::string(p))
        }
    }

    /// Entry `i` of a number array, `None` when out of range.
    fn number(&self, i: u32) -> Option<u64> {
        let i = c_int::try_from(i).ok()?;
        // SAFETY: a live container; rpmtdSetIndex checks the range.
        unsafe { (ffi::rpmtdSetIndex(self.0, i) >= 0).then(|| ffi::rpmtdGetNumber(self.0)) }
    }
}

impl Drop for TagData {
    fn drop(&mut self) {
        // SAFETY: a container we own; rpmtdFree also frees the data it allocated.
        unsafe { ffi::rpmtdFree(self.0) };
    }
}

/// A header's `%transfiletriggerin` scripts with their script indices (see
/// [`file_triggers`]).
///
/// # Safety
/// `h` must be a live header.
unsafe fn header_triggers(h: *mut RpmHeader) -> Result<Vec<(u32, FileTrigger)>, Error> {
    // SAFETY: per the caller; every container is dropped before this returns.
    let get = |tag| unsafe { TagData::get(h, tag) };
    let scripts = get(ffi::RPMTAG_TRANSFILETRIGGERSCRIPTS)?;
    if scripts.len() == 0 {
        return Ok(Vec::new());
    }
    let progs = get(ffi::RPMTAG_TRANSFILETRIGGERSCRIPTPROG)?;
    let script_flags = get(ffi::RPMTAG_TRANSFILETRIGGERSCRIPTFLAGS)?;
    let names = get(ffi::RPMTAG_TRANSFILETRIGGERNAME)?;
    let indices = get(ffi::RPMTAG_TRANSFILETRIGGERINDEX)?;
    let flags = get(ffi::RPMTAG_TRANSFILETRIGGERFLAGS)?;
    // SAFETY: per the caller; the strings are copied.
    let (package, nevra) = unsafe {
        (
            ffi::string(ffi::headerGetString(h, ffi::RPMTAG_NAME)),
            HeaderNevra::of(h).nevra,
        )
    };
    let mut out = Vec::new();
    for i in 0..scripts.len() {
        let Some(body) = scripts.string(i) else {
            continue;
        };
        let patterns: Vec<String> = (0..names.len())
            .filter(|&j| indices.number(j) == Some(u64::from(i)))
            .filter(|&j| flags.number(j).unwrap_or(0) & ffi::RPMSENSE_TRIGGERIN != 0)
            .filter_map(|j| names.string(j))
            .filter(|p| !p.trim_start_matches('/').is_empty())
            .collect();
        if patterns.is_empty() {
            continue;
        }
        let expand = script_flags.number(i).unwrap_or(0) & ffi::RPMSCRIPT_FLAG_EXPAND != 0;
        let script = if expand {
            expand_macros(&body)
                .map_err(|e| Error::new(format!("{nevra}: %transfiletriggerin: {e}")))?
        } else {
            body
        };
        let interpreter = progs
            .string(i)
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/bin/sh".to_owned());
        out.push((
            i,
            FileTrigger {
                package: package.clone(),
                nevra: nevra.clone(),
                interpreter: vec![interpreter],
                script,
                patterns,
            },
        ));
    }
    Ok(out)
}

/// `rpmExpand` of a script body with the process's rpm macros.
fn expand_macros(text: &str) -> Result<String, Error> {
    let c = ffi::cstring("script", text).map_err(Error::new)?;
    // SAFETY: a valid string and the NULL that ends the list; the result is malloc'ed and
    // ours.
    let expanded = unsafe { ffi::rpmExpand(c.as_ptr(), std::ptr::null::<c_char>()) };
    if expanded.is_null() {
        return Err(Error::new("rpmExpand failed"));
    }
    // SAFETY: a valid NUL-terminated string, freed right after copying.
    let out = unsafe { ffi::string(expanded) };
    // SAFETY: as above.
    unsafe { ffi::free(expanded.cast()) };
    Ok(out)
}
