//! Writing packages into the rpmdb of a tree with a librpm `--justdb` transaction (upstream's
//! `write_rpmdb`), from full RPMs or from header-only files (lead + signature + header, no
//! payload: upstream's "metarpm" files).

use std::ffi::{CString, c_char, c_int, c_void};
use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::ffi::{self, RpmFd, RpmHeader, RpmTs};
use crate::rpmdb::RPMDB_DIR;

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
    let dbdir = root.join(RPMDB_DIR);
    let dbdir = fs::canonicalize(&dbdir).map_err(|e| {
        Error::new(format!(
            "Writing the rpmdb of {}: {}: {e}",
            root.display(),
            dbdir.display()
        ))
    })?;
    if !dbdir.is_dir() {
        return Err(Error::new(format!(
            "Writing the rpmdb of {}: {} is not a directory",
            root.display(),
            dbdir.display()
        )));
    }
    let result = ffi::locked(|| write_locked(&dbdir, packages));
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

/// An owned `rpmts`, freed with `rpmtsFree` (which also closes its database).
struct Ts(*mut RpmTs);

impl Drop for Ts {
    fn drop(&mut self) {
        // SAFETY: a transaction set from rpmtsCreate that we own.
        unsafe { ffi::rpmtsFree(self.0) };
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
fn write_locked(dbdir: &Path, packages: &[PathBuf]) -> Result<(), Error> {
    // rpmReadConfigFiles runs once per process here (dnf_context_globals_init); reading the
    // config again would put Debian's `~/.rpmdb` `_dbpath` back on top of the macro stack.
    ffi::global_init().map_err(|e| Error::new(format!("initializing librpm: {e}")))?;
    let paths = packages
        .iter()
        .map(|p| {
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
    // SAFETY: rpmtsCreate returns a new transaction set that we own (rpmtsFree accepts NULL).
    let ts = Ts(unsafe { ffi::rpmtsCreate() });
    if ts.0.is_null() {
        return Err(Error::new("rpmtsCreate failed"));
    }
    let data_ptr: *mut Notify = &mut *data;
    // SAFETY: a live transaction set; "/" is a valid string (copied); the callback matches
    // rpmCallbackFunction and its data outlives the set.
    unsafe {
        ffi::rpmtsSetRootDir(ts.0, c"/".as_ptr());
        ffi::rpmtsSetVSFlags(
            ts.0,
            ffi::RPMVSF_MASK_NOSIGNATURES | ffi::RPMVSF_MASK_NODIGESTS,
        );
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
    let result = add_and_run(&ts, packages, &paths);
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

fn add_and_run(ts: &Ts, packages: &[PathBuf], paths: &[CString]) -> Result<(), Error> {
    for (shown, path) in packages.iter().zip(paths) {
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
                0,
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
