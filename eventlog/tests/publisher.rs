//! The publisher against a real JetStream: every event exactly once, in log order,
//! through crashes of the publisher, of NATS and of Postgres connections.

#![allow(clippy::unwrap_used)]

use std::{collections::HashSet, time::Duration};

use eventlog::{
    EventLog, GroupCommitConfig, Publisher, PublisherConfig,
    jetstream::{self, Connections, StreamNames},
    publisher_checkpoint,
};
use sqlx::{PgPool, postgres::PgPoolOptions};
use testkit::{
    PrivateNats, append_to_store, delete_stream, eventually, isolated_names, stream_contents,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

async fn connect(url: &str) -> (async_nats::Client, Connections) {
    jetstream::connect(url).await.unwrap()
}

fn config(names: &StreamNames) -> PublisherConfig {
    PublisherConfig {
        leader_retry: Duration::from_millis(200),
        ..PublisherConfig::new(names.clone())
    }
}

fn spawn_publisher(
    pool: &PgPool,
    nats: &(async_nats::Client, Connections),
    names: &StreamNames,
) -> (JoinHandle<()>, CancellationToken) {
    let shutdown = CancellationToken::new();
    let publisher = Publisher::new(pool.clone(), nats.0.clone(), nats.1.clone(), config(names));
    (tokio::spawn(publisher.run(shutdown.clone())), shutdown)
}

/// The stream holds exactly the log's events: each once, in position order 1..=total.
async fn stream_mirrors_log(client: &async_nats::Client, names: &StreamNames, total: i64) -> bool {
    let events = stream_contents(client, names).await;
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    positions == (1..=total).collect::<Vec<_>>()
}

async fn assert_exactly_once_in_order(
    client: &async_nats::Client,
    names: &StreamNames,
    total: i64,
) {
    assert!(
        eventually(PATIENCE, || stream_mirrors_log(client, names, total)).await,
        "stream holds {:?}",
        stream_contents(client, names)
            .await
            .iter()
            .map(|e| e.position)
            .collect::<Vec<_>>()
            .len()
    );
    let ids: HashSet<Uuid> = stream_contents(client, names)
        .await
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(ids.len() as i64, total, "no event id twice");
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn every_event_is_published_once_in_log_order_with_its_headers(pool: PgPool) {
    let names = isolated_names();
    let nats = connect(&testkit::nats_url()).await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let stores = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
    for store in stores {
        append_to_store(&log, store, 40).await;
    }
    let (task, shutdown) = spawn_publisher(&pool, &nats, &names);
    assert_exactly_once_in_order(&nats.0, &names, 120).await;

    let js = async_nats::jetstream::new(nats.0.clone());
    let stream = js.get_stream(&names.stream).await.unwrap();
    let first = stream.get_raw_message(1).await.unwrap();
    let event = schemas::RecordedEvent::from_wire(&first.payload).unwrap();
    assert_eq!(
        first.subject.as_str(),
        format!("{}.{}.store.updated", names.subject_prefix, stores[0])
    );
    let header = |name: &str| first.headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(header("Nats-Msg-Id"), Some(event.event_id.to_string()));
    assert_eq!(
        header("Dropship-Event-Type").as_deref(),
        Some("store.updated")
    );
    assert_eq!(header("Dropship-Schema-Version").as_deref(), Some("1"));
    assert_eq!(header("Dropship-Position").as_deref(), Some("1"));
    assert_eq!(
        header("Content-Type").as_deref(),
        Some("application/postcard")
    );
    assert_eq!(
        stream.get_info().await.unwrap().config.duplicate_window,
        Duration::from_secs(120)
    );

    assert!(
        eventually(PATIENCE, || async {
            publisher_checkpoint(&pool, &names.stream).await.unwrap() == 120
        })
        .await
    );
    shutdown.cancel();
    task.await.unwrap();
    delete_stream(&nats.0, &names).await;
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_publisher_killed_mid_run_is_replaced_without_loss_or_duplicates(pool: PgPool) {
    let names = isolated_names();
    let nats = connect(&testkit::nats_url()).await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let store = Uuid::new_v4();
    let writer = tokio::spawn({
        let log = log.clone();
        async move { append_to_store(&log, store, 3000).await }
    });

    // The first publisher has a pool of its own, so killing it closes its connections
    // as a dying process would; a follower waits from the start.
    let doomed_pool = PgPoolOptions::new()
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let (doomed, _) = spawn_publisher(&doomed_pool, &nats, &names);
    assert!(
        eventually(PATIENCE, || async {
            !stream_contents(&nats.0, &names).await.is_empty()
        })
        .await
    );
    let (follower, shutdown) = spawn_publisher(&pool, &nats, &names);

    doomed.abort();
    let _ = doomed.await;
    doomed_pool.close().await;
    writer.await.unwrap();

    assert_exactly_once_in_order(&nats.0, &names, 3000).await;
    shutdown.cancel();
    follower.await.unwrap();
    delete_stream(&nats.0, &names).await;
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_stream_that_lost_its_messages_is_refilled_from_the_log(pool: PgPool) {
    let names = isolated_names();
    let nats = connect(&testkit::nats_url()).await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let store = Uuid::new_v4();
    append_to_store(&log, store, 50).await;
    let (task, shutdown) = spawn_publisher(&pool, &nats, &names);
    assert_exactly_once_in_order(&nats.0, &names, 50).await;

    // NATS acknowledges before fsync: after a crash its stream may end early, or be gone.
    delete_stream(&nats.0, &names).await;
    append_to_store(&log, store, 10).await;

    assert_exactly_once_in_order(&nats.0, &names, 60).await;
    shutdown.cancel();
    task.await.unwrap();
    delete_stream(&nats.0, &names).await;
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn publishing_pauses_while_nats_is_down_and_resumes_without_loss(pool: PgPool) {
    let mut server = PrivateNats::start().await;
    let names = isolated_names();
    let nats = connect(&server.url()).await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let store = Uuid::new_v4();
    append_to_store(&log, store, 100).await;
    let (task, shutdown) = spawn_publisher(&pool, &nats, &names);
    assert_exactly_once_in_order(&nats.0, &names, 100).await;

    server.kill();
    // The log keeps accepting writes while the stream is away.
    append_to_store(&log, store, 100).await;
    server.restart().await;

    assert_exactly_once_in_order(&nats.0, &names, 200).await;
    shutdown.cancel();
    task.await.unwrap();
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn publishing_survives_postgres_dropping_every_connection(pool: PgPool) {
    let names = isolated_names();
    let nats = connect(&testkit::nats_url()).await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let store = Uuid::new_v4();
    append_to_store(&log, store, 100).await;
    let (task, shutdown) = spawn_publisher(&pool, &nats, &names);
    assert_exactly_once_in_order(&nats.0, &names, 100).await;

    // What a Postgres restart does to its clients: every session ends at once.
    let dropped: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid))::bigint FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        dropped >= 2,
        "the publisher's lease and listener were dropped ({dropped})"
    );
    append_to_store(&log, store, 100).await;

    assert_exactly_once_in_order(&nats.0, &names, 200).await;
    shutdown.cancel();
    task.await.unwrap();
    delete_stream(&nats.0, &names).await;
}
