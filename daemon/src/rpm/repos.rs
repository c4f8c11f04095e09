//! rpm-md repositories of a deployment: the `.repo` files of its `/etc/yum.repos.d`, their
//! metadata cached in the system's `/var/cache/rpm-ostree`, and the queries answered from that
//! cache (never from the network). The libdnf work itself runs in the helper process.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use rpmostree_dnf::protocol::{Message, Reply, Request};
use rpmostree_dnf::{Advisory, ContextOptions, Package, RepoInfo, RepoUpdate};

pub(crate) use rpmostree_dnf::protocol::Query;

use super::helper;

/// Where a deployment's repositories and their caches are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepoSetup {
    /// The deployment whose `/etc/yum.repos.d` and os-release count.
    pub(crate) root: PathBuf,
    /// The daemon's cache directory (`/var/cache/rpm-ostree` of the system).
    pub(crate) cache: PathBuf,
    /// Where libdnf keeps its locks.
    pub(crate) lock_dir: PathBuf,
}

impl RepoSetup {
    /// The libdnf options: repos from the deployment, metadata in `<cache>/repomd`, solv
    /// files in `<cache>/solv`, `$releasever` from the deployment's os-release.
    pub(crate) fn options(&self) -> ContextOptions {
        ContextOptions {
            repos_dir: self.root.join("etc/yum.repos.d"),
            source_root: self.root.clone(),
            cache_dir: self.cache.join("repomd"),
            solv_dir: self.cache.join("solv"),
            lock_dir: self.lock_dir.clone(),
            releasever: releasever(&self.root),
        }
    }

    /// Whether the deployment has a repository directory at all; without one there are no
    /// repositories (and libdnf, which would create the directory, is not asked).
    fn has_repos(&self) -> bool {
        self.root.join("etc/yum.repos.d").is_dir()
    }
}

/// `VERSION_ID` of the os-release under `root` (`/etc/os-release`, else
/// `/usr/lib/os-release`), the value of `$releasever`.
pub(crate) fn releasever(root: &Path) -> Option<String> {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(root.join(p)).ok())
        .find_map(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("VERSION_ID=")
                    .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_owned())
            })
        })
        .filter(|v| !v.is_empty())
}

/// Every configured repository.
pub(crate) fn list(setup: &RepoSetup) -> Result<Vec<RepoInfo>> {
    if !setup.has_repos() {
        return Ok(Vec::new());
    }
    match helper::call_simple(&Request::ListRepos {
        options: setup.options(),
    })? {
        Reply::Repos(repos) => Ok(repos),
        other => Err(helper::unexpected(other)),
    }
}

/// Sets `enabled` of repository `id` in its `.repo` file.
pub(crate) fn set_enabled(setup: &RepoSetup, id: &str, enabled: bool) -> Result<()> {
    if !setup.has_repos() {
        return Err(anyhow!("Yum repo '{id}' not found"));
    }
    match helper::call_simple(&Request::SetEnabled {
        options: setup.options(),
        id: id.to_owned(),
        enabled,
    })? {
        Reply::Done => Ok(()),
        other => Err(helper::unexpected(other)),
    }
}

/// Downloads the metadata of every enabled repository whose cache is stale (all of them with
/// `force`), reporting `(repository, percent)` as it goes; `cancelled` stops it at once.
pub(crate) fn refresh(
    setup: &RepoSetup,
    force: bool,
    progress: &mut dyn FnMut(&str, u32),
    cancelled: &dyn Fn() -> bool,
) -> Result<Vec<RepoUpdate>> {
    if !setup.has_repos() {
        return Ok(Vec::new());
    }
    let request = Request::Refresh {
        options: setup.options(),
        force,
    };
    let mut on_message = |m: &Message| {
        if let Message::Progress { repo, percent } = m {
            progress(repo, *percent);
        }
    };
    match helper::call(&request, &mut on_message, cancelled)? {
        Reply::Updates(updates) => Ok(updates),
        other => Err(helper::unexpected(other)),
    }
}

/// Answers `query` from the cached metadata: `(key, package)` pairs, where the key is the
/// queried name (`Names`), the match group (`Search`) or none (`Provides`).
pub(crate) fn query(setup: &RepoSetup, query: &Query) -> Result<Vec<(Option<String>, Package)>> {
    if let Query::Search(terms) = query
        && terms.is_empty()
    {
        return Err(anyhow!("Must specify a term for search"));
    }
    if !setup.has_repos() {
        return Ok(Vec::new());
    }
    match helper::call_simple(&Request::Query {
        options: setup.options(),
        query: query.clone(),
    })? {
        Reply::Found(found) => Ok(found),
        other => Err(helper::unexpected(other)),
    }
}

/// The security advisories the cached metadata has for `packages`; `refresh_first` updates
/// stale metadata first. Problems with the metadata are reported through `warn`, never fatal.
pub(crate) fn advisories(
    setup: &RepoSetup,
    packages: &[Package],
    refresh_first: bool,
    warn: &mut dyn FnMut(&str),
    cancelled: &dyn Fn() -> bool,
) -> Result<Vec<Advisory>> {
    if packages.is_empty() || !setup.has_repos() {
        return Ok(Vec::new());
    }
    let request = Request::Advisories {
        options: setup.options(),
        packages: packages.to_vec(),
        refresh: refresh_first,
    };
    let mut on_message = |m: &Message| {
        if let Message::Warning(w) = m {
            warn(w);
        }
    };
    match helper::call(&request, &mut on_message, cancelled)? {
        Reply::Advisories(found) => Ok(found),
        other => Err(helper::unexpected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_without_a_repos_dir_has_no_repositories_and_stays_untouched() {
        let dir = std::env::temp_dir().join(format!("rpmostreed-norepos-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/etc")).unwrap_or_default();
        let setup = RepoSetup {
            root: dir.join("root"),
            cache: dir.join("cache"),
            lock_dir: dir.join("lock"),
        };
        assert!(list(&setup).is_ok_and(|r| r.is_empty()));
        assert!(refresh(&setup, true, &mut |_, _| {}, &|| false).is_ok_and(|r| r.is_empty()));
        let q = query(&setup, &Query::Names(vec!["x".into()]));
        assert!(q.is_ok_and(|r| r.is_empty()));
        assert!(!dir.join("root/etc/yum.repos.d").exists());
        assert!(!dir.join("cache").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn releasever_comes_from_os_release() {
        let dir = std::env::temp_dir().join(format!("rpmostreed-relver-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(releasever(&dir), None);
        std::fs::create_dir_all(dir.join("usr/lib")).unwrap_or_default();
        std::fs::write(
            dir.join("usr/lib/os-release"),
            "NAME=X\nVERSION_ID=\"1.1\"\n",
        )
        .unwrap_or_default();
        assert_eq!(releasever(&dir).as_deref(), Some("1.1"));
        std::fs::create_dir_all(dir.join("etc")).unwrap_or_default();
        std::fs::write(dir.join("etc/os-release"), "VERSION_ID=39\n").unwrap_or_default();
        assert_eq!(releasever(&dir).as_deref(), Some("39"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
