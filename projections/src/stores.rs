//! `stores`: every store with its current profile and status, for the merchant's
//! dashboard and the public storefront lookup. Each change is announced on
//! [`STORE_CHANGED_CHANNEL`] when its transaction commits, so caches of the public
//! store page drop exactly the entries the projection has just changed.

use std::collections::BTreeSet;

use schemas::{Event, RecordedEvent, store::StoreUpdated};
use sqlx::{AssertSqlSafe, PgConnection};
use tracing::warn;

use crate::projection::{Projection, Target};

/// `NOTIFY` channel carrying the slug of each store whose row changed.
pub const STORE_CHANGED_CHANNEL: &str = "dropship_store_changed";

pub struct Stores;

struct Tables {
    insert: String,
    update: String,
    set_status: String,
}

impl Tables {
    fn new(table: &str) -> Self {
        Self {
            // Replays are harmless: a row only moves forward in log position.
            insert: format!(
                "INSERT INTO {table} (id, owner_id, name, slug, niche, description, currency, status, \
                 version, last_position, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $10) \
                 ON CONFLICT (id) DO NOTHING RETURNING slug"
            ),
            update: format!(
                "WITH old AS (SELECT id, slug FROM {table} WHERE id = $1) \
                 UPDATE {table} t SET name = coalesce($2, t.name), slug = coalesce($3, t.slug), \
                 niche = CASE WHEN $4::text IS NULL THEN t.niche ELSE nullif($4, '') END, \
                 description = CASE WHEN $5::text IS NULL THEN t.description ELSE nullif($5, '') END, \
                 version = $6, last_position = $7, updated_at = $8 \
                 FROM old WHERE t.id = old.id AND t.last_position < $7 \
                 RETURNING old.slug AS old_slug, t.slug"
            ),
            set_status: format!(
                "UPDATE {table} SET status = $2, version = $3, last_position = $4, updated_at = $5 \
                 WHERE id = $1 AND last_position < $4 RETURNING slug"
            ),
        }
    }
}

impl Projection for Stores {
    const NAME: &'static str = "stores";
    const TABLES: &'static [&'static str] = &["stores"];

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        let tables = Tables::new(match target {
            Target::Live => "stores",
            Target::Shadow => "stores_shadow",
        });
        let mut changed_slugs = BTreeSet::new();
        for recorded in events {
            if !recorded.event_type.starts_with("store.") {
                continue;
            }
            let Some(store_id) = recorded.store_id else {
                continue;
            };
            let event = match recorded.decode() {
                Ok(event) => event,
                Err(error) => {
                    // The log only holds events that were encoded from these types, so
                    // this is a deployment running older code than the writer: skip,
                    // a rebuild after upgrading repairs it.
                    warn!(position = recorded.position, %error, "undecodable store event skipped");
                    continue;
                }
            };
            let slugs: Vec<String> = match &event {
                Event::StoreCreated(created) => sqlx::query_scalar(AssertSqlSafe(tables.insert.clone()))
                    .bind(store_id)
                    .bind(created.owner_id)
                    .bind(&created.name)
                    .bind(&created.slug)
                    .bind(&created.niche)
                    .bind(&created.description)
                    .bind(&created.currency)
                    .bind(recorded.version)
                    .bind(recorded.position)
                    .bind(recorded.recorded_at)
                    .fetch_all(&mut *conn)
                    .await?,
                Event::StoreUpdated(updated) => update(conn, &tables, recorded, updated).await?,
                Event::StorePaused(_) | Event::StoreActivated(_) | Event::StoreDeleted(_) => {
                    let status = match event {
                        Event::StorePaused(_) => "paused",
                        Event::StoreActivated(_) => "active",
                        _ => "deleted",
                    };
                    sqlx::query_scalar(AssertSqlSafe(tables.set_status.clone()))
                        .bind(store_id)
                        .bind(status)
                        .bind(recorded.version)
                        .bind(recorded.position)
                        .bind(recorded.recorded_at)
                        .fetch_all(&mut *conn)
                        .await?
                }
                _ => Vec::new(),
            };
            changed_slugs.extend(slugs);
        }
        if target == Target::Live && !changed_slugs.is_empty() {
            let slugs: Vec<String> = changed_slugs.into_iter().collect();
            sqlx::query("SELECT pg_notify($1, slug) FROM unnest($2::text[]) AS slug")
                .bind(STORE_CHANGED_CHANNEL)
                .bind(&slugs)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

async fn update(
    conn: &mut PgConnection,
    tables: &Tables,
    recorded: &RecordedEvent,
    updated: &StoreUpdated,
) -> Result<Vec<String>, sqlx::Error> {
    let row: Option<(String, String)> = sqlx::query_as(AssertSqlSafe(tables.update.clone()))
        .bind(recorded.store_id)
        .bind(&updated.name)
        .bind(&updated.slug)
        .bind(&updated.niche)
        .bind(&updated.description)
        .bind(recorded.version)
        .bind(recorded.position)
        .bind(recorded.recorded_at)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|(old, new)| vec![old, new]).unwrap_or_default())
}
