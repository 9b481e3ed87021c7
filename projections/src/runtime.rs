//! The projector: a durable pull consumer per projection, after catching up from the
//! log on start. Messages are taken in the
//! chunks that are ready (so batches grow with the backlog), applied with the checkpoint
//! in one transaction, then acknowledged; redelivered or duplicate events fall at or
//! below the checkpoint and are skipped.

use std::time::Duration;

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, pull},
};
use eventlog::{
    jetstream::{StreamNames, ensure_stream},
    read_after,
};
use futures::StreamExt;
use schemas::RecordedEvent;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    checkpoint::{advance_checkpoint, ensure_checkpoint, lock_checkpoint},
    projection::{Projection, Target},
};

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    pub names: StreamNames,
    /// The largest chunk of messages applied in one transaction.
    pub batch_size: usize,
    /// The pause before reconnecting after Postgres or NATS failed.
    pub retry: Duration,
}

impl ProjectorConfig {
    pub fn new(names: StreamNames) -> Self {
        Self {
            names,
            batch_size: 1000,
            retry: Duration::from_millis(500),
        }
    }
}

/// Runs the projection until `shutdown`; a batch in progress is committed and
/// acknowledged before it returns. Faults pause it and it resumes where it was.
pub async fn run_projector<P: Projection>(
    pool: PgPool,
    client: async_nats::Client,
    config: ProjectorConfig,
    projection: P,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        match consume(&pool, &client, &config, &projection, &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                warn!(projection = P::NAME, %error, "projector paused; resuming shortly");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(config.retry) => {}
                }
            }
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn consume<P: Projection>(
    pool: &PgPool,
    client: &async_nats::Client,
    config: &ProjectorConfig,
    projection: &P,
    shutdown: &CancellationToken,
) -> Result<(), BoxError> {
    ensure_checkpoint(pool, P::NAME).await?;
    catch_up(pool, projection, config.batch_size).await?;
    let js = jetstream::new(client.clone());
    let stream = ensure_stream(&js, &config.names).await?;
    let name = config.names.consumer_name(P::NAME);
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
    info!(projection = P::NAME, consumer = %name, "projector consuming");
    loop {
        let chunk = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            chunk = chunks.next() => chunk.ok_or("the consumer's message stream ended")?,
        };
        let mut messages = Vec::with_capacity(chunk.len());
        for message in chunk {
            messages.push(message?);
        }
        let events: Vec<RecordedEvent> = messages
            .iter()
            .filter_map(|message| match RecordedEvent::from_wire(&message.payload) {
                Ok(event) => Some(event),
                Err(error) => {
                    // The log still has it: the gap it leaves is filled from Postgres.
                    warn!(projection = P::NAME, subject = %message.subject, %error, "undecodable message");
                    None
                }
            })
            .collect();
        if let Err(error) = apply_batch(pool, projection, events).await {
            for message in &messages {
                let _ = message.ack_with(AckKind::Nak(Some(config.retry))).await;
            }
            return Err(error.into());
        }
        if let Some(last) = messages.last() {
            last.ack().await?;
        }
    }
}

/// Applies what the log holds above the checkpoint before consuming. After a crash the
/// messages a dead consumer held unacknowledged come back only when their ack wait
/// runs out; the log has them now.
async fn catch_up<P: Projection>(
    pool: &PgPool,
    projection: &P,
    batch_size: usize,
) -> Result<(), sqlx::Error> {
    let limit = i64::try_from(batch_size).unwrap_or(i64::MAX);
    loop {
        let mut tx = pool.begin().await?;
        let checkpoint = lock_checkpoint(&mut tx, P::NAME).await?;
        let events = read_after(&mut *tx, checkpoint, limit).await?;
        let Some(last) = events.last().map(|event| event.position) else {
            return Ok(());
        };
        projection.apply(&mut tx, Target::Live, &events).await?;
        advance_checkpoint(&mut tx, P::NAME, last).await?;
        tx.commit().await?;
    }
}

/// Applies the events above the checkpoint and moves it, in one transaction. Positions
/// are gapless, so a hole means JetStream lost or mangled messages: the whole range is
/// then read from the log, which is the source of truth.
async fn apply_batch<P: Projection>(
    pool: &PgPool,
    projection: &P,
    mut events: Vec<RecordedEvent>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let checkpoint = lock_checkpoint(&mut tx, P::NAME).await?;
    events.retain(|event| event.position > checkpoint);
    events.sort_by_key(|event| event.position);
    events.dedup_by_key(|event| event.position);
    let Some(last) = events.last().map(|event| event.position) else {
        return Ok(());
    };
    if events.len() as i64 != last - checkpoint {
        warn!(
            projection = P::NAME,
            checkpoint, last, "positions missing from the stream; reading them from the log"
        );
        events = read_after(&mut *tx, checkpoint, last - checkpoint).await?;
    }
    projection.apply(&mut tx, Target::Live, &events).await?;
    advance_checkpoint(&mut tx, P::NAME, last).await?;
    tx.commit().await
}
