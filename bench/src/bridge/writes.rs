//! What a workload cost Postgres: rows written to the relay's tables and WAL bytes, per
//! delivery; and the queue's backlog while events keep coming.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// The relay's own tables: the queue, the attempt log, the bodies, the notices.
const RELAY_TABLES: &[&str] = &[
    "bridge_messages",
    "bridge_deliveries",
    "bridge_bodies",
    "bridge_notices",
];

/// A backend that went idle reports its table counters within this long
/// (`PGSTAT_IDLE_INTERVAL` is 10 s), so counters are read only after it.
const STATISTICS_DELAY: Duration = Duration::from_secs(11);

/// Counters at one moment: rows inserted, updated and deleted per relay table, and the
/// WAL position.
pub struct Counters {
    rows: Vec<(String, i64, i64, i64)>,
    wal: i64,
}

impl Counters {
    /// Read once every backend has reported what it wrote.
    pub async fn read(pool: &PgPool) -> anyhow::Result<Self> {
        tokio::time::sleep(STATISTICS_DELAY).await;
        let rows = sqlx::query_as(
            "SELECT relname::text, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables \
             WHERE relname = ANY($1) ORDER BY relname",
        )
        .bind(RELAY_TABLES)
        .fetch_all(pool)
        .await?;
        let wal = sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8")
            .fetch_one(pool)
            .await?;
        Ok(Self { rows, wal })
    }

    /// Per delivery since `before`: the relay's rows (in all and per table, as
    /// inserted/updated/deleted) and the WAL of everything the platform did for them,
    /// the event's append and projections included.
    pub fn per_delivery_since(&self, before: &Self, deliveries: i64) -> Value {
        let deliveries = deliveries.max(1) as f64;
        let round = |value: i64| (value as f64 / deliveries * 100.0).round() / 100.0;
        let mut total = 0;
        let mut tables = serde_json::Map::new();
        for (table, inserted, updated, deleted) in &self.rows {
            let (was_inserted, was_updated, was_deleted) = before
                .rows
                .iter()
                .find(|(name, ..)| name == table)
                .map_or((0, 0, 0), |(_, i, u, d)| (*i, *u, *d));
            let (i, u, d) = (
                inserted - was_inserted,
                updated - was_updated,
                deleted - was_deleted,
            );
            total += i + u + d;
            tables.insert(
                table.clone(),
                json!({"inserted": round(i), "updated": round(u), "deleted": round(d)}),
            );
        }
        json!({
            "relay_rows_per_delivery": round(total),
            "relay_rows_per_delivery_by_table": tables,
            "wal_bytes_per_delivery": round(self.wal - before.wal),
        })
    }
}

/// Deliveries due and not yet claimed.
pub async fn backlog(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM bridge_messages WHERE state = 'pending' AND next_attempt_at <= now()",
    )
    .fetch_one(pool)
    .await?)
}

/// The largest backlog seen, sampled every second until `stop`.
pub async fn largest_backlog(pool: PgPool, stop: CancellationToken) -> i64 {
    let mut largest = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return largest,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if let Ok(now) = backlog(&pool).await {
            largest = largest.max(now);
        }
    }
}
