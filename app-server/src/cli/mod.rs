//! The `keel` command line: one file per subcommand, each with its own options and `run`.
//! `main.rs` only parses and dispatches.

/// `keel migrate`: apply pending migrations and exit.
pub mod migrate;
/// `keel serve`: run the app (HTTP and job workers).
pub mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "keel", version, about = "Keel: Shopify Flow actions and triggers that run exactly once, and a VIP checkout Function", after_long_help = environment_help(), after_help = environment_help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run Keel: the embedded app, webhooks and the job workers, until SIGTERM or Ctrl-C.
    Serve,
    /// Apply pending database migrations (serve also does this at start-up) and exit.
    Migrate,
}

/// The environment variables, as a help section: one table in `config` is the source.
fn environment_help() -> String {
    let mut out = String::from("Environment variables:\n");
    for (name, what) in crate::config::VARIABLES {
        out.push_str(&format!("  {name:<24} {what}\n"));
    }
    out
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve => serve::run().await,
        Command::Migrate => migrate::run().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_documents_every_environment_variable() {
        let help = Cli::command().render_long_help().to_string();
        for (name, _) in crate::config::VARIABLES {
            assert!(help.contains(name), "{name} missing from --help");
        }
    }
}
