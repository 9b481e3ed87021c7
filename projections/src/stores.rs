//! `stores`: every store with its current profile and status, for the merchant's
//! dashboard and the public storefront lookup. Each change is announced on
//! [`STORE_CHANGED_CHANNEL`] when its transaction commits, so caches of the public
//! store page drop exactly the entries the projection has just changed.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use schemas::{
    Event, RecordedEvent,
    store::{StoreCreated, StoreUpdated},
};
use sqlx::PgConnection;
use tracing::warn;
use uuid::Uuid;

use crate::projection::{Projection, Target};

/// `NOTIFY` channel carrying the slug of each store whose row changed.
pub const STORE_CHANGED_CHANNEL: &str = "dropship_store_changed";

pub struct Stores;

/// The projection's statements against one copy of its table, built at compile time.
struct Tables {
    insert: &'static str,
    update: &'static str,
    set_status: &'static str,
    set_threshold: &'static str,
    set_shipping: &'static str,
    set_taxes: &'static str,
}

macro_rules! statements_for {
    ($table:literal) => {
        Tables {
            // Replays are harmless: a row exists once and only moves forward in position.
            insert: concat!(
                "INSERT INTO ", $table, " (id, owner_id, name, slug, niche, description, currency, status, ",
                "version, last_position, created_at, updated_at) ",
                "SELECT id, owner_id, name, slug, niche, description, currency, 'active', ",
                "version, last_position, recorded_at, recorded_at ",
                "FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], ",
                "$7::text[], $8::int[], $9::bigint[], $10::timestamptz[]) ",
                "AS new(id, owner_id, name, slug, niche, description, currency, version, last_position, recorded_at) ",
                "ON CONFLICT (id) DO NOTHING RETURNING slug"
            ),
            update: concat!(
                "WITH old AS (SELECT id, slug FROM ", $table, " WHERE id = $1) ",
                "UPDATE ", $table, " t SET name = coalesce($2, t.name), slug = coalesce($3, t.slug), ",
                "niche = CASE WHEN $4::text IS NULL THEN t.niche ELSE nullif($4, '') END, ",
                "description = CASE WHEN $5::text IS NULL THEN t.description ELSE nullif($5, '') END, ",
                "version = $6, last_position = $7, updated_at = $8 ",
                "FROM old WHERE t.id = old.id AND t.last_position < $7 ",
                "RETURNING old.slug AS old_slug, t.slug"
            ),
            set_status: concat!(
                "UPDATE ", $table, " SET status = $2, version = $3, last_position = $4, updated_at = $5 ",
                "WHERE id = $1 AND last_position < $4 RETURNING slug"
            ),
            set_threshold: concat!(
                "UPDATE ", $table, " SET low_stock_threshold = $2, version = $3, last_position = $4, ",
                "updated_at = $5 WHERE id = $1 AND last_position < $4"
            ),
            set_shipping: concat!(
                "UPDATE ", $table, " SET shipping = $2, version = $3, last_position = $4, ",
                "updated_at = $5 WHERE id = $1 AND last_position < $4"
            ),
            set_taxes: concat!(
                "UPDATE ", $table, " SET taxes = $2, version = $3, last_position = $4, ",
                "updated_at = $5 WHERE id = $1 AND last_position < $4"
            ),
        }
    };
}

const LIVE: Tables = statements_for!("stores");
const SHADOW: Tables = statements_for!("stores_shadow");

/// The stores created in one batch, as columns for a single `unnest` insert.
#[derive(Default)]
struct Creations {
    ids: Vec<Uuid>,
    owners: Vec<Uuid>,
    names: Vec<String>,
    slugs: Vec<String>,
    niches: Vec<Option<String>>,
    descriptions: Vec<Option<String>>,
    currencies: Vec<String>,
    versions: Vec<i32>,
    positions: Vec<i64>,
    times: Vec<DateTime<Utc>>,
}

impl Creations {
    fn add(&mut self, store_id: Uuid, recorded: &RecordedEvent, created: StoreCreated) {
        self.ids.push(store_id);
        self.owners.push(created.owner_id);
        self.names.push(created.name);
        self.slugs.push(created.slug);
        self.niches.push(created.niche);
        self.descriptions.push(created.description);
        self.currencies.push(created.currency);
        self.versions.push(recorded.version);
        self.positions.push(recorded.position);
        self.times.push(recorded.recorded_at);
    }

    async fn insert(
        &self,
        conn: &mut PgConnection,
        tables: &Tables,
    ) -> Result<Vec<String>, sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar(tables.insert)
            .bind(&self.ids)
            .bind(&self.owners)
            .bind(&self.names)
            .bind(&self.slugs)
            .bind(&self.niches)
            .bind(&self.descriptions)
            .bind(&self.currencies)
            .bind(&self.versions)
            .bind(&self.positions)
            .bind(&self.times)
            .fetch_all(conn)
            .await
    }
}

impl Projection for Stores {
    const NAME: &'static str = "stores";
    const TABLES: &'static [&'static str] = &["stores"];

    fn reads(&self, event: &RecordedEvent) -> bool {
        event.event_type.starts_with("store.")
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        let tables = match target {
            Target::Live => &LIVE,
            Target::Shadow => &SHADOW,
        };
        // A store's creation is the first event of its stream, so inserting every
        // creation of the batch before applying the batch's other events (in order)
        // keeps each store's own order.
        let mut creations = Creations::default();
        let mut changes = Vec::new();
        for recorded in events {
            if !self.reads(recorded) {
                continue;
            }
            let Some(store_id) = recorded.store_id else {
                continue;
            };
            match recorded.decode() {
                Ok(Event::StoreCreated(created)) => creations.add(store_id, recorded, created),
                Ok(event) => changes.push((store_id, recorded, event)),
                // The log only holds events encoded from these types, so this is a
                // deployment running older code than the writer: skip; a rebuild after
                // upgrading repairs it.
                Err(error) => {
                    warn!(position = recorded.position, %error, "undecodable store event skipped");
                }
            }
        }
        let mut changed_slugs: BTreeSet<String> = creations
            .insert(&mut *conn, tables)
            .await?
            .into_iter()
            .collect();
        for (store_id, recorded, event) in changes {
            let status = match &event {
                Event::StoreUpdated(updated) => {
                    changed_slugs.extend(update(&mut *conn, tables, recorded, updated).await?);
                    continue;
                }
                Event::StoreLowStockThresholdChanged(changed) => {
                    sqlx::query(tables.set_threshold)
                        .bind(store_id)
                        .bind(i32::try_from(changed.threshold).unwrap_or(i32::MAX))
                        .bind(recorded.version)
                        .bind(recorded.position)
                        .bind(recorded.recorded_at)
                        .execute(&mut *conn)
                        .await?;
                    continue;
                }
                Event::StoreShippingChanged(changed) => {
                    set_setting(&mut *conn, tables.set_shipping, store_id, recorded, changed)
                        .await?;
                    continue;
                }
                Event::StoreTaxesChanged(changed) => {
                    set_setting(&mut *conn, tables.set_taxes, store_id, recorded, changed).await?;
                    continue;
                }
                Event::StorePaused(_) => "paused",
                Event::StoreActivated(_) => "active",
                Event::StoreDeleted(_) => "deleted",
                _ => continue,
            };
            let slugs: Vec<String> = sqlx::query_scalar(tables.set_status)
                .bind(store_id)
                .bind(status)
                .bind(recorded.version)
                .bind(recorded.position)
                .bind(recorded.recorded_at)
                .fetch_all(&mut *conn)
                .await?;
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

/// A checkout setting, stored as its event says it.
async fn set_setting(
    conn: &mut PgConnection,
    statement: &'static str,
    store_id: Uuid,
    recorded: &RecordedEvent,
    setting: &(impl serde::Serialize + Sync),
) -> Result<(), sqlx::Error> {
    sqlx::query(statement)
        .bind(store_id)
        .bind(sqlx::types::Json(setting))
        .bind(recorded.version)
        .bind(recorded.position)
        .bind(recorded.recorded_at)
        .execute(conn)
        .await?;
    Ok(())
}

async fn update(
    conn: &mut PgConnection,
    tables: &Tables,
    recorded: &RecordedEvent,
    updated: &StoreUpdated,
) -> Result<Vec<String>, sqlx::Error> {
    let row: Option<(String, String)> = sqlx::query_as(tables.update)
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
