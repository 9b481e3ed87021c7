//! One reader of the log per query process, whose batches every live subscriber of the
//! process filters for its own store: a thousand idle subscribers cost a thousand
//! channel receivers, not a thousand readers. It follows Postgres, the source of truth,
//! woken by the append's `NOTIFY` and polling in case one is lost, and holds its
//! listening connection only while someone is subscribed.

use std::{sync::Arc, time::Duration};

use eventlog::{APPENDED_CHANNEL, head_position, read_after};
use schemas::RecordedEvent;
use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::{Notify, broadcast};
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
    subscribed: Arc<Notify>,
    shutdown: CancellationToken,
}

impl LogTail {
    /// Follows the log from its head until `shutdown`.
    pub fn start(pool: PgPool, shutdown: CancellationToken) -> Self {
        let (batches, _) = broadcast::channel(BUFFERED_BATCHES);
        let subscribed = Arc::new(Notify::new());
        tokio::spawn(follow(
            pool,
            batches.clone(),
            subscribed.clone(),
            shutdown.clone(),
        ));
        Self {
            batches,
            subscribed,
            shutdown,
        }
    }

    /// The batches the tail reads from now on, in log order and gapless among themselves;
    /// the first may start after the subscriber's own read of the log ends (see
    /// [`follow`]).
    pub fn subscribe(&self) -> broadcast::Receiver<Batch> {
        let receiver = self.batches.subscribe();
        self.subscribed.notify_one();
        receiver
    }

    /// Cancelled when the process shuts down: long-lived streams end with it.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Idle (nobody subscribed), the tail holds no connection and reads nothing; a
/// subscriber wakes it, and it follows from the head. Where it starts does not decide
/// completeness: a subscriber whose first batch starts beyond what it read from the log
/// reads the log again.
async fn follow(
    pool: PgPool,
    batches: broadcast::Sender<Batch>,
    subscribed: Arc<Notify>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        if batches.receiver_count() == 0 {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = subscribed.notified() => {}
            }
            continue;
        }
        if let Err(error) = follow_while_subscribed(&pool, &batches, &shutdown).await {
            warn!(%error, "the event tail paused; resuming shortly");
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }
}

async fn follow_while_subscribed(
    pool: &PgPool,
    batches: &broadcast::Sender<Batch>,
    shutdown: &CancellationToken,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(APPENDED_CHANNEL).await?;
    let mut position = head_position(pool).await?;
    while batches.receiver_count() > 0 {
        loop {
            let events = read_after(pool, position, BATCH).await?;
            let Some(last) = events.last().map(|event| event.position) else {
                break;
            };
            position = last;
            // Every receiver may have gone meanwhile: no one to tell, not a failure.
            let _ = batches.send(events.into());
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
    Ok(())
}
