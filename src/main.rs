use std::process::ExitCode;

use clap::Parser;

/// glibc's allocator spent a fifth of the HTTP benchmark's CPU (many small, short-lived
/// allocations across threads); mimalloc handles that pattern far better.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    dropship::telemetry::init();
    match dropship::cli::Cli::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line a person can act on, not a chain of causes.
            eprintln!("dropship: {error}");
            ExitCode::FAILURE
        }
    }
}
