//! The projector: one durable pull consumer per process, whose batches are decoded once
//! and fanned out to every projection it runs. Each projection has a lane of its own (a
//! task and a bounded buffer of batches) and applies the batches waiting for it with its
//! checkpoint in one transaction; redelivered or duplicate events fall at or below the
//! checkpoint and are skipped. A lane whose buffer is full (its projection failing or
//! slow) is passed over: it finds the gap when it next applies and reads it from the
//! log, the source of truth, so it holds no other lane back. A batch with nothing its
//! projection reads costs that lane no transaction: its checkpoint moves in memory and
//! reaches the database with the next batch it applies, or once such batches pause.

use std::{
    borrow::Cow,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, pull},
};
use eventlog::{
    jetstream::{StreamNames, ensure_stream},
    read_after,
};
use futures::StreamExt;
use schemas::RecordedEvent;
use sqlx::{PgConnection, PgPool};
use tokio::{
    sync::{Notify, mpsc},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{
    checkpoint::{advance_checkpoint, ensure_checkpoint, lock_checkpoint},
    projection::{AnyProjection, Projection},
};

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    pub names: StreamNames,
    /// How many messages a batch (one transaction per projection) gathers; the last
    /// chunk read may take it past this, to less than twice as many.
    pub batch_size: usize,
    /// Batches a projection may have waiting before it is passed over and left to read
    /// them from the log.
    pub buffer_batches: usize,
    /// How long a batch smaller than `batch_size` waits for more messages. Under load
    /// this makes each lane's transactions fewer and larger (a commit per store created
    /// per projection cost the write path a quarter of its rate); idle, it is the most
    /// it adds to a read-your-writes wait.
    pub linger: Duration,
    /// The pause before reconnecting after Postgres or NATS failed, and before a failed
    /// projection tries again.
    pub retry: Duration,
    /// The longest a projection's checkpoint row trails the batches it had nothing to
    /// apply from while such batches keep coming (idle, it follows within two lingers).
    pub checkpoint_delay: Duration,
}

impl ProjectorConfig {
    pub fn new(names: StreamNames) -> Self {
        Self {
            names,
            batch_size: 1000,
            buffer_batches: 8,
            linger: Duration::from_millis(10),
            retry: Duration::from_millis(500),
            checkpoint_delay: Duration::from_millis(100),
        }
    }
}

/// The projections one consumer feeds. Its name names the durable consumer, so it must
/// not change when a projection is added.
pub struct Projector {
    consumer: String,
    projections: Vec<Arc<dyn AnyProjection>>,
    retired: Vec<String>,
}

impl Projector {
    pub fn new(consumer: impl Into<String>) -> Self {
        Self {
            consumer: consumer.into(),
            projections: Vec::new(),
            retired: Vec::new(),
        }
    }

    pub fn with<P: Projection>(mut self, projection: P) -> Self {
        self.projections.push(Arc::new(projection));
        self
    }

    /// Durable consumers this one replaces, deleted when it starts (they would otherwise
    /// be tracked by the server forever).
    pub fn replacing(mut self, consumers: &[&str]) -> Self {
        self.retired
            .extend(consumers.iter().map(|name| (*name).to_owned()));
        self
    }
}

/// A projection alone, on a consumer named after it.
impl<P: Projection> From<P> for Projector {
    fn from(projection: P) -> Self {
        Projector::new(P::NAME).with(projection)
    }
}

/// Runs the projections until `shutdown`; each lane commits the batch it is applying
/// before it returns. Faults pause the consumer or the one projection they hit, which
/// resume where they were.
pub async fn run_projector(
    pool: PgPool,
    client: async_nats::Client,
    config: ProjectorConfig,
    projector: impl Into<Projector>,
    shutdown: CancellationToken,
) {
    let projector = projector.into();
    let mut lanes = Vec::new();
    let mut running = JoinSet::new();
    for projection in &projector.projections {
        let (sender, batches) = mpsc::channel(config.buffer_batches.max(1));
        let passed_over = Arc::new(Notify::new());
        lanes.push(Lane {
            name: projection.name(),
            sender,
            passed_over: passed_over.clone(),
        });
        running.spawn(run_lane(
            pool.clone(),
            projection.clone(),
            config.clone(),
            (batches, passed_over),
            shutdown.clone(),
        ));
    }
    while !shutdown.is_cancelled() {
        match consume(&client, &config, &projector, &lanes, &shutdown).await {
            Ok(()) => break,
            Err(error) => {
                warn!(consumer = %projector.consumer, %error, "projector paused; resuming shortly");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(config.retry) => {}
                }
            }
        }
    }
    drop(lanes);
    while running.join_next().await.is_some() {}
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the consumer hands one projection its batches, or tells it that it passed it
/// over (then the lane reads what it missed from the log, even if no batch follows).
struct Lane {
    name: &'static str,
    sender: mpsc::Sender<Arc<Batch>>,
    passed_over: Arc<Notify>,
}

/// One chunk of the stream, decoded once and shared by every lane. Its last message is
/// acknowledged (acknowledging all before it) when every lane is done with it.
struct Batch {
    events: Vec<RecordedEvent>,
    last: jetstream::Message,
    unsettled: AtomicUsize,
}

impl Batch {
    /// One lane is done with the batch: applied it, or will read it from the log.
    async fn settle(&self) {
        if self.unsettled.fetch_sub(1, Ordering::AcqRel) == 1 {
            // A lost ack is a redelivery, which the checkpoints absorb.
            if let Err(error) = self.last.ack().await {
                debug!(%error, "projector ack failed");
            }
        }
    }
}

async fn consume(
    client: &async_nats::Client,
    config: &ProjectorConfig,
    projector: &Projector,
    lanes: &[Lane],
    shutdown: &CancellationToken,
) -> Result<(), BoxError> {
    let js = jetstream::new(client.clone());
    let stream = ensure_stream(&js, &config.names).await?;
    for retired in &projector.retired {
        let _ = stream
            .delete_consumer(&config.names.consumer_name(retired))
            .await;
    }
    let name = config.names.consumer_name(&projector.consumer);
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: config.names.all_subjects(),
                ack_policy: AckPolicy::All,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 100_000,
                ..Default::default()
            },
        )
        .await?;
    let mut chunks = consumer
        .stream()
        .max_messages_per_batch(config.batch_size)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await?
        .ready_chunks(config.batch_size);
    info!(consumer = %name, projections = lanes.len(), "projector consuming");
    loop {
        let chunk = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            chunk = async {
                until_one_has_room(lanes).await;
                chunks.next().await
            } => chunk.ok_or("the consumer's message stream ended")?,
        };
        let mut messages = Vec::with_capacity(config.batch_size);
        for message in chunk {
            messages.push(message?);
        }
        let deadline = tokio::time::Instant::now() + config.linger;
        while messages.len() < config.batch_size {
            let more = tokio::select! {
                _ = shutdown.cancelled() => break,
                more = tokio::time::timeout_at(deadline, chunks.next()) => more,
            };
            match more {
                Ok(Some(chunk)) => {
                    for message in chunk {
                        messages.push(message?);
                    }
                }
                Ok(None) => return Err("the consumer's message stream ended".into()),
                Err(_) => break,
            }
        }
        let mut events: Vec<RecordedEvent> = messages
            .iter()
            .filter_map(|message| match RecordedEvent::from_wire(&message.payload) {
                Ok(event) => Some(event),
                Err(error) => {
                    // The log still has it: the gap it leaves is filled from Postgres.
                    warn!(subject = %message.subject, %error, "undecodable message");
                    None
                }
            })
            .collect();
        events.sort_by_key(|event| event.position);
        events.dedup_by_key(|event| event.position);
        let Some(last) = messages.pop() else {
            continue;
        };
        let batch = Arc::new(Batch {
            events,
            last,
            unsettled: AtomicUsize::new(lanes.len()),
        });
        for lane in lanes {
            if lane.sender.try_send(batch.clone()).is_err() {
                debug!(
                    projection = lane.name,
                    "projection behind its buffer; it will read this batch from the log"
                );
                lane.passed_over.notify_one();
                batch.settle().await;
            }
        }
    }
}

/// Waits while every lane's buffer is full: then every projection is behind and reading
/// the log (catching up after a start, say), and reading the stream further would only
/// decode messages to pass them over, taking the cores their catching up needs.
async fn until_one_has_room(lanes: &[Lane]) {
    if lanes.is_empty() || lanes.iter().any(|lane| lane.sender.capacity() > 0) {
        return;
    }
    let room = lanes.iter().map(|lane| Box::pin(lane.sender.reserve()));
    // The permit is dropped at once: the batch may go to any lane with room.
    let _ = futures::future::select_all(room).await;
}

/// One projection's task: catches up from the log, then applies the batches handed to
/// it. A failure pauses this projection alone and retries the same batch.
async fn run_lane(
    pool: PgPool,
    projection: Arc<dyn AnyProjection>,
    config: ProjectorConfig,
    (mut batches, passed_over): (mpsc::Receiver<Arc<Batch>>, Arc<Notify>),
    shutdown: CancellationToken,
) {
    let name = projection.name();
    let limit = i64::try_from(config.batch_size).unwrap_or(i64::MAX);
    let projection = projection.as_ref();
    // After a crash the messages a dead consumer held unacknowledged come back only when
    // their ack wait runs out; the log has them now.
    let start = || async {
        ensure_checkpoint(&pool, name).await?;
        catch_up(&pool, projection, limit, Known::at(0)).await
    };
    let Some(reached) = retrying(name, &config, &shutdown, start).await else {
        return;
    };
    let mut progress = Progress::new(reached);
    loop {
        let due = progress.due(&config);
        let batch = tokio::select! {
            _ = shutdown.cancelled() => {
                if due.is_some() {
                    // Best effort: a checkpoint left behind is only events read again.
                    let _ = write_checkpoint(&pool, name, progress.known()).await;
                }
                return;
            }
            _ = passed_over.notified() => {
                let catch_up = || catch_up(&pool, projection, limit, progress.known());
                let Some(reached) = retrying(name, &config, &shutdown, catch_up).await else {
                    return;
                };
                progress.written(reached);
                continue;
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                let write = || write_checkpoint(&pool, name, progress.known());
                let Some(reached) = retrying(name, &config, &shutdown, write).await else {
                    return;
                };
                progress.written(reached);
                continue;
            }
            batch = batches.recv() => match batch {
                Some(batch) => batch,
                None => return,
            },
        };
        let taken = with_waiting(batch, &mut batches, config.batch_size);
        let events = merged(&taken);
        let applied = match progress.skipping(projection, &events) {
            Some(through) => {
                progress.skipped(through);
                Some(())
            }
            None => {
                let apply = || apply_batch(&pool, projection, &events, limit, progress.known());
                retrying(name, &config, &shutdown, apply)
                    .await
                    .map(|reached| progress.written(reached))
            }
        };
        for batch in &taken {
            batch.settle().await;
        }
        if applied.is_none() {
            return;
        }
    }
}

/// A lane's [`Known`] and whether its row trails it. Checkpoints only move forward (a
/// rebuild's too), so what it knows stays true whatever another process does to the row.
struct Progress {
    known: Known,
    /// Since when `through` is ahead of the row, and when a skipped batch last came.
    unwritten: Option<(tokio::time::Instant, tokio::time::Instant)>,
}

/// What a lane knows beyond its checkpoint row: every position up to `through` is
/// applied or holds nothing its projection reads, and `committed` is the checkpoint it
/// last committed or read.
#[derive(Debug, Clone, Copy)]
struct Known {
    through: i64,
    committed: i64,
}

impl Known {
    /// A checkpoint just committed or read, and nothing known beyond it.
    fn at(checkpoint: i64) -> Self {
        Self {
            through: checkpoint,
            committed: checkpoint,
        }
    }

    /// The position to apply above, given the checkpoint row as locked now. A row behind
    /// what this lane committed means Postgres lost its last commits in a crash (they do
    /// not wait for the WAL flush): what the lane knew beyond the row went with them,
    /// and it starts again from the row.
    fn base(self, checkpoint: i64) -> i64 {
        if checkpoint < self.committed {
            warn!(
                checkpoint,
                committed = self.committed,
                "projection checkpoint went back (Postgres lost commits); re-applying from it"
            );
            checkpoint
        } else {
            checkpoint.max(self.through)
        }
    }
}

impl Progress {
    fn new(committed: i64) -> Self {
        Self {
            known: Known::at(committed),
            unwritten: None,
        }
    }

    fn known(&self) -> Known {
        self.known
    }

    /// The position `events` (in position order) take the lane to without a transaction:
    /// none when one of them is to be applied, or when they leave a hole (a batch the
    /// lane was passed over for, a lost message) that only the log can fill.
    fn skipping(&self, projection: &dyn AnyProjection, events: &[RecordedEvent]) -> Option<i64> {
        let Some(last) = events.last().map(|event| event.position) else {
            return Some(self.known.through);
        };
        if last <= self.known.through {
            return Some(self.known.through);
        }
        let fresh = &events[events.partition_point(|event| event.position <= self.known.through)..];
        let gapless =
            i64::try_from(fresh.len()).is_ok_and(|fresh| fresh == last - self.known.through);
        (gapless && !fresh.iter().any(|event| projection.reads(event))).then_some(last)
    }

    fn skipped(&mut self, through: i64) {
        if through == self.known.through {
            return;
        }
        self.known.through = through;
        let now = tokio::time::Instant::now();
        let since = self.unwritten.map_or(now, |(since, _)| since);
        self.unwritten = Some((since, now));
    }

    /// The checkpoint row is at `reached` (which is behind `through` only when Postgres
    /// lost commits).
    fn written(&mut self, reached: i64) {
        self.known = Known::at(reached);
        self.unwritten = None;
    }

    /// When the row should catch up with `through`: once skipped batches stop coming
    /// for a while, so that a reader waiting for a position is not kept waiting, and at
    /// least every `checkpoint_delay` while they keep coming.
    fn due(&self, config: &ProjectorConfig) -> Option<tokio::time::Instant> {
        let (since, latest) = self.unwritten?;
        Some((latest + 2 * config.linger).min(since + config.checkpoint_delay))
    }
}

/// `first` and the batches queued behind it, up to about `batch_size` events: applied
/// in one transaction. A lane that takes its small batches one transaction each falls
/// behind a steady stream (a relay ingest of one event per batch, say), and every event
/// then waits for the whole queue ahead of it.
fn with_waiting(
    first: Arc<Batch>,
    batches: &mut mpsc::Receiver<Arc<Batch>>,
    batch_size: usize,
) -> Vec<Arc<Batch>> {
    let mut events = first.events.len();
    let mut taken = vec![first];
    while events < batch_size {
        let Ok(next) = batches.try_recv() else { break };
        events += next.events.len();
        taken.push(next);
    }
    taken
}

/// The events of `batches` in position order, once each.
fn merged(batches: &[Arc<Batch>]) -> Cow<'_, [RecordedEvent]> {
    if let [only] = batches {
        return Cow::Borrowed(&only.events);
    }
    let mut events: Vec<RecordedEvent> = batches
        .iter()
        .flat_map(|batch| batch.events.iter().cloned())
        .collect();
    events.sort_by_key(|event| event.position);
    events.dedup_by_key(|event| event.position);
    Cow::Owned(events)
}

/// Runs `work` until it succeeds, pausing `config.retry` after each failure; `None` when
/// shut down first.
async fn retrying<F, Fut, T>(
    name: &str,
    config: &ProjectorConfig,
    shutdown: &CancellationToken,
    mut work: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    loop {
        match work().await {
            Ok(done) => return Some(done),
            Err(error) => {
                warn!(projection = name, %error, "projection paused; retrying it shortly");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(config.retry) => {}
                }
            }
        }
    }
}

/// Applies what the log holds above the checkpoint and what the lane knows, `limit`
/// events per transaction; the checkpoint reached.
async fn catch_up(
    pool: &PgPool,
    projection: &dyn AnyProjection,
    limit: i64,
    known: Known,
) -> Result<i64, sqlx::Error> {
    let mut known = known;
    loop {
        let (reached, more) = apply_from_log(pool, projection, limit, known).await?;
        known = Known::at(reached);
        if !more {
            return Ok(reached);
        }
    }
}

/// Applies up to `limit` events above the checkpoint and what the lane knows from the
/// log, and moves the checkpoint past them; the new checkpoint, and whether the log may
/// hold more.
async fn apply_from_log(
    pool: &PgPool,
    projection: &dyn AnyProjection,
    limit: i64,
    known: Known,
) -> Result<(i64, bool), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let checkpoint = lock_checkpoint(&mut tx, projection.name()).await?;
    let base = known.base(checkpoint);
    let events = read_after(&mut *tx, base, limit).await?;
    let Some(last) = events.last().map(|event| event.position) else {
        if base > checkpoint {
            advance_checkpoint(&mut tx, projection.name(), base).await?;
            tx.commit().await?;
        }
        return Ok((base, false));
    };
    apply_read(&mut tx, projection, &events).await?;
    advance_checkpoint(&mut tx, projection.name(), last).await?;
    tx.commit().await?;
    Ok((last, true))
}

/// Moves the checkpoint to what the lane knows unless it is there already; the
/// checkpoint it is at.
async fn write_checkpoint(pool: &PgPool, name: &str, known: Known) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let checkpoint = lock_checkpoint(&mut tx, name).await?;
    let base = known.base(checkpoint);
    if checkpoint < base {
        advance_checkpoint(&mut tx, name, base).await?;
        tx.commit().await?;
    }
    Ok(base)
}

/// Applies the events of a batch (in position order) above the checkpoint and what the
/// lane knows, and moves the checkpoint, in one transaction; the position reached. Positions are
/// gapless, so a hole means events this lane was passed over for, or that JetStream lost
/// or mangled: they are read from the log, which is the source of truth, a
/// transaction's worth at a time.
async fn apply_batch(
    pool: &PgPool,
    projection: &dyn AnyProjection,
    events: &[RecordedEvent],
    limit: i64,
    known: Known,
) -> Result<i64, sqlx::Error> {
    let Some(last) = events.last().map(|event| event.position) else {
        return Ok(known.committed);
    };
    let mut known = known;
    loop {
        let mut tx = pool.begin().await?;
        let checkpoint = lock_checkpoint(&mut tx, projection.name()).await?;
        let base = known.base(checkpoint);
        let fresh = &events[events.partition_point(|event| event.position <= base)..];
        if fresh.is_empty() {
            if base > checkpoint {
                advance_checkpoint(&mut tx, projection.name(), base).await?;
                tx.commit().await?;
            }
            return Ok(base);
        }
        let missing = last - base - fresh.len() as i64;
        if missing == 0 {
            apply_read(&mut tx, projection, fresh).await?;
        } else if last - base <= limit {
            debug!(
                projection = projection.name(),
                base, last, "positions missing from the batch; reading them from the log"
            );
            let events = read_after(&mut *tx, base, last - base).await?;
            apply_read(&mut tx, projection, &events).await?;
        } else {
            drop(tx);
            let (reached, _) = apply_from_log(pool, projection, limit, known).await?;
            known = Known::at(reached);
            continue;
        }
        advance_checkpoint(&mut tx, projection.name(), last).await?;
        tx.commit().await?;
        return Ok(last);
    }
}

/// Hands the projection `events` unless it reads none of them.
async fn apply_read(
    conn: &mut PgConnection,
    projection: &dyn AnyProjection,
    events: &[RecordedEvent],
) -> Result<(), sqlx::Error> {
    if events.iter().any(|event| projection.reads(event)) {
        projection.apply(conn, events).await?;
    }
    Ok(())
}
