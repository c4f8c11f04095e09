//! `rpm-ostree completions SHELL` and `rpm-ostree man DIR` (hidden): shell completion scripts
//! and man pages generated from the clap definition, for distribution install steps.

use anyhow::Result;
use clap::CommandFactory;

use crate::Exit;
use crate::cli::{Cli, CompletionsArgs, ManArgs, Shell};
use crate::error::CliError;

/// Writes the completion script for the shell to stdout.
pub fn completions(args: &CompletionsArgs) -> Result<Exit> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "rpm-ostree", &mut std::io::stdout());
    Ok(Exit::Success)
}

/// Writes `rpm-ostree.1` and one page per visible command into the directory (created if
/// missing), and lists the files written.
pub fn man(args: &ManArgs) -> Result<Exit> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| CliError::new(format!("cannot create {}: {e}", args.dir.display())))?;
    clap_mangen::generate_to(Cli::command(), &args.dir).map_err(|e| {
        CliError::new(format!(
            "cannot write man pages into {}: {e}",
            args.dir.display()
        ))
    })?;
    Ok(Exit::Success)
}
