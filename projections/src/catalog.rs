//! `catalog`: products (with their variants and stock), categories and collections, for
//! the dashboard, search, CSV export and the public storefront. The id of every store
//! whose catalog changed is announced on [`CATALOG_CHANGED_CHANNEL`] at commit, so the
//! storefront cache drops exactly that store's pages.

use std::collections::BTreeSet;

use schemas::{
    Event, RecordedEvent,
    catalog::{CategoryData, CollectionData},
    product::{InventoryReleased, InventoryReserved, ProductData, VariantData},
};
use sqlx::{PgConnection, types::Json};
use tracing::warn;
use uuid::Uuid;

use crate::projection::{Projection, Target};

/// `NOTIFY` channel carrying the id of each store whose catalog changed.
pub const CATALOG_CHANGED_CHANNEL: &str = "dropship_catalog_changed";

pub struct Catalog;

struct Tables {
    upsert_product: &'static str,
    set_product_status: &'static str,
    variants_of: &'static str,
    set_variants: &'static str,
    upsert_category: &'static str,
    delete_category: &'static str,
    upsert_collection: &'static str,
    delete_collection: &'static str,
}

/// Every statement only moves a row forward in log position, so replays are harmless.
macro_rules! statements_for {
    ($suffix:literal) => {
        Tables {
            upsert_product: concat!(
                "INSERT INTO catalog_products", $suffix, " AS t (id, store_id, title, slug, description, ",
                "price_amount, compare_at_amount, cost_amount, currency, images, status, seo_title, ",
                "seo_description, tags, category_ids, variants, skus, inventory_total, in_stock, version, ",
                "last_position, created_at, updated_at) ",
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, ",
                "$19, $20, $21, $22, $22) ",
                "ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, slug = EXCLUDED.slug, ",
                "description = EXCLUDED.description, price_amount = EXCLUDED.price_amount, ",
                "compare_at_amount = EXCLUDED.compare_at_amount, cost_amount = EXCLUDED.cost_amount, ",
                "currency = EXCLUDED.currency, images = EXCLUDED.images, status = EXCLUDED.status, ",
                "seo_title = EXCLUDED.seo_title, seo_description = EXCLUDED.seo_description, ",
                "tags = EXCLUDED.tags, category_ids = EXCLUDED.category_ids, variants = EXCLUDED.variants, ",
                "skus = EXCLUDED.skus, inventory_total = EXCLUDED.inventory_total, ",
                "in_stock = EXCLUDED.in_stock, version = EXCLUDED.version, ",
                "last_position = EXCLUDED.last_position, updated_at = EXCLUDED.updated_at ",
                "WHERE t.last_position < EXCLUDED.last_position"
            ),
            set_product_status: concat!(
                "UPDATE catalog_products", $suffix, " SET status = $2, version = $3, last_position = $4, ",
                "updated_at = $5 WHERE id = $1 AND last_position < $4"
            ),
            variants_of: concat!(
                "SELECT variants FROM catalog_products", $suffix, " WHERE id = $1 AND last_position < $2 ",
                "FOR UPDATE"
            ),
            set_variants: concat!(
                "UPDATE catalog_products", $suffix, " SET variants = $2, skus = $3, inventory_total = $4, ",
                "in_stock = $5, version = $6, last_position = $7, updated_at = $8 WHERE id = $1"
            ),
            upsert_category: concat!(
                "INSERT INTO catalog_categories", $suffix, " AS t (id, store_id, name, slug, description, ",
                "parent_id, version, last_position, created_at, updated_at) ",
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ",
                "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, slug = EXCLUDED.slug, ",
                "description = EXCLUDED.description, parent_id = EXCLUDED.parent_id, ",
                "version = EXCLUDED.version, last_position = EXCLUDED.last_position, ",
                "updated_at = EXCLUDED.updated_at WHERE t.last_position < EXCLUDED.last_position"
            ),
            delete_category: concat!(
                "UPDATE catalog_categories", $suffix, " SET deleted = true, version = $2, ",
                "last_position = $3, updated_at = $4 WHERE id = $1 AND last_position < $3"
            ),
            upsert_collection: concat!(
                "INSERT INTO catalog_collections", $suffix, " AS t (id, store_id, name, slug, description, ",
                "product_ids, version, last_position, created_at, updated_at) ",
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ",
                "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, slug = EXCLUDED.slug, ",
                "description = EXCLUDED.description, product_ids = EXCLUDED.product_ids, ",
                "version = EXCLUDED.version, last_position = EXCLUDED.last_position, ",
                "updated_at = EXCLUDED.updated_at WHERE t.last_position < EXCLUDED.last_position"
            ),
            delete_collection: concat!(
                "UPDATE catalog_collections", $suffix, " SET deleted = true, version = $2, ",
                "last_position = $3, updated_at = $4 WHERE id = $1 AND last_position < $3"
            ),
        }
    };
}

const LIVE: Tables = statements_for!("");
const SHADOW: Tables = statements_for!("_shadow");

/// The id inside a stream id such as `product-<uuid>`.
fn aggregate_id(recorded: &RecordedEvent) -> Option<Uuid> {
    let (_, id) = recorded.stream_id.split_once('-')?;
    Uuid::parse_str(id).ok()
}

fn is_catalog_event(event_type: &str) -> bool {
    ["product.", "inventory.", "category.", "collection."]
        .iter()
        .any(|prefix| event_type.starts_with(prefix))
}

impl Projection for Catalog {
    const NAME: &'static str = "catalog";
    const TABLES: &'static [&'static str] = &[
        "catalog_products",
        "catalog_categories",
        "catalog_collections",
    ];

    fn reads(&self, event: &RecordedEvent) -> bool {
        is_catalog_event(&event.event_type)
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
        let mut changed_stores = BTreeSet::new();
        for recorded in events {
            if !is_catalog_event(&recorded.event_type) {
                continue;
            }
            let (Some(id), Some(store_id)) = (aggregate_id(recorded), recorded.store_id) else {
                continue;
            };
            match recorded.decode() {
                Ok(event) => {
                    apply_event(&mut *conn, tables, id, recorded, &event).await?;
                    changed_stores.insert(store_id);
                }
                // Written by newer code than this reader: a rebuild after upgrading repairs it.
                Err(error) => {
                    warn!(position = recorded.position, %error, "undecodable catalog event skipped");
                }
            }
        }
        if target == Target::Live && !changed_stores.is_empty() {
            let stores: Vec<String> = changed_stores.iter().map(Uuid::to_string).collect();
            sqlx::query("SELECT pg_notify($1, store_id) FROM unnest($2::text[]) AS store_id")
                .bind(CATALOG_CHANGED_CHANNEL)
                .bind(&stores)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

async fn apply_event(
    conn: &mut PgConnection,
    tables: &Tables,
    id: Uuid,
    recorded: &RecordedEvent,
    event: &Event,
) -> Result<(), sqlx::Error> {
    match event {
        Event::ProductCreated(created) => {
            upsert_product(conn, tables, id, recorded, &created.product).await
        }
        Event::ProductUpdated(updated) => {
            upsert_product(conn, tables, id, recorded, &updated.product).await
        }
        Event::ProductPublished(_) => {
            set_product_status(conn, tables, id, recorded, "active").await
        }
        Event::ProductArchived(_) => {
            set_product_status(conn, tables, id, recorded, "archived").await
        }
        Event::VariantAdded(_)
        | Event::VariantUpdated(_)
        | Event::VariantRemoved(_)
        | Event::InventoryAdjusted(_)
        | Event::InventoryReserved(_)
        | Event::InventoryReleased(_)
        | Event::InventoryLowStock(_) => change_variants(conn, tables, id, recorded, event).await,
        Event::CategoryCreated(created) => {
            upsert_category(conn, tables, id, recorded, &created.category).await
        }
        Event::CategoryUpdated(updated) => {
            upsert_category(conn, tables, id, recorded, &updated.category).await
        }
        Event::CollectionCreated(created) => {
            upsert_collection(conn, tables, id, recorded, &created.collection).await
        }
        Event::CollectionUpdated(updated) => {
            upsert_collection(conn, tables, id, recorded, &updated.collection).await
        }
        Event::CategoryDeleted(_) => mark_deleted(conn, tables.delete_category, id, recorded).await,
        Event::CollectionDeleted(_) => {
            mark_deleted(conn, tables.delete_collection, id, recorded).await
        }
        _ => Ok(()),
    }
}

/// What the read model derives from a product's variants.
struct Stock {
    skus: Vec<String>,
    total: i64,
    in_stock: bool,
}

fn stock_of(variants: &[VariantData]) -> Stock {
    let total = variants.iter().map(|v| i64::from(v.inventory_count)).sum();
    Stock {
        skus: variants
            .iter()
            .filter_map(|v| v.sku.as_deref())
            .map(str::to_uppercase)
            .collect(),
        total,
        in_stock: variants.is_empty() || total > 0,
    }
}

async fn upsert_product(
    conn: &mut PgConnection,
    tables: &Tables,
    id: Uuid,
    recorded: &RecordedEvent,
    product: &ProductData,
) -> Result<(), sqlx::Error> {
    let stock = stock_of(&product.variants);
    sqlx::query(tables.upsert_product)
        .bind(id)
        .bind(product.store_id)
        .bind(&product.title)
        .bind(&product.slug)
        .bind(&product.description)
        .bind(product.price.amount)
        .bind(product.compare_at_price.as_ref().map(|m| m.amount))
        .bind(product.cost.as_ref().map(|m| m.amount))
        .bind(&product.price.currency)
        .bind(Json(&product.images))
        .bind(&product.status)
        .bind(&product.seo_title)
        .bind(&product.seo_description)
        .bind(&product.tags)
        .bind(&product.category_ids)
        .bind(Json(&product.variants))
        .bind(&stock.skus)
        .bind(stock.total)
        .bind(stock.in_stock)
        .bind(recorded.version)
        .bind(recorded.position)
        .bind(recorded.recorded_at)
        .execute(conn)
        .await?;
    Ok(())
}

async fn set_product_status(
    conn: &mut PgConnection,
    tables: &Tables,
    id: Uuid,
    recorded: &RecordedEvent,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(tables.set_product_status)
        .bind(id)
        .bind(status)
        .bind(recorded.version)
        .bind(recorded.position)
        .bind(recorded.recorded_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Variant and stock events change the product's variant list in place.
async fn change_variants(
    conn: &mut PgConnection,
    tables: &Tables,
    id: Uuid,
    recorded: &RecordedEvent,
    event: &Event,
) -> Result<(), sqlx::Error> {
    let current: Option<Json<Vec<VariantData>>> = sqlx::query_scalar(tables.variants_of)
        .bind(id)
        .bind(recorded.position)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(Json(mut variants)) = current else {
        return Ok(());
    };
    let find = |variants: &mut Vec<VariantData>, variant_id: Uuid| {
        variants.iter().position(|v| v.variant_id == variant_id)
    };
    match event {
        Event::VariantAdded(added) => variants.push(added.variant.clone()),
        Event::VariantUpdated(updated) => {
            if let Some(i) = find(&mut variants, updated.variant.variant_id) {
                variants[i] = updated.variant.clone();
            }
        }
        Event::VariantRemoved(removed) => variants.retain(|v| v.variant_id != removed.variant_id),
        Event::InventoryAdjusted(adjusted) => {
            if let Some(i) = find(&mut variants, adjusted.variant_id) {
                variants[i].inventory_count = adjusted.inventory_count;
            }
        }
        Event::InventoryReserved(InventoryReserved { lines, .. })
        | Event::InventoryReleased(InventoryReleased { lines, .. }) => {
            for line in lines {
                if let Some(i) = find(&mut variants, line.variant_id) {
                    variants[i].inventory_count = line.inventory_count;
                }
            }
        }
        _ => {}
    }
    let stock = stock_of(&variants);
    sqlx::query(tables.set_variants)
        .bind(id)
        .bind(Json(&variants))
        .bind(&stock.skus)
        .bind(stock.total)
        .bind(stock.in_stock)
        .bind(recorded.version)
        .bind(recorded.position)
        .bind(recorded.recorded_at)
        .execute(conn)
        .await?;
    Ok(())
}

async fn upsert_category(
    conn: &mut PgConnection,
    tables: &Tables,
    id: Uuid,
    recorded: &RecordedEvent,
    category: &CategoryData,
) -> Result<(), sqlx::Error> {
    sqlx::query(tables.upsert_category)
        .bind(id)
        .bind(category.store_id)
        .bind(&category.name)
        .bind(&category.slug)
        .bind(&category.description)
        .bind(category.parent_id)
        .bind(recorded.version)
        .bind(recorded.position)
        .bind(recorded.recorded_at)
        .execute(conn)
        .await?;
    Ok(())
}

async fn upsert_collection(
    conn: &mut PgConnection,
    tables: &Tables,
    id: Uuid,
    recorded: &RecordedEvent,
    collection: &CollectionData,
) -> Result<(), sqlx::Error> {
    sqlx::query(tables.upsert_collection)
        .bind(id)
        .bind(collection.store_id)
        .bind(&collection.name)
        .bind(&collection.slug)
        .bind(&collection.description)
        .bind(&collection.product_ids)
        .bind(recorded.version)
        .bind(recorded.position)
        .bind(recorded.recorded_at)
        .execute(conn)
        .await?;
    Ok(())
}

async fn mark_deleted(
    conn: &mut PgConnection,
    statement: &'static str,
    id: Uuid,
    recorded: &RecordedEvent,
) -> Result<(), sqlx::Error> {
    sqlx::query(statement)
        .bind(id)
        .bind(recorded.version)
        .bind(recorded.position)
        .bind(recorded.recorded_at)
        .execute(conn)
        .await?;
    Ok(())
}
