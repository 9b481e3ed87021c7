//! Benchmarks of the platform against the real Postgres and NATS of `DATABASE_URL` and
//! `NATS_URL`. Each run works in a database and a JetStream stream of its own and
//! removes them afterwards. Prints one JSON object per line.

mod spine;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Cli {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Debug, Subcommand)]
enum Suite {
    /// The event path: raw inserts, appends, publishing, projecting.
    Spine(spine::Options),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().suite {
        Suite::Spine(options) => spine::run(options).await,
    }
}
