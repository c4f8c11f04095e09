//! Private scratch directories (mode 0700, removed on drop) and the "leave this directory as
//! we found it" guard used around rpmdb reads.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Error;

/// A fresh private directory under [`std::env::temp_dir`], removed (recursively) on drop.
#[derive(Debug)]
pub(crate) struct PrivateDir {
    path: PathBuf,
}

/// Removes the directories `<tmp>/<prefix>…-<pid>-<n>[-<x>]` of this user whose process is
/// gone: what a helper killed by a cancel (or a crash) leaves behind. Directories of running
/// processes, and of other users, stay.
pub fn sweep_orphaned_temp_dirs(prefix: &str) {
    use std::os::unix::fs::MetadataExt;
    let base = std::env::temp_dir();
    let Ok(me) = fs::metadata("/proc/self").map(|m| m.uid()) else {
        return;
    };
    let Ok(entries) = fs::read_dir(&base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        // The pid is the first all-digit field of `<pid>-<n>` or `<pid>-<n>-<x>` at the end.
        let fields: Vec<&str> = rest.rsplit('-').collect();
        let pid = fields
            .iter()
            .skip(1)
            .take(2)
            .rev()
            .find(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
        let Some(pid) = pid else { continue };
        let path = entry.path();
        let mine = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if mine && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

impl PrivateDir {
    /// Creates `<tmp>/rpmostree-dnf-<purpose>-<unique>`; the path is canonical. The first call
    /// of a process removes what killed processes left (see [`sweep_orphaned_temp_dirs`]).
    pub(crate) fn new(purpose: &str) -> Result<Self, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| sweep_orphaned_temp_dirs("rpmostree-dnf-"));
        let base = std::env::temp_dir();
        for _ in 0..100 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            let name = format!(
                "rpmostree-dnf-{purpose}-{}-{}-{nanos:x}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = base.join(name);
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    let path = fs::canonicalize(&path)
                        .map_err(|e| Error::new(format!("Resolving {}: {e}", path.display())))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::new(format!(
                        "Creating a private directory in {}: {e}",
                        base.display()
                    )));
                }
            }
        }
        Err(Error::new(format!(
            "Creating a private directory in {}: too many name collisions",
            base.display()
        )))
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Remembers a directory so that what librpm adds to it later can be taken away again:
/// opening an rpmdb read-only still writes sqlite's `-shm`/`-wal` (or rpm's `.rpm.lock`) next
/// to it, and probing a tree without a database creates the (empty) database directory and
/// its missing parents. A deployment must stay byte-for-byte what was committed.
#[derive(Debug)]
pub(crate) struct DirSnapshot {
    dir: PathBuf,
    /// The entries of `dir`, `None` if it did not exist.
    entries: Option<BTreeSet<OsString>>,
    /// `dir` and those of its parents that did not exist, deepest first.
    missing: Vec<PathBuf>,
    /// The deepest existing directory (`dir` itself if it existed) and its modification time
    /// (creating and deleting entries changes it).
    anchor: Option<(PathBuf, SystemTime)>,
}

impl DirSnapshot {
    pub(crate) fn take(dir: &Path) -> Self {
        let entries = fs::read_dir(dir).ok().map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect::<BTreeSet<_>>()
        });
        let mut missing = Vec::new();
        let mut anchor = Some(dir);
        while let Some(p) = anchor {
            if fs::symlink_metadata(p).is_ok() {
                break;
            }
            missing.push(p.to_owned());
            anchor = p.parent();
        }
        let anchor = anchor.and_then(|p| {
            let mtime = fs::metadata(p).and_then(|m| m.modified()).ok()?;
            Some((p.to_owned(), mtime))
        });
        Self {
            dir: dir.to_owned(),
            entries,
            missing,
            anchor,
        }
    }

    /// Removes every file that appeared in the directory since [`DirSnapshot::take`], the
    /// directories that did not exist then (if empty), and puts the modification time of the
    /// deepest directory that did exist back.
    pub(crate) fn restore(&self) {
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for entry in rd.filter_map(Result::ok) {
                let name = entry.file_name();
                let known = self.entries.as_ref().is_some_and(|e| e.contains(&name));
                let is_file = entry.file_type().is_ok_and(|t| !t.is_dir());
                if !known && is_file {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        for dir in &self.missing {
            let _ = fs::remove_dir(dir);
        }
        if let Some((dir, mtime)) = &self.anchor {
            let changed = fs::metadata(dir)
                .and_then(|m| m.modified())
                .is_ok_and(|now| now != *mtime);
            if changed && let Ok(dir) = fs::File::open(dir) {
                let _ = dir.set_times(fs::FileTimes::new().set_modified(*mtime));
            }
        }
    }
}

/// Backs up a remote repo's cache directory (hard links) for the duration of a refresh and
/// puts it back if the refresh fails, so a failed refresh never costs the previous cache.
#[derive(Debug)]
pub(crate) struct CacheBackup {
    location: PathBuf,
    backup: Option<PathBuf>,
}

impl CacheBackup {
    pub(crate) fn new(location: PathBuf) -> Self {
        let mut name = location.clone().into_os_string();
        name.push(".rpmostree-backup");
        let backup = PathBuf::from(name);
        // A backup left by a helper that was killed: when the cache itself is gone (killed
        // between libdnf's removal of the old cache and its rename of the new one), the backup
        // is the only good copy and comes back; otherwise the cache is whole and the backup
        // is stale. libdnf's own half-written download directory goes either way.
        if backup.is_dir() && !location.exists() {
            let _ = fs::rename(&backup, &location);
        }
        let _ = fs::remove_dir_all(&backup);
        let mut tmp = location.clone().into_os_string();
        tmp.push(".tmp");
        let _ = fs::remove_dir_all(PathBuf::from(tmp));
        let backup = location.is_dir().then_some(backup).filter(|backup| {
            let copied = hardlink_tree(&location, backup).is_ok();
            if !copied {
                let _ = fs::remove_dir_all(backup);
            }
            copied
        });
        Self { location, backup }
    }

    pub(crate) fn finish(self, succeeded: bool) {
        let Some(backup) = &self.backup else { return };
        if succeeded {
            let _ = fs::remove_dir_all(backup);
        } else {
            let _ = fs::remove_dir_all(&self.location);
            if fs::rename(backup, &self.location).is_err() {
                let _ = fs::remove_dir_all(backup);
            }
        }
    }
}

/// Copies the tree `src` to `dest` with hard links for files (cheap, and safe because libdnf
/// replaces cache files by renames and deletions, never by writing into them).
pub(crate) fn hardlink_tree(src: &Path, dest: &Path) -> std::io::Result<()> {
    fs::create_dir(dest)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let to = dest.join(entry.file_name());
        if ty.is_dir() {
            hardlink_tree(&entry.path(), &to)?;
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &to)?;
        } else {
            fs::hard_link(entry.path(), &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                out.extend(
                    tree(&e.path())
                        .into_iter()
                        .map(|(n, c)| (format!("{name}/{n}"), c)),
                );
            } else {
                out.push((name, fs::read_to_string(e.path()).unwrap_or_default()));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn cache_backup_restores_on_failure_and_goes_away_on_success() {
        let dir = PrivateDir::new("test-backup").expect("private dir");
        let cache = dir.path().join("repo-42-x86_64");
        fs::create_dir_all(cache.join("repodata")).expect("mkdir");
        fs::write(cache.join("repodata/repomd.xml"), "old").expect("write");
        let before = tree(&cache);

        // libdnf replaces files by deleting and renaming; a failure after that is undone.
        let backup = CacheBackup::new(cache.clone());
        fs::remove_dir_all(&cache).expect("rm");
        fs::create_dir_all(cache.join("repodata")).expect("mkdir");
        fs::write(cache.join("repodata/repomd.xml"), "half-new").expect("write");
        backup.finish(false);
        assert_eq!(tree(&cache), before);

        let backup = CacheBackup::new(cache.clone());
        fs::remove_file(cache.join("repodata/repomd.xml")).expect("rm");
        fs::write(cache.join("repodata/repomd.xml"), "new").expect("write");
        backup.finish(true);
        assert_eq!(
            tree(&cache),
            [("repodata/repomd.xml".to_owned(), "new".to_owned())]
        );
        assert_eq!(
            fs::read_dir(dir.path()).expect("ls").count(),
            1,
            "the backup was left behind"
        );

        // A helper killed at the worst moment left only the backup: it comes back.
        let backup = CacheBackup::new(cache.clone());
        fs::remove_dir_all(&cache).expect("rm");
        std::mem::forget(backup);
        let again = CacheBackup::new(cache.clone());
        assert_eq!(
            tree(&cache),
            [("repodata/repomd.xml".to_owned(), "new".to_owned())]
        );
        again.finish(true);

        // No cache yet: nothing to back up, nothing to restore.
        let fresh = dir.path().join("other");
        CacheBackup::new(fresh.clone()).finish(false);
        assert!(!fresh.exists());
    }

    #[test]
    fn orphaned_temp_dirs_of_dead_processes_are_swept() {
        let base = std::env::temp_dir();
        // pid 1 always runs; a pid above pid_max never does.
        let alive = base.join("rpmostree-sweeptest-root-1-0-ff");
        let dead = base.join("rpmostree-sweeptest-root-99999999-3-ff");
        let dead_short = base.join("rpmostree-sweeptest-99999998-0");
        for d in [&alive, &dead, &dead_short] {
            fs::create_dir_all(d).expect("mkdir");
        }
        sweep_orphaned_temp_dirs("rpmostree-sweeptest-");
        assert!(alive.exists());
        assert!(!dead.exists() && !dead_short.exists());
        let _ = fs::remove_dir_all(&alive);
    }

    #[test]
    fn dir_snapshot_removes_new_files_and_keeps_the_mtime() {
        let dir = PrivateDir::new("test-snapshot").expect("private dir");
        let db = dir.path().join("rpm");
        fs::create_dir(&db).expect("mkdir");
        fs::write(db.join("rpmdb.sqlite"), "db").expect("write");
        let mtime = fs::metadata(&db).and_then(|m| m.modified()).expect("mtime");
        let snapshot = DirSnapshot::take(&db);
        std::thread::sleep(std::time::Duration::from_millis(5));
        fs::write(db.join("rpmdb.sqlite-shm"), "").expect("write");
        fs::write(db.join("rpmdb.sqlite-wal"), "").expect("write");
        snapshot.restore();
        assert_eq!(tree(&db), [("rpmdb.sqlite".to_owned(), "db".to_owned())]);
        assert_eq!(
            fs::metadata(&db).and_then(|m| m.modified()).expect("mtime"),
            mtime
        );
    }
}
