//! The OSTree fixture: a fake OS tree, an archive repo served as the `file://` remote
//! `origin`, and a sysroot with two deployments of `testos`.
//!
//! Remote history: `testos/stable` 1.0 -> 1.1 -> 2.0, `testos/devel` 10.0. The sysroot has
//! 1.1 (default) and 1.0 (rollback) deployed, so an upgrade to 2.0 is available.
//!
//! Every commit holds an rpm database of real (header-only) packages and, except on
//! `testos/devel`, the `rpmostree.rpmdb.pkglist` metadata rpm-ostree's compose writes; see
//! [`packages_for`] for what changes between versions. The rpm-md repository `testos`
//! (`DIR/rpmmd`, configured in the tree's `/etc/yum.repos.d/testos.repo`) carries the update
//! of `libfoo` with the security advisory [`ADVISORY`] and a few packages to query.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{Context, HarnessError};
use crate::process;
use crate::rpms::{self, RpmSpec, UpdateAdvisory};

/// The stateroot of the fixture.
pub(crate) const OSNAME: &str = "testos";
/// The branch the sysroot follows.
pub(crate) const STABLE: &str = "testos/stable";
/// A second branch, for rebase tests.
pub(crate) const DEVEL: &str = "testos/devel";
/// The kernel version of the fake OS.
pub(crate) const KVER: &str = "6.1.0-testos";
/// Kernel arguments of the first deployment.
pub(crate) const KARGS: [&str; 3] = ["root=LABEL=testroot", "rw", "quiet"];

/// The security advisory of the rpm-md repository (for `libfoo` 2.0).
pub(crate) const ADVISORY: &str = "TESTOS-2026-0001";
/// The CVE that advisory fixes.
pub(crate) const ADVISORY_CVE: &str = "CVE-2026-0001";

/// The base packages of the fixture's OS `version` (`testos-release` always matches it).
///
/// 1.0 and 1.1 ship `base-files` 1.0, `libfoo` 1.0, `bar` 1.0, `oldtool` 1.0, `clock`
/// 1:2.0 and `tilde` 1.0~rc1; 2.0 (and every later stable version) upgrades `libfoo` to 2.0,
/// `clock` to 2:1.0 (by epoch) and `tilde` to 1.0, downgrades `bar` to 0.9, removes `oldtool`
/// and adds `newtool` 1.0; devel 10.0 has `base-files`, `libfoo` 2.0 and `newtool`.
pub(crate) fn packages_for(version: &str) -> Vec<RpmSpec> {
    let release = RpmSpec::new("testos-release", version, "1")
        .summary("TestOS release files")
        .provides("system-release");
    // The shell every tree has (`/usr/bin/sh`, see `install_shell`): scriptlets require it.
    // It also watches /usr/share/watched with a file trigger, as base packages watch the
    // directories of ld.so, icons or fonts.
    let base_files = RpmSpec::new("base-files", "1.0", "1")
        .summary("TestOS base files")
        .provides("/bin/sh")
        .script(
            "%transfiletriggerin -- /usr/share/watched",
            "while read -r f; do echo \"$f\" >> /usr/share/base-files/triggered; done",
        );
    let mut set = vec![release, base_files];
    match version {
        "1.0" | "1.1" => set.extend([
            libfoo("1.0"),
            RpmSpec::new("bar", "1.0", "1"),
            RpmSpec::new("oldtool", "1.0", "1"),
            RpmSpec::new("clock", "2.0", "1").epoch(1),
            RpmSpec::new("tilde", "1.0~rc1", "1"),
        ]),
        "10.0" => set.extend([libfoo("2.0"), newtool()]),
        _ => set.extend([
            libfoo("2.0"),
            RpmSpec::new("bar", "0.9", "1"),
            newtool(),
            // An upgrade by epoch alone (the version goes down), and one from a pre-release.
            RpmSpec::new("clock", "1.0", "1").epoch(2),
            RpmSpec::new("tilde", "1.0", "1"),
        ]),
    }
    set
}

fn libfoo(version: &str) -> RpmSpec {
    RpmSpec::new("libfoo", version, "1")
        .summary("Foo runtime library")
        .provides(&format!("libfoo-abi = {version}"))
}

fn newtool() -> RpmSpec {
    RpmSpec::new("newtool", "1.0", "1").summary("A new tool")
}

/// The packages of the rpm-md repository `testos`.
pub(crate) fn repo_packages() -> Vec<RpmSpec> {
    vec![
        libfoo("1.0"),
        libfoo("2.0"),
        RpmSpec::new("bar", "0.9", "1"),
        newtool(),
        RpmSpec::new("hello", "1.0", "1")
            .summary("A friendly greeting program")
            .provides("greeting"),
        RpmSpec::new("hello", "1.1", "1")
            .summary("A friendly greeting program")
            .provides("greeting"),
        RpmSpec::new("hello-docs", "1.1", "1").summary("Documentation for hello"),
    ]
}

/// The packages for layering tests, also in the rpm-md repository `testos`:
///
/// - `layer-a`: requires `(layer-b >= 2.0 or layer-missing)` (a rich dependency) and the file
///   `/usr/share/base-files/VERSION` (of the base), recommends `layer-c`; its `%post` records
///   its argument in `/usr/share/layer-a/post-ran`, writes `/etc/layer-a.generated` and
///   appends to `/usr/share/testos/version`, a base file that is a hardlink into the
///   repository in the checkout;
/// - `layer-b` 1.0 and 2.0 (2.0 has `/etc/layer-b.conf` and a `/var/lib/layer-b` directory);
/// - `layer-c`;
/// - `owned-files`: a file owned by the system user `testsvc` (mode 0640), a setuid program of
///   group `testsvc`, and files owned by `ownedsvc` and `dynsvc`, accounts its sysusers.d
///   fragment declares (with a fixed id, and without);
/// - `watch-trigger`: a file in `/usr/share/watched` (which `base-files` watches with a
///   `%transfiletriggerin`) and its own trigger on that directory;
/// - `pre-sees-users`: its `%pre` records whether `/etc/passwd` has `machineuser`;
/// - `endless-post`: its `%post` never ends (for faults in the middle of a scriptlet);
/// - `needs-new-libfoo`: needs `libfoo-abi = 2.0`, which only a base upgrade brings;
/// - `bad-post`: its `%post` fails; `lua-post`: a lua `%post`; `srv-files`: a file in `/srv`.
pub(crate) fn layering_packages() -> Vec<RpmSpec> {
    vec![
        RpmSpec::new("layer-a", "1.0", "1")
            .summary("Layer A")
            .requires("(layer-b >= 2.0 or layer-missing)")
            .requires("/usr/share/base-files/VERSION")
            .recommends("layer-c")
            .script(
                "%post",
                "echo \"layer-a %post ran with arg $1\" > /usr/share/layer-a/post-ran\n\
                 echo generated > /etc/layer-a.generated\n\
                 echo \"touched by layer-a\" >> /usr/share/testos/version",
            ),
        RpmSpec::new("layer-b", "1.0", "1").summary("Layer B"),
        RpmSpec::new("layer-b", "2.0", "1")
            .summary("Layer B")
            .file("/etc/layer-b.conf", "setting=1\n")
            .dir("/var/lib/layer-b"),
        RpmSpec::new("layer-c", "1.0", "1").summary("Layer C"),
        RpmSpec::new("owned-files", "1.0", "1")
            .summary("Files owned by a system user")
            .file_owned(
                "/usr/share/owned-files/secret",
                "secret\n",
                "0640",
                "testsvc",
                "testsvc",
            )
            .file_owned(
                "/usr/bin/owned-tool",
                "#!/bin/sh\n",
                "4755",
                "root",
                "testsvc",
            )
            // An account that only a sysusers.d fragment declares (created at boot).
            .file(
                "/usr/lib/sysusers.d/owned-files.conf",
                "u ownedsvc 991 \"Owned files service\" /\nu dynsvc - \"Dynamic service\" /\n",
            )
            .file_owned(
                "/usr/share/owned-files/dynamic",
                "dynamic\n",
                "0600",
                "dynsvc",
                "dynsvc",
            )
            .file_owned(
                "/usr/share/owned-files/state",
                "state\n",
                "0600",
                "ownedsvc",
                "ownedsvc",
            ),
        RpmSpec::new("watch-trigger", "1.0", "1")
            .summary("A file and a file trigger")
            .file("/usr/share/watched/w", "watched\n")
            .script(
                "%transfiletriggerin -- /usr/share/watched",
                "while read -r f; do echo \"$f\" >> /usr/share/watch-trigger/seen; done",
            ),
        RpmSpec::new("pre-sees-users", "1.0", "1")
            .summary("A %pre that looks for an account of the running system")
            .script(
                "%pre",
                "while IFS=: read -r name rest; do\n\
                 if [ \"$name\" = machineuser ]; then echo found > /usr/share/pre-sees-users/seen; fi\n\
                 done < /etc/passwd",
            ),
        RpmSpec::new("endless-post", "1.0", "1")
            .summary("A scriptlet that never ends")
            .script("%post", "while :; do :; done"),
        RpmSpec::new("needs-new-libfoo", "1.0", "1")
            .summary("Needs the new libfoo")
            .requires("libfoo-abi = 2.0"),
        RpmSpec::new("bad-post", "1.0", "1")
            .summary("A failing scriptlet")
            .script("%post", "echo 'bad-post is failing on purpose' >&2\nexit 3"),
        RpmSpec::new("lua-post", "1.0", "1")
            .summary("A lua scriptlet")
            .script("%post -p <lua>", "print('hello from lua')"),
        RpmSpec::new("srv-files", "1.0", "1")
            .summary("Files in an unsupported place")
            .file("/srv/srv-files/data", "data\n"),
    ]
}

/// The advisories of the rpm-md repository `testos`: one security advisory for `libfoo`
/// 2.0, one enhancement for `hello` 1.1 (which package diffs leave out).
pub(crate) fn repo_advisories() -> Vec<UpdateAdvisory> {
    vec![
        UpdateAdvisory {
            id: ADVISORY.to_owned(),
            kind: "security".to_owned(),
            severity: "Important".to_owned(),
            title: "libfoo security update".to_owned(),
            cves: vec![ADVISORY_CVE.to_owned()],
            packages: vec![libfoo("2.0")],
        },
        UpdateAdvisory {
            id: "TESTOS-2026-0002".to_owned(),
            kind: "enhancement".to_owned(),
            severity: String::new(),
            title: "hello enhancement".to_owned(),
            cves: Vec::new(),
            packages: vec![RpmSpec::new("hello", "1.1", "1")],
        },
    ]
}

/// How long one ostree command may take (the machine may be busy with builds).
const OSTREE_TIMEOUT: Duration = Duration::from_secs(180);

/// Paths of the fixture.
#[derive(Debug, Clone)]
pub(crate) struct Fixture {
    /// The archive repo (`origin`).
    pub(crate) remote: PathBuf,
    /// The sysroot.
    pub(crate) sysroot: PathBuf,
    /// The work tree that commits are made from.
    pub(crate) tree: PathBuf,
    /// The rpm-md repository `testos`.
    pub(crate) rpmmd: PathBuf,
}

impl Fixture {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            remote: dir.join("remote"),
            sysroot: dir.join("sysroot"),
            tree: dir.join("tree"),
            rpmmd: dir.join("rpmmd"),
        }
    }

    /// The sysroot's repo.
    pub(crate) fn sysroot_repo(&self) -> PathBuf {
        self.sysroot.join("ostree").join("repo")
    }

    /// `ostree` with the environment every ostree invocation of the harness gets.
    pub(crate) fn ostree_command() -> Command {
        let mut cmd = Command::new("ostree");
        // No immutable bits on deployment dirs, so a sandbox can always be removed.
        cmd.env("OSTREE_SYSROOT_DEBUG", "mutable-deployments");
        cmd
    }

    /// Runs `ostree --repo=<repo> args...`.
    pub(crate) fn ostree_repo(repo: &Path, args: &[&str]) -> Result<String, HarnessError> {
        process::run_ok(
            Self::ostree_command()
                .arg(format!("--repo={}", repo.display()))
                .args(args),
            OSTREE_TIMEOUT,
        )
    }

    /// Runs `ostree admin --sysroot=<sysroot> args...`.
    pub(crate) fn ostree_admin(&self, args: &[&str]) -> Result<String, HarnessError> {
        process::run_ok(
            Self::ostree_command()
                .arg("admin")
                .arg(format!("--sysroot={}", self.sysroot.display()))
                .args(args),
            OSTREE_TIMEOUT,
        )
    }

    /// Builds everything: remote history, sysroot, two deployments.
    pub(crate) fn build(&self) -> Result<(), HarnessError> {
        let mut specs = repo_packages();
        specs.extend(layering_packages());
        let rpms = rpms::build_rpms(&specs)?;
        rpms::create_repo(&self.rpmmd, &rpms, &repo_advisories())
            .context("creating the rpm-md repository")?;
        Self::ostree_repo(&self.remote, &["init", "--mode=archive"])
            .context("creating the remote repo")?;
        // Commits in a throwaway fixture need no fsync.
        Self::ostree_repo(&self.remote, &["config", "set", "core.fsync", "false"])?;
        self.commit(STABLE, "1.0")?;

        fs::create_dir_all(&self.sysroot)
            .map_err(|e| HarnessError::io("creating", &self.sysroot, e))?;
        // init-fs takes the path as its argument, not --sysroot.
        process::run_ok(
            Self::ostree_command()
                .args(["admin", "init-fs"])
                .arg(&self.sysroot),
            OSTREE_TIMEOUT,
        )
        .context("ostree admin init-fs")?;
        self.ostree_admin(&["os-init", OSNAME])?;
        let repo = self.sysroot_repo();
        Self::ostree_repo(&repo, &["config", "set", "sysroot.bootloader", "none"])?;
        let url = format!("file://{}", self.remote.display());
        Self::ostree_repo(&repo, &["remote", "add", "--no-gpg-verify", "origin", &url])?;
        Self::ostree_repo(&repo, &["pull", "origin", STABLE])?;
        let refspec = format!("origin:{STABLE}");
        let mut deploy = vec!["deploy".to_owned(), format!("--os={OSNAME}")];
        deploy.extend(KARGS.iter().map(|k| format!("--karg={k}")));
        deploy.push(refspec);
        let deploy: Vec<&str> = deploy.iter().map(String::as_str).collect();
        self.ostree_admin(&deploy).context("deploying 1.0")?;

        // 1.1 on top (pull + deploy; kernel arguments carry over from the merge deployment).
        self.commit(STABLE, "1.1")?;
        self.ostree_admin(&["upgrade", &format!("--os={OSNAME}")])
            .context("deploying 1.1")?;

        // What an upgrade will find, and a branch to rebase to.
        self.commit(STABLE, "2.0")?;
        self.commit(DEVEL, "10.0")?;
        Ok(())
    }

    /// Writes the tree of `version` and commits it to `branch` on the remote; returns the
    /// checksum. Callers serialise (the work tree is shared).
    pub(crate) fn commit(&self, branch: &str, version: &str) -> Result<String, HarnessError> {
        write_tree(&self.tree, version, &self.rpmmd)?;
        let packages = packages_for(version);
        write_package_files(&self.tree, &packages)?;
        let rpms = rpms::build_rpms(&packages)?;
        rpms::install_rpmdb(&self.tree, &rpms)?;
        let mut args = vec![
            "commit".to_owned(),
            format!("--branch={branch}"),
            format!("--subject=TestOS {version}"),
            format!("--add-metadata-string=version={version}"),
            "--owner-uid=0".to_owned(),
            "--owner-gid=0".to_owned(),
            format!("--tree=dir={}", self.tree.display()),
        ];
        // Like a compose, except on the devel branch: its lists come from the rpmdb.
        if branch != DEVEL {
            args.push(format!(
                "--add-metadata=rpmostree.rpmdb.pkglist={}",
                rpms::pkglist_variant_text(&packages)
            ));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = Self::ostree_repo(&self.remote, &args)
            .context(format!("committing {version} to {branch}"))?;
        let checksum = out.trim().to_owned();
        if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(HarnessError::new(format!(
                "ostree commit printed {out:?}, not a checksum"
            )));
        }
        Ok(checksum)
    }
}

/// The files of the base packages `packages` in the tree (what `rpm --justdb` records but does
/// not write), `/etc` as `/usr/etc`; those of the fixture's other versions are removed first.
fn write_package_files(tree: &Path, packages: &[RpmSpec]) -> Result<(), HarnessError> {
    for version in ["1.0", "2.0", "10.0"] {
        for p in packages_for(version) {
            let dir = tree.join("usr/share").join(&p.name);
            if dir.exists() {
                fs::remove_dir_all(&dir).map_err(|e| HarnessError::io("removing", &dir, e))?;
            }
        }
    }
    for p in packages {
        for (path, content) in &p.files {
            let rel = path.trim_start_matches('/');
            let rel = match rel.strip_prefix("etc/") {
                Some(rest) => format!("usr/etc/{rest}"),
                None => rel.to_owned(),
            };
            let dest = tree.join(rel);
            if let Some(parent) = dest.parent() {
                mkdirs(parent)?;
            }
            write(&dest, content)?;
        }
    }
    Ok(())
}

/// The host's `dash` as `/usr/bin/sh`, with the C library and loader it needs, so that
/// package scriptlets can run in the tree.
fn install_shell(tree: &Path) -> Result<(), HarnessError> {
    let copies = [
        ("/bin/dash", "usr/bin/sh"),
        (
            "/lib/x86_64-linux-gnu/libc.so.6",
            "usr/lib/x86_64-linux-gnu/libc.so.6",
        ),
        (
            "/lib64/ld-linux-x86-64.so.2",
            "usr/lib64/ld-linux-x86-64.so.2",
        ),
    ];
    for (from, to) in copies {
        let dest = tree.join(to);
        if dest.exists() {
            continue;
        }
        if let Some(parent) = dest.parent() {
            mkdirs(parent)?;
        }
        fs::copy(from, &dest).map_err(|e| HarnessError::io("copying", Path::new(from), e))?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), HarnessError> {
    fs::write(path, text).map_err(|e| HarnessError::io("writing", path, e))
}

fn mkdirs(path: &Path) -> Result<(), HarnessError> {
    fs::create_dir_all(path).map_err(|e| HarnessError::io("creating", path, e))
}

/// The fake OS of `version`: what libostree needs to deploy it (kernel and initramfs in
/// usr/lib/modules, usr/etc, os-release), and what a chroot into a deployment needs (the
/// usual top-level symlinks, `ostree -> sysroot/ostree`, empty mount points).
fn write_tree(tree: &Path, version: &str, rpmmd: &Path) -> Result<(), HarnessError> {
    let modules = tree.join("usr/lib/modules").join(KVER);
    for d in [
        "usr/bin",
        "usr/sbin",
        "usr/lib64",
        "usr/etc/yum.repos.d",
        "usr/share/testos",
        "sysroot",
        "boot",
        "var",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "mnt",
        "home",
        "root",
    ] {
        mkdirs(&tree.join(d))?;
    }
    mkdirs(&modules)?;
    // A kernel per version: every version gets its own boot directory, as in real updates.
    write(
        &modules.join("vmlinuz"),
        &format!("TestOS kernel {KVER} for {version}\n"),
    )?;
    write(
        &modules.join("initramfs.img"),
        &format!("TestOS initramfs for {version}\n"),
    )?;
    write(
        &tree.join("usr/lib/os-release"),
        &format!(
            "NAME=\"TestOS\"\nID=testos\nVERSION_ID={version}\nVERSION=\"{version}\"\n\
             PRETTY_NAME=\"TestOS {version}\"\n"
        ),
    )?;
    write(
        &tree.join("usr/share/testos/version"),
        &format!("{version}\n"),
    )?;
    write(&tree.join("usr/etc/hostname"), "testos\n")?;
    // A system user for packages that own files as someone else than root.
    write(
        &tree.join("usr/etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ntestsvc:x:990:990:Test service:/:/sbin/nologin\n",
    )?;
    write(&tree.join("usr/etc/group"), "root:x:0:\ntestsvc:x:990:\n")?;
    write(
        &tree.join("usr/etc/yum.repos.d/testos.repo"),
        &format!(
            "[testos]\nname=TestOS $releasever\nbaseurl=file://{}\ngpgcheck=0\n\n\
             [testos-extras]\nname=TestOS $releasever Extras ($basearch)\n\
             baseurl=file://{}-extras/$basearch\n\
             enabled=0\ngpgcheck=0\n",
            rpmmd.display(),
            rpmmd.display()
        ),
    )?;
    install_shell(tree)?;
    let links = [
        ("usr/etc/os-release", "../lib/os-release"),
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("ostree", "sysroot/ostree"),
    ];
    for (link, target) in links {
        let path = tree.join(link);
        if fs::symlink_metadata(&path).is_err() {
            symlink(target, &path).map_err(|e| HarnessError::io("symlinking", &path, e))?;
        }
    }
    Ok(())
}
