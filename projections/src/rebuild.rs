//! Rebuild without downtime: replay the whole log into the shadow tables while the live
//! ones keep serving and updating, then, in one short transaction that holds the
//! checkpoint lock, catch the shadow up to the live checkpoint and swap the names.

use eventlog::read_after;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use thiserror::Error;

use crate::{
    checkpoint::{advance_checkpoint, ensure_checkpoint, lock_checkpoint},
    projection::{Projection, Target},
};

const REPLAY_BATCH: i64 = 5000;

#[derive(Debug, Error)]
pub enum RebuildError {
    #[error("a rebuild of {0} is already running")]
    AlreadyRunning(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub events_replayed: u64,
    pub position: i64,
}

/// Rebuilds one projection. The guard against a second rebuild is a session lock on a
/// connection of its own, so that however the rebuild ends, the lock ends with it.
pub async fn rebuild<P: Projection>(
    pool: &PgPool,
    projection: &P,
) -> Result<RebuildReport, RebuildError> {
    let mut guard = PgConnection::connect_with(&pool.connect_options()).await?;
    let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(format!("dropship-rebuild:{}", P::NAME))
        .fetch_one(&mut guard)
        .await?;
    if !acquired {
        return Err(RebuildError::AlreadyRunning(P::NAME));
    }
    let result = replay_and_swap(pool, projection).await;
    let _ = guard.close().await;
    result
}

async fn replay_and_swap<P: Projection>(
    pool: &PgPool,
    projection: &P,
) -> Result<RebuildReport, RebuildError> {
    for table in P::TABLES {
        sqlx::query(AssertSqlSafe(format!("TRUNCATE {table}_shadow")))
            .execute(pool)
            .await?;
    }
    let mut position = 0;
    let mut replayed = 0;
    loop {
        let events = read_after(pool, position, REPLAY_BATCH).await?;
        let Some(last) = events.last().map(|event| event.position) else {
            break;
        };
        let mut tx = pool.begin().await?;
        projection.apply(&mut tx, Target::Shadow, &events).await?;
        tx.commit().await?;
        replayed += events.len() as u64;
        position = last;
    }

    ensure_checkpoint(pool, P::NAME).await?;
    let mut tx = pool.begin().await?;
    let live = lock_checkpoint(&mut tx, P::NAME).await?;
    while position < live {
        let events = read_after(&mut *tx, position, (live - position).min(REPLAY_BATCH)).await?;
        let Some(last) = events.last().map(|event| event.position) else {
            break;
        };
        projection.apply(&mut tx, Target::Shadow, &events).await?;
        replayed += events.len() as u64;
        position = last;
    }
    for table in P::TABLES {
        let swap = format!(
            "ALTER TABLE {table} RENAME TO {table}_swapping; \
             ALTER TABLE {table}_shadow RENAME TO {table}; \
             ALTER TABLE {table}_swapping RENAME TO {table}_shadow"
        );
        sqlx::raw_sql(AssertSqlSafe(swap)).execute(&mut *tx).await?;
    }
    // The shadow may have replayed past the live checkpoint; the projector then skips
    // what the new tables already hold.
    advance_checkpoint(&mut tx, P::NAME, position.max(live)).await?;
    tx.commit().await?;
    for table in P::TABLES {
        sqlx::query(AssertSqlSafe(format!("TRUNCATE {table}_shadow")))
            .execute(pool)
            .await?;
    }
    Ok(RebuildReport {
        events_replayed: replayed,
        position: position.max(live),
    })
}
