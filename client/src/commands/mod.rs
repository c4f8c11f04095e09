//! One module per verb: its arguments become typed options, the daemon call, and the output.
//! [`dispatch`] connects to the daemon (except for the local `completions` and `man`) and runs
//! the chosen verb.

pub mod cancel;
pub mod cleanup;
pub mod db;
pub mod deploy;
pub mod finalize_deployment;
pub mod generate;
pub mod kargs;
pub mod pkg;
pub mod rebase;
pub mod refresh_md;
pub mod reload;
pub mod rollback;
pub mod search;
pub mod status;
pub mod upgrade;

use anyhow::Result;

use crate::Exit;
use crate::cli::{Cli, Command, GlobalOptions};
use crate::connection::Daemon;

/// What every command gets besides its own arguments.
#[derive(Debug, Clone)]
pub struct Context {
    /// The global options.
    pub global: GlobalOptions,
    /// The full command line, sent as `initiating-command-line` where a method takes it.
    pub command_line: String,
}

/// Runs the parsed command line.
pub async fn dispatch(cli: Cli, command_line: String) -> Result<Exit> {
    let ctx = Context {
        global: cli.global,
        command_line,
    };
    match cli.command {
        Command::Completions(args) => return generate::completions(&args),
        Command::Man(args) => return generate::man(&args),
        Command::Db(args) => return db::run(&args),
        _ => {}
    }
    let daemon = Daemon::connect().await?;
    match cli.command {
        Command::Status(args) => status::run(&daemon, &ctx, &args).await,
        Command::Upgrade(args) => upgrade::run(&daemon, &ctx, &args).await,
        Command::Deploy(args) => deploy::run(&daemon, &ctx, &args).await,
        Command::Rebase(args) => rebase::run(&daemon, &ctx, &args).await,
        Command::Rollback(args) => rollback::run(&daemon, &ctx, &args).await,
        Command::Cleanup(args) => cleanup::run(&daemon, &ctx, &args).await,
        Command::Kargs(args) => kargs::run(&daemon, &ctx, &args).await,
        Command::FinalizeDeployment(args) => finalize_deployment::run(&daemon, &ctx, &args).await,
        Command::Cancel => cancel::run(&daemon, &ctx).await,
        Command::Reload => reload::run(&daemon, &ctx).await,
        Command::RefreshMd(args) => refresh_md::run(&daemon, &ctx, &args).await,
        Command::Install(args) => pkg::install(&daemon, &ctx, &args).await,
        Command::Uninstall(args) => pkg::uninstall(&daemon, &ctx, &args).await,
        Command::Override(args) => pkg::override_(&daemon, &ctx, &args).await,
        Command::Reset(args) => pkg::reset(&daemon, &ctx, &args).await,
        Command::Search(args) => search::run(&daemon, &ctx, &args).await,
        Command::Completions(_) | Command::Man(_) | Command::Db(_) => Ok(Exit::Success),
    }
}
