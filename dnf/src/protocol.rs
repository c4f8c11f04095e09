//! The protocol of `rpm-ostreed-dnf`, the helper process that does all libdnf work for the
//! daemon: one [`Request`] as JSON on its stdin, then [`Message`] JSON lines on its stdout,
//! the last one a reply or an error.
//!
//! Keeping libdnf in its own short-lived process keeps its libraries out of the daemon (its
//! start-up and idle memory), makes a refresh cancellable (the daemon kills the helper), and
//! turns a crash in the C libraries into an error instead of a dead daemon. The types here are
//! plain data; only [`serve`] calls into libdnf.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{
    Advisory, CachePolicy, Context, ContextOptions, DepsolveOptions, Error, FileTrigger, Overrides,
    Package, RepoInfo, RepoUpdate, Resolution,
};

/// What the helper is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The packages of the rpmdb under a tree ([`crate::rpmdb_packages`]).
    RpmdbPackages {
        /// The tree.
        root: PathBuf,
    },
    /// Every configured repository.
    ListRepos {
        /// Where the repositories and caches are.
        options: ContextOptions,
    },
    /// Turns a repository on or off in its `.repo` file.
    SetEnabled {
        /// Where the repositories and caches are.
        options: ContextOptions,
        /// The repository id.
        id: String,
        /// The new `enabled`.
        enabled: bool,
    },
    /// Downloads stale metadata (all of it with `force`).
    Refresh {
        /// Where the repositories and caches are.
        options: ContextOptions,
        /// Download even fresh metadata.
        force: bool,
    },
    /// A query over the cached metadata.
    Query {
        /// Where the repositories and caches are.
        options: ContextOptions,
        /// The query.
        query: Query,
    },
    /// The security advisories covering `packages`, refreshing stale metadata first with
    /// `refresh` (a failure there is only a warning).
    Advisories {
        /// Where the repositories and caches are.
        options: ContextOptions,
        /// The packages.
        packages: Vec<Package>,
        /// Refresh stale metadata first.
        refresh: bool,
    },
    /// The layering depsolve ([`Context::depsolve`]) against the rpmdb of `root`.
    Depsolve {
        /// Where the repositories and caches are.
        options: ContextOptions,
        /// The base tree: its `usr/share/rpm` holds the base rpmdb (a private copy; sqlite
        /// files the read creates are removed again).
        root: PathBuf,
        /// What to install: names, NEVRA forms, globs, provides or file paths.
        requests: Vec<String>,
        /// Local RPM files to install.
        local: Vec<PathBuf>,
        /// Also install weak dependencies (`Recommends`).
        weak_deps: bool,
        /// Never go to the network.
        cache_only: bool,
        /// Names of base packages to remove (upstream's `[overrides] remove`); see
        /// [`Overrides::remove`].
        #[serde(default)]
        remove: Vec<String>,
        /// Local RPM files that replace the base package of the same name, newer or older
        /// (upstream's `replace-local`); see [`Overrides::replace_local`].
        #[serde(default)]
        replace_local: Vec<PathBuf>,
    },
    /// Changes the rpmdb of `root` in one librpm transaction ([`crate::edit_rpmdb`]).
    WriteRpmdb {
        /// The tree: its `usr/share/rpm` (already private copies) gets the packages.
        root: PathBuf,
        /// Full or header-only RPM files to add (installs: nothing else goes away).
        packages: Vec<PathBuf>,
        /// Full or header-only RPM files to add as upgrades: every installed package of the
        /// same name (older or newer) is erased (the replacements of
        /// [`Resolution::replaced`]).
        #[serde(default)]
        upgrades: Vec<PathBuf>,
        /// NEVRAs (`N-[E:]V-R.A`, the epoch only when not 0) of installed packages to erase
        /// (the removals of [`Resolution::removed`]); each must be installed.
        #[serde(default)]
        erase: Vec<String>,
    },
    /// The files of installed packages ([`crate::package_files`]), read-only.
    PackageFiles {
        /// The tree whose `usr/share/rpm` is read (sqlite files the read creates are removed
        /// again).
        root: PathBuf,
        /// NEVRAs (`N-[E:]V-R.A`, the epoch only when not 0); each must be installed.
        nevras: Vec<String>,
    },
    /// The `%transfiletriggerin` scriptlets of the installed packages
    /// ([`crate::file_triggers`]), read-only; nothing is run.
    FileTriggers {
        /// The tree whose `usr/share/rpm` is read (sqlite files the read creates are removed
        /// again).
        root: PathBuf,
    },
}

/// A query over cached metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// `GetPackages`: the newest packages of these names.
    Names(Vec<String>),
    /// `WhatProvides`: the newest packages providing these capabilities.
    Provides(Vec<String>),
    /// `Search`: name and summary matches in upstream's three groups.
    Search(Vec<String>),
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// `RpmdbPackages`.
    Packages(Vec<Package>),
    /// `ListRepos`.
    Repos(Vec<RepoInfo>),
    /// `SetEnabled`, `WriteRpmdb`.
    Done,
    /// `PackageFiles`: per requested NEVRA, in request order, the absolute paths of the
    /// regular files, directories and symlinks the package owns.
    Files(Vec<(String, Vec<String>)>),
    /// `FileTriggers`: by package name, then script index.
    FileTriggers(Vec<FileTrigger>),
    /// `Refresh`.
    Updates(Vec<RepoUpdate>),
    /// `Query`: (key, package) pairs; the key is the queried name (`Names`), the match group
    /// (`Search`) or none (`Provides`).
    Found(Vec<(Option<String>, Package)>),
    /// `Advisories`.
    Advisories(Vec<Advisory>),
    /// `Depsolve`.
    Resolved(Resolution),
}

/// One line of the helper's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Download progress of one repository (metadata or packages).
    Progress {
        /// The repository id.
        repo: String,
        /// Completion, 0 to 100.
        percent: u32,
    },
    /// Something worth telling the user that does not fail the request.
    Warning(String),
    /// The answer; the last line.
    Reply(Reply),
    /// The request failed; the last line.
    Error(String),
}

/// Runs one request: reads it from `input`, writes the messages to `output`. Returns the exit
/// status for the helper (0 when a reply was written).
pub fn serve(input: impl BufRead, mut output: impl Write) -> i32 {
    let mut emit = |m: &Message| {
        if let Ok(line) = serde_json::to_string(m) {
            let _ = writeln!(output, "{line}");
            let _ = output.flush();
        }
    };
    let request: Result<Request, String> = serde_json::from_reader(input)
        .map_err(|e| format!("the package helper got a bad request: {e}"));
    let result = request.and_then(|r| answer(&r, &mut emit).map_err(|e| e.to_string()));
    match result {
        Ok(reply) => {
            emit(&Message::Reply(reply));
            0
        }
        Err(e) => {
            emit(&Message::Error(e));
            1
        }
    }
}

fn answer(request: &Request, emit: &mut dyn FnMut(&Message)) -> Result<Reply, Error> {
    Ok(match request {
        Request::RpmdbPackages { root } => Reply::Packages(crate::rpmdb_packages(root)?),
        Request::ListRepos { options } => Reply::Repos(Context::new(options)?.repos()),
        Request::SetEnabled {
            options,
            id,
            enabled,
        } => {
            Context::new(options)?.set_enabled(id, *enabled)?;
            Reply::Done
        }
        Request::Refresh { options, force } => {
            let policy = if *force {
                CachePolicy::Never
            } else {
                CachePolicy::Default
            };
            let updates = Context::new(options)?.update_metadata(policy, &mut progress(emit))?;
            Reply::Updates(updates)
        }
        Request::Query { options, query } => {
            let mut ctx = Context::new(options)?;
            ctx.load_cached(false)?;
            let keyed =
                |v: Vec<(String, Package)>| v.into_iter().map(|(k, p)| (Some(k), p)).collect();
            Reply::Found(match query {
                Query::Names(names) => keyed(ctx.packages_by_name(names)?),
                Query::Search(terms) => keyed(ctx.search(terms)?),
                Query::Provides(caps) => ctx
                    .what_provides(caps)?
                    .into_iter()
                    .map(|p| (None, p))
                    .collect(),
            })
        }
        Request::Advisories {
            options,
            packages,
            refresh,
        } => {
            let mut ctx = Context::new(options)?;
            if *refresh && let Err(e) = ctx.update_metadata(CachePolicy::Default, &mut |_, _| {}) {
                emit(&Message::Warning(format!(
                    "{e}; advisories come from the metadata cached before"
                )));
                // A failed refresh leaves the context unusable for loading; start again.
                ctx = Context::new(options)?;
            }
            if let Err(e) = ctx.load_cached(false) {
                emit(&Message::Warning(format!("No advisories: {e}")));
                return Ok(Reply::Advisories(Vec::new()));
            }
            Reply::Advisories(ctx.advisories(packages)?)
        }
        Request::Depsolve {
            options,
            root,
            requests,
            local,
            weak_deps,
            cache_only,
            remove,
            replace_local,
        } => {
            let mut ctx = Context::with_install_root(options, root)?;
            let flags = DepsolveOptions {
                weak_deps: *weak_deps,
                cache_only: *cache_only,
            };
            let overrides = Overrides {
                remove: remove.clone(),
                replace_local: replace_local.clone(),
            };
            Reply::Resolved(ctx.depsolve_with_overrides(
                requests,
                local,
                &overrides,
                flags,
                &mut progress(emit),
            )?)
        }
        Request::WriteRpmdb {
            root,
            packages,
            upgrades,
            erase,
        } => {
            crate::edit_rpmdb(root, packages, upgrades, erase)?;
            Reply::Done
        }
        Request::PackageFiles { root, nevras } => Reply::Files(crate::package_files(root, nevras)?),
        Request::FileTriggers { root } => Reply::FileTriggers(crate::file_triggers(root)?),
    })
}

/// A progress callback that emits [`Message::Progress`], skipping repeats.
fn progress<'a>(emit: &'a mut dyn FnMut(&Message)) -> impl FnMut(&str, u32) + 'a {
    let mut last: Option<(String, u32)> = None;
    move |repo, percent| {
        if last.as_ref() != Some(&(repo.to_owned(), percent)) {
            last = Some((repo.to_owned(), percent));
            emit(&Message::Progress {
                repo: repo.to_owned(),
                percent,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_messages_round_trip_as_json_lines() {
        let request = Request::Query {
            options: ContextOptions {
                repos_dir: "/r".into(),
                source_root: "/".into(),
                cache_dir: "/c".into(),
                solv_dir: "/s".into(),
                lock_dir: "/l".into(),
                releasever: Some("1".into()),
            },
            query: Query::Search(vec!["hello".into()]),
        };
        let text = serde_json::to_string(&request).unwrap_or_default();
        assert!(!text.contains('\n'));
        assert_eq!(serde_json::from_str::<Request>(&text).ok(), Some(request));
        let m = Message::Progress {
            repo: "testos".into(),
            percent: 50,
        };
        let text = serde_json::to_string(&m).unwrap_or_default();
        assert_eq!(serde_json::from_str::<Message>(&text).ok(), Some(m));
    }

    #[test]
    fn requests_and_replies_without_the_override_fields_still_parse() {
        let options = r#"{"repos_dir":"/r","source_root":"/","cache_dir":"/c","solv_dir":"/s","lock_dir":"/l","releasever":null}"#;
        let depsolve = format!(
            r#"{{"Depsolve":{{"options":{options},"root":"/t","requests":["a"],"local":[],"weak_deps":true,"cache_only":false}}}}"#
        );
        let parsed = serde_json::from_str::<Request>(&depsolve).ok();
        assert!(
            matches!(&parsed, Some(Request::Depsolve { remove, replace_local, .. })
                if remove.is_empty() && replace_local.is_empty()),
            "{parsed:?}"
        );
        let write = r#"{"WriteRpmdb":{"root":"/t","packages":["/p.rpm"]}}"#;
        assert_eq!(
            serde_json::from_str::<Request>(write).ok(),
            Some(Request::WriteRpmdb {
                root: "/t".into(),
                packages: vec!["/p.rpm".into()],
                upgrades: vec![],
                erase: vec![],
            })
        );
        let resolved =
            r#"{"Reply":{"Resolved":{"packages":[],"inactive":[["a","a-1-1.noarch"]]}}}"#;
        assert_eq!(
            serde_json::from_str::<Message>(resolved).ok(),
            Some(Message::Reply(Reply::Resolved(Resolution {
                inactive: vec![("a".into(), "a-1-1.noarch".into())],
                ..Resolution::default()
            })))
        );
    }

    #[test]
    fn a_bad_request_is_an_error_line_and_a_failure() {
        let mut out = Vec::new();
        let status = serve(&b"{\"Nope\": 1}"[..], &mut out);
        assert_eq!(status, 1);
        let line = String::from_utf8_lossy(&out);
        let m: Option<Message> = serde_json::from_str(line.trim()).ok();
        assert!(
            matches!(&m, Some(Message::Error(e)) if e.contains("bad request")),
            "{line}"
        );
    }
}
