//! The command line: every verb, flag and argument of `rpm-ostree`, as clap derive types.
//!
//! Flag names follow upstream rpm-ostree so that scripts and programs such as zincati keep
//! working. Completions and man pages are generated from these definitions.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// rpm-ostree: ask rpm-ostreed to inspect and change the OSTree-based system.
#[derive(Debug, Parser)]
#[command(
    name = "rpm-ostree",
    version,
    about = "Manage an image-based (OSTree) operating system through rpm-ostreed",
    long_about = "rpm-ostree is the command-line client of rpm-ostreed. It never changes the \
                  system itself: every operation is a request to the daemon over the system \
                  D-Bus, which authorises it with polkit and runs it as a transaction.",
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalOptions,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalOptions {
    /// Operate on the stateroot (OS name) NAME instead of the booted one.
    #[arg(long = "stateroot", alias = "os", value_name = "NAME", global = true)]
    pub stateroot: Option<String>,
    /// Print only errors and the final result, no progress.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    /// When another transaction is running, wait for it to end and then go ahead instead of
    /// failing.
    #[arg(long, global = true)]
    pub wait: bool,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the deployments and the state of the daemon.
    Status(StatusArgs),
    /// Upgrade to the newest commit of the current origin.
    #[command(visible_alias = "update")]
    Upgrade(UpgradeArgs),
    /// Deploy a given revision (commit checksum or version) of the current origin.
    Deploy(DeployArgs),
    /// Switch to another tree (refspec) and deploy it.
    Rebase(RebaseArgs),
    /// Make the previous deployment the default one for the next boot.
    Rollback(RollbackArgs),
    /// Remove pending or rollback deployments, cached data and unused objects.
    Cleanup(CleanupArgs),
    /// Show or change the kernel arguments.
    Kargs(KargsArgs),
    /// Finalize (unlock) a staged deployment and reboot into it.
    FinalizeDeployment(FinalizeDeploymentArgs),
    /// Cancel the active transaction.
    Cancel,
    /// Make the daemon reload its configuration and the sysroot state.
    Reload,
    /// Refresh the metadata of the configured remotes.
    #[command(visible_alias = "makecache")]
    RefreshMd(RefreshMdArgs),
    /// Layer packages on top of the base image (a new deployment).
    #[command(visible_alias = "pkg-add")]
    Install(InstallArgs),
    /// Remove layered packages (a new deployment).
    #[command(visible_alias = "pkg-remove")]
    Uninstall(UninstallArgs),
    /// Remove or replace packages of the base image, or drop those overrides.
    Override(OverrideArgs),
    /// Remove all layered packages, overrides and initramfs settings (a new deployment of the
    /// plain base).
    Reset(ResetArgs),
    /// Search the package repositories for packages by name and summary.
    Search(SearchArgs),
    /// Query the package databases of commits (no daemon needed).
    Db(DbArgs),
    /// Print a shell completion script for rpm-ostree.
    #[command(hide = true)]
    Completions(CompletionsArgs),
    /// Write man pages for rpm-ostree and its commands into a directory.
    #[command(hide = true)]
    Man(ManArgs),
}

impl Command {
    /// Whether the command talks to the daemon (`completions` and `man` do not).
    pub fn needs_daemon(&self) -> bool {
        !matches!(
            self,
            Command::Completions(_) | Command::Man(_) | Command::Db(_)
        )
    }
}

/// `rpm-ostree db`.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// The query.
    #[command(subcommand)]
    pub command: DbCommand,
}

/// The `db` queries.
#[derive(Debug, Clone, Subcommand)]
pub enum DbCommand {
    /// Show the package changes between two commits (default: the booted and the pending
    /// deployment, or the rollback and the booted one; with one revision, from the booted
    /// deployment to it).
    Diff(DbDiffArgs),
    /// List the packages of commits, optionally only those matching patterns.
    List(DbListArgs),
    /// Show the rpmdb version of the packages of commits.
    Version(DbVersionArgs),
}

/// Output formats of `db diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DbDiffFormat {
    /// Upgraded, downgraded, removed and added packages in blocks.
    #[default]
    Block,
    /// One `!`/`=`/`-`/`+` line per package, for scripts.
    Diff,
    /// JSON.
    Json,
}

/// `rpm-ostree db diff`.
#[derive(Debug, Clone, Args)]
pub struct DbDiffArgs {
    /// Output format.
    #[arg(short = 'F', long, value_enum, default_value_t = DbDiffFormat::Block)]
    pub format: DbDiffFormat,
    /// Also list the advisories the newer commit records.
    #[arg(short = 'a', long)]
    pub advisories: bool,
    /// Accepted for compatibility (GNOME Software passes it); changelogs are not shown yet,
    /// only the package changes.
    #[arg(short = 'c', long)]
    pub changelogs: bool,
    /// Use the system root SYSROOT (default: /).
    #[arg(long, value_name = "SYSROOT")]
    pub sysroot: Option<std::path::PathBuf>,
    /// [FROM_REV] [TO_REV]
    #[arg(value_name = "REV")]
    pub revisions: Vec<String>,
}

/// `rpm-ostree db list`.
#[derive(Debug, Clone, Args)]
pub struct DbListArgs {
    /// Also list the advisories each commit records.
    #[arg(short = 'a', long)]
    pub advisories: bool,
    /// Use the system root SYSROOT (default: /).
    #[arg(long, value_name = "SYSROOT")]
    pub sysroot: Option<std::path::PathBuf>,
    /// REV... [PATTERN...]: the first argument that is not a revision starts the patterns
    /// (globs on name, name-version, name-version-release or NEVRA).
    #[arg(value_name = "REV_OR_PATTERN", required = true)]
    pub arguments: Vec<String>,
}

/// `rpm-ostree db version`.
#[derive(Debug, Clone, Args)]
pub struct DbVersionArgs {
    /// Use the system root SYSROOT (default: /).
    #[arg(long, value_name = "SYSROOT")]
    pub sysroot: Option<std::path::PathBuf>,
    /// The commits.
    #[arg(value_name = "REV", required = true)]
    pub revisions: Vec<String>,
}

/// `rpm-ostree status`.
#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {
    /// Print more fields (StateRoot, Staged, index, ...) and the package changes of a pending
    /// deployment or update in full; implies -a.
    #[arg(short, long)]
    pub verbose: bool,
    /// List the security advisories of a pending deployment or update one by one.
    #[arg(short = 'a', long)]
    pub advisories: bool,
    /// Print the state as JSON.
    #[arg(long)]
    pub json: bool,
    /// Only show the booted deployment.
    #[arg(short = 'b', long = "booted")]
    pub booted: bool,
    /// Exit 77 when a pending deployment is available (the next boot changes the system).
    #[arg(long = "pending-exit-77")]
    pub pending_exit_77: bool,
}

/// `rpm-ostree upgrade`.
#[derive(Debug, Clone, Default, Args)]
pub struct UpgradeArgs {
    /// Reboot once the upgrade is staged.
    #[arg(short, long)]
    pub reboot: bool,
    /// Allow the new commit to be older than the current one.
    #[arg(long = "allow-downgrade")]
    pub allow_downgrade: bool,
    /// Only check whether an update is available; download nothing.
    #[arg(long, conflicts_with_all = ["preview", "reboot", "download_only", "cache_only"])]
    pub check: bool,
    /// Like --check, and show what would change.
    #[arg(long, conflicts_with_all = ["reboot", "download_only", "cache_only"])]
    pub preview: bool,
    /// Download the update without deploying it.
    #[arg(long = "download-only", conflicts_with = "cache_only")]
    pub download_only: bool,
    /// Use only data already on the machine; do not download.
    #[arg(short = 'C', long = "cache-only")]
    pub cache_only: bool,
    /// Exit 77 when there was nothing to upgrade.
    #[arg(long = "unchanged-exit-77")]
    pub unchanged_exit_77: bool,
    /// Stage the deployment locked: it is applied only by `finalize-deployment`.
    #[arg(long = "lock-finalization")]
    pub lock_finalization: bool,
    /// Accepted for compatibility; update drivers are not checked by this client.
    #[arg(long = "bypass-driver", hide = true)]
    pub bypass_driver: bool,
    /// Run the configured automatic update policy once, as the timer does.
    #[arg(long = "trigger-automatic-update-policy", hide = true)]
    pub trigger_automatic_update_policy: bool,
}

/// What `install` and `uninstall` share.
#[derive(Debug, Clone, Default, Args)]
pub struct PkgChangeArgs {
    /// Reboot once the new deployment is staged.
    #[arg(short, long)]
    pub reboot: bool,
    /// Resolve the change and show it; deploy nothing.
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// Use only data already on the machine; do not download.
    #[arg(short = 'C', long = "cache-only", conflicts_with = "download_only")]
    pub cache_only: bool,
    /// Download what the change needs without deploying it.
    #[arg(long = "download-only")]
    pub download_only: bool,
    /// Do not fail when a request is already there (install) or not there (uninstall).
    #[arg(long)]
    pub idempotent: bool,
    /// Exit 77 when nothing changed.
    #[arg(long = "unchanged-exit-77")]
    pub unchanged_exit_77: bool,
    /// Stage the deployment locked: it is applied only by `finalize-deployment`.
    #[arg(long = "lock-finalization")]
    pub lock_finalization: bool,
    /// Apply the change to the running system as well (not supported yet).
    #[arg(short = 'A', long = "apply-live")]
    pub apply_live: bool,
}

/// `rpm-ostree install`.
#[derive(Debug, Clone, Default, Args)]
pub struct InstallArgs {
    /// Packages to layer: names, NEVRAs, globs, provides, file paths, or local `.rpm` files.
    #[arg(value_name = "PACKAGE", required = true)]
    pub packages: Vec<String>,
    /// Accept requests that the base image already provides (they stay inactive).
    #[arg(long = "allow-inactive")]
    pub allow_inactive: bool,
    /// Also remove these layered packages.
    #[arg(long = "uninstall", value_name = "PKG")]
    pub uninstall: Vec<String>,
    /// The shared options.
    #[command(flatten)]
    pub change: PkgChangeArgs,
}

/// `rpm-ostree uninstall`.
#[derive(Debug, Clone, Default, Args)]
pub struct UninstallArgs {
    /// Layered package requests to remove.
    #[arg(value_name = "PACKAGE", required_unless_present = "all")]
    pub packages: Vec<String>,
    /// Remove every layered package.
    #[arg(long)]
    pub all: bool,
    /// Also layer these packages.
    #[arg(long = "install", value_name = "PKG")]
    pub install: Vec<String>,
    /// The shared options.
    #[command(flatten)]
    pub change: PkgChangeArgs,
}

/// `rpm-ostree override`.
#[derive(Debug, Clone, Args)]
pub struct OverrideArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: OverrideCommand,
}

/// The `override` verbs.
#[derive(Debug, Clone, Subcommand)]
pub enum OverrideCommand {
    /// Remove packages from the base image.
    Remove(OverrideRemoveArgs),
    /// Replace packages of the base image with local RPM files.
    Replace(OverrideReplaceArgs),
    /// Drop overrides (by package name or NEVRA), or all of them.
    Reset(OverrideResetArgs),
}

/// `rpm-ostree override remove`.
#[derive(Debug, Clone, Default, Args)]
pub struct OverrideRemoveArgs {
    /// Names of base packages to remove.
    #[arg(value_name = "PACKAGE", required = true)]
    pub packages: Vec<String>,
    /// Also replace base packages with these local RPM files.
    #[arg(long = "replace", value_name = "RPM")]
    pub replace: Vec<String>,
    /// Also layer these packages.
    #[arg(long = "install", value_name = "PKG")]
    pub install: Vec<String>,
    /// The shared options.
    #[command(flatten)]
    pub change: PkgChangeArgs,
}

/// `rpm-ostree override replace`.
#[derive(Debug, Clone, Default, Args)]
pub struct OverrideReplaceArgs {
    /// Local RPM files replacing the base packages of the same names.
    #[arg(value_name = "RPM", required = true)]
    pub packages: Vec<String>,
    /// Also remove these base packages.
    #[arg(long = "remove", value_name = "PKG")]
    pub remove: Vec<String>,
    /// The shared options.
    #[command(flatten)]
    pub change: PkgChangeArgs,
}

/// `rpm-ostree override reset`.
#[derive(Debug, Clone, Default, Args)]
pub struct OverrideResetArgs {
    /// Packages (names or NEVRAs) whose override is dropped.
    #[arg(value_name = "PACKAGE", required_unless_present = "all")]
    pub packages: Vec<String>,
    /// Drop every override.
    #[arg(short, long)]
    pub all: bool,
    /// The shared options.
    #[command(flatten)]
    pub change: PkgChangeArgs,
}

/// `rpm-ostree reset`.
#[derive(Debug, Clone, Default, Args)]
pub struct ResetArgs {
    /// Only remove the layered packages.
    #[arg(short = 'l', long = "overlays")]
    pub overlays: bool,
    /// Only drop the base overrides.
    #[arg(short = 'o', long = "overrides")]
    pub overrides: bool,
    /// Only drop the initramfs settings.
    #[arg(short = 'i', long = "initramfs")]
    pub initramfs: bool,
    /// The shared options.
    #[command(flatten)]
    pub change: PkgChangeArgs,
}

/// `rpm-ostree deploy`.
#[derive(Debug, Clone, Default, Args)]
pub struct DeployArgs {
    /// Commit checksum or version to deploy; `revision=` or `version=` forces the meaning. The
    /// empty string only registers an update driver (with --register-driver).
    #[arg(value_name = "REVISION", allow_hyphen_values = false)]
    pub revision: String,
    /// Reboot once the deployment is staged.
    #[arg(short, long)]
    pub reboot: bool,
    /// Only show the package changes the revision would bring; deploy nothing.
    #[arg(long, conflicts_with_all = ["reboot", "download_only", "register_driver"])]
    pub preview: bool,
    /// Refuse to deploy a commit older than the current one.
    #[arg(long = "disallow-downgrade")]
    pub disallow_downgrade: bool,
    /// Use only data already on the machine; do not download.
    #[arg(short = 'C', long = "cache-only", conflicts_with = "download_only")]
    pub cache_only: bool,
    /// Download the commit without deploying it.
    #[arg(long = "download-only")]
    pub download_only: bool,
    /// Stage the deployment locked: it is applied only by `finalize-deployment`.
    #[arg(long = "lock-finalization")]
    pub lock_finalization: bool,
    /// Register the caller (and its systemd unit) as the driver of updates, under NAME.
    #[arg(long = "register-driver", value_name = "NAME")]
    pub register_driver: Option<String>,
    /// Do not require a checksum to be in the history of the origin branch.
    #[arg(long = "skip-branch-check")]
    pub skip_branch_check: bool,
    /// Exit 77 when nothing changed.
    #[arg(long = "unchanged-exit-77")]
    pub unchanged_exit_77: bool,
    /// Accepted for compatibility; update drivers are not checked by this client.
    #[arg(long = "bypass-driver", hide = true)]
    pub bypass_driver: bool,
}

/// `rpm-ostree rebase`.
#[derive(Debug, Clone, Default, Args)]
pub struct RebaseArgs {
    /// The new tree: `remote:branch`, `remote:`, `branch`, a checksum, or a container image
    /// (`ostree-unverified-registry:NAME[:TAG]`, `ostree-unverified-image:oci:/PATH`, ...).
    #[arg(value_name = "REFSPEC", required_unless_present_any = ["branch", "remote"])]
    pub refspec: Option<String>,
    /// A revision (checksum or version) of the new tree to deploy instead of its newest commit.
    #[arg(value_name = "REVISION")]
    pub revision: Option<String>,
    /// Rebase to BRANCH (of the current remote unless --remote is given).
    #[arg(short = 'b', long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Rebase to REMOTE (the current branch unless --branch is given).
    #[arg(short = 'm', long, value_name = "REMOTE")]
    pub remote: Option<String>,
    /// Keep the old ref in the repository.
    #[arg(long = "skip-purge")]
    pub skip_purge: bool,
    /// Accepted for compatibility: container image references once needed it.
    #[arg(long, hide = true)]
    pub experimental: bool,
    /// Reboot once the deployment is staged.
    #[arg(short, long)]
    pub reboot: bool,
    /// Refuse to deploy a commit older than the current one.
    #[arg(long = "disallow-downgrade")]
    pub disallow_downgrade: bool,
    /// Use only data already on the machine; do not download.
    #[arg(short = 'C', long = "cache-only", conflicts_with = "download_only")]
    pub cache_only: bool,
    /// Download the new tree without deploying it.
    #[arg(long = "download-only")]
    pub download_only: bool,
    /// Stage the deployment locked: it is applied only by `finalize-deployment`.
    #[arg(long = "lock-finalization")]
    pub lock_finalization: bool,
    /// Do not require a checksum revision to be in the history of the new branch.
    #[arg(long = "skip-branch-check")]
    pub skip_branch_check: bool,
    /// For a checksum refspec: the URL to record as its origin.
    #[arg(
        long = "custom-origin-url",
        value_name = "URL",
        requires = "custom_origin_description"
    )]
    pub custom_origin_url: Option<String>,
    /// For a checksum refspec: a description of the custom origin.
    #[arg(
        long = "custom-origin-description",
        value_name = "TEXT",
        requires = "custom_origin_url"
    )]
    pub custom_origin_description: Option<String>,
    /// Accepted for compatibility; update drivers are not checked by this client.
    #[arg(long = "bypass-driver", hide = true)]
    pub bypass_driver: bool,
}

/// `rpm-ostree rollback`.
#[derive(Debug, Clone, Default, Args)]
pub struct RollbackArgs {
    /// Reboot once the boot order is changed.
    #[arg(short, long)]
    pub reboot: bool,
}

/// `rpm-ostree cleanup`: at least one of the flags is required.
#[derive(Debug, Clone, Default, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true))]
pub struct CleanupArgs {
    /// Clear temporary files and unused base commits; keep deployments.
    #[arg(short = 'b', long, group = "what")]
    pub base: bool,
    /// Remove the pending deployment.
    #[arg(short = 'p', long, group = "what")]
    pub pending: bool,
    /// Remove the rollback deployment.
    #[arg(short = 'r', long, group = "what")]
    pub rollback: bool,
    /// Delete the cached package repository metadata.
    #[arg(short = 'm', long, group = "what")]
    pub repomd: bool,
}

/// `rpm-ostree kargs`.
#[derive(Debug, Clone, Default, Args)]
pub struct KargsArgs {
    /// Append a kernel argument (repeatable); `console=` style keys may appear many times.
    #[arg(long, value_name = "KEY=VALUE")]
    pub append: Vec<String>,
    /// Replace an argument: `KEY=VALUE` when KEY has one value, or `KEY=OLD=NEW` (repeatable).
    #[arg(long, value_name = "KEY=VALUE=NEWVALUE", conflicts_with = "delete")]
    pub replace: Vec<String>,
    /// Delete an argument: `KEY` or a `KEY=VALUE` pair (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub delete: Vec<String>,
    /// Like --append, but do nothing if KEY is already present (repeatable).
    #[arg(long = "append-if-missing", value_name = "KEY=VALUE")]
    pub append_if_missing: Vec<String>,
    /// Like --delete, but do nothing if the argument is missing (repeatable).
    #[arg(long = "delete-if-present", value_name = "KEY=VALUE")]
    pub delete_if_present: Vec<String>,
    /// Show or change the arguments of the deployment at INDEX (0 is the first).
    #[arg(long = "deploy-index", value_name = "INDEX")]
    pub deploy_index: Option<String>,
    /// Start from the arguments of the booted deployment instead of the pending one.
    #[arg(long = "import-proc-cmdline", conflicts_with = "deploy_index")]
    pub import_proc_cmdline: bool,
    /// Reboot once the new arguments are staged.
    #[arg(short, long)]
    pub reboot: bool,
    /// Exit 77 when the arguments did not change.
    #[arg(long = "unchanged-exit-77")]
    pub unchanged_exit_77: bool,
    /// Stage the deployment locked: it is applied only by `finalize-deployment`.
    #[arg(long = "lock-finalization", hide = true)]
    pub lock_finalization: bool,
}

impl KargsArgs {
    /// Whether any change was asked for (otherwise the current arguments are printed).
    pub fn modifies(&self) -> bool {
        !(self.append.is_empty()
            && self.replace.is_empty()
            && self.delete.is_empty()
            && self.append_if_missing.is_empty()
            && self.delete_if_present.is_empty())
    }
}

/// `rpm-ostree finalize-deployment`.
#[derive(Debug, Clone, Default, Args)]
pub struct FinalizeDeploymentArgs {
    /// The base checksum (or image digest) the staged deployment must have.
    #[arg(
        value_name = "CHECKSUM",
        required_unless_present = "allow_missing_checksum"
    )]
    pub checksum: Option<String>,
    /// Finalize without checking the checksum.
    #[arg(long = "allow-missing-checksum")]
    pub allow_missing_checksum: bool,
    /// Do not fail if the staged deployment is already unlocked.
    #[arg(long = "allow-unlocked")]
    pub allow_unlocked: bool,
}

/// `rpm-ostree refresh-md`.
#[derive(Debug, Clone, Default, Args)]
pub struct RefreshMdArgs {
    /// Refresh even if the metadata is recent.
    #[arg(short, long)]
    pub force: bool,
}

/// `rpm-ostree search`.
#[derive(Debug, Clone, Default, Args)]
pub struct SearchArgs {
    /// Words to look for in package names and summaries.
    #[arg(value_name = "PACKAGE", required = true)]
    pub terms: Vec<String>,
}

/// The shells completions can be generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU Bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// `rpm-ostree completions SHELL`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `rpm-ostree man DIR`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// The directory to write `rpm-ostree.1` and one page per command into.
    #[arg(value_name = "DIR")]
    pub dir: std::path::PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cleanup_needs_a_flag() {
        assert!(Cli::try_parse_from(["rpm-ostree", "cleanup"]).is_err());
        let cli = Cli::try_parse_from(["rpm-ostree", "cleanup", "-pr"]).expect("parses");
        match cli.command {
            Command::Cleanup(c) => assert!(c.pending && c.rollback && !c.base),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn search_preview_and_advisories_parse() {
        assert!(Cli::try_parse_from(["rpm-ostree", "search"]).is_err());
        let cli = Cli::try_parse_from(["rpm-ostree", "search", "foo", "bar"]).expect("parses");
        match cli.command {
            Command::Search(s) => assert_eq!(s.terms, ["foo", "bar"]),
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["rpm-ostree", "status", "-a"]).expect("parses");
        match cli.command {
            Command::Status(s) => assert!(s.advisories && !s.verbose),
            other => panic!("{other:?}"),
        }
        let cli =
            Cli::try_parse_from(["rpm-ostree", "deploy", "--preview", "1.2"]).expect("parses");
        match cli.command {
            Command::Deploy(d) => assert!(d.preview && d.revision == "1.2"),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["rpm-ostree", "deploy", "--preview", "-r", "1.2"]).is_err());
    }

    #[test]
    fn zincati_command_lines_parse() {
        for argv in [
            &["rpm-ostree", "deploy", "", "--register-driver=Zincati"][..],
            &[
                "rpm-ostree",
                "deploy",
                "--lock-finalization",
                "--skip-branch-check",
                "revision=abc",
                "--disallow-downgrade",
            ],
            &["rpm-ostree", "finalize-deployment", "abc"],
            &["rpm-ostree", "cleanup", "-p"],
            &["rpm-ostree", "status", "--json"],
            &["rpm-ostree", "status", "--booted", "--json"],
            &["rpm-ostree", "--os", "testos", "status"],
            &["rpm-ostree", "status", "--stateroot=testos", "-v"],
        ] {
            Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
    }
}
