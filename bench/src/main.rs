//! Benchmarks of the platform against the real Postgres and NATS of `DATABASE_URL` and
//! `NATS_URL`. Each run works in a database and a JetStream stream of its own and
//! removes them afterwards. Prints one JSON object per line.

mod bridge;
mod catalog;
mod http;
mod scratch;
mod spine;

use clap::{Parser, Subcommand};

/// The same allocator as the `dropship` binary, so the in-process server measures as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// The HTTP server: create-store commands and cached public store reads.
    Http(http::Options),
    /// The catalog: product creates, storefront lists and details, search over 100k.
    Catalog(catalog::Options),
    /// The bridge relay: signed deliveries, logged, to receivers on loopback.
    Bridge(bridge::Options),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().suite {
        Suite::Spine(options) => spine::run(options).await,
        Suite::Http(options) => http::run(options).await,
        Suite::Catalog(options) => catalog::run(options).await,
        Suite::Bridge(options) => bridge::run(options).await,
    }
}
