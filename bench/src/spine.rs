//! `bench spine`: the event path's throughput.
//! - `raw_insert`: Postgres' own one-INSERT-per-transaction loop, the baseline.
//! - `append`: the event log (group commit), distinct streams, ~300-byte payloads.
//! - `publish`: the log onto JetStream, acknowledged, from an empty stream.
//! - `project`: the `store_activity` projector catching up on the whole stream, then the
//!   projector role's three projections fanned out from one consumer doing the same.

use std::time::{Duration, Instant};

use eventlog::{
    AppendRequest, EventLog, ExpectedVersion, GroupCommitConfig, NewEvent, Publisher,
    PublisherConfig, head_position,
    jetstream::{self, StreamNames},
    publisher_checkpoint,
};
use projections::{
    Projection, Projector, ProjectorConfig, catalog::Catalog, checkpoint, run_projector,
    store_activity::StoreActivity, stores::Stores,
};
use schemas::{Event, store::StoreUpdated};
use serde_json::json;
use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::scratch::{Scratch, settle};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Events each append run writes.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Inserts each raw-insert run writes.
    #[arg(long, default_value_t = 20_000)]
    raw_events: u64,
    /// Writer counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    writers: Vec<u64>,
}

const PAYLOAD_BYTES: usize = 300;
const STORES: usize = 100;

pub async fn run(options: Options) -> anyhow::Result<()> {
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/dropship".into());
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let scratch = Scratch::create(&server).await?;
    let pool = PgPoolOptions::new()
        .max_connections(32)
        .connect(&scratch.url)
        .await?;
    eventlog::MIGRATOR.run(&pool).await?;

    for &writers in &options.writers {
        settle(&pool).await;
        raw_insert(&pool, writers, options.raw_events).await?;
    }
    for &writers in &options.writers {
        settle(&pool).await;
        append(&pool, writers, options.events).await?;
    }
    let names = StreamNames::new(
        format!("BENCH_{}", Uuid::new_v4().simple()),
        format!("bench_{}", Uuid::new_v4().simple()),
    );
    let (client, connections) = jetstream::connect(&nats_url).await?;
    let result = async {
        settle(&pool).await;
        publish(&pool, &client, connections, &names).await?;
        settle(&pool).await;
        project(&pool, &client, &names).await
    }
    .await;
    let _ = async_nats::jetstream::new(client.clone())
        .delete_stream(&names.stream)
        .await;
    pool.close().await;
    scratch.drop().await?;
    result
}

fn report(workload: &str, parameters: serde_json::Value, events: u64, elapsed: Duration) {
    let mut line = json!({"workload": workload});
    if let (Some(line), Some(parameters)) = (line.as_object_mut(), parameters.as_object()) {
        line.extend(parameters.clone());
        line.insert("events".into(), json!(events));
        line.insert(
            "seconds".into(),
            json!((elapsed.as_secs_f64() * 1000.0).round() / 1000.0),
        );
        line.insert(
            "events_per_s".into(),
            json!((events as f64 / elapsed.as_secs_f64()).round()),
        );
    }
    crate::results::emit(line);
}

/// Splits `total` over `writers` tasks running `work(writer, count)` and times them.
async fn timed_writers<F, Fut>(writers: u64, total: u64, work: F) -> anyhow::Result<Duration>
where
    F: Fn(u64, u64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| tokio::spawn(work(writer, total / writers)))
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

async fn raw_insert(pool: &PgPool, writers: u64, total: u64) -> anyhow::Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, payload bytea NOT NULL)",
    )
    .execute(pool)
    .await?;
    let elapsed = timed_writers(writers, total, |_, count| {
        let pool = pool.clone();
        async move {
            for _ in 0..count {
                sqlx::query("INSERT INTO bench_raw (payload) VALUES ($1)")
                    .bind(vec![7u8; PAYLOAD_BYTES])
                    .execute(&pool)
                    .await?;
            }
            Ok(())
        }
    })
    .await?;
    report(
        "raw_insert",
        json!({"writers": writers}),
        total / writers * writers,
        elapsed,
    );
    Ok(())
}

fn payload() -> Event {
    Event::StoreUpdated(StoreUpdated {
        description: Some("d".repeat(PAYLOAD_BYTES - 10)),
        ..Default::default()
    })
}

async fn append(pool: &PgPool, writers: u64, total: u64) -> anyhow::Result<()> {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let stores: Vec<Uuid> = (0..STORES).map(|_| Uuid::new_v4()).collect();
    let elapsed = timed_writers(writers, total, |writer, count| {
        let log = log.clone();
        let store = stores[writer as usize % STORES];
        async move {
            let stream = format!("bench-{}", Uuid::new_v4());
            for version in 0..count {
                let request = AppendRequest::new(
                    &stream,
                    ExpectedVersion::Exact(version as i32),
                    vec![NewEvent::new(payload())],
                )
                .in_store(store);
                log.append(request).await?;
            }
            Ok(())
        }
    })
    .await?;
    let per_transaction: f64 = sqlx::query_scalar(
        "SELECT (count(*)::float8 / greatest(count(DISTINCT tx_id), 1))::float8 FROM events WHERE stream_id LIKE 'bench-%' \
         AND recorded_at > now() - make_interval(secs => $1)",
    )
    .bind(elapsed.as_secs_f64())
    .fetch_one(pool)
    .await?;
    let parameters = json!({
        "writers": writers,
        "payload_bytes": PAYLOAD_BYTES,
        "appends_per_transaction": (per_transaction * 10.0).round() / 10.0,
    });
    report("append", parameters, total / writers * writers, elapsed);
    Ok(())
}

/// Starts a role, times it until `position` reaches the log head as it was at the
/// start, then stops it. Returns the events caught up on and the time it took.
async fn time_catch_up(
    pool: &PgPool,
    role: impl FnOnce(CancellationToken) -> tokio::task::JoinHandle<()>,
    mut position: impl AsyncFnMut() -> anyhow::Result<i64>,
) -> anyhow::Result<(u64, Duration)> {
    let head = head_position(pool).await?;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let task = role(shutdown.clone());
    while position().await? < head {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    task.await?;
    Ok((u64::try_from(head)?, elapsed))
}

async fn publish(
    pool: &PgPool,
    client: &async_nats::Client,
    connections: jetstream::Connections,
    names: &StreamNames,
) -> anyhow::Result<()> {
    let config = PublisherConfig::new(names.clone());
    let batch = config.batch_size;
    let publisher = Publisher::new(pool.clone(), client.clone(), connections, config);
    let (events, elapsed) = time_catch_up(
        pool,
        |shutdown| tokio::spawn(publisher.run(shutdown)),
        async || Ok(publisher_checkpoint(pool, &names.stream).await?),
    )
    .await?;
    report("publish", json!({"batch": batch}), events, elapsed);
    Ok(())
}

async fn project(
    pool: &PgPool,
    client: &async_nats::Client,
    names: &StreamNames,
) -> anyhow::Result<()> {
    let config = ProjectorConfig::new(names.clone());
    let batch = config.batch_size;
    let (events, elapsed) = time_catch_up(
        pool,
        |shutdown| {
            tokio::spawn(run_projector(
                pool.clone(),
                client.clone(),
                config.clone(),
                StoreActivity,
                shutdown,
            ))
        },
        async || Ok(checkpoint(pool, StoreActivity::NAME).await?),
    )
    .await?;
    report(
        "project",
        json!({"projection": StoreActivity::NAME, "batch": batch}),
        events,
        elapsed,
    );

    // The projector role's own set, from one consumer, starting over. Each lane's own
    // catch-up time shows whether the slowest held the others back.
    sqlx::query("TRUNCATE store_activity, projection_checkpoints")
        .execute(pool)
        .await?;
    let head = head_position(pool).await?;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let projector = Projector::new("fanned_out")
        .with(StoreActivity)
        .with(Stores)
        .with(Catalog);
    let task = tokio::spawn(run_projector(
        pool.clone(),
        client.clone(),
        config,
        projector,
        shutdown.clone(),
    ));
    let mut lanes = json!({});
    let names = [StoreActivity::NAME, Stores::NAME, Catalog::NAME];
    while lanes.as_object().map_or(0, |done| done.len()) < names.len() {
        for name in names {
            if lanes.get(name).is_none() && checkpoint(pool, name).await? >= head {
                lanes[name] = json!((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    task.await?;
    report(
        "project",
        json!({
            "projections": names.join("+"),
            "batch": batch,
            "seconds_per_projection": lanes,
        }),
        u64::try_from(head)?,
        elapsed,
    );
    Ok(())
}
