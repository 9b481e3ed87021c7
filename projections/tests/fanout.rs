//! One consumer fanned out to several projections: each keeps its own checkpoint, a
//! failing one holds no other back and catches up alone, a lane applies what queued up
//! behind a slow transaction in one more, and two projector processes apply each event
//! to each projection once.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use eventlog::{
    EventLog, GroupCommitConfig, Publisher, PublisherConfig, head_position,
    jetstream::{self, StreamNames},
};
use projections::{
    Projection, Projector, ProjectorConfig, Target, checkpoint, checkpoints, run_projector,
    store_activity::StoreActivity,
};
use schemas::RecordedEvent;
use sqlx::{PgConnection, PgPool, postgres::PgPoolOptions};
use testkit::{append_to_store, delete_stream, eventually, isolated_names};
use tokio::{sync::watch, task::JoinSet};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

/// Remembers the positions of each transaction it applied (of those it reads: every
/// `reading_every`-th, or all); fails while `failing` is set, and holds its
/// transactions while `held` is.
#[derive(Clone)]
struct Recorder {
    reading_every: Option<i64>,
    failing: Arc<AtomicBool>,
    held: Arc<watch::Sender<bool>>,
    entered: Arc<AtomicUsize>,
    transactions: Arc<Mutex<Vec<Vec<i64>>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            reading_every: None,
            failing: Arc::default(),
            held: Arc::new(watch::Sender::new(false)),
            entered: Arc::default(),
            transactions: Arc::default(),
        }
    }
}

impl Projection for Recorder {
    const NAME: &'static str = "recorder";
    const TABLES: &'static [&'static str] = &[];

    fn reads(&self, event: &RecordedEvent) -> bool {
        self.reading_every
            .is_none_or(|every| event.position % every == 0)
    }

    async fn apply(
        &self,
        _conn: &mut PgConnection,
        _target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let _ = self.held.subscribe().wait_for(|held| !*held).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(sqlx::Error::Protocol("the recorder is down".into()));
        }
        self.transactions.lock().unwrap().push(
            events
                .iter()
                .filter(|event| self.reads(event))
                .map(|event| event.position)
                .collect(),
        );
        Ok(())
    }
}

impl Recorder {
    fn reading_every(every: i64) -> Self {
        Self {
            reading_every: Some(every),
            ..Self::default()
        }
    }

    fn seen(&self) -> Vec<i64> {
        self.transactions.lock().unwrap().concat()
    }

    /// Every position from 1 to `head` that it reads, each once.
    fn saw_each_once(&self, head: i64) -> bool {
        let mut seen = self.seen();
        seen.sort_unstable();
        let every = self.reading_every.unwrap_or(1);
        seen == (1..=head)
            .filter(|position| position % every == 0)
            .collect::<Vec<_>>()
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

    /// The stream position up to which the projector's consumer has handed messages to
    /// the process; `None` until the consumer exists.
    async fn delivered(&self) -> Option<u64> {
        let js = async_nats::jetstream::new(self.client.clone());
        let stream = js.get_stream(&self.names.stream).await.ok()?;
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .get_consumer(&self.names.consumer_name("projector"))
            .await
            .ok()?;
        Some(consumer.info().await.ok()?.delivered.stream_sequence)
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
    let caught_up = checkpoint(&pool, StoreActivity::NAME).await.unwrap();
    assert_eq!(
        checkpoints(&pool, &[Recorder::NAME, "never_ran", StoreActivity::NAME])
            .await
            .unwrap(),
        [0, 0, caught_up],
        "each name's checkpoint, in the order asked"
    );
    assert!(recorder.seen().is_empty());
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
async fn a_lane_applies_the_batches_queued_behind_a_slow_one_in_one_transaction(pool: PgPool) {
    let pool = roomy(&pool).await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let recorder = Recorder::default();
    recorder.held.send_replace(true);
    let mut platform = Platform::publishing(&pool).await;
    platform.tasks.spawn(run_projector(
        pool.clone(),
        platform.client.clone(),
        ProjectorConfig {
            buffer_batches: 8,
            linger: Duration::ZERO,
            ..config(&platform.names)
        },
        Projector::new("projector").with(recorder.clone()),
        platform.shutdown.clone(),
    ));
    assert!(eventually(PATIENCE, || async { platform.delivered().await.is_some() }).await);
    let store_id = Uuid::new_v4();
    append_to_store(&log, store_id, 1).await;
    assert!(
        eventually(PATIENCE, || async {
            recorder.entered.load(Ordering::SeqCst) == 1
        })
        .await
    );

    // Each event reaches the consumer alone, as a steady trickle does, and queues up.
    for delivered in 2..=6 {
        append_to_store(&log, store_id, 1).await;
        assert!(
            eventually(PATIENCE, || async {
                platform.delivered().await == Some(delivered)
            })
            .await
        );
    }
    // What the consumer received goes to the lane's buffer at once; a moment's slack
    // for a loaded machine.
    tokio::time::sleep(Duration::from_millis(500)).await;
    recorder.held.send_replace(false);
    assert!(
        eventually(PATIENCE, || async {
            checkpoint(&pool, Recorder::NAME).await.unwrap() == 6
        })
        .await
    );
    let transactions = recorder.transactions.lock().unwrap().clone();
    assert_eq!(transactions.concat(), (1..=6).collect::<Vec<_>>());
    assert_eq!(transactions[0], vec![1]);
    // One transaction each would be five; all five queued, so one is expected, and a
    // straggler still in the consumer's hands when the gate opened may make it two.
    assert!(
        transactions.len() <= 3,
        "the batches queued behind the slow one are applied together: {transactions:?}"
    );
    platform.stop().await;
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn two_projector_processes_apply_each_event_to_each_projection_once(pool: PgPool) {
    let pool = roomy(&pool).await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let recorder = Recorder::default();
    let selective = Selective(Recorder::reading_every(7));
    let mut platform = Platform::publishing(&pool).await;
    for _ in 0..2 {
        platform.project(
            &pool,
            Projector::new("projector")
                .with(StoreActivity)
                .with(recorder.clone())
                .with(selective.clone()),
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
                && checkpoint(&pool, Selective::NAME).await.unwrap() == head
        })
        .await
    );
    assert!(recorder.saw_each_once(head));
    assert!(
        selective.0.saw_each_once(head),
        "each seventh position once: {:?}",
        selective.0.transactions.lock().unwrap()
    );
    assert!(store_activity_matches_log(&pool).await);
    assert_eq!(
        platform.consumers().await,
        1,
        "both processes share one consumer"
    );
    platform.stop().await;
}

/// A recorder under a name of its own, to run beside another.
#[derive(Clone)]
struct Selective(Recorder);

impl Projection for Selective {
    const NAME: &'static str = "selective";
    const TABLES: &'static [&'static str] = &[];

    fn reads(&self, event: &RecordedEvent) -> bool {
        self.0.reads(event)
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        self.0.apply(conn, target, events).await
    }
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn batches_with_nothing_a_projection_reads_cost_it_no_transaction(pool: PgPool) {
    let pool = roomy(&pool).await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let recorder = Recorder::reading_every(50);
    let mut platform = Platform::publishing(&pool).await;
    platform.project(
        &pool,
        Projector::new("projector")
            .with(StoreActivity)
            .with(recorder.clone()),
    );
    append_to_store(&log, Uuid::new_v4(), 49).await;
    assert!(
        eventually(PATIENCE, || async {
            checkpoint(&pool, Recorder::NAME).await.unwrap() == 49
        })
        .await,
        "the checkpoint follows the skipped batches once they pause"
    );
    assert_eq!(recorder.entered.load(Ordering::SeqCst), 0);

    append_to_store(&log, Uuid::new_v4(), 71).await;
    assert!(
        eventually(PATIENCE, || async {
            checkpoint(&pool, Recorder::NAME).await.unwrap() == 120
        })
        .await
    );
    assert!(recorder.saw_each_once(120), "{:?}", recorder.seen());
    assert!(
        recorder.entered.load(Ordering::SeqCst) <= 2,
        "applied only with positions 50 and 100 in the batch"
    );
    assert!(store_activity_matches_log(&pool).await);
    platform.stop().await;
}

/// Projection transactions commit without waiting for their WAL flush, so a Postgres
/// crash can take a lane's last commits (rows and checkpoint alike) back while the lane
/// runs on: it must re-apply from the row, not from what it knew in memory.
#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_checkpoint_that_went_back_is_applied_again_from(pool: PgPool) {
    let pool = roomy(&pool).await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let recorder = Recorder::reading_every(10);
    let mut platform = Platform::publishing(&pool).await;
    platform.project(&pool, Projector::new("projector").with(recorder.clone()));
    append_to_store(&log, Uuid::new_v4(), 35).await;
    assert!(
        eventually(PATIENCE, || async {
            checkpoint(&pool, Recorder::NAME).await.unwrap() == 35
        })
        .await
    );
    assert_eq!(recorder.seen(), [10, 20, 30]);

    // What a crash that lost the commits since position 15 leaves behind.
    sqlx::query("UPDATE projection_checkpoints SET position = 15 WHERE name = $1")
        .bind(Recorder::NAME)
        .execute(&pool)
        .await
        .unwrap();
    append_to_store(&log, Uuid::new_v4(), 10).await;
    assert!(
        eventually(PATIENCE, || async {
            checkpoint(&pool, Recorder::NAME).await.unwrap() == 45
        })
        .await
    );
    assert_eq!(
        recorder.seen(),
        [10, 20, 30, 20, 30, 40],
        "the positions the crash took back are applied again, once"
    );
    platform.stop().await;
}
