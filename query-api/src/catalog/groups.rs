//! The merchant's categories and collections.

use api_core::{
    ApiError, ApiQuery, Data, Listed, PageRequest, auth::Reader, data, listed, openapi::ReadErrors,
    resource_id,
};
use axum::{
    Json,
    extract::{Path, State},
};
use chrono::{DateTime, Utc};
use schemas::api::catalog::{CategoryRecord, CategoryView, CollectionRecord, CollectionView};
use serde::Deserialize;
use sqlx::{PgPool, postgres::PgRow};
use utoipa::IntoParams;
use uuid::Uuid;

use super::products::{CATALOG_MODELS, require_own_store};
use crate::{freshness::MinPosition, state::QueryState};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// A category's parent shows only while the parent lives: children of a deleted
/// category are top-level.
macro_rules! category_select {
    () => {
        "SELECT c.id, c.store_id, c.name, c.slug, c.description, \
         (SELECT pc.id FROM catalog_categories pc WHERE pc.id = c.parent_id AND NOT pc.deleted) AS parent_id, \
         c.version, c.created_at, c.updated_at, \
         (SELECT count(*) FROM catalog_products p WHERE p.store_id = c.store_id \
          AND p.category_ids @> ARRAY[c.id]) AS product_count, \
         count(*) OVER () AS total \
         FROM catalog_categories c "
    };
}

#[derive(sqlx::FromRow)]
pub struct CategoryRow {
    pub id: Uuid,
    pub store_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub parent_id: Option<Uuid>,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub product_count: i64,
    pub total: i64,
}

impl CategoryRow {
    fn record(self) -> CategoryRecord {
        CategoryRecord {
            category: CategoryView {
                id: self.id,
                store_id: self.store_id,
                name: self.name,
                slug: self.slug,
                description: self.description,
                parent_id: self.parent_id,
                version: self.version,
            },
            product_count: self.product_count,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const CATEGORIES_OF_STORE: &str = concat!(
    category_select!(),
    "WHERE c.store_id = $1 AND NOT c.deleted ORDER BY c.name, c.id LIMIT $2 OFFSET $3"
);
const CATEGORY_BY_ID: &str = concat!(
    category_select!(),
    "WHERE c.id = $1 AND c.store_id = $2 AND NOT c.deleted"
);

#[derive(sqlx::FromRow)]
pub struct CollectionRow {
    pub id: Uuid,
    pub store_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub product_ids: Vec<Uuid>,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub total: i64,
}

impl CollectionRow {
    fn record(self) -> CollectionRecord {
        CollectionRecord {
            collection: CollectionView {
                id: self.id,
                store_id: self.store_id,
                name: self.name,
                slug: self.slug,
                description: self.description,
                product_ids: self.product_ids,
                version: self.version,
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

macro_rules! collection_select {
    () => {
        "SELECT id, store_id, name, slug, description, product_ids, version, created_at, \
         updated_at, count(*) OVER () AS total FROM catalog_collections "
    };
}

const COLLECTIONS_OF_STORE: &str = concat!(
    collection_select!(),
    "WHERE store_id = $1 AND NOT deleted ORDER BY name, id LIMIT $2 OFFSET $3"
);
const COLLECTION_BY_ID: &str = concat!(
    collection_select!(),
    "WHERE id = $1 AND store_id = $2 AND NOT deleted"
);

/// One page of a store's rows read by `sql` (`$1` store, `$2` limit, `$3` offset), with
/// the total the rows carry.
async fn page_of<R>(
    pool: &PgPool,
    sql: &'static str,
    store_id: Uuid,
    page: PageRequest,
    total: fn(&R) -> i64,
) -> Result<(Vec<R>, i64), ApiError>
where
    R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let rows: Vec<R> = sqlx::query_as(sql)
        .bind(store_id)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(pool)
        .await
        .map_err(ApiError::internal)?;
    let count = rows.first().map_or(0, total);
    Ok((rows, count))
}

/// A page of the store's live categories, by name.
pub async fn categories_page(
    pool: &PgPool,
    store_id: Uuid,
    page: PageRequest,
) -> Result<(Vec<CategoryRow>, i64), ApiError> {
    page_of(
        pool,
        CATEGORIES_OF_STORE,
        store_id,
        page,
        |row: &CategoryRow| row.total,
    )
    .await
}

/// A page of the store's live collections, by name.
pub async fn collections_page(
    pool: &PgPool,
    store_id: Uuid,
    page: PageRequest,
) -> Result<(Vec<CollectionRow>, i64), ApiError> {
    page_of(
        pool,
        COLLECTIONS_OF_STORE,
        store_id,
        page,
        |row: &CollectionRow| row.total,
    )
    .await
}

/// The store's categories by name, each with its parent and its product count.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/categories", tag = "catalog",
    params(("store_id" = Uuid, Path), PageQuery, ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Listed<CategoryRecord>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn list_categories(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Listed<CategoryRecord>>, ApiError> {
    let store_id = resource_id(&store_id)?;
    let page = PageRequest::parse(query.page, query.per_page)?;
    state
        .freshness
        .wait_for(CATALOG_MODELS, min_position)
        .await?;
    require_own_store(&state, &principal, store_id).await?;
    let (rows, total) = categories_page(&state.pool, store_id, page).await?;
    Ok(listed(
        rows.into_iter().map(CategoryRow::record).collect(),
        total,
        page,
    ))
}

/// One category. Its products: `GET .../products?category={category_id}`.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/categories/{category_id}", tag = "catalog",
    params(("store_id" = Uuid, Path), ("category_id" = Uuid, Path), ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Data<CategoryRecord>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn get_category(
    State(state): State<QueryState>,
    Path((store_id, category_id)): Path<(String, String)>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
) -> Result<Json<Data<CategoryRecord>>, ApiError> {
    let (store_id, category_id) = (resource_id(&store_id)?, resource_id(&category_id)?);
    state
        .freshness
        .wait_for(CATALOG_MODELS, min_position)
        .await?;
    require_own_store(&state, &principal, store_id).await?;
    let row: Option<CategoryRow> = sqlx::query_as(CATEGORY_BY_ID)
        .bind(category_id)
        .bind(store_id)
        .fetch_optional(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    Ok(data(row.ok_or(ApiError::NotFound)?.record()))
}

/// The store's collections by name.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/collections", tag = "catalog",
    params(("store_id" = Uuid, Path), PageQuery, ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Listed<CollectionRecord>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn list_collections(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Listed<CollectionRecord>>, ApiError> {
    let store_id = resource_id(&store_id)?;
    let page = PageRequest::parse(query.page, query.per_page)?;
    state
        .freshness
        .wait_for(CATALOG_MODELS, min_position)
        .await?;
    require_own_store(&state, &principal, store_id).await?;
    let (rows, total) = collections_page(&state.pool, store_id, page).await?;
    Ok(listed(
        rows.into_iter().map(CollectionRow::record).collect(),
        total,
        page,
    ))
}

/// One collection with its products' ids in order. Its products:
/// `GET .../products?collection={collection_id}`.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/collections/{collection_id}", tag = "catalog",
    params(("store_id" = Uuid, Path), ("collection_id" = Uuid, Path), ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Data<CollectionRecord>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn get_collection(
    State(state): State<QueryState>,
    Path((store_id, collection_id)): Path<(String, String)>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
) -> Result<Json<Data<CollectionRecord>>, ApiError> {
    let (store_id, collection_id) = (resource_id(&store_id)?, resource_id(&collection_id)?);
    state
        .freshness
        .wait_for(CATALOG_MODELS, min_position)
        .await?;
    require_own_store(&state, &principal, store_id).await?;
    let row: Option<CollectionRow> = sqlx::query_as(COLLECTION_BY_ID)
        .bind(collection_id)
        .bind(store_id)
        .fetch_optional(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    Ok(data(row.ok_or(ApiError::NotFound)?.record()))
}
