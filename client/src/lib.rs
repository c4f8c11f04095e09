//! The rpm-ostree command-line client. It never changes the system itself: every command is a
//! request to rpm-ostreed over the system D-Bus, through the generated proxies of
//! `rpmostree-api` only.
//!
//! [`run`] is the whole program (the binary is a thin shim over it): parse the command line
//! ([`cli`]), connect and register ([`connection`]), run the verb ([`commands`]), follow its
//! transaction with progress output ([`transaction`], [`progress`]) and report errors
//! ([`error`]) with exit code 1, or 77 where a flag asks for it. Package diffs and advisories
//! are laid out by [`diff`].

pub mod cli;
pub mod commands;
pub mod connection;
pub mod diff;
pub mod error;
pub mod output;
pub mod progress;
pub mod transaction;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;

/// The exit status of a successful command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit 0.
    Success,
    /// Exit 77: nothing changed (`--unchanged-exit-77`) or a pending deployment exists
    /// (`status --pending-exit-77`).
    Code77,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Code77 => 77,
        }
    }
}

/// Runs rpm-ostree with `args` (the full argv, program name first) and returns the process
/// exit code: 0, 77 where a flag asks for it, 1 on any error (usage errors included, as
/// upstream), with the message on stderr.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let command_line = args
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(commands::dispatch(cli, command_line));
    let _ = std::io::stdout().flush();
    match result {
        Ok(exit) => exit.code(),
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
