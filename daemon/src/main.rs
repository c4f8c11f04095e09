//! The `rpm-ostreed` binary: parses arguments, sets up logging and the runtime, and runs the
//! daemon library.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;

/// rpm-ostreed: serves org.projectatomic.rpmostree1 on the system bus.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The OSTree sysroot to manage.
    #[arg(long, default_value = "/")]
    sysroot: PathBuf,
    /// The configuration file.
    #[arg(long, default_value = "/etc/rpm-ostreed.conf")]
    config: PathBuf,
    /// Instead of serving, answer one read-only package query as JSON (what `rpm-ostree db`
    /// runs).
    #[command(subcommand)]
    query: Option<Query>,
}

/// The read-only package queries of `rpm-ostree db`.
#[derive(Debug, clap::Subcommand)]
enum Query {
    /// Package queries on the sysroot's repository.
    #[command(subcommand)]
    Db(Db),
}

#[derive(Debug, clap::Subcommand)]
enum Db {
    /// The package changes between two revisions ([FROM] [TO]).
    Diff { revisions: Vec<String> },
    /// The packages of revisions (REV... [PATTERN...]).
    List { arguments: Vec<String> },
    /// The rpmdb version of revisions.
    Version { revisions: Vec<String> },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Query::Db(db)) = args.query {
        let query = match db {
            Db::Diff { revisions } => rpmostreed::DbQuery::Diff { revisions },
            Db::List { arguments } => rpmostreed::DbQuery::List { arguments },
            Db::Version { revisions } => rpmostreed::DbQuery::Version { revisions },
        };
        return match rpmostreed::run_db(&args.sysroot, &query) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging();
    // One thread is enough for D-Bus traffic; libostree work runs on blocking threads, and a
    // single-threaded executor keeps the idle daemon small.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = rpmostreed::Options {
        sysroot: args.sysroot,
        config: args.config,
    };
    match runtime.block_on(rpmostreed::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to the journal when there is one, else to stderr; `RUST_LOG` filters.
fn init_logging() {
    use tracing_subscriber::{EnvFilter, prelude::*};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match tracing_journald::layer() {
        Ok(journald) => registry.with(journald).init(),
        Err(_) => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_target(false),
            )
            .init(),
    }
}
