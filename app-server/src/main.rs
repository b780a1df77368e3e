//! The `keel` binary: parse the command line and dispatch; everything else is in the library.

use clap::Parser;
use std::process::ExitCode;

/// glibc's allocator spent a fifth of the request path's CPU on webhook bursts (memory allocated
/// on a runtime thread and freed on the SQLite writer thread, and the reverse); mimalloc's
/// per-thread heaps make those frees cheap. Measured with tests/bench/webhooks.sh.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    keel::cli::run(keel::cli::Cli::parse()).await
}
