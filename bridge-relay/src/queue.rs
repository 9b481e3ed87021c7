//! Deliveries asked for through the API: one event sent now to chosen endpoints, and
//! the redelivery of everything that failed for a service in a time window. Each is a
//! `manual` delivery of one attempt, logged like any other.

use chrono::{DateTime, Utc};
use pii::Vault;
use schemas::RecordedEvent;
use sqlx::{PgPool, Row};
use uuid::Uuid;

pub use crate::routing::{Endpoint, load_endpoints};

use crate::{
    body::{body_of, resource_of},
    ingest::READY_CHANNEL,
    routing::receives,
};

/// The most deliveries one redelivery request queues.
pub const MAX_REDELIVERIES: i64 = 10_000;

#[derive(Debug, Clone)]
pub struct QueuedDelivery {
    pub delivery_id: i64,
    pub endpoint_id: Uuid,
    pub target: String,
}

/// Which of `endpoints` the relay would route `event` to.
pub fn routed<'a>(endpoints: &'a [Endpoint], event: &RecordedEvent) -> Vec<&'a Endpoint> {
    endpoints.iter().filter(|e| receives(e, event)).collect()
}

/// Queues one attempt of `event` to each endpoint, due now.
pub async fn dispatch(
    pool: &PgPool,
    event: &RecordedEvent,
    store_id: Uuid,
    endpoints: &[&Endpoint],
    vault: &Vault,
) -> Result<Vec<QueuedDelivery>, Box<dyn std::error::Error + Send + Sync>> {
    let body = body_of(event, vault).await?;
    let (resource_type, resource_id) = resource_of(event);
    let ids: Vec<Uuid> = endpoints.iter().map(|e| e.id).collect();
    let targets: Vec<String> = endpoints.iter().map(|e| e.target.clone()).collect();
    let rows = sqlx::query(
        "WITH body AS ( \
           INSERT INTO bridge_bodies (event_id, body) VALUES ($1, $7) ON CONFLICT DO NOTHING), \
         queued AS ( \
           INSERT INTO bridge_messages (event_id, event_type, store_id, resource_type, \
             resource_id, event_at, endpoint_id, target, trigger, max_attempts, \
             next_attempt_at) \
           SELECT $1, $2, $3, $4, $5, $6, q.endpoint_id, q.target, 'manual', 1, now() \
           FROM unnest($8::uuid[], $9::text[]) AS q(endpoint_id, target) \
           RETURNING id, endpoint_id, target), \
         announced AS (SELECT pg_notify($10, '')) \
         SELECT queued.* FROM queued, announced",
    )
    .bind(event.event_id)
    .bind(&event.event_type)
    .bind(store_id)
    .bind(resource_type)
    .bind(resource_id)
    .bind(event.recorded_at)
    .bind(body)
    .bind(&ids)
    .bind(&targets)
    .bind(READY_CHANNEL)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(QueuedDelivery {
                delivery_id: row.try_get("id")?,
                endpoint_id: row.try_get("endpoint_id")?,
                target: row.try_get("target")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Queues one more attempt of every delivery to `target` in `stores` that failed in
/// `[from, to)` and has not been delivered since (nor is still being retried), to
/// endpoints that are enabled. Returns how many were queued.
pub async fn redeliver_failed(
    pool: &PgPool,
    stores: &[Uuid],
    target: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let queued = sqlx::query(
        "WITH failed AS ( \
           SELECT DISTINCT ON (m.event_id, m.endpoint_id) m.* FROM bridge_messages m \
           JOIN bridge_endpoints e ON e.id = m.endpoint_id AND e.enabled \
           WHERE m.target = $1 AND m.store_id = ANY($2) \
             AND m.state IN ('exhausted', 'cancelled') \
             AND EXISTS (SELECT 1 FROM bridge_deliveries d WHERE d.message_id = m.id \
                         AND NOT d.success AND d.attempted_at >= $3 AND d.attempted_at < $4) \
             AND NOT EXISTS (SELECT 1 FROM bridge_messages other \
                             WHERE other.event_id = m.event_id \
                               AND other.endpoint_id = m.endpoint_id \
                               AND other.trigger = 'scheduled' \
                               AND other.state IN ('succeeded', 'pending', 'delivering')) \
             AND NOT EXISTS (SELECT 1 FROM bridge_messages other \
                             WHERE other.event_id = m.event_id \
                               AND other.endpoint_id = m.endpoint_id \
                               AND other.trigger = 'manual' \
                               AND other.state IN ('succeeded', 'pending', 'delivering')) \
           ORDER BY m.event_id, m.endpoint_id, m.id DESC \
           LIMIT $5), \
         queued AS ( \
           INSERT INTO bridge_messages (event_id, event_type, store_id, resource_type, \
             resource_id, event_at, endpoint_id, target, trigger, max_attempts, \
             next_attempt_at) \
           SELECT event_id, event_type, store_id, resource_type, resource_id, event_at, \
             endpoint_id, target, 'manual', 1, now() FROM failed \
           RETURNING 1) \
         SELECT count(*) AS queued, pg_notify($6, '') FROM queued",
    )
    .bind(target)
    .bind(stores)
    .bind(from)
    .bind(to)
    .bind(MAX_REDELIVERIES)
    .bind(READY_CHANNEL)
    .fetch_one(pool)
    .await?;
    let count: i64 = queued.try_get("queued")?;
    Ok(u64::try_from(count).unwrap_or_default())
}
