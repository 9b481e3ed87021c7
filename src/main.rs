use std::process::ExitCode;

use clap::Parser;

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
