//! The platform's own periodic jobs: what is kept only for a while is removed, in
//! batches of bounded size (one short transaction each), stopping between batches when
//! asked to.

use std::{future::Future, io, pin::Pin, sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::scheduler::{Job, RunResult, Schedule};

/// Rows one statement removes at most.
const BATCH: i64 = 1000;

/// Removes the media of one store (all of it); removing what is not there succeeds.
pub type RemoveStoreMedia =
    Arc<dyn Fn(Uuid) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send>> + Send + Sync>;

#[derive(Clone)]
pub struct Retention {
    /// `IDEMPOTENCY_TTL_HOURS`: how long a write's answer is kept for replays.
    pub idempotency_ttl: Duration,
    /// `BRIDGE_RETENTION_DAYS`: how long delivered webhooks and their attempts are kept.
    pub bridge_retention: Duration,
    /// How long a login lasts without a refresh (the refresh token's lifetime).
    pub session_ttl: Duration,
}

/// Every housekeeping job with its schedule.
pub fn housekeeping_jobs(pool: PgPool, retention: Retention, media: RemoveStoreMedia) -> Vec<Job> {
    let every = |minutes: u64| Schedule::Every(Duration::from_secs(minutes * 60));
    let idempotency = {
        let (pool, ttl) = (pool.clone(), retention.idempotency_ttl);
        Job::new("expire_idempotency_keys", every(10), move |stop| {
            expire_idempotency_keys(pool.clone(), ttl, stop)
        })
    };
    let bridge = {
        let (pool, keep) = (pool.clone(), retention.bridge_retention);
        // Hourly at a quarter past: off the hour, when other operators' cron jobs pile up.
        let hourly = Schedule::cron("0 15 * * * *").unwrap_or(every(60));
        Job::new("remove_delivered_webhooks", hourly, move |stop| {
            remove_delivered_webhooks(pool.clone(), keep, stop)
        })
    };
    let sessions = {
        let (pool, ttl) = (pool.clone(), retention.session_ttl);
        Job::new("remove_expired_sessions", every(60), move |stop| {
            remove_expired_sessions(pool.clone(), ttl, stop)
        })
    };
    let media_job = Job::new("remove_deleted_store_media", every(1), move |stop| {
        remove_deleted_store_media(pool.clone(), media.clone(), stop)
    });
    vec![idempotency, bridge, sessions, media_job]
}

/// Runs `statement` (binding an age in seconds and `BATCH`; it removes at most `BATCH`
/// rows and returns one row whose first column counts them) until it removes fewer, or
/// until `stop`. Returns the total of every column.
async fn in_batches(
    pool: &PgPool,
    stop: &CancellationToken,
    statement: &'static str,
    age: Duration,
) -> Result<(i64, i64), String> {
    let mut total = (0, 0);
    while !stop.is_cancelled() {
        let (removed, also): (i64, i64) = sqlx::query_as(statement)
            .bind(age.as_secs_f64())
            .bind(BATCH)
            .fetch_one(pool)
            .await
            .map_err(|error| error.to_string())?;
        total = (total.0 + removed, total.1 + also);
        if removed < BATCH {
            break;
        }
    }
    Ok(total)
}

async fn expire_idempotency_keys(
    pool: PgPool,
    ttl: Duration,
    stop: CancellationToken,
) -> RunResult {
    let (removed, _) = in_batches(
        &pool,
        &stop,
        "WITH gone AS (DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY( \
            SELECT ctid FROM idempotency_keys \
            WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)) RETURNING 1) \
         SELECT count(*), 0::bigint FROM gone",
        ttl,
    )
    .await?;
    Ok(format!("{removed} idempotency keys expired"))
}

/// Delivered messages, their attempts, and the bodies no remaining message needs.
/// Exhausted and cancelled deliveries stay: they are what a merchant redelivers.
async fn remove_delivered_webhooks(
    pool: PgPool,
    keep: Duration,
    stop: CancellationToken,
) -> RunResult {
    let (messages, attempts) = in_batches(
        &pool,
        &stop,
        "WITH gone AS ( \
            DELETE FROM bridge_messages WHERE id = ANY(ARRAY( \
                SELECT id FROM bridge_messages WHERE state = 'succeeded' \
                AND finished_at < now() - make_interval(secs => $1) \
                ORDER BY finished_at LIMIT $2)) \
            RETURNING id, event_id \
         ), attempts AS ( \
            DELETE FROM bridge_deliveries d USING gone WHERE d.message_id = gone.id RETURNING 1 \
         ), bodies AS ( \
            DELETE FROM bridge_bodies b WHERE b.event_id IN (SELECT event_id FROM gone) \
            AND NOT EXISTS (SELECT 1 FROM bridge_messages m WHERE m.event_id = b.event_id \
                            AND m.trigger = 'scheduled' AND m.id NOT IN (SELECT id FROM gone)) \
            AND NOT EXISTS (SELECT 1 FROM bridge_messages m WHERE m.event_id = b.event_id \
                            AND m.trigger = 'manual' AND m.id NOT IN (SELECT id FROM gone)) \
         ) \
         SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM attempts)",
        keep,
    )
    .await?;
    Ok(format!(
        "{messages} delivered webhooks and {attempts} attempts removed"
    ))
}

/// A login whose refresh token has run out can never be used again.
async fn remove_expired_sessions(
    pool: PgPool,
    ttl: Duration,
    stop: CancellationToken,
) -> RunResult {
    macro_rules! expired_in {
        ($table:literal) => {
            concat!(
                "WITH gone AS (DELETE FROM ",
                $table,
                " WHERE id = ANY(ARRAY( ",
                "SELECT id FROM ",
                $table,
                " ",
                "WHERE rotated_at < now() - make_interval(secs => $1) LIMIT $2)) RETURNING 1) ",
                "SELECT count(*), 0::bigint FROM gone"
            )
        };
    }
    let (merchants, _) = in_batches(&pool, &stop, expired_in!("auth_sessions"), ttl).await?;
    let (customers, _) = in_batches(&pool, &stop, expired_in!("customer_sessions"), ttl).await?;
    Ok(format!(
        "{merchants} expired merchant sessions and {customers} customer sessions removed"
    ))
}

/// Claims deleted stores one at a time (another process may be doing the same), removes
/// their media, and forgets them once it is gone.
async fn remove_deleted_store_media(
    pool: PgPool,
    media: RemoveStoreMedia,
    stop: CancellationToken,
) -> RunResult {
    let mut removed = 0;
    while !stop.is_cancelled() {
        let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
        let store: Option<Uuid> = sqlx::query_scalar(
            "DELETE FROM deleted_store_media WHERE store_id = ( \
                SELECT store_id FROM deleted_store_media ORDER BY deleted_at \
                LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING store_id",
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        let Some(store) = store else {
            break;
        };
        media(store)
            .await
            .map_err(|error| format!("removing the media of store {store}: {error}"))?;
        tx.commit().await.map_err(|e| e.to_string())?;
        removed += 1;
    }
    Ok(format!("media of {removed} deleted stores removed"))
}
