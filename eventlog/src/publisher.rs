//! The publisher: one leader (a Postgres session advisory lock) tails the log in commit
//! order and puts every event on JetStream, acks pipelined, then moves its checkpoint.
//! A crash anywhere re-publishes at most the unacknowledged tail, which `Nats-Msg-Id`
//! deduplication absorbs; before publishing, the leader resumes from what the stream
//! really holds, because NATS may have lost acknowledged messages in a crash.

use std::{
    future::{Future, IntoFuture},
    pin::Pin,
    time::Duration,
};

use async_nats::jetstream::{self, context::PublishError, publish::PublishAck, stream::Stream};
use bytes::Bytes;
use futures::future::try_join_all;
use schemas::RecordedEvent;
use sqlx::{Connection, PgConnection, PgPool, postgres::PgListener};
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    APPENDED_CHANNEL,
    jetstream::{Connections, StreamNames, ensure_stream, headers_for, position_of},
    read::read_after,
};

#[derive(Debug, Clone)]
pub struct PublisherConfig {
    pub names: StreamNames,
    /// Events read and published per round, their acks awaited together.
    pub batch_size: i64,
    /// How often a follower tries to become the leader.
    pub leader_retry: Duration,
    /// The longest the leader sleeps without a notification before looking at the log.
    pub idle_poll: Duration,
}

impl PublisherConfig {
    pub fn new(names: StreamNames) -> Self {
        Self {
            names,
            batch_size: 2000,
            leader_retry: Duration::from_secs(1),
            idle_poll: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, Error)]
enum LeadError {
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("jetstream: {0}")]
    JetStream(String),
    #[error("the log reader stopped: {0}")]
    Reader(#[from] tokio::task::JoinError),
    #[error("the leader lock connection was lost")]
    LostLeadership,
    #[error("an event cannot be encoded: {0}")]
    Encode(#[from] schemas::EncodeError),
}

fn jetstream_error(error: impl std::fmt::Display) -> LeadError {
    LeadError::JetStream(error.to_string())
}

type Acks = Pin<Box<dyn Future<Output = Result<Vec<PublishAck>, PublishError>> + Send>>;

/// A batch sent to JetStream whose acks are still to come.
struct InFlight {
    acks: Acks,
    last: i64,
}

pub struct Publisher {
    pool: PgPool,
    client: async_nats::Client,
    connections: Connections,
    config: PublisherConfig,
}

impl Publisher {
    pub fn new(
        pool: PgPool,
        client: async_nats::Client,
        connections: Connections,
        config: PublisherConfig,
    ) -> Self {
        Self {
            pool,
            client,
            connections,
            config,
        }
    }

    /// Runs until `shutdown`: waits for leadership, leads, and on any fault lets go and
    /// starts over, so a lost Postgres or NATS connection only pauses publishing.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let Some(mut lease) = self.become_leader(&shutdown).await else {
                return;
            };
            info!(stream = %self.config.names.stream, "publisher is the leader");
            let led = self.lead(&mut lease, &shutdown).await;
            // The lease is a session lock: closing its connection hands leadership over.
            let _ = lease.close().await;
            match led {
                Ok(()) => return,
                Err(error) => {
                    warn!(%error, "publisher stepping down; it will try again");
                    sleep_unless(&shutdown, self.config.leader_retry).await;
                }
            }
        }
    }

    /// Waits for the leader lease: a session advisory lock on a connection of its own,
    /// outside the pool, so that however this task ends the lock ends with it.
    async fn become_leader(&self, shutdown: &CancellationToken) -> Option<PgConnection> {
        loop {
            let options = self.pool.connect_options();
            if let Ok(mut conn) = PgConnection::connect_with(&options).await {
                let acquired: Result<bool, _> =
                    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                        .bind(self.leader_key())
                        .fetch_one(&mut conn)
                        .await;
                if let Ok(true) = acquired {
                    return Some(conn);
                }
            }
            if !sleep_unless(shutdown, self.config.leader_retry).await {
                return None;
            }
        }
    }

    fn leader_key(&self) -> String {
        format!("dropship-publisher:{}", self.config.names.stream)
    }

    async fn lead(
        &self,
        lease: &mut PgConnection,
        shutdown: &CancellationToken,
    ) -> Result<(), LeadError> {
        // Two batches' acks are outstanding at once (one sent, one awaited): the ack
        // window must hold both, or sending would wait for acks nobody awaits yet.
        let ack_window = usize::try_from(self.config.batch_size).unwrap_or(1) * 2 + 1;
        let js = jetstream::context::ContextBuilder::new()
            .max_ack_inflight(ack_window)
            .build(self.client.clone());
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(APPENDED_CHANNEL).await?;
        let mut seen_connections = self.connections.count();
        let mut position = self.resume_position(&js).await?;
        // Three batches move at once: one is read from the log while the one before it
        // is sent and the acks of the one before that are awaited. The checkpoint only
        // ever moves past acknowledged events.
        let mut next = self.read_ahead(position);
        let mut in_flight: Option<InFlight> = None;
        loop {
            if shutdown.is_cancelled() {
                return self.settle(in_flight).await;
            }
            if self.connections.count() != seen_connections {
                self.settle(in_flight.take()).await?;
                seen_connections = self.connections.count();
                position = self.resume_position(&js).await?;
                next = self.read_ahead(position);
            }
            lease.ping().await.map_err(|_| LeadError::LostLeadership)?;
            let events = next.await??;
            let Some(last) = events.last().map(|e| e.position) else {
                self.settle(in_flight.take()).await?;
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::timeout(self.config.idle_poll, listener.recv()) => {}
                }
                next = self.read_ahead(position);
                continue;
            };
            next = self.read_ahead(last);
            let mut acks = Vec::with_capacity(events.len());
            for event in &events {
                let ack = js
                    .publish_with_headers(
                        self.config.names.subject_for(event),
                        headers_for(event),
                        Bytes::from(event.to_wire()?),
                    )
                    .await
                    .map_err(jetstream_error)?;
                acks.push(ack.into_future());
            }
            let sent = InFlight {
                acks: Box::pin(try_join_all(acks)),
                last,
            };
            self.settle(in_flight.replace(sent)).await?;
            position = last;
        }
    }

    fn read_ahead(&self, after: i64) -> JoinHandle<Result<Vec<RecordedEvent>, sqlx::Error>> {
        let pool = self.pool.clone();
        let batch_size = self.config.batch_size;
        tokio::spawn(async move { read_after(&pool, after, batch_size).await })
    }

    /// Awaits a sent batch's acks, then records it as published.
    async fn settle(&self, in_flight: Option<InFlight>) -> Result<(), LeadError> {
        let Some(batch) = in_flight else {
            return Ok(());
        };
        batch.acks.await.map_err(jetstream_error)?;
        save_checkpoint(&self.pool, &self.config.names.stream, batch.last).await?;
        Ok(())
    }

    /// Where publishing resumes: after the last event the stream really holds. Behind
    /// the checkpoint means NATS lost acknowledged messages; ahead means a publisher died
    /// between the acks and its checkpoint. Either way the stream is the truth of what
    /// was published, and the log of what must be.
    async fn resume_position(&self, js: &jetstream::Context) -> Result<i64, LeadError> {
        let stream = ensure_stream(js, &self.config.names)
            .await
            .map_err(jetstream_error)?;
        let checkpoint = load_checkpoint(&self.pool, &self.config.names.stream).await?;
        let published = last_published_position(&stream)
            .await?
            .unwrap_or(checkpoint);
        if published < checkpoint {
            warn!(
                checkpoint,
                published, "the stream ends before the publisher checkpoint; republishing"
            );
        }
        Ok(published)
    }
}

async fn last_published_position(stream: &Stream) -> Result<Option<i64>, LeadError> {
    let info = stream.get_info().await.map_err(jetstream_error)?;
    if info.state.messages == 0 {
        return Ok(Some(0));
    }
    let last = stream
        .get_raw_message(info.state.last_sequence)
        .await
        .map_err(jetstream_error)?;
    Ok(position_of(&last.headers))
}

pub async fn load_checkpoint(pool: &PgPool, stream_name: &str) -> Result<i64, sqlx::Error> {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM publisher_checkpoints WHERE stream_name = $1")
            .bind(stream_name)
            .fetch_optional(pool)
            .await?;
    Ok(position.unwrap_or(0))
}

async fn save_checkpoint(
    pool: &PgPool,
    stream_name: &str,
    position: i64,
) -> Result<(), sqlx::Error> {
    // Without waiting for the WAL flush: the publisher resumes from what the stream
    // holds, not from this checkpoint, so a checkpoint lost in a crash costs nothing.
    sqlx::query(
        "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)) \
         INSERT INTO publisher_checkpoints (stream_name, position) SELECT $1, $2 FROM relaxed \
         ON CONFLICT (stream_name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
    )
    .bind(stream_name)
    .bind(position)
    .execute(pool)
    .await?;
    Ok(())
}

/// Sleeps for `duration`; false when shutdown came first.
async fn sleep_unless(shutdown: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(duration) => true,
    }
}
