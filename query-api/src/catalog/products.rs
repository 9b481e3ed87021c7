//! The merchant's catalog reads: product lists with search and filters, a product with
//! its variants, and the CSV export.

use api_core::{
    ApiError, ApiQuery, Data, Listed,
    auth::{Principal, Reader},
    data, listed,
    openapi::ReadErrors,
    resource_id,
};
use axum::{
    Json,
    extract::{Path, State},
    http::header,
    response::{IntoResponse, Response},
};
use schemas::api::products::ProductRecord;
use uuid::Uuid;

use super::{
    filters::{Membership, PRODUCT_BY_ID, ProductFilters, ProductQuery, count_query, page_query},
    rows::ListedProductRow,
};
use crate::{
    freshness::{MinPosition, ReadModel},
    state::QueryState,
};

/// What catalog reads wait for with `X-Min-Position`: the store and its catalog.
pub const CATALOG_MODELS: &[ReadModel] = &[ReadModel::Stores, ReadModel::Catalog];

/// 404 unless the store is the caller's and not deleted.
pub async fn require_own_store(
    state: &QueryState,
    principal: &Principal,
    store_id: Uuid,
) -> Result<(), ApiError> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM stores WHERE id = $1 AND owner_id = $2 AND status <> 'deleted'",
    )
    .bind(store_id)
    .bind(principal.merchant_id)
    .fetch_optional(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    found.map(|_| ()).ok_or(ApiError::NotFound)
}

/// A page of products of `store_id` matching `filters`, with the total.
pub async fn product_page(
    state: &QueryState,
    store_id: Uuid,
    filters: &ProductFilters,
) -> Result<(Vec<ListedProductRow>, i64), ApiError> {
    let membership = Membership::load(&state.pool, store_id, filters).await?;
    // Searches are planned for each request's words: a cached generic plan cannot tell
    // one that matches three products from one that matches thousands. Plain lists keep
    // their prepared statements.
    let prepared = filters.is_plain();
    let rows: Vec<ListedProductRow> = page_query(store_id, filters, &membership)
        .build_query_as()
        .persistent(prepared)
        .fetch_all(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    let shown = rows.len() as i64;
    let total = if let Some(total) = rows.first().and_then(|row| row.total) {
        total
    } else if shown > 0 && shown < filters.page.limit() {
        // The last page: everything before it was full.
        filters.page.offset() + shown
    } else if shown == 0 && filters.page.page == 1 {
        0
    } else {
        count_query(store_id, filters, &membership)
            .build_query_scalar()
            .persistent(prepared)
            .fetch_one(&state.pool)
            .await
            .map_err(ApiError::internal)?
    };
    Ok((rows, total))
}

/// The store's products: search (`q`), filters and sorting, paginated.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/products", tag = "products",
    params(("store_id" = Uuid, Path), ProductQuery, ("X-Min-Position" = Option<i64>, Header, description = "Wait until this log position is readable")),
    responses((status = 200, body = Listed<ProductRecord>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn list_products(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<ProductQuery>,
) -> Result<Json<Listed<ProductRecord>>, ApiError> {
    let store_id = resource_id(&store_id)?;
    let filters = ProductFilters::parse(&query, false)?;
    state
        .freshness
        .wait_for(CATALOG_MODELS, min_position)
        .await?;
    require_own_store(&state, &principal, store_id).await?;
    let (rows, total) = product_page(&state, store_id, &filters).await?;
    let records = rows.into_iter().map(ListedProductRow::record).collect();
    Ok(listed(records, total, filters.page))
}

/// One product with its variants, categories and collections.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/products/{product_id}", tag = "products",
    params(("store_id" = Uuid, Path), ("product_id" = Uuid, Path), ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Data<ProductRecord>, headers(("ETag" = String, description = "The product's version, for If-Match"))), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn get_product(
    State(state): State<QueryState>,
    Path((store_id, product_id)): Path<(String, String)>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
) -> Result<Response, ApiError> {
    let (store_id, product_id) = (resource_id(&store_id)?, resource_id(&product_id)?);
    state
        .freshness
        .wait_for(CATALOG_MODELS, min_position)
        .await?;
    require_own_store(&state, &principal, store_id).await?;
    let row: Option<ListedProductRow> = sqlx::query_as(PRODUCT_BY_ID)
        .bind(product_id)
        .bind(store_id)
        .fetch_optional(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    let record = row.ok_or(ApiError::NotFound)?.record();
    let etag = format!("\"{}\"", record.product.version);
    Ok(([(header::ETAG, etag)], data(record)).into_response())
}
