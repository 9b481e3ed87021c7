//! One reader of the log per query process, whose batches every live subscriber of the
//! process filters for its own store: a thousand idle subscribers cost a thousand
//! channel receivers, not a thousand readers. It follows Postgres, the source of truth,
//! woken by the append's `NOTIFY` and polling in case one is lost.

use std::{sync::Arc, time::Duration};

use eventlog::{APPENDED_CHANNEL, head_position, read_after};
use schemas::RecordedEvent;
use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Batches a subscriber may fall behind before it is told to resume from where it was.
const BUFFERED_BATCHES: usize = 256;
const BATCH: i64 = 500;
/// How long the tail waits without a notification before looking anyway.
const POLL_EVERY: Duration = Duration::from_secs(1);

pub type Batch = Arc<[RecordedEvent]>;

#[derive(Clone)]
pub struct LogTail {
    batches: broadcast::Sender<Batch>,
    shutdown: CancellationToken,
}

impl LogTail {
    /// Follows the log from its head until `shutdown`.
    pub fn start(pool: PgPool, shutdown: CancellationToken) -> Self {
        let (batches, _) = broadcast::channel(BUFFERED_BATCHES);
        tokio::spawn(follow(pool, batches.clone(), shutdown.clone()));
        Self { batches, shutdown }
    }

    /// Every batch the tail reads from now on, in log order and gapless. Subscribe before
    /// reading the log up to its head, and nothing falls between the two.
    pub fn subscribe(&self) -> broadcast::Receiver<Batch> {
        self.batches.subscribe()
    }

    /// Cancelled when the process shuts down: long-lived streams end with it.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

async fn follow(pool: PgPool, batches: broadcast::Sender<Batch>, shutdown: CancellationToken) {
    let mut position = None;
    while !shutdown.is_cancelled() {
        if let Err(error) = follow_until_failure(&pool, &batches, &mut position, &shutdown).await {
            warn!(%error, "the event tail paused; resuming shortly");
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }
}

async fn follow_until_failure(
    pool: &PgPool,
    batches: &broadcast::Sender<Batch>,
    position: &mut Option<i64>,
    shutdown: &CancellationToken,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(APPENDED_CHANNEL).await?;
    let mut reached = match *position {
        Some(reached) => reached,
        None => head_position(pool).await?,
    };
    loop {
        while let Some(batch) = next_batch(pool, batches, reached).await? {
            reached = batch.last().map_or(reached, |event| event.position);
            *position = Some(reached);
            // No receiver is no one to tell, not a failure.
            let _ = batches.send(batch);
        }
        if batches.receiver_count() == 0 {
            reached = head_position(pool).await?;
            *position = Some(reached);
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            woken = tokio::time::timeout(POLL_EVERY, listener.recv()) => {
                if let Ok(woken) = woken {
                    woken?;
                }
                // One read answers every append notified meanwhile.
                while listener.next_buffered().is_some() {}
            }
        }
    }
}

/// The events after `reached` while anyone listens.
async fn next_batch(
    pool: &PgPool,
    batches: &broadcast::Sender<Batch>,
    reached: i64,
) -> Result<Option<Batch>, sqlx::Error> {
    if batches.receiver_count() == 0 {
        return Ok(None);
    }
    let events = read_after(pool, reached, BATCH).await?;
    Ok((!events.is_empty()).then(|| events.into()))
}
