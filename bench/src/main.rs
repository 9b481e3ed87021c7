//! Benchmarks of the platform against the real Postgres and NATS of `DATABASE_URL` and
//! `NATS_URL`. Each run works in a database and a JetStream stream of its own and
//! removes them afterwards. Prints one JSON object per line.

mod bridge;
mod catalog;
mod http;
mod orders;
mod results;
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
    /// Also append each figure line, with the commit, to `bench/results/<suite>.jsonl`.
    #[arg(long, global = true)]
    record: bool,
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
    /// The money path: checkouts, paid checkouts, the last-unit race under load.
    Orders(orders::Options),
    /// Two commits' recorded runs side by side: minimum / median of each figure.
    Compare {
        /// A results file, e.g. `bench/results/spine.jsonl`.
        file: std::path::PathBuf,
        /// The earlier commit (default: the one recorded before `newer`).
        #[arg(long)]
        older: Option<String>,
        /// The later commit (default: the last one recorded).
        #[arg(long)]
        newer: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.record {
        let suite = match &cli.suite {
            Suite::Spine(_) => "spine",
            Suite::Http(_) => "http",
            Suite::Catalog(_) => "catalog",
            Suite::Bridge(_) => "bridge",
            Suite::Orders(_) => "orders",
            Suite::Compare { .. } => anyhow::bail!("--record records a suite's run"),
        };
        results::record_into(suite);
    }
    match cli.suite {
        Suite::Spine(options) => spine::run(options).await,
        Suite::Http(options) => http::run(options).await,
        Suite::Catalog(options) => catalog::run(options).await,
        Suite::Bridge(options) => bridge::run(options).await,
        Suite::Orders(options) => orders::run(options).await,
        Suite::Compare { file, older, newer } => {
            results::compare(&file, older.as_deref(), newer.as_deref())
        }
    }
}
