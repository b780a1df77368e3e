//! The `keel` binary: parse the command line and dispatch; everything else is in the library.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    keel::cli::run(keel::cli::Cli::parse()).await
}
