//! Group commit: appends from many tasks queue here and are written by one committer,
//! many per transaction. While one batch commits, the next one gathers, so the batch
//! size follows the load: one append alone is written at once, sixteen concurrent ones
//! share a transaction and its fsync. An append to several streams is one request of a
//! batch, so it commits whole or not at all.

use std::{collections::VecDeque, sync::Arc};

use sqlx::{Connection, PgPool, Postgres, pool::PoolConnection};
use tokio::sync::{
    mpsc::{self, error::TryRecvError},
    oneshot,
};
use tracing::warn;

use crate::{
    append::{AppendError, AppendOutcome, AppendRequest, MultiAppendOutcome},
    batch::{BEGIN_APPEND, BatchOutcome, KnownHeads, Parts, Reads, write_batch},
};

#[derive(Debug, Clone, Copy)]
pub struct GroupCommitConfig {
    /// The most appends written in one transaction.
    pub max_batch: usize,
    /// How many appends may wait for the committer before `append` itself waits.
    pub queue_depth: usize,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            queue_depth: 4096,
        }
    }
}

/// How many times the committer yields without receiving anything before it writes.
const GATHER_YIELDS: u32 = 8;

/// The committer keeps one connection between batches rather than taking one from the
/// pool (and pinging it) for every transaction.
type Held = Option<PoolConnection<Postgres>>;

struct Pending {
    parts: Vec<AppendRequest>,
    reply: oneshot::Sender<Result<MultiAppendOutcome, AppendError>>,
}

/// The write side of the log. Cheap to clone; the committer stops when the last clone
/// is dropped, after writing what was queued.
#[derive(Clone)]
pub struct EventLog {
    pool: PgPool,
    queue: mpsc::Sender<Pending>,
}

impl EventLog {
    pub fn start(pool: PgPool, config: GroupCommitConfig) -> Self {
        let (queue, receiver) = mpsc::channel(config.queue_depth);
        tokio::spawn(run_committer(pool.clone(), receiver, config.max_batch));
        Self { pool, queue }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, AppendError> {
        Ok(self.append_multi(vec![request]).await?.into_single())
    }

    /// Appends to several streams at once, each part with its own expected version,
    /// reservations and idempotency claim: every part is written, or none is. One
    /// part's conflict fails the whole append with that part's error.
    pub async fn append_multi(
        &self,
        parts: Vec<AppendRequest>,
    ) -> Result<MultiAppendOutcome, AppendError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Pending { parts, reply })
            .await
            .map_err(|_| AppendError::ShuttingDown)?;
        outcome.await.map_err(|_| AppendError::ShuttingDown)?
    }
}

async fn run_committer(pool: PgPool, mut receiver: mpsc::Receiver<Pending>, max_batch: usize) {
    let mut waiting: VecDeque<Pending> = VecDeque::new();
    let mut known = KnownHeads::default();
    let mut connection = Held::default();
    let mut answered = 0;
    loop {
        if waiting.is_empty() {
            tokio::select! {
                pending = receiver.recv() => match pending {
                    Some(pending) => waiting.push_back(pending),
                    None => return give_up(&mut connection),
                },
                // `PgPool::close` waits for every connection, the held one included.
                _ = pool.close_event() => return give_up(&mut connection),
            }
        }
        // Writers answered by the last batch are waking up to send their next append:
        // a few yields let them join this batch instead of waiting for the next one.
        // Once as many are here as were answered, no one else is expected, so a lone
        // writer's append is written at once (each yield can wake an idle worker thread).
        let expected = answered.clamp(1, max_batch);
        let mut idle_yields = 0;
        while waiting.len() < max_batch {
            match receiver.try_recv() {
                Ok(pending) => waiting.push_back(pending),
                Err(TryRecvError::Empty)
                    if waiting.len() < expected && idle_yields < GATHER_YIELDS =>
                {
                    idle_yields += 1;
                    tokio::task::yield_now().await;
                }
                Err(_) => break,
            }
        }
        let take = waiting.len().min(max_batch);
        answered = take;
        let batch: Vec<Pending> = waiting.drain(..take).collect();
        for deferred in commit(&pool, &mut connection, batch, &mut known)
            .await
            .into_iter()
            .rev()
        {
            waiting.push_front(deferred);
        }
    }
}

/// Commits a batch and answers each request; returns those deferred to the next batch.
async fn commit(
    pool: &PgPool,
    connection: &mut Held,
    batch: Vec<Pending>,
    known: &mut KnownHeads,
) -> Vec<Pending> {
    let requests: Vec<Parts<'_>> = batch.iter().map(|p| p.parts.as_slice()).collect();
    let result = match try_commit(pool, connection, &requests, known, Mode::Optimistic).await {
        Ok(Some(outcomes)) => Ok(outcomes),
        // Failed (most likely another process appended and what the batch read went
        // stale) or left unwritten (a refusal to confirm): once more under the lock.
        _ => locked_commit(pool, connection, &requests, known).await,
    };
    match result {
        Ok(outcomes) => answer(batch, outcomes),
        Err(error) if batch.len() > 1 => {
            // A lost connection or a request the checks missed: isolate it, so that one
            // request's failure is not every request's.
            warn!(%error, size = batch.len(), "append batch failed; retrying its appends one by one");
            let mut deferred = Vec::new();
            for pending in batch {
                let single = [pending.parts.as_slice()];
                match locked_commit(pool, connection, &single, known).await {
                    Ok(outcomes) => deferred.extend(answer(vec![pending], outcomes)),
                    Err(error) => {
                        let _ = pending.reply.send(Err(AppendError::Database(error)));
                    }
                }
            }
            deferred
        }
        Err(error) => {
            for pending in batch {
                let _ = pending
                    .reply
                    .send(Err(AppendError::Database(Arc::clone(&error))));
            }
            Vec::new()
        }
    }
}

fn answer(batch: Vec<Pending>, outcomes: Vec<BatchOutcome>) -> Vec<Pending> {
    let mut deferred = Vec::new();
    for (pending, outcome) in batch.into_iter().zip(outcomes) {
        match outcome {
            Some(result) => {
                let _ = pending.reply.send(result);
            }
            None => deferred.push(pending),
        }
    }
    deferred
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Read what the known heads do not cover, then write in one autocommit statement
    /// that fails whole if anything read went stale: one round trip when all is known.
    Optimistic,
    /// Take the append lock, read, write, commit: slower, never stale.
    Locked,
}

/// Reads under the lock give every outcome; should one ever be missing, the requests
/// wait for the next batch rather than go unanswered.
async fn locked_commit(
    pool: &PgPool,
    connection: &mut Held,
    requests: &[Parts<'_>],
    known: &mut KnownHeads,
) -> Result<Vec<BatchOutcome>, Arc<sqlx::Error>> {
    let outcomes = try_commit(pool, connection, requests, known, Mode::Locked).await?;
    Ok(outcomes.unwrap_or_else(|| requests.iter().map(|_| None).collect()))
}

/// Commits one batch; on success `known` learns its heads, otherwise forgets them all.
/// `None`: left unwritten (see [`Reads::Optimistic`]).
async fn try_commit(
    pool: &PgPool,
    connection: &mut Held,
    requests: &[Parts<'_>],
    known: &mut KnownHeads,
    mode: Mode,
) -> Result<Option<Vec<BatchOutcome>>, Arc<sqlx::Error>> {
    let committed = async {
        let conn = match connection {
            Some(conn) => conn,
            None => connection.insert(prepare(pool.acquire().await?).await?),
        };
        match mode {
            Mode::Optimistic => write_batch(conn, requests, known, Reads::Optimistic).await,
            Mode::Locked => {
                let mut tx = conn.begin_with(BEGIN_APPEND).await?;
                let written =
                    write_batch(&mut tx, requests, &KnownHeads::default(), Reads::UnderLock)
                        .await?;
                tx.commit().await?;
                Ok(written)
            }
        }
    }
    .await;
    match committed {
        Ok(None) => {
            // A refusal might rest on what this committer remembered.
            known.forget();
            Ok(None)
        }
        Ok(Some(mut written)) => {
            let outcomes = std::mem::take(&mut written.outcomes);
            known.learn(written);
            Ok(Some(outcomes))
        }
        Err(error) => {
            known.forget();
            // The connection may be the broken part: take a fresh one next time.
            give_up(connection);
            Err(Arc::new(error))
        }
    }
}

/// Closes the held connection rather than returning it to the pool: its settings are
/// the committer's own.
fn give_up(connection: &mut Held) {
    if let Some(held) = connection.take() {
        drop(held.detach());
    }
}

/// The committer's statements are planned once per connection (planning the batch
/// write took as long as running it) and their plans cached from the first batches,
/// when `events` and `unique_keys` may be nearly empty. A sequential scan is then the
/// cheapest plan, and it would stay the plan as the tables grow. Every lookup the
/// committer makes has an index, so it forbids sequential scans on its connection,
/// which it keeps (and closes when it gives it up).
async fn prepare(
    mut conn: PoolConnection<Postgres>,
) -> Result<PoolConnection<Postgres>, sqlx::Error> {
    sqlx::raw_sql("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await?;
    Ok(conn)
}
