//! `rpm-ostree-fleetlock`: `serve` (the FleetLock server), `slots` (who holds which slots, per
//! group, read from etcd) and `release` (an administrator frees the slot of a node that will
//! not come back). Every command reads airlock's configuration file (`-c`, default
//! `/etc/airlock/config.toml`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::semaphore::Semaphore;

/// The default configuration file (airlock's).
pub const DEFAULT_CONFIG: &str = "/etc/airlock/config.toml";

/// A FleetLock server on etcd v3, compatible with airlock.
#[derive(Debug, Parser)]
#[command(name = "rpm-ostree-fleetlock", version)]
struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve FleetLock requests until SIGINT or SIGTERM.
    Serve {
        /// The configuration file (airlock's format).
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Print the slots and holders of every configured group.
    Slots {
        /// The configuration file.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Write the man page (roff) to DIR.
    #[command(hide = true)]
    Man {
        /// The directory.
        dir: PathBuf,
    },
    /// Free the slot a node holds (for a node that will not report steady state).
    Release {
        /// The configuration file.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The group.
        #[arg(short, long, default_value = crate::protocol::DEFAULT_GROUP)]
        group: String,
        /// The node id to release.
        id: String,
    },
}

/// Parses the command line and runs the command; errors go to stderr with exit code 1.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(command(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

async fn command(command: Command) -> Result<()> {
    match command {
        Command::Man { dir } => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            let path = dir.join("rpm-ostree-fleetlock.1");
            std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
            Ok(())
        }
        Command::Serve { config } => {
            let config = Config::load(&config)?;
            crate::server::serve(config, shutdown_signal(), |api, status| {
                tracing::info!("listening on {api}");
                if let Some(s) = status {
                    tracing::info!("metrics on http://{s}/metrics");
                }
            })
            .await
        }
        Command::Slots { config } => {
            let config = Config::load(&config)?;
            let sem = connect(&config).await?;
            for (group, configured) in &config.groups {
                match sem.get(group).await.context("reading etcd")? {
                    Some(v) => println!(
                        "{group}: {}/{} slots held{}{}",
                        v.holders.len(),
                        v.total_slots,
                        if v.holders.is_empty() { "" } else { ": " },
                        v.holders.join(" ")
                    ),
                    None => println!("{group}: 0/{configured} slots held (not used yet)"),
                }
            }
            Ok(())
        }
        Command::Release { config, group, id } => {
            let config = Config::load(&config)?;
            let Some(&slots) = config.groups.get(&group) else {
                bail!("group {group} is not configured");
            };
            let sem = connect(&config).await?;
            let held = sem
                .get(&group)
                .await
                .context("reading etcd")?
                .is_some_and(|v| v.holders.contains(&id));
            if !held {
                bail!("{id} holds no slot in group {group}");
            }
            sem.unlock(&group, slots, &id).await.context("releasing")?;
            println!("Released the slot of {id} in group {group}.");
            Ok(())
        }
    }
}

async fn connect(config: &Config) -> Result<Semaphore> {
    Semaphore::connect(
        &config.endpoints,
        config.transaction_timeout,
        config.max_hold,
    )
    .await
    .context("connecting to etcd")
}
