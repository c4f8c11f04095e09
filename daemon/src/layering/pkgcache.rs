//! The package cache: each RPM imported once into the sysroot's repository as its own commit
//! under `rpmostree/pkg/<name>/<evr>.<arch>`, with upstream's path translation and commit
//! metadata, so that assembling a layered tree is a hardlink checkout of commits and a repeated
//! install or an upgrade downloads and unpacks nothing.
//!
//! Paths are translated as upstream does: `/etc` to `/usr/etc`, `/boot` to
//! `/usr/lib/ostree-boot`, `/opt/X` to `/usr/lib/opt/X` (with a tmpfiles `L` link), the
//! usrmerge directories into `/usr`; `/var` and `/run` keep only directories and symlinks, as
//! `systemd-tmpfiles` lines in `usr/lib/rpm-ostree/tmpfiles.d/<name>.conf`; anything else is
//! refused. The payload is parsed by the pure-Rust `rpm` crate, never by a shell tool.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ostree::{gio, glib, prelude::*};
use rpm::{FileFlags, FileType};
use sha2::{Digest, Sha256};

/// The unpack format written into `rpmostree.unpack_version` (upstream's).
const UNPACK_VERSION: u32 = 1;
/// `rpmostree.unpack_minor_version`.
const UNPACK_MINOR_VERSION: u32 = 6;

/// Quotes one component of a cache ref as upstream does: `[A-Za-z0-9.-]` stays, `_` becomes
/// `__`, any other byte `_XX`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' => out.push(char::from(b)),
            b'_' => out.push_str("__"),
            _ => {
                let _ = write!(out, "_{b:02X}");
            }
        }
    }
    out
}

/// The cache ref of a package: `rpmostree/pkg/<name>/<evr>.<arch>`, the epoch left out when 0.
pub(crate) fn cache_ref(
    name: &str,
    epoch: u32,
    version: &str,
    release: &str,
    arch: &str,
) -> String {
    let evr = if epoch == 0 {
        format!("{version}-{release}")
    } else {
        format!("{epoch}:{version}-{release}")
    };
    format!(
        "rpmostree/pkg/{}/{}.{}",
        quote(name),
        quote(&evr),
        quote(arch)
    )
}

/// A package in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cached {
    /// The package's commit.
    pub(crate) commit: String,
    /// `N-[E:]V-R.A`.
    pub(crate) nevra: String,
    /// Name.
    pub(crate) name: String,
    /// The lead, signature header and header of the RPM: what the rpm database needs.
    pub(crate) header: Vec<u8>,
    /// The sha256 of `header` (`rpmostree.metadata_sha256`): what an origin records for a
    /// local package.
    pub(crate) header_sha256: String,
}

/// What a cached package must have been imported from to be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source<'a> {
    /// An rpm-md repository: its id and upstream's repodata checksum of the package
    /// (`sha256:<hex>`).
    Repo {
        /// The repository id.
        id: &'a str,
        /// The package's checksum in the repository metadata.
        checksum: &'a str,
    },
    /// A local RPM file with this header sha256.
    Local {
        /// The sha256 of the package's header.
        header_sha256: &'a str,
    },
}

/// Splits `N-[E:]V-R.A` into (name, epoch, version, release, arch).
pub(crate) fn split_nevra(nevra: &str) -> Option<(String, u32, String, String, String)> {
    let (rest, arch) = nevra.rsplit_once('.')?;
    let (rest, release) = rest.rsplit_once('-')?;
    let (name, ev) = rest.rsplit_once('-')?;
    let (epoch, version) = match ev.split_once(':') {
        Some((e, v)) => (e.parse().ok()?, v),
        None => (0, ev),
    };
    if name.is_empty() || version.is_empty() || release.is_empty() || arch.is_empty() {
        return None;
    }
    Some((
        name.to_owned(),
        epoch,
        version.to_owned(),
        release.to_owned(),
        arch.to_owned(),
    ))
}

/// The cached local package `nevra` whose header has sha256 `sha256` (as an origin's
/// `requested-local` names it), or an error saying it is gone.
pub(crate) fn find_local(repo: &ostree::Repo, nevra: &str, sha256: &str) -> Result<Cached> {
    let (name, epoch, version, release, arch) =
        split_nevra(nevra).ok_or_else(|| anyhow!("Invalid NEVRA of a local package: {nevra}"))?;
    let refname = cache_ref(&name, epoch, &version, &release, &arch);
    match lookup(
        repo,
        &refname,
        Source::Local {
            header_sha256: sha256,
        },
    )? {
        Some(c) => Ok(c),
        _ => bail!(
            "The local package {nevra} (sha256 {sha256}) is no longer in the package cache; install it again from its file"
        ),
    }
}

/// The cached package of `commit`, if it has the package metadata, with the repodata checksum
/// it was imported from (none for a local package).
fn read_cached(repo: &ostree::Repo, commit: &str) -> Result<Option<(Cached, Option<String>)>> {
    let (variant, _) = repo.load_commit(commit)?;
    let meta = glib::VariantDict::new(Some(&variant.child_value(0)));
    let header: Option<Vec<u8>> = meta.lookup("rpmostree.metadata").ok().flatten();
    let nevra: Option<(String, String, u64, String, String, String)> =
        meta.lookup("rpmostree.nevra").ok().flatten();
    let sha256: Option<String> = meta.lookup("rpmostree.metadata_sha256").ok().flatten();
    let repodata: Option<String> = meta.lookup("rpmostree.repodata_checksum").ok().flatten();
    Ok(match (header, nevra) {
        (Some(header), Some((nevra, name, ..))) => Some((
            Cached {
                commit: commit.to_owned(),
                nevra,
                name,
                header_sha256: sha256.unwrap_or_else(|| hex(&Sha256::digest(&header))),
                header,
            },
            repodata,
        )),
        _ => None,
    })
}

/// Where a translated path goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Dest {
    /// Into the tree at this relative path.
    Tree(PathBuf),
    /// Only as a tmpfiles line (`/var`, `/run`).
    Tmpfiles,
    /// Dropped silently (`/var/lib/rpm`, the top-level directories themselves).
    Skip,
}

/// Translates an absolute RPM path; `Err` for paths upstream refuses, and for paths that are
/// not plain (`.` or `..` components, control characters), which could reach outside the tree
/// or corrupt a tmpfiles line.
pub(crate) fn translate(path: &str) -> Result<Dest> {
    let plain = path.starts_with('/')
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !path.chars().any(char::is_control)
        && !path.contains("/./")
        && !path.ends_with("/.");
    if !plain {
        bail!("Invalid path {path:?}: not a plain absolute path");
    }
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return Ok(Dest::Skip);
    }
    let (top, rest) = rel.split_once('/').unwrap_or((rel, ""));
    let under = |prefix: &str| {
        if rest.is_empty() {
            Dest::Tree(PathBuf::from(prefix))
        } else {
            Dest::Tree(Path::new(prefix).join(rest))
        }
    };
    Ok(match top {
        "usr" => Dest::Tree(PathBuf::from(rel)),
        "etc" => under("usr/etc"),
        "boot" => under("usr/lib/ostree-boot"),
        "opt" => under("usr/lib/opt"),
        "bin" => under("usr/bin"),
        "sbin" => under("usr/sbin"),
        "lib" => under("usr/lib"),
        "lib64" => under("usr/lib64"),
        "var" if rel == "var/lib/rpm" || rel.starts_with("var/lib/rpm/") => Dest::Skip,
        "var" | "run" if rest.is_empty() => Dest::Skip,
        "var" | "run" => Dest::Tmpfiles,
        _ => bail!(
            "Unsupported path: {path}; see https://github.com/projectatomic/rpm-ostree/issues/233"
        ),
    })
}

/// The scriptlet checks upstream makes before a package may be layered: `%triggerin` and
/// `%triggerprein` are refused, and so are lua scriptlets without `-- rpm-ostree-skip`.
fn check_scripts(meta: &rpm::PackageMetadata, nevra: &str) -> Result<()> {
    for (what, script) in [
        ("%pre", meta.get_pre_install_script()),
        ("%post", meta.get_post_install_script()),
        ("%posttrans", meta.get_post_trans_script()),
    ] {
        let Ok(script) = script else { continue };
        let lua = script
            .program
            .as_ref()
            .and_then(|p| p.first())
            .is_some_and(|p| p == "<lua>");
        let skip = script
            .script
            .lines()
            .take(10)
            .any(|l| l.contains("-- rpm-ostree-skip"));
        if lua && !skip {
            bail!(
                "Package '{nevra}' has (currently) unsupported script of type '{what}' in lua; see https://github.com/coreos/rpm-ostree/issues/749"
            );
        }
    }
    if let Ok(triggers) = meta.get_triggers() {
        for t in triggers {
            let kind = t.conditions.iter().find_map(|c| {
                if c.flags.contains(rpm::DependencyFlags::TRIGGERIN) {
                    Some("%triggerin")
                } else if c.flags.contains(rpm::DependencyFlags::TRIGGERPREIN) {
                    Some("%triggerprein")
                } else {
                    None
                }
            });
            if let Some(kind) = kind {
                bail!(
                    "Package '{nevra}' has (currently) unsupported script of type '{kind}'; see https://github.com/coreos/rpm-ostree/issues/749"
                );
            }
        }
    }
    Ok(())
}

/// The NEVRA of parsed metadata (epoch left out when 0).
fn nevra_of(meta: &rpm::PackageMetadata) -> Result<(String, u32, String, String, String, String)> {
    let name = meta
        .get_name()
        .context("reading the package name")?
        .to_owned();
    let epoch = meta.get_epoch().unwrap_or(0);
    let version = meta
        .get_version()
        .context("reading the version")?
        .to_owned();
    let release = meta
        .get_release()
        .context("reading the release")?
        .to_owned();
    let arch = meta
        .get_arch()
        .context("reading the architecture")?
        .to_owned();
    let nevra = if epoch == 0 {
        format!("{name}-{version}-{release}.{arch}")
    } else {
        format!("{name}-{epoch}:{version}-{release}.{arch}")
    };
    Ok((nevra, epoch, name, version, release, arch))
}

/// The cached package under `cache_ref` if it was imported from the same data: the same
/// repodata checksum for a repository package, the same header for a local one.
fn lookup(repo: &ostree::Repo, cache_ref: &str, source: Source<'_>) -> Result<Option<Cached>> {
    let Some(commit) = repo.resolve_rev(cache_ref, true)? else {
        return Ok(None);
    };
    let Some((cached, repodata)) = read_cached(repo, &commit)? else {
        return Ok(None);
    };
    let same = match source {
        Source::Repo { checksum, .. } => repodata.as_deref() == Some(checksum),
        Source::Local { header_sha256 } => cached.header_sha256 == header_sha256,
    };
    Ok(same.then_some(cached))
}

/// The cached package `package` of repository data `checksum`, if the cache has it: then
/// its RPM need not be read at all.
pub(crate) fn cached_from_repo(
    repo: &ostree::Repo,
    package: &rpmostree_dnf::Package,
    id: &str,
    checksum: &str,
) -> Result<Option<Cached>> {
    let epoch = u32::try_from(package.epoch).unwrap_or(u32::MAX);
    let refname = cache_ref(
        &package.name,
        epoch,
        &package.version,
        &package.release,
        &package.arch,
    );
    lookup(repo, &refname, Source::Repo { id, checksum })
}

/// Imports the RPM at `path` unless the cache already has it from the same data: the same
/// repodata checksum when it comes from a repository (`from_repo`: id and checksum), else
/// the same header. `staging` is an empty private directory on the repository's file system.
/// Returns the cached package.
pub(crate) fn import(
    repo: &ostree::Repo,
    path: &Path,
    from_repo: Option<(&str, &str)>,
    staging: &Path,
    cancellable: Option<&gio::Cancellable>,
) -> Result<Cached> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let package = rpm::Package::parse(&mut std::io::Cursor::new(&bytes))
        .map_err(|e| anyhow!("{}: not a valid RPM: {e}", path.display()))?;
    let meta = &package.metadata;
    let (nevra, epoch, name, version, release, arch) = nevra_of(meta)?;
    let refname = cache_ref(&name, epoch, &version, &release, &arch);
    let offsets = meta.get_package_segment_offsets();
    let header_len = usize::try_from(offsets.payload).context("header size")?;
    let header = bytes
        .get(..header_len)
        .ok_or_else(|| anyhow!("{}: truncated RPM", path.display()))?
        .to_vec();
    let header_sha256 = hex(&Sha256::digest(&header));
    let source = match from_repo {
        Some((id, checksum)) => Source::Repo { id, checksum },
        None => Source::Local {
            header_sha256: &header_sha256,
        },
    };
    if let Some(hit) = lookup(repo, &refname, source)? {
        return Ok(hit);
    }
    check_scripts(meta, &nevra)?;

    let root = staging.join("root");
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755))?;
    let tmpfiles = unpack(&package, &nevra, &root)?;
    if !tmpfiles.is_empty() {
        let dir = root.join("usr/lib/rpm-ostree/tmpfiles.d");
        fs::create_dir_all(&dir)?;
        let mut f = fs::File::create(dir.join(format!("{name}.conf")))?;
        f.write_all(tmpfiles.as_bytes())?;
    }

    let build_time = meta.get_build_time().unwrap_or(0);
    let dict = glib::VariantDict::new(None);
    dict.insert_value("rpmostree.metadata", &header.to_variant());
    dict.insert_value("rpmostree.metadata_sha256", &header_sha256.to_variant());
    dict.insert_value(
        "rpmostree.nevra",
        &(
            nevra.clone(),
            name.clone(),
            u64::from(epoch),
            version,
            release,
            arch,
        )
            .to_variant(),
    );
    let repo_id = match source {
        Source::Repo { id, checksum } => {
            dict.insert_value("rpmostree.repodata_checksum", &checksum.to_variant());
            id
        }
        Source::Local { .. } => "@commandline",
    };
    dict.insert_value("rpmostree.unpack_version", &UNPACK_VERSION.to_variant());
    dict.insert_value(
        "rpmostree.unpack_minor_version",
        &UNPACK_MINOR_VERSION.to_variant(),
    );
    dict.insert_value("rpmostree.nodocs", &false.to_variant());
    let repo_info = glib::VariantDict::new(None);
    repo_info.insert_value("id", &repo_id.to_variant());
    dict.insert_value("rpmostree.repo", &repo_info.end());

    let metadata = dict.end();
    let spec = CommitSpec {
        parent: None,
        metadata: &metadata,
        time: build_time,
        refname: Some(&refname),
        devino: None,
    };
    let commit = commit_dir(repo, &root, &spec, cancellable)
        .with_context(|| format!("importing {nevra} into the package cache"))?;
    let _ = fs::remove_dir_all(&root);
    Ok(Cached {
        commit,
        nevra,
        name,
        header,
        header_sha256,
    })
}

/// The mode a regular file of a package gets in the tree: executables lose their write bits,
/// as upstream imports them.
pub(crate) fn file_mode(mode: u32) -> u32 {
    if mode & 0o111 != 0 {
        mode & !0o222
    } else {
        mode
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// What a commit of a directory records.
#[derive(Debug)]
pub(crate) struct CommitSpec<'a> {
    /// The parent commit.
    pub(crate) parent: Option<&'a str>,
    /// The commit metadata (`a{sv}`).
    pub(crate) metadata: &'a glib::Variant,
    /// The commit time (seconds since the epoch).
    pub(crate) time: u64,
    /// A ref to point at the commit, in the same transaction.
    pub(crate) refname: Option<&'a str>,
    /// The cache a hardlink checkout filled: unchanged repository objects are then committed
    /// without being read.
    pub(crate) devino: Option<&'a ostree::RepoDevInoCache>,
}

/// Commits the directory `dir` (files owned by root, no xattrs) as `spec` says.
pub(crate) fn commit_dir(
    repo: &ostree::Repo,
    dir: &Path,
    spec: &CommitSpec<'_>,
    cancellable: Option<&gio::Cancellable>,
) -> Result<String> {
    repo.prepare_transaction(cancellable)?;
    let result = (|| -> Result<String> {
        let mtree = ostree::MutableTree::new();
        // With a devino cache (a hardlink checkout), a file that is still a hardlink to a
        // repository object is that object, unread (DEVINO_CANONICAL, as upstream commits
        // layered trees): every change made to the tree (the rpmdb, scriptlets behind
        // rofiles-fuse) went to a new inode. The tree is consumed as it is committed.
        let mut flags = ostree::RepoCommitModifierFlags::SKIP_XATTRS;
        if spec.devino.is_some() {
            flags |= ostree::RepoCommitModifierFlags::DEVINO_CANONICAL
                | ostree::RepoCommitModifierFlags::CONSUME;
        }
        let modifier = ostree::RepoCommitModifier::new(flags, None);
        if let Some(cache) = spec.devino {
            modifier.set_devino_cache(cache);
        }
        let path = dir
            .to_str()
            .ok_or_else(|| anyhow!("{} is not UTF-8", dir.display()))?;
        repo.write_dfd_to_mtree(libc_at_fdcwd(), path, &mtree, Some(&modifier), cancellable)?;
        let root = repo.write_mtree(&mtree, cancellable)?;
        let root = root
            .downcast::<ostree::RepoFile>()
            .map_err(|_| anyhow!("the written tree is not a repository file"))?;
        let commit = repo.write_commit_with_time(
            spec.parent,
            None,
            None,
            Some(spec.metadata),
            &root,
            spec.time,
            cancellable,
        )?;
        if let Some(r) = spec.refname {
            repo.transaction_set_ref(None, r, Some(&commit));
        }
        repo.commit_transaction(cancellable)?;
        Ok(commit.to_string())
    })();
    if result.is_err() {
        let _ = repo.abort_transaction(cancellable);
    }
    result
}

/// `AT_FDCWD`: paths given to libostree are absolute.
fn libc_at_fdcwd() -> i32 {
    -100
}

/// Refuses `rel` (under `root`) when one of its parent directories exists as anything but a
/// real directory: an earlier entry of the package could have made it a symlink pointing
/// anywhere, and writing through it would reach outside the tree.
pub(crate) fn check_parents(root: &Path, rel: &Path) -> Result<()> {
    for parent in rel.ancestors().skip(1) {
        if parent.as_os_str().is_empty() {
            continue;
        }
        if let Ok(meta) = fs::symlink_metadata(root.join(parent))
            && !meta.is_dir()
        {
            bail!("{} is not a directory", parent.display());
        }
    }
    Ok(())
}

/// Writes the payload of `package` under `root` with translated paths; returns the tmpfiles
/// lines for its `/var`, `/run` and `/opt` content.
fn unpack(package: &rpm::Package, nevra: &str, root: &Path) -> Result<String> {
    let mut tmpfiles = String::new();
    let mut opt_links = std::collections::BTreeSet::new();
    let files = package
        .files()
        .map_err(|e| anyhow!("{nevra}: reading the payload: {e}"))?;
    for file in files {
        let file = file.map_err(|e| anyhow!("{nevra}: reading the payload: {e}"))?;
        let entry = &file.metadata;
        if entry.flags().contains(FileFlags::GHOST) {
            continue;
        }
        let rpm_path = entry.path();
        let rpm_path = rpm_path.to_string_lossy();
        let mode = u32::from(entry.permissions());
        let dest = translate(&rpm_path).map_err(|e| anyhow!("{nevra}: {e}"))?;
        match dest {
            Dest::Skip => {}
            Dest::Tmpfiles => match entry.file_type() {
                FileType::Dir => {
                    let _ = writeln!(
                        tmpfiles,
                        "d {rpm_path} {mode:04o} {} {} - -",
                        entry.user(),
                        entry.group()
                    );
                }
                FileType::SymbolicLink => {
                    let _ = writeln!(
                        tmpfiles,
                        "L {rpm_path} - - - - {}",
                        entry.linkto().unwrap_or_default()
                    );
                }
                _ => {}
            },
            Dest::Tree(rel) => {
                if let Some(top) = rpm_path
                    .strip_prefix("/opt/")
                    .and_then(|r| r.split('/').next())
                    .filter(|t| !t.is_empty())
                {
                    opt_links.insert(top.to_owned());
                }
                check_parents(root, &rel).map_err(|e| anyhow!("{nevra}: {rpm_path}: {e}"))?;
                let target = root.join(&rel);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                // Never write through what an earlier entry left at the same path.
                if fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
                    fs::remove_file(&target)?;
                }
                match entry.file_type() {
                    FileType::Dir => {
                        fs::create_dir_all(&target)?;
                        fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o200))?;
                    }
                    FileType::Regular => {
                        let content = file.content().unwrap_or_default();
                        let mut out = fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .open(&target)
                            .with_context(|| format!("writing {}", target.display()))?;
                        out.write_all(content)
                            .with_context(|| format!("writing {}", target.display()))?;
                        fs::set_permissions(&target, fs::Permissions::from_mode(file_mode(mode)))?;
                    }
                    FileType::SymbolicLink => {
                        let _ = fs::remove_file(&target);
                        symlink(entry.linkto().unwrap_or_default(), &target)
                            .with_context(|| format!("symlinking {}", target.display()))?;
                    }
                    other => bail!("{nevra}: {rpm_path}: unsupported file type {other:?}"),
                }
            }
        }
    }
    for top in opt_links {
        let _ = writeln!(tmpfiles, "L /opt/{top} - - - - /usr/lib/opt/{top}");
    }
    Ok(tmpfiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_quote_like_upstream() {
        assert_eq!(
            cache_ref("foo_bar", 0, "1.0", "1.fc40", "x86_64"),
            "rpmostree/pkg/foo__bar/1.0-1.fc40.x86__64"
        );
        assert_eq!(
            cache_ref("gcc-c++", 2, "1.0~rc1", "1", "noarch"),
            "rpmostree/pkg/gcc-c_2B_2B/2_3A1.0_7Erc1-1.noarch"
        );
    }

    #[test]
    fn nevras_split_into_their_parts() {
        assert_eq!(
            split_nevra("foo-bar-1.0-1.fc40.x86_64"),
            Some((
                "foo-bar".into(),
                0,
                "1.0".into(),
                "1.fc40".into(),
                "x86_64".into()
            ))
        );
        assert_eq!(
            split_nevra("clock-2:1.0-1.noarch"),
            Some(("clock".into(), 2, "1.0".into(), "1".into(), "noarch".into()))
        );
        assert_eq!(split_nevra("nope"), None);
        assert_eq!(split_nevra("a-1.noarch"), None);
        assert_eq!(split_nevra("a-x:1-1.noarch"), None);
    }

    #[test]
    fn paths_that_are_not_plain_are_refused() {
        for bad in [
            "/usr/../etc/shadow",
            "/usr/share/./x",
            "/usr/share/x/..",
            "/usr/share/a\nd /etc 0777",
            "usr/share/relative",
        ] {
            let err = translate(bad).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains("Invalid path")),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn a_package_cannot_write_through_its_own_symlink() {
        let dir =
            std::env::temp_dir().join(format!("rpmostree-pkgcache-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (root, outside) = (dir.join("root"), dir.join("outside"));
        fs::create_dir_all(&root).unwrap_or_default();
        fs::create_dir_all(&outside).unwrap_or_default();
        let mut builder = rpm::PackageBuilder::new("evil", "1.0", "MIT", "noarch", "Evil");
        let built = builder
            .with_symlink(rpm::FileOptions::symlink(
                "/usr/share/evil",
                outside.to_string_lossy(),
            ))
            .and_then(|b| {
                b.with_file_contents(
                    b"pwned".to_vec(),
                    rpm::FileOptions::new("/usr/share/evil/pwned"),
                )
            })
            .and_then(|b| b.build());
        let Ok(package) = built else {
            panic!("building the test package: {:?}", built.err());
        };
        let err = unpack(&package, "evil-1.0-1.noarch", &root)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("usr/share/evil is not a directory")),
            "{err:?}"
        );
        assert!(!outside.join("pwned").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn paths_translate_as_upstream_does() {
        let tree = |p: &str| translate(p).ok();
        assert_eq!(tree("/usr/bin/x"), Some(Dest::Tree("usr/bin/x".into())));
        assert_eq!(
            tree("/etc/x.conf"),
            Some(Dest::Tree("usr/etc/x.conf".into()))
        );
        assert_eq!(tree("/etc"), Some(Dest::Tree("usr/etc".into())));
        assert_eq!(
            tree("/boot/vmlinuz"),
            Some(Dest::Tree("usr/lib/ostree-boot/vmlinuz".into()))
        );
        assert_eq!(
            tree("/opt/app/bin/app"),
            Some(Dest::Tree("usr/lib/opt/app/bin/app".into()))
        );
        assert_eq!(tree("/bin/sh"), Some(Dest::Tree("usr/bin/sh".into())));
        assert_eq!(tree("/var/lib/foo"), Some(Dest::Tmpfiles));
        assert_eq!(tree("/run/foo"), Some(Dest::Tmpfiles));
        assert_eq!(tree("/var"), Some(Dest::Skip));
        assert_eq!(tree("/var/lib/rpm/x"), Some(Dest::Skip));
        let err = translate("/srv/data").err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("Unsupported path: /srv/data")),
            "{err:?}"
        );
    }
}
