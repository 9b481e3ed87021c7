//! One consumer fanned out to several projections: each keeps its own checkpoint, a
//! failing one holds no other back and catches up alone, and two projector processes
//! apply each event to each projection once.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use eventlog::{
    EventLog, GroupCommitConfig, Publisher, PublisherConfig, head_position,
    jetstream::{self, StreamNames},
};
use projections::{
    Projection, Projector, ProjectorConfig, Target, checkpoint, run_projector,
    store_activity::StoreActivity,
};
use schemas::RecordedEvent;
use sqlx::{PgConnection, PgPool, postgres::PgPoolOptions};
use testkit::{append_to_store, delete_stream, eventually, isolated_names};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

/// Remembers every position it applied; fails while `failing` is set.
#[derive(Clone, Default)]
struct Recorder {
    failing: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<i64>>>,
}

impl Projection for Recorder {
    const NAME: &'static str = "recorder";
    const TABLES: &'static [&'static str] = &[];

    async fn apply(
        &self,
        _conn: &mut PgConnection,
        _target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(sqlx::Error::Protocol("the recorder is down".into()));
        }
        self.seen
            .lock()
            .unwrap()
            .extend(events.iter().map(|event| event.position));
        Ok(())
    }
}

impl Recorder {
    /// Every position from 1 to `head`, each once.
    fn saw_each_once(&self, head: i64) -> bool {
        let mut seen = self.seen.lock().unwrap().clone();
        seen.sort_unstable();
        seen == (1..=head).collect::<Vec<_>>()
    }
}

fn config(names: &StreamNames) -> ProjectorConfig {
    ProjectorConfig {
        batch_size: 20,
        buffer_batches: 2,
        retry: Duration::from_millis(100),
        ..ProjectorConfig::new(names.clone())
    }
}

async fn store_activity_matches_log(pool: &PgPool) -> bool {
    let mismatches: i64 = sqlx::query_scalar(
        "WITH truth AS (SELECT store_id, count(*) AS total FROM events GROUP BY store_id) \
         SELECT count(*)::bigint FROM truth FULL JOIN store_activity a USING (store_id) \
         WHERE a.events_total IS DISTINCT FROM truth.total",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    mismatches == 0
}

struct Platform {
    client: async_nats::Client,
    names: StreamNames,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Platform {
    async fn publishing(pool: &PgPool) -> Self {
        let (client, connections) = jetstream::connect(&testkit::nats_url()).await.unwrap();
        let names = isolated_names();
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let publisher = Publisher::new(
            pool.clone(),
            client.clone(),
            connections,
            PublisherConfig::new(names.clone()),
        );
        tasks.spawn(publisher.run(shutdown.clone()));
        Self {
            client,
            names,
            shutdown,
            tasks,
        }
    }

    fn project(&mut self, pool: &PgPool, projector: Projector) {
        self.tasks.spawn(run_projector(
            pool.clone(),
            self.client.clone(),
            config(&self.names),
            projector,
            self.shutdown.clone(),
        ));
    }

    async fn consumers(&self) -> usize {
        let js = async_nats::jetstream::new(self.client.clone());
        let mut stream = js.get_stream(&self.names.stream).await.unwrap();
        stream.info().await.unwrap().state.consumer_count
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        delete_stream(&self.client, &self.names).await;
    }
}

/// sqlx's test pool holds five connections; the publisher, the committer, the test's
/// reads and a lane per projection (per process) need more at once.
async fn roomy(pool: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(20)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_failing_projection_holds_no_other_back_and_catches_up_alone(pool: PgPool) {
    let pool = roomy(&pool).await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let recorder = Recorder::default();
    recorder.failing.store(true, Ordering::SeqCst);
    let mut platform = Platform::publishing(&pool).await;
    platform.project(
        &pool,
        Projector::new("projector")
            .with(StoreActivity)
            .with(recorder.clone()),
    );
    for _ in 0..4 {
        append_to_store(&log, Uuid::new_v4(), 100).await;
    }
    assert!(
        eventually(PATIENCE, || store_activity_matches_log(&pool)).await,
        "store_activity kept up while the recorder failed"
    );
    assert_eq!(checkpoint(&pool, Recorder::NAME).await.unwrap(), 0);
    assert!(recorder.seen.lock().unwrap().is_empty());
    assert_eq!(platform.consumers().await, 1, "one consumer for both");

    recorder.failing.store(false, Ordering::SeqCst);
    append_to_store(&log, Uuid::new_v4(), 10).await;
    let head = head_position(&pool).await.unwrap();
    assert!(
        eventually(PATIENCE, || async {
            checkpoint(&pool, Recorder::NAME).await.unwrap() == head
        })
        .await,
        "the recorder caught up once it recovered"
    );
    assert!(recorder.saw_each_once(head));
    assert!(eventually(PATIENCE, || store_activity_matches_log(&pool)).await);
    platform.stop().await;
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn two_projector_processes_apply_each_event_to_each_projection_once(pool: PgPool) {
    let pool = roomy(&pool).await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let recorder = Recorder::default();
    let mut platform = Platform::publishing(&pool).await;
    for _ in 0..2 {
        platform.project(
            &pool,
            Projector::new("projector")
                .with(StoreActivity)
                .with(recorder.clone()),
        );
    }
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let log = log.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    append_to_store(&log, Uuid::new_v4(), 25).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let head = head_position(&pool).await.unwrap();
    assert_eq!(head, 1000);
    assert!(
        eventually(PATIENCE, || async {
            checkpoint(&pool, Recorder::NAME).await.unwrap() == head
                && checkpoint(&pool, StoreActivity::NAME).await.unwrap() == head
        })
        .await
    );
    assert!(recorder.saw_each_once(head));
    assert!(store_activity_matches_log(&pool).await);
    assert_eq!(
        platform.consumers().await,
        1,
        "both processes share one consumer"
    );
    platform.stop().await;
}
