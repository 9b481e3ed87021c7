//! The projector runtime with the real `store_activity` projection, fed by the real
//! publisher through JetStream.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use eventlog::{
    EventLog, GroupCommitConfig, Publisher, PublisherConfig,
    jetstream::{self, Connections, StreamNames},
};
use projections::{
    Projection, ProjectorConfig, checkpoint, lag, rebuild, run_projector,
    store_activity::StoreActivity,
};
use sqlx::PgPool;
use testkit::{PrivateNats, append_to_store, delete_stream, eventually, isolated_names};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

/// A publisher and a projector on one NATS namespace, stopped together.
struct Running {
    nats: (async_nats::Client, Connections),
    names: StreamNames,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    async fn start(pool: &PgPool, nats_url: &str) -> Self {
        let nats = jetstream::connect(nats_url).await.unwrap();
        let mut running = Self {
            nats,
            names: isolated_names(),
            shutdown: CancellationToken::new(),
            tasks: JoinSet::new(),
        };
        running.spawn_publisher(pool);
        running.spawn_projector(pool);
        running
    }

    fn spawn_publisher(&mut self, pool: &PgPool) {
        let config = PublisherConfig {
            leader_retry: Duration::from_millis(200),
            ..PublisherConfig::new(self.names.clone())
        };
        let publisher = Publisher::new(
            pool.clone(),
            self.nats.0.clone(),
            self.nats.1.clone(),
            config,
        );
        self.tasks.spawn(publisher.run(self.shutdown.clone()));
    }

    fn spawn_projector(&mut self, pool: &PgPool) {
        let config = ProjectorConfig {
            retry: Duration::from_millis(200),
            ..ProjectorConfig::new(self.names.clone())
        };
        self.tasks.spawn(run_projector(
            pool.clone(),
            self.nats.0.clone(),
            config,
            StoreActivity,
            self.shutdown.clone(),
        ));
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        delete_stream(&self.nats.0, &self.names).await;
    }
}

/// `store_activity` agrees with the log: every store's event count and latest position.
async fn projection_matches_log(pool: &PgPool) -> bool {
    let mismatches: i64 = sqlx::query_scalar(
        "WITH truth AS (SELECT store_id, count(*) AS total, max(position) AS last FROM events \
                        WHERE store_id IS NOT NULL GROUP BY store_id) \
         SELECT count(*)::bigint FROM truth FULL JOIN store_activity a USING (store_id) \
         WHERE a.events_total IS DISTINCT FROM truth.total OR a.last_position IS DISTINCT FROM truth.last",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    mismatches == 0
}

async fn assert_caught_up(pool: &PgPool) {
    assert!(
        eventually(PATIENCE, || projection_matches_log(pool)).await,
        "store_activity never matched the log"
    );
    assert_eq!(lag(pool, StoreActivity::NAME).await.unwrap(), 0);
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn the_projection_counts_each_stores_events_and_reports_its_lag(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    for (store, count) in [
        (Uuid::new_v4(), 10),
        (Uuid::new_v4(), 20),
        (Uuid::new_v4(), 30),
    ] {
        append_to_store(&log, store, count).await;
    }
    assert_eq!(
        lag(&pool, StoreActivity::NAME).await.unwrap(),
        60,
        "nothing projected yet"
    );
    let running = Running::start(&pool, &testkit::nats_url()).await;
    assert_caught_up(&pool).await;
    assert_eq!(checkpoint(&pool, StoreActivity::NAME).await.unwrap(), 60);
    running.stop().await;
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_full_redelivery_of_the_stream_changes_nothing(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    append_to_store(&log, Uuid::new_v4(), 50).await;
    let mut running = Running::start(&pool, &testkit::nats_url()).await;
    assert_caught_up(&pool).await;

    // A new durable consumer starts from the first message: everything again.
    running.shutdown.cancel();
    while running.tasks.join_next().await.is_some() {}
    let js = async_nats::jetstream::new(running.nats.0.clone());
    let stream = js.get_stream(&running.names.stream).await.unwrap();
    stream
        .delete_consumer(&running.names.consumer_name(StoreActivity::NAME))
        .await
        .unwrap();
    running.shutdown = CancellationToken::new();
    running.spawn_projector(&pool);
    append_to_store(&log, Uuid::new_v4(), 1).await;
    running.spawn_publisher(&pool);

    assert_caught_up(&pool).await;
    running.stop().await;
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn messages_missing_from_the_stream_are_read_from_the_log(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let store = Uuid::new_v4();
    append_to_store(&log, store, 30).await;
    let nats = jetstream::connect(&testkit::nats_url()).await.unwrap();
    let names = isolated_names();
    let shutdown = CancellationToken::new();
    let publisher = Publisher::new(
        pool.clone(),
        nats.0.clone(),
        nats.1.clone(),
        PublisherConfig::new(names.clone()),
    );
    let publishing = tokio::spawn(publisher.run(shutdown.clone()));
    let js = async_nats::jetstream::new(nats.0.clone());
    assert!(
        eventually(PATIENCE, || async {
            match js.get_stream(&names.stream).await {
                Ok(stream) => stream
                    .get_info()
                    .await
                    .is_ok_and(|info| info.state.messages == 30),
                Err(_) => false,
            }
        })
        .await
    );
    let stream = js.get_stream(&names.stream).await.unwrap();
    for sequence in [3, 4, 17] {
        stream.delete_message(sequence).await.unwrap();
    }

    let projecting = tokio::spawn(run_projector(
        pool.clone(),
        nats.0.clone(),
        ProjectorConfig::new(names.clone()),
        StoreActivity,
        shutdown.clone(),
    ));
    assert_caught_up(&pool).await;
    shutdown.cancel();
    publishing.await.unwrap();
    projecting.await.unwrap();
    delete_stream(&nats.0, &names).await;
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_rebuild_replaces_a_damaged_read_model_while_the_projector_runs(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let stores = [Uuid::new_v4(), Uuid::new_v4()];
    for store in stores {
        append_to_store(&log, store, 200).await;
    }
    let running = Running::start(&pool, &testkit::nats_url()).await;
    assert_caught_up(&pool).await;
    sqlx::query("UPDATE store_activity SET events_total = 0")
        .execute(&pool)
        .await
        .unwrap();
    assert!(!projection_matches_log(&pool).await);

    let writer = tokio::spawn({
        let log = log.clone();
        async move { append_to_store(&log, stores[0], 300).await }
    });
    let report = rebuild(&pool, &StoreActivity).await.unwrap();
    writer.await.unwrap();
    assert!(
        report.events_replayed >= 400,
        "replayed {}",
        report.events_replayed
    );

    // Writes the live projector makes after the swap land in the rebuilt tables.
    append_to_store(&log, stores[1], 5).await;
    assert_caught_up(&pool).await;
    let shadow_rows: i64 = sqlx::query_scalar("SELECT count(*)::bigint FROM store_activity_shadow")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(shadow_rows, 0, "the replaced tables are emptied");
    running.stop().await;
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn projecting_pauses_while_nats_is_down_and_resumes_without_loss(pool: PgPool) {
    let mut server = PrivateNats::start().await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let store = Uuid::new_v4();
    append_to_store(&log, store, 40).await;
    let running = Running::start(&pool, &server.url()).await;
    assert_caught_up(&pool).await;

    server.kill();
    append_to_store(&log, store, 40).await;
    server.restart().await;

    assert_caught_up(&pool).await;
    running.stop().await;
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn projecting_survives_postgres_dropping_every_connection(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let store = Uuid::new_v4();
    append_to_store(&log, store, 40).await;
    let running = Running::start(&pool, &testkit::nats_url()).await;
    assert_caught_up(&pool).await;

    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        .execute(&pool)
        .await
        .unwrap();
    append_to_store(&log, store, 40).await;

    assert_caught_up(&pool).await;
    running.stop().await;
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_projector_stopped_mid_stream_leaves_rows_and_checkpoint_in_agreement(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    append_to_store(&log, Uuid::new_v4(), 2000).await;
    let running = Running::start(&pool, &testkit::nats_url()).await;
    assert!(
        eventually(PATIENCE, || async {
            checkpoint(&pool, StoreActivity::NAME).await.unwrap() > 0
        })
        .await
    );
    running.stop().await;

    let applied: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(events_total), 0)::bigint FROM store_activity")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        applied,
        checkpoint(&pool, StoreActivity::NAME).await.unwrap()
    );
}
