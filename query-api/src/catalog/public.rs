//! Storefront reads: active products of active stores, their categories and
//! collections, without cost or stock counts. Answers are cached serialized, per store
//! and request, and dropped when the projection announces a change to that store.

use std::future::Future;

use api_core::{ApiError, ApiQuery, Data, Listed, PageRequest, openapi::PublicErrors};
use axum::{
    extract::{Path, State},
    http::header,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use domain::Slug;
use schemas::api::{catalog::PublicGroupView, products::PublicProductView};
use serde::Serialize;
use uuid::Uuid;

use super::{
    filters::{ACTIVE_PRODUCT_BY_SLUG, ProductFilters, ProductQuery},
    groups::{PageQuery, categories_page, collections_page},
    products::{CATALOG_MODELS, product_page},
    rows::ListedProductRow,
};
use crate::{
    freshness::{CachedPage, MinPosition, ReadModel},
    state::QueryState,
};

fn serialized<T: Serialize>(body: &T) -> Result<Bytes, ApiError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(ApiError::internal)
}

fn page<T: Serialize>(
    items: Vec<T>,
    total: i64,
    page: PageRequest,
) -> Result<CachedPage, ApiError> {
    serialized(&Listed {
        data: items,
        error: None,
        total,
        page: page.page,
        per_page: page.per_page,
    })
    .map(Some)
}

/// The active store a slug names, from the cache when it is as new as `min_position`.
pub(crate) async fn active_store(
    state: &QueryState,
    slug: &str,
    min_position: Option<i64>,
) -> Result<Option<Uuid>, ApiError> {
    if !Slug::could_be(slug) {
        return Ok(None);
    }
    if let Some(cached) = state.freshness.cached_store_id(slug, min_position).await {
        return Ok(cached);
    }
    let read_at = state.freshness.stamp(&[ReadModel::Stores]);
    let store_id: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM stores WHERE slug = $1 AND status = 'active' \
         ORDER BY updated_at DESC LIMIT 1",
    )
    .bind(slug)
    .fetch_optional(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    state
        .freshness
        .remember_store_id(slug.to_owned(), store_id, read_at)
        .await;
    Ok(store_id)
}

/// Answers a storefront read: the store resolved, then the page from the cache or from
/// `read` (which answers `None` for "no such thing"). A reader waiting for a position
/// is served from the cache too once what is cached was read at that position or
/// later, so `X-Min-Position` costs a read only right after a write.
async fn storefront<Read, Fut>(
    state: &QueryState,
    slug: &str,
    min_position: Option<i64>,
    request: String,
    read: Read,
) -> Result<Response, ApiError>
where
    Read: FnOnce(Uuid) -> Fut,
    Fut: Future<Output = Result<CachedPage, ApiError>>,
{
    state
        .freshness
        .wait_for(CATALOG_MODELS, min_position)
        .await?;
    let store_id = active_store(state, slug, min_position)
        .await?
        .ok_or(ApiError::NotFound)?;
    let key = state.freshness.catalog_page_key(store_id, request);
    let cached = state
        .freshness
        .cached_catalog_page(&key, min_position)
        .await;
    let page = match cached {
        Some(page) => page,
        None => {
            let read_at = state.freshness.stamp(CATALOG_MODELS);
            let page = read(store_id).await?;
            state
                .freshness
                .remember_catalog_page(key, page.clone(), read_at)
                .await;
            page
        }
    };
    let body = page.ok_or(ApiError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            // Shared caches may hold it briefly; the platform's own cache is exact.
            (header::CACHE_CONTROL, "public, max-age=5"),
        ],
        body,
    )
        .into_response())
}

/// A store's active products: search, filters and sorting as for merchants (no status).
#[utoipa::path(
    get, path = "/api/v1/public/stores/{slug}/products", tag = "storefront",
    params(("slug" = String, Path), ProductQuery, ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Listed<PublicProductView>), PublicErrors)
)]
pub(super) async fn list_public_products(
    State(state): State<QueryState>,
    Path(slug): Path<String>,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<ProductQuery>,
) -> Result<Response, ApiError> {
    let filters = ProductFilters::parse(&query, true)?;
    let request = format!("products:{}", filters.cache_key());
    storefront(&state, &slug, min_position, request, async |store_id| {
        let (rows, total) = product_page(&state, store_id, &filters).await?;
        let views = rows
            .into_iter()
            .map(|row| row.product.public_view(row.live_category_ids))
            .collect();
        page(views, total, filters.page)
    })
    .await
}

/// One active product by its slug.
#[utoipa::path(
    get, path = "/api/v1/public/stores/{slug}/products/{product_slug}", tag = "storefront",
    params(("slug" = String, Path), ("product_slug" = String, Path), ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Data<PublicProductView>), PublicErrors)
)]
pub(super) async fn get_public_product(
    State(state): State<QueryState>,
    Path((slug, product_slug)): Path<(String, String)>,
    MinPosition(min_position): MinPosition,
) -> Result<Response, ApiError> {
    if !Slug::could_be(&product_slug) {
        return Err(ApiError::NotFound);
    }
    let request = format!("product:{product_slug}");
    storefront(&state, &slug, min_position, request, async |store_id| {
        let row: Option<ListedProductRow> = sqlx::query_as(ACTIVE_PRODUCT_BY_SLUG)
            .bind(store_id)
            .bind(&product_slug)
            .fetch_optional(&state.pool)
            .await
            .map_err(ApiError::internal)?;
        row.map(|row| {
            serialized(&Data {
                data: row.product.public_view(row.live_category_ids),
                error: None,
            })
        })
        .transpose()
    })
    .await
}

/// A store's categories by name.
#[utoipa::path(
    get, path = "/api/v1/public/stores/{slug}/categories", tag = "storefront",
    params(("slug" = String, Path), PageQuery, ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Listed<PublicGroupView>), PublicErrors)
)]
pub(super) async fn list_public_categories(
    State(state): State<QueryState>,
    Path(slug): Path<String>,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let requested = PageRequest::parse(query.page, query.per_page)?;
    let request = format!("categories:{}:{}", requested.page, requested.per_page);
    storefront(&state, &slug, min_position, request, async |store_id| {
        let (rows, total) = categories_page(&state.pool, store_id, requested).await?;
        let views = rows
            .into_iter()
            .map(|r| PublicGroupView {
                id: r.id,
                name: r.name,
                slug: r.slug,
                description: r.description,
                parent_id: r.parent_id,
            })
            .collect();
        page(views, total, requested)
    })
    .await
}

/// A store's collections by name. Their products, in order:
/// `.../products?collection={id}`.
#[utoipa::path(
    get, path = "/api/v1/public/stores/{slug}/collections", tag = "storefront",
    params(("slug" = String, Path), PageQuery, ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Listed<PublicGroupView>), PublicErrors)
)]
pub(super) async fn list_public_collections(
    State(state): State<QueryState>,
    Path(slug): Path<String>,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let requested = PageRequest::parse(query.page, query.per_page)?;
    let request = format!("collections:{}:{}", requested.page, requested.per_page);
    storefront(&state, &slug, min_position, request, async |store_id| {
        let (rows, total) = collections_page(&state.pool, store_id, requested).await?;
        let views = rows
            .into_iter()
            .map(|r| PublicGroupView {
                id: r.id,
                name: r.name,
                slug: r.slug,
                description: r.description,
                parent_id: None,
            })
            .collect();
        page(views, total, requested)
    })
    .await
}
