//! The sandbox: one directory holding a private system bus, a real polkitd, an OSTree
//! sysroot with its remote, and the daemon under test, started by D-Bus activation; and the
//! teardown that leaves no process, mount or file behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use crate::bus::{self, BusPaths, DAEMON_NAME, POLKIT_NAME};
use crate::error::{Context, HarnessError};
use crate::fixture::{self, Fixture};
use crate::polkit::{self, PolkitAnswer, PolkitPaths};
use crate::status::{AdminDeployment, parse_admin_status};
use crate::{data, process, shell_quote};

/// Name of the unprivileged user that tests act as.
pub const TEST_USER: &str = "rpmostree-test";

/// Prefix of every sandbox directory under /tmp; the rest is `<pid>-<n>`.
const DIR_PREFIX: &str = "rpmostree-sandbox-";

/// How long polkitd may take to apply a rules change (it reloads on inotify, ~0.5 s).
const POLKIT_APPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// How a [`Sandbox`] is set up. Build it with `..Default::default()` so new fields do not
/// break callers.
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Activate the daemon inside a "fake-booted" deployment: a private mount namespace and a
    /// chroot into deployment 0 (1.1), with `/run/ostree-booted`, so libostree sees a booted
    /// system. Otherwise the daemon gets `--sysroot DIR/sysroot` (not booted).
    pub fake_booted: bool,
    /// The daemon binary. When `None`: `$RPMOSTREED_BIN`, else [`crate::target_bin`]`("rpm-ostreed")`.
    pub daemon_bin: Option<PathBuf>,
    /// `IdleExitTimeout` written to the daemon's configuration (default 600 s, so the daemon
    /// does not leave in the middle of a test).
    pub idle_exit_timeout: Option<u64>,
    /// More lines appended to the daemon's configuration, after `[Daemon]` and
    /// `IdleExitTimeout=` (so bare keys land in group `[Daemon]`).
    pub extra_config: Option<String>,
    /// Do not install the daemon's activation file (and need no daemon binary): for tests of
    /// the harness itself, or of other bus clients.
    pub without_daemon: bool,
    /// Extra environment variables for the daemon (exported by its wrapper script).
    pub daemon_env: Vec<(String, String)>,
    /// Give the daemon the sandbox's `containers/registries.conf.d` in place of the host's
    /// `/etc/containers/registries.conf.d` (see [`Sandbox::trust_registry`]), for pulls from a
    /// plain-HTTP loopback registry.
    pub containers: bool,
}

/// The unprivileged test user.
#[derive(Debug, Clone)]
struct TestUser {
    uid: u32,
    gid: u32,
    name: String,
}

/// A private system bus, a real polkitd, an OSTree sysroot and the daemon under test, all
/// under one directory `/tmp/rpmostree-sandbox-<pid>-<n>/` (mode 0755).
///
/// Layout: `bus/` (config, socket, `services/`, `system.d/`), `polkit/` (actions, rules,
/// log), `bin/` (the daemon copy and wrapper scripts), `remote/` (archive repo `origin`),
/// `sysroot/`, `tree/` (the work tree commits are made from), `run/` (the fake-booted
/// `/run`), `daemon.log`, `rpm-ostreed.conf`.
///
/// Dropping it stops the daemon, polkitd and the bus, kills anything else that still points
/// into the directory, and removes the directory. Set `RPMOSTREE_KEEP_SANDBOX=1` to keep
/// the directory (the processes are stopped anyway).
#[derive(Debug)]
pub struct Sandbox {
    dir: PathBuf,
    bus_paths: BusPaths,
    bus_address: String,
    bus: Option<Child>,
    polkit: PolkitPaths,
    polkit_stopped: AtomicBool,
    fixture: Fixture,
    commit_lock: Mutex<()>,
    /// Grant rule files written so far, with the actions each grants.
    grants: Mutex<Vec<(PathBuf, Vec<String>)>>,
    grant_counter: AtomicUsize,
    user: TestUser,
    /// The deployment the fake boot chroots into (deployment 0 when the sandbox started).
    booted_dir: PathBuf,
    fake_booted: bool,
    daemon_installed: bool,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Logs a harness step (captured by the test runner; shown when a test fails).
macro_rules! note {
    ($($arg:tt)*) => { eprintln!("[rpmostree-tests] {}", format!($($arg)*)) };
}

impl Sandbox {
    /// Builds and starts a sandbox: checks root and the required tools, creates the
    /// directory, starts the bus, prepares polkitd (bus-activated on first use), builds the
    /// OSTree fixture and installs the daemon's activation file. Takes a few seconds.
    pub fn start(options: SandboxOptions) -> Result<Sandbox, HarnessError> {
        let t0 = Instant::now();
        crate::require_root()?;
        crate::ensure_packages()?;
        reap_stale_sandboxes();
        let user = ensure_test_user()?;
        let daemon_bin = if options.without_daemon {
            None
        } else {
            Some(resolve_daemon_bin(options.daemon_bin.as_deref())?)
        };

        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        // Always under /tmp (not $TMPDIR): the fake boot binds /tmp into the chroot, which keeps
        // the bus socket and the daemon binary reachable there.
        let dir = PathBuf::from("/tmp").join(format!("{DIR_PREFIX}{}-{n}", std::process::id()));
        if dir.exists() {
            remove_tree(&dir)?;
        }
        mkdir_mode(&dir, 0o755)?;
        let bus_paths = BusPaths::new(&dir);
        let polkit_paths = PolkitPaths::new(&dir, &bus_paths.services);
        let mut sandbox = Sandbox {
            bus_address: bus_paths.address(),
            bus_paths,
            bus: None,
            polkit: polkit_paths,
            polkit_stopped: AtomicBool::new(false),
            fixture: Fixture::new(&dir),
            commit_lock: Mutex::new(()),
            grants: Mutex::new(Vec::new()),
            grant_counter: AtomicUsize::new(0),
            user,
            booted_dir: PathBuf::new(),
            fake_booted: options.fake_booted,
            daemon_installed: false,
            dir,
        };
        // From here on, an error drops `sandbox`, which cleans up what was made so far.
        sandbox.setup(&options, daemon_bin.as_deref(), t0)?;
        Ok(sandbox)
    }

    fn setup(
        &mut self,
        options: &SandboxOptions,
        daemon_bin: Option<&Path>,
        t0: Instant,
    ) -> Result<(), HarnessError> {
        for sub in ["bin", "run", "home"] {
            mkdir_mode(&self.dir.join(sub), 0o755)?;
        }
        polkit::write_file(&self.dir.join("run").join("ostree-booted"), "", false)?;
        let home = self.test_user_home();
        mkdir_mode(&home, 0o700)?;
        std::os::unix::fs::chown(&home, Some(self.user.uid), Some(self.user.gid))
            .map_err(|e| HarnessError::io("chown", &home, e))?;

        self.bus = Some(bus::start(&self.bus_paths, data::BUS_POLICY)?);
        note!("{}: bus up after {:?}", self.dir.display(), t0.elapsed());
        polkit::setup(&self.polkit, data::POLKIT_POLICY)?;

        self.fixture
            .build()
            .context("building the OSTree fixture")?;
        note!(
            "{}: OSTree fixture built after {:?}",
            self.dir.display(),
            t0.elapsed()
        );
        let deployments = self.admin_deployments()?;
        let first = deployments
            .first()
            .ok_or_else(|| HarnessError::new("the fixture sysroot has no deployment"))?;
        self.booted_dir = self.deploy_root().join(first.dir_name());

        self.write_config(options)?;
        self.write_fake_boot_script()?;
        if let Some(bin) = daemon_bin {
            self.install_daemon(bin, options)?;
        }
        note!("{}: ready after {:?}", self.dir.display(), t0.elapsed());
        Ok(())
    }

    fn deploy_root(&self) -> PathBuf {
        self.fixture
            .sysroot
            .join("ostree/deploy")
            .join(fixture::OSNAME)
            .join("deploy")
    }

    fn test_user_home(&self) -> PathBuf {
        self.dir.join("home").join(&self.user.name)
    }

    fn write_config(&self, options: &SandboxOptions) -> Result<(), HarnessError> {
        let mut text = format!(
            "# Written by the rpm-ostree test harness.\n[Daemon]\nIdleExitTimeout={}\n",
            options.idle_exit_timeout.unwrap_or(600)
        );
        if let Some(extra) = &options.extra_config {
            text.push_str(extra);
            if !extra.ends_with('\n') {
                text.push('\n');
            }
        }
        polkit::write_file(&self.config_path(), &text, false)
    }

    /// The script that runs a command as if the machine had booted `booted_dir`. Callers
    /// run it in a private mount namespace (`unshare --mount --propagation private`); with a
    /// first argument `--fresh-proc` (and a PID namespace) it mounts a new /proc instead of
    /// binding the host's.
    fn write_fake_boot_script(&self) -> Result<(), HarnessError> {
        let sysroot = &self.fixture.sysroot;
        let var = sysroot
            .join("ostree/deploy")
            .join(fixture::OSNAME)
            .join("var");
        let text = format!(
            "#!/bin/sh\n\
             # Runs \"$@\" as if the machine had booted the deployment below; call it inside a\n\
             # private mount namespace. Without a PID namespace the host /proc is bound in, so\n\
             # pids seen on the bus match; with `--fresh-proc` a new /proc is mounted instead.\n\
             set -e\n\
             D={deployment}\n\
             # The root of a booted system is a mount point (bubblewrap relies on it).\n\
             mount --bind \"$D\" \"$D\"\n\
             mount --bind {sysroot} \"$D/sysroot\"\n\
             mount --bind {boot} \"$D/boot\"\n\
             mount --bind {var} \"$D/var\"\n\
             mount --bind /usr \"$D/usr\"\n\
             mount --bind /etc \"$D/etc\"\n\
             if [ \"${{1:-}}\" = --fresh-proc ]; then\n\
             \x20   shift\n\
             \x20   mount -t proc proc \"$D/proc\"\n\
             else\n\
             \x20   mount --rbind /proc \"$D/proc\"\n\
             fi\n\
             mount --rbind /dev \"$D/dev\"\n\
             mount --rbind /sys \"$D/sys\"\n\
             mount --bind {run} \"$D/run\"\n\
             mount --bind /tmp \"$D/tmp\"\n\
             if [ -n \"${{RPMOSTREE_TEST_REGISTRIES:-}}\" ]; then\n\
             \x20   mount --bind \"$RPMOSTREE_TEST_REGISTRIES\" \"$D/etc/containers/registries.conf.d\"\n\
             fi\n\
             exec chroot \"$D\" \"$@\"\n",
            deployment = shell_quote(&self.booted_dir),
            sysroot = shell_quote(sysroot),
            boot = shell_quote(sysroot.join("boot")),
            var = shell_quote(var),
            run = shell_quote(self.dir.join("run")),
        );
        polkit::write_file(&self.fake_boot_script(), &text, true)
    }

    fn fake_boot_script(&self) -> PathBuf {
        self.dir.join("bin").join("fake-boot")
    }

    fn daemon_copy(&self) -> PathBuf {
        self.dir.join("bin").join("rpm-ostreed")
    }

    /// Copies the daemon, writes its wrapper and the activation file.
    fn install_daemon(&mut self, bin: &Path, options: &SandboxOptions) -> Result<(), HarnessError> {
        let copy = self.daemon_copy();
        link_or_copy(bin, &copy)?;
        // The daemon runs its package helper from its own directory.
        let helper = bin.with_file_name("rpm-ostreed-dnf");
        if helper.is_file() {
            link_or_copy(&helper, &copy.with_file_name("rpm-ostreed-dnf"))?;
        }
        let log = self.dir.join("daemon.log");
        polkit::write_file(&log, "", false)?;

        let mut env = vec![(
            "OSTREE_SYSROOT_DEBUG".to_owned(),
            "mutable-deployments".to_owned(),
        )];
        for var in ["RUST_LOG", "RUST_BACKTRACE"] {
            if let Ok(value) = std::env::var(var) {
                env.push((var.to_owned(), value));
            }
        }
        env.extend(options.daemon_env.iter().cloned());
        if options.containers {
            let dir = self.registries_conf_dir();
            mkdir_mode(&dir, 0o755)?;
            env.push((
                "RPMOSTREE_TEST_REGISTRIES".to_owned(),
                dir.display().to_string(),
            ));
        }
        let mut exports = String::new();
        for (k, v) in &env {
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(HarnessError::new(format!(
                    "daemon_env: {k:?} is not a valid variable name"
                )));
            }
            exports.push_str(&format!("export {k}={}\n", shell_quote(v)));
        }
        let config = shell_quote(self.config_path());
        let exec = if self.fake_booted {
            format!(
                "exec unshare --mount --propagation private {} {} --sysroot / --config {config}",
                shell_quote(self.fake_boot_script()),
                shell_quote(&copy),
            )
        } else if options.containers {
            format!(
                "exec unshare --mount --propagation private sh -c 'mount --bind \"$RPMOSTREE_TEST_REGISTRIES\" /etc/containers/registries.conf.d && exec \"$@\"' sh {} --sysroot {} --config {config}",
                shell_quote(&copy),
                shell_quote(&self.fixture.sysroot),
            )
        } else {
            format!(
                "exec {} --sysroot {} --config {config}",
                shell_quote(&copy),
                shell_quote(&self.fixture.sysroot),
            )
        };
        let wrapper = format!(
            "#!/bin/sh\n\
             # Started by the sandbox bus to activate {DAEMON_NAME}.\n\
             {exports}\
             exec >>{log} 2>&1\n\
             echo \"rpm-ostreed-wrapper: pid $$, fake-booted: {booted}\"\n\
             {exec}\n",
            log = shell_quote(&log),
            booted = if self.fake_booted { "yes" } else { "no" },
        );
        let wrapper_path = self.dir.join("bin").join("rpm-ostreed-wrapper");
        polkit::write_file(&wrapper_path, &wrapper, true)?;

        // The project's activation file, pointed at the wrapper (Exec= takes no quotes).
        let mut activation = String::new();
        for line in data::ACTIVATION_SERVICE.lines() {
            if line.trim_start().starts_with("Exec=") {
                activation.push_str(&format!("Exec={}\n", wrapper_path.display()));
            } else {
                activation.push_str(line);
                activation.push('\n');
            }
        }
        let file = self
            .bus_paths
            .services
            .join(format!("{DAEMON_NAME}.service"));
        polkit::write_file(&file, &activation, false)?;
        self.reload_bus_config()?;
        self.daemon_installed = true;
        Ok(())
    }

    /// Puts a copy of the executable `src` into the sandbox's `bin/` (mode 0755, a hard link
    /// when possible) and returns its path: a place every user can run it from, whatever the
    /// permissions of the cargo target directory. For running the CLI as the test user.
    pub fn install_binary(&self, src: &Path) -> Result<PathBuf, HarnessError> {
        let name = src
            .file_name()
            .ok_or_else(|| HarnessError::new(format!("{} has no file name", src.display())))?;
        let dest = self.dir.join("bin").join(name);
        if dest.exists() {
            fs::remove_file(&dest).map_err(|e| HarnessError::io("replacing", &dest, e))?;
        }
        link_or_copy(src, &dest)?;
        Ok(dest)
    }

    /// Makes the bus re-read its configuration and service directory now, instead of
    /// whenever inotify gets to it.
    fn reload_bus_config(&self) -> Result<(), HarnessError> {
        bus::driver(&self.bus_address, "ReloadConfig", &[]).map(drop)
    }

    /// The bus address, `unix:path=DIR/bus/system_bus_socket`.
    pub fn bus_address(&self) -> &str {
        &self.bus_address
    }

    /// The sandbox directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The OSTree sysroot (host path).
    pub fn sysroot(&self) -> &Path {
        &self.fixture.sysroot
    }

    /// The stateroot of the fixture: `testos`.
    pub fn osname(&self) -> &str {
        fixture::OSNAME
    }

    /// The archive repo that the sysroot has as `file://` remote `origin`.
    pub fn remote_repo(&self) -> &Path {
        &self.fixture.remote
    }

    /// The rpm-md repository `testos` that the fixture's `/etc/yum.repos.d/testos.repo`
    /// points at (`file://`); tests may rebuild or break it.
    pub fn rpmmd_repo(&self) -> &Path {
        &self.fixture.rpmmd
    }

    /// The first deployment's `/etc/yum.repos.d/testos.repo` (what the daemon's repository
    /// methods read on this sandbox).
    pub fn repo_file(&self) -> Result<PathBuf, HarnessError> {
        let first = self
            .admin_deployments()?
            .into_iter()
            .next()
            .ok_or_else(|| HarnessError::new("the sysroot has no deployment"))?;
        Ok(self.fixture.sysroot.join(format!(
            "ostree/deploy/{}/deploy/{}.{}/etc/yum.repos.d/testos.repo",
            fixture::OSNAME,
            first.checksum,
            first.serial
        )))
    }

    /// Points the `testos` repository of [`Self::repo_file`] at `url` instead of its
    /// `file://` directory (e.g. a loopback [`crate::HttpServer`] serving
    /// [`Self::rpmmd_repo`]: a `file://` repository is read in place and never cached).
    pub fn point_repo_at(&self, url: &str) -> Result<(), HarnessError> {
        let path = self.repo_file()?;
        let text = fs::read_to_string(&path).map_err(|e| HarnessError::io("reading", &path, e))?;
        let file_url = format!("baseurl=file://{}\n", self.fixture.rpmmd.display());
        if !text.contains(&file_url) {
            return Err(HarnessError::new(format!(
                "{} has no {file_url:?}",
                path.display()
            )));
        }
        let text = text.replace(&file_url, &format!("baseurl={url}/\n"));
        fs::write(&path, text).map_err(|e| HarnessError::io("writing", &path, e))
    }

    /// The daemon's configuration file (`--config`). Tests may rewrite it and call
    /// `ReloadConfig`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("rpm-ostreed.conf")
    }

    /// The host path of the deployment that the fake boot chroots into ("booted"): it was
    /// deployment 0 (1.1) when the sandbox started.
    pub fn booted_deployment_dir(&self) -> &Path {
        &self.booted_dir
    }

    /// Makes a new commit of the fake OS with `version` on `branch` of the remote repo
    /// (kernel, os-release and `/usr/share/testos/version` carry the version); returns its
    /// checksum. The sysroot does not pull it.
    pub fn commit(&self, branch: &str, version: &str) -> Result<String, HarnessError> {
        let _guard = self
            .commit_lock
            .lock()
            .map_err(|_| HarnessError::new("commit lock poisoned"))?;
        self.fixture.commit(branch, version)
    }

    /// `ostree --repo=<sysroot repo> args...`: stdout on success, an error with stderr on
    /// failure.
    pub fn ostree(&self, args: &[&str]) -> Result<String, HarnessError> {
        Fixture::ostree_repo(&self.fixture.sysroot_repo(), args)
    }

    /// `ostree --repo=<remote repo> args...`.
    pub fn ostree_remote(&self, args: &[&str]) -> Result<String, HarnessError> {
        Fixture::ostree_repo(&self.fixture.remote, args)
    }

    /// `ostree admin --sysroot=<sysroot> args...` (from outside: not booted).
    pub fn ostree_admin(&self, args: &[&str]) -> Result<String, HarnessError> {
        self.fixture.ostree_admin(args)
    }

    /// `ostree admin --sysroot=<sysroot> status`.
    pub fn admin_status(&self) -> Result<String, HarnessError> {
        self.ostree_admin(&["status"])
    }

    /// [`Self::admin_status`], parsed.
    pub fn admin_deployments(&self) -> Result<Vec<AdminDeployment>, HarnessError> {
        Ok(parse_admin_status(&self.admin_status()?))
    }

    /// The contents of `sysroot/boot/loader/entries/*.conf`, sorted by file name.
    pub fn boot_entries(&self) -> Result<Vec<String>, HarnessError> {
        let dir = self.fixture.sysroot.join("boot/loader/entries");
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|e| HarnessError::io("listing", &dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| fs::read_to_string(p).map_err(|e| HarnessError::io("reading", p, e)))
            .collect()
    }

    /// Runs `argv` inside the fake-booted deployment (the same mounts the daemon gets in
    /// fake-booted mode, no PID namespace) and returns its stdout. Good for read-only
    /// `ostree admin` commands; the ostree CLI's own write path needs
    /// [`Self::run_fake_booted_pid_ns`] on hosts where /proc/1/ns/mnt is unreadable.
    pub fn run_fake_booted(&self, argv: &[&str]) -> Result<String, HarnessError> {
        let mut cmd = self.command("unshare");
        cmd.args(["--mount", "--propagation", "private"])
            .arg(self.fake_boot_script())
            .args(argv);
        process::run_ok(&mut cmd, Duration::from_secs(180))
    }

    /// Like [`Self::run_fake_booted`], in a PID namespace as well (the command is PID 1 and
    /// gets a fresh /proc): what `ostree admin` needs to write to a booted sysroot, e.g.
    /// `ostree admin finalize-staged` to simulate a shutdown.
    pub fn run_fake_booted_pid_ns(&self, argv: &[&str]) -> Result<String, HarnessError> {
        let mut cmd = self.command("unshare");
        cmd.args(["--mount", "--pid", "--fork", "--propagation", "private"])
            .arg(self.fake_boot_script())
            .arg("--fresh-proc")
            .args(argv);
        process::run_ok(&mut cmd, Duration::from_secs(180))
    }

    /// The unprivileged test user (`rpmostree-test`), created if missing: uid and name.
    pub fn test_user(&self) -> (u32, &str) {
        (self.user.uid, &self.user.name)
    }

    /// Grants `actions` to the test user with a polkit JavaScript rule, and returns once
    /// polkitd applies it (checked with `pkcheck` run as the test user). Grants add up until
    /// [`Self::revoke_all`].
    pub fn grant(&self, actions: &[&str]) -> Result<(), HarnessError> {
        if actions.is_empty() {
            return Ok(());
        }
        let n = self.grant_counter.fetch_add(1, Ordering::SeqCst);
        let file = self
            .polkit
            .rules
            .join(format!("40-rpmostree-test-grant-{n}.rules"));
        // Written aside and renamed, so polkitd never reads half a file.
        let tmp = self.polkit.rules.join(format!(".grant-{n}.tmp"));
        polkit::write_file(&tmp, &polkit::grant_rules(&self.user.name, actions), false)?;
        fs::rename(&tmp, &file).map_err(|e| HarnessError::io("renaming to", &file, e))?;
        for action in actions {
            if let Err(e) = self.wait_polkit_answer(action, true) {
                // Take a grant that did not work back out, so revoke_all is not stuck on it.
                let _ = fs::remove_file(&file);
                return Err(e.context(format!("granting {action} to {}", self.user.name)));
            }
        }
        self.grants
            .lock()
            .map_err(|_| HarnessError::new("grant list poisoned"))?
            .push((file, actions.iter().map(|a| (*a).to_owned()).collect()));
        Ok(())
    }

    /// Removes every grant rule and returns once polkitd no longer authorizes the test user
    /// for any of the granted actions (no wait while polkitd is stopped).
    pub fn revoke_all(&self) -> Result<(), HarnessError> {
        let grants = std::mem::take(
            &mut *self
                .grants
                .lock()
                .map_err(|_| HarnessError::new("grant list poisoned"))?,
        );
        for (file, _) in &grants {
            if let Err(e) = fs::remove_file(file)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(HarnessError::io("removing", file, e));
            }
        }
        if self.polkit_stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        for action in grants.iter().flat_map(|(_, actions)| actions) {
            self.wait_polkit_answer(action, false)
                .context(format!("revoking {action} from {}", self.user.name))?;
        }
        Ok(())
    }

    /// Waits until pkcheck (as the test user) says `action` is authorized (`want`) or not.
    fn wait_polkit_answer(&self, action: &str, want: bool) -> Result<(), HarnessError> {
        let mut last = None;
        let waited = process::wait_for(
            &format!(
                "polkitd to {} the rule",
                if want { "apply" } else { "drop" }
            ),
            POLKIT_APPLY_TIMEOUT,
            || {
                let answer = self.pkcheck_as_test_user(action)?;
                last = Some(answer);
                Ok((answer == PolkitAnswer::Authorized) == want)
            },
        );
        waited.map_err(|e| {
            HarnessError::new(format!(
                "{e} (last pkcheck answer: {last:?}; is {action} an action of the policy?)\n\
                 polkitd log:\n{}",
                self.polkit_log()
            ))
        })
    }

    /// Asks polkit whether the test user (a process of it: `pkcheck` itself) is authorized
    /// for `action`.
    pub fn pkcheck_as_test_user(&self, action: &str) -> Result<PolkitAnswer, HarnessError> {
        polkit::pkcheck_as(&self.bus_address, self.user.uid, self.user.gid, action)
    }

    /// Stops polkitd and removes its activation file so it is not started again: the daemon
    /// then finds polkit unreachable. [`Self::start_polkit`] undoes it.
    pub fn stop_polkit(&self) -> Result<(), HarnessError> {
        self.polkit_stopped.store(true, Ordering::SeqCst);
        if let Err(e) = fs::remove_file(&self.polkit.activation_file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(HarnessError::io(
                "removing",
                &self.polkit.activation_file,
                e,
            ));
        }
        self.reload_bus_config()?;
        process::wait_for(
            "the bus to forget polkit's activation file",
            Duration::from_secs(15),
            || {
                Ok(!bus::activatable(&self.bus_address)?
                    .iter()
                    .any(|n| n == POLKIT_NAME))
            },
        )?;
        if let Some(pid) = bus::owner_pid(&self.bus_address, POLKIT_NAME) {
            process::terminate(pid, Duration::from_secs(5)).context("stopping polkitd")?;
        }
        process::wait_for("polkitd to leave the bus", Duration::from_secs(15), || {
            Ok(!bus::has_owner(&self.bus_address, POLKIT_NAME)?)
        })
    }

    /// Restores polkit's activation file and starts polkitd.
    pub fn start_polkit(&self) -> Result<(), HarnessError> {
        polkit::install_activation_file(&self.polkit)?;
        self.reload_bus_config()?;
        process::wait_for(
            "the bus to list polkit as activatable",
            Duration::from_secs(15),
            || {
                Ok(bus::activatable(&self.bus_address)?
                    .iter()
                    .any(|n| n == POLKIT_NAME))
            },
        )?;
        bus::driver(
            &self.bus_address,
            "StartServiceByName",
            &["su", POLKIT_NAME, "0"],
        )
        .map_err(|e| HarnessError::new(format!("{e}\npolkitd log:\n{}", self.polkit_log())))?;
        self.polkit_stopped.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Stops the sandbox's `dbus-daemon` and starts a new one on the same socket and
    /// configuration, as a restart of the system bus would: every connection to the old bus is
    /// gone (the daemon and polkitd are activated again on first use).
    pub fn restart_bus(&mut self) -> Result<(), HarnessError> {
        if let Some(mut child) = self.bus.take() {
            let pid = child.id();
            process::signal(pid, 15)?;
            process::wait_for("dbus-daemon to exit", Duration::from_secs(10), || {
                Ok(!matches!(child.try_wait(), Ok(None)))
            })?;
            let _ = child.wait();
        }
        let _ = fs::remove_file(&self.bus_paths.socket);
        self.bus = Some(bus::start(&self.bus_paths, data::BUS_POLICY)?);
        note!("{}: bus restarted", self.dir.display());
        Ok(())
    }

    /// The pid of the sandbox's `dbus-daemon`, while it runs.
    pub fn bus_pid(&self) -> Option<u32> {
        self.bus.as_ref().map(Child::id)
    }

    /// The pid of polkitd, or `None` if it is not running (does not activate it).
    pub fn polkit_pid(&self) -> Option<u32> {
        bus::owner_pid(&self.bus_address, POLKIT_NAME)
    }

    /// The pid of the owner of `org.projectatomic.rpmostree1`, or `None` if it is not running
    /// (does not activate it).
    pub fn daemon_pid(&self) -> Option<u32> {
        bus::owner_pid(&self.bus_address, DAEMON_NAME)
    }

    /// Starts the daemon through D-Bus activation (`StartServiceByName`) if it is not running,
    /// and returns its pid.
    pub fn start_daemon(&self) -> Result<u32, HarnessError> {
        if !self.daemon_installed {
            return Err(HarnessError::new(
                "this sandbox was started with without_daemon: there is no daemon to start",
            ));
        }
        bus::driver(
            &self.bus_address,
            "StartServiceByName",
            &["su", DAEMON_NAME, "0"],
        )
        .map_err(|e| HarnessError::new(format!("{e}\ndaemon log:\n{}", self.daemon_log())))?;
        self.daemon_pid().ok_or_else(|| {
            HarnessError::new(format!(
                "the daemon was started but owns no name\ndaemon log:\n{}",
                self.daemon_log()
            ))
        })
    }

    /// Sends `signal` (e.g. 15 for SIGTERM, 9 for SIGKILL) to the daemon.
    pub fn kill_daemon(&self, signal: i32) -> Result<(), HarnessError> {
        let pid = self
            .daemon_pid()
            .ok_or_else(|| HarnessError::new("kill_daemon: the daemon is not running"))?;
        process::signal(pid, signal)
    }

    /// Waits until the daemon no longer owns its name and its process is gone.
    pub fn wait_daemon_gone(&self, timeout: Duration) -> Result<(), HarnessError> {
        let pid = self.daemon_pid();
        process::wait_for("the daemon to exit", timeout, || {
            Ok(!bus::has_owner(&self.bus_address, DAEMON_NAME)?
                && pid.is_none_or(|p| !process::alive(p)))
        })
        .map_err(|e| HarnessError::new(format!("{e}\ndaemon log:\n{}", self.daemon_log())))
    }

    /// A command with `DBUS_SYSTEM_BUS_ADDRESS` pointing at the sandbox bus (and
    /// `OSTREE_SYSROOT_DEBUG=mutable-deployments`), running as root.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus_address)
            .env("OSTREE_SYSROOT_DEBUG", "mutable-deployments");
        cmd
    }

    /// A command running as the test user (`setpriv --reuid --regid --init-groups`), in a
    /// clean environment: `PATH=/usr/bin:/bin`, `HOME` (a private directory in the
    /// sandbox), `USER`, `LOGNAME`, `LANG=C.UTF-8`, `DBUS_SYSTEM_BUS_ADDRESS`, and
    /// `RUST_LOG`/`RUST_BACKTRACE` if set. The working directory is `/`.
    pub fn command_as_test_user(&self, program: &str) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.test_user_home())
            .env("USER", &self.user.name)
            .env("LOGNAME", &self.user.name)
            .env("LANG", "C.UTF-8")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus_address)
            .current_dir("/")
            .arg(format!("--reuid={}", self.user.uid))
            .arg(format!("--regid={}", self.user.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(program);
        for var in ["RUST_LOG", "RUST_BACKTRACE"] {
            if let Some(value) = std::env::var_os(var) {
                cmd.env(var, value);
            }
        }
        cmd
    }

    /// The daemon's log (its stderr and stdout, every activation appended), or "" if none.
    pub fn daemon_log(&self) -> String {
        fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// polkitd's log, or "" if none.
    pub fn polkit_log(&self) -> String {
        fs::read_to_string(&self.polkit.log).unwrap_or_default()
    }

    /// The bus daemon's log, or "" if none.
    pub fn bus_log(&self) -> String {
        fs::read_to_string(&self.bus_paths.log).unwrap_or_default()
    }

    /// Everything the teardown does; errors are logged, never raised.
    fn teardown(&mut self) {
        let t0 = Instant::now();
        let bus_alive = self
            .bus
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)));
        if bus_alive {
            for (what, name) in [("daemon", DAEMON_NAME), ("polkitd", POLKIT_NAME)] {
                if let Some(pid) = bus::owner_pid(&self.bus_address, name)
                    && let Err(e) = process::terminate(pid, Duration::from_secs(5))
                {
                    note!("teardown: stopping the {what} (pid {pid}): {e}");
                }
            }
        }
        if let Some(mut child) = self.bus.take() {
            let pid = child.id();
            let _ = process::signal(pid, 15);
            let exited = process::wait_for("dbus-daemon to exit", Duration::from_secs(5), || {
                Ok(!matches!(child.try_wait(), Ok(None)))
            });
            if exited.is_err() {
                note!("teardown: dbus-daemon (pid {pid}) ignored SIGTERM; killing it");
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        kill_everything_in(&self.dir);
        if std::env::var_os("RPMOSTREE_KEEP_SANDBOX").is_some_and(|v| v != "0" && !v.is_empty()) {
            note!(
                "teardown: keeping {} (RPMOSTREE_KEEP_SANDBOX)",
                self.dir.display()
            );
            return;
        }
        if let Err(e) = remove_tree(&self.dir) {
            note!("teardown: {e}");
        }
        note!("{}: torn down in {:?}", self.dir.display(), t0.elapsed());
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Never panic in drop: a panic while unwinding would abort the test binary.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.teardown()));
        if result.is_err() {
            note!("teardown of {} panicked", self.dir.display());
        }
    }
}

/// Kills (SIGKILL) every process that still points into `dir`, and lazily unmounts anything
/// mounted below it in our namespace (the harness mounts only in private namespaces, which
/// vanish with their processes).
fn kill_everything_in(dir: &Path) {
    let leftovers = process::processes_of(dir);
    for pid in &leftovers {
        note!(
            "teardown: killing leftover process {pid} of {}",
            dir.display()
        );
        let _ = process::signal(*pid, 9);
    }
    let gone = process::wait_for(
        "leftover processes to exit",
        Duration::from_secs(10),
        || Ok(leftovers.iter().all(|p| !process::alive(*p))),
    );
    if let Err(e) = gone {
        note!("teardown: {e}");
    }
    for mount_point in process::mounts_under(dir) {
        note!("teardown: unmounting leftover {mount_point}");
        let _ = process::run(
            Command::new("umount").args(["--lazy", &mount_point]),
            Duration::from_secs(10),
        );
    }
}

/// Removes `dir`; if an immutable bit is in the way (a deployment made without
/// `OSTREE_SYSROOT_DEBUG=mutable-deployments`), clears it and retries.
fn remove_tree(dir: &Path) -> Result<(), HarnessError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(first) => {
            let _ = process::run(
                Command::new("chattr").arg("-R").arg("-i").arg(dir),
                Duration::from_secs(60),
            );
            fs::remove_dir_all(dir).map_err(|e| {
                HarnessError::new(format!(
                    "removing {}: {first}; after chattr -R -i: {e}",
                    dir.display()
                ))
            })
        }
    }
}

/// Cleans up sandboxes of test processes that died without dropping them (killed by a
/// timeout, say): their directories and any process still pointing into them. Once per
/// process.
fn reap_stale_sandboxes() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = fs::read_dir("/tmp") else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid == std::process::id() || process::alive(pid) {
                continue;
            }
            let dir = entry.path();
            note!("removing stale sandbox {}", dir.display());
            kill_everything_in(&dir);
            if let Err(e) = remove_tree(&dir) {
                note!("{e}");
            }
        }
    });
}

/// Hard-links `src` to `dest` if it is already world-executable (a debug build is 100+ MB;
/// the linker and cargo replace their outputs rather than rewrite them, so a rebuild leaves
/// the link alone), else copies it with mode 0755.
fn link_or_copy(src: &Path, dest: &Path) -> Result<(), HarnessError> {
    let mode = fs::metadata(src)
        .map_err(|e| HarnessError::io("reading", src, e))?
        .permissions()
        .mode();
    if mode & 0o755 == 0o755 && fs::hard_link(src, dest).is_ok() {
        return Ok(());
    }
    fs::copy(src, dest).map_err(|e| HarnessError::io("copying to", dest, e))?;
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755))
        .map_err(|e| HarnessError::io("chmod", dest, e))
}

fn mkdir_mode(dir: &Path, mode: u32) -> Result<(), HarnessError> {
    fs::create_dir_all(dir).map_err(|e| HarnessError::io("creating", dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .map_err(|e| HarnessError::io("chmod", dir, e))
}

/// The daemon binary: the option, else `$RPMOSTREED_BIN`, else next to the test binary.
fn resolve_daemon_bin(explicit: Option<&Path>) -> Result<PathBuf, HarnessError> {
    let (path, source) = if let Some(p) = explicit {
        (p.to_path_buf(), "SandboxOptions::daemon_bin")
    } else if let Some(p) = std::env::var_os("RPMOSTREED_BIN") {
        (PathBuf::from(p), "$RPMOSTREED_BIN")
    } else {
        (
            crate::target_bin("rpm-ostreed"),
            "the cargo target directory",
        )
    };
    if process::is_executable(&path) {
        Ok(path)
    } else {
        Err(HarnessError::new(format!(
            "no daemon binary at {} (from {source}): build it with `cargo build -p rpm-ostreed`, \
             or set RPMOSTREED_BIN, or set SandboxOptions::daemon_bin",
            path.display()
        )))
    }
}

/// Finds or creates the test user; serialised within the process, tolerant of a parallel
/// creator in another process.
fn ensure_test_user() -> Result<TestUser, HarnessError> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(user) = lookup_user(TEST_USER) {
        return Ok(user);
    }
    let created = process::run_ok(
        Command::new("useradd")
            .args([
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .args(["--comment", "rpm-ostree test harness"])
            .arg(TEST_USER),
        Duration::from_secs(30),
    );
    match (lookup_user(TEST_USER), created) {
        (Some(user), _) => Ok(user),
        (None, Err(e)) => Err(e.context(format!("creating the test user {TEST_USER}"))),
        (None, Ok(_)) => Err(HarnessError::new(format!(
            "useradd {TEST_USER} succeeded but the user is not in /etc/passwd"
        ))),
    }
}

/// The user's uid and gid from /etc/passwd.
fn lookup_user(name: &str) -> Option<TestUser> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(TestUser {
            uid,
            gid,
            name: name.to_owned(),
        })
    })
}
