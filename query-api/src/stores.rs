//! Store reads: the merchant's own stores, and the public storefront lookup by slug.

use api_core::{
    ApiError, ApiQuery, Data, FieldError, Listed, PageRequest, auth::Reader, data, listed,
    openapi::ErrorEnvelope, resource_id,
};
use axum::{
    Json,
    extract::{Path, State},
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use schemas::{
    api::{
        products::MoneyBody,
        stores::{PublicStoreView, ShippingBody, StoreRecord, StoreView, TaxRateBody, TaxesBody},
    },
    store::{StoreShippingChanged, StoreTaxesChanged},
};
use serde::Deserialize;
use sqlx::types::Json as Stored;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    freshness::{MinPosition, ReadModel},
    state::QueryState,
};

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(list_stores))
        .routes(routes!(get_store))
        .routes(routes!(get_public_store))
}

/// The columns a `StoreRow` reads, spliced into its queries at compile time.
macro_rules! store_columns {
    () => {
        "id, owner_id, name, slug, niche, description, currency, status, low_stock_threshold, shipping, taxes, version, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct StoreRow {
    id: Uuid,
    owner_id: Uuid,
    name: String,
    slug: String,
    niche: Option<String>,
    description: Option<String>,
    currency: String,
    status: String,
    low_stock_threshold: i32,
    shipping: Stored<StoreShippingChanged>,
    taxes: Stored<StoreTaxesChanged>,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<StoreRow> for StoreRecord {
    fn from(row: StoreRow) -> Self {
        StoreRecord {
            store: StoreView {
                id: row.id,
                owner_id: row.owner_id,
                name: row.name,
                slug: row.slug,
                niche: row.niche,
                description: row.description,
                currency: row.currency.clone(),
                status: row.status,
                low_stock_threshold: u32::try_from(row.low_stock_threshold).unwrap_or_default(),
                shipping: ShippingBody {
                    flat_rate: money(row.shipping.flat_rate, &row.currency),
                    free_above: row
                        .shipping
                        .free_above
                        .map(|amount| money(amount, &row.currency)),
                },
                taxes: TaxesBody {
                    prices_include_tax: row.taxes.prices_include_tax,
                    rates: row
                        .taxes
                        .0
                        .rates
                        .into_iter()
                        .map(|rate| TaxRateBody {
                            country: rate.country,
                            region: rate.region,
                            basis_points: i64::from(rate.basis_points),
                        })
                        .collect(),
                },
                version: row.version,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListStores {
    page: Option<u32>,
    per_page: Option<u32>,
    /// `active` or `paused`; deleted stores are never listed.
    status: Option<String>,
}

fn status_filter(raw: Option<&str>) -> Result<Option<&str>, ApiError> {
    match raw {
        None => Ok(None),
        Some(status @ ("active" | "paused")) => Ok(Some(status)),
        Some(_) => Err(ApiError::Validation(vec![FieldError::new(
            "status",
            "invalid_choice",
            "must be `active` or `paused`",
        )])),
    }
}

/// The caller's stores, newest first.
#[utoipa::path(
    get, path = "/api/v1/stores", tag = "stores",
    params(ListStores, ("X-Min-Position" = Option<i64>, Header, description = "Wait until this log position is readable")),
    responses(
        (status = 200, body = Listed<StoreRecord>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
        (status = 503, description = "X-Min-Position not reached in time; see Retry-After", body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn list_stores(
    State(state): State<QueryState>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<ListStores>,
) -> Result<Json<Listed<StoreRecord>>, ApiError> {
    let page = PageRequest::parse(query.page, query.per_page)?;
    let status = status_filter(query.status.as_deref())?;
    state.freshness.wait_for_stores(min_position).await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM stores WHERE owner_id = $1 AND status <> 'deleted' \
         AND ($2::text IS NULL OR status = $2)",
    )
    .bind(principal.merchant_id)
    .bind(status)
    .fetch_one(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let rows: Vec<StoreRow> = sqlx::query_as(concat!(
        "SELECT ",
        store_columns!(),
        " FROM stores WHERE owner_id = $1 AND status <> 'deleted' \
         AND ($2::text IS NULL OR status = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(principal.merchant_id)
    .bind(status)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    Ok(listed(
        rows.into_iter().map(StoreRecord::from).collect(),
        total,
        page,
    ))
}

/// One of the caller's stores.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}", tag = "stores",
    params(("store_id" = Uuid, Path), ("X-Min-Position" = Option<i64>, Header)),
    responses(
        (status = 200, body = Data<StoreRecord>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn get_store(
    State(state): State<QueryState>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
    Path(store_id): Path<String>,
) -> Result<Response, ApiError> {
    let store_id = resource_id(&store_id)?;
    state.freshness.wait_for_stores(min_position).await?;
    let row: Option<StoreRow> = sqlx::query_as(concat!(
        "SELECT ",
        store_columns!(),
        " FROM stores WHERE id = $1 AND owner_id = $2 AND status <> 'deleted'"
    ))
    .bind(store_id)
    .bind(principal.merchant_id)
    .fetch_optional(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let record = StoreRecord::from(row.ok_or(ApiError::NotFound)?);
    let etag = format!("\"{}\"", record.store.version);
    Ok(([(header::ETAG, etag)], data(record)).into_response())
}

/// A store's public page: active stores only, without owner data. No credentials.
#[utoipa::path(
    get, path = "/api/v1/public/stores/{slug}", tag = "storefront",
    params(("slug" = String, Path), ("X-Min-Position" = Option<i64>, Header)),
    responses(
        (status = 200, body = Data<PublicStoreView>),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope),
    )
)]
async fn get_public_store(
    State(state): State<QueryState>,
    MinPosition(min_position): MinPosition,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    if !domain::Slug::could_be(&slug) {
        return Err(ApiError::NotFound);
    }
    state.freshness.wait_for_stores(min_position).await?;
    let cached = state
        .freshness
        .cached_public_store(&slug, min_position)
        .await;
    let page = match cached {
        Some(page) => page,
        None => {
            let read_at = state.freshness.stamp(&[ReadModel::Stores]);
            let page = read_public_store(&state, &slug).await?;
            state.freshness.remember(slug, page.clone(), read_at).await;
            page
        }
    };
    match page {
        Some(body) => Ok((
            [
                (header::CONTENT_TYPE, "application/json"),
                // Shared caches may hold it briefly; the platform's own cache is exact.
                (header::CACHE_CONTROL, "public, max-age=5"),
            ],
            body,
        )
            .into_response()),
        None => Err(ApiError::NotFound),
    }
}

/// name, slug, niche, description, currency
type PublicRow = (String, String, Option<String>, Option<String>, String);

async fn read_public_store(
    state: &QueryState,
    slug: &str,
) -> Result<crate::freshness::CachedPage, ApiError> {
    let row: Option<PublicRow> = sqlx::query_as(
        "SELECT name, slug, niche, description, currency FROM stores \
         WHERE slug = $1 AND status = 'active' ORDER BY updated_at DESC LIMIT 1",
    )
    .bind(slug)
    .fetch_optional(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let Some((name, slug, niche, description, currency)) = row else {
        return Ok(None);
    };
    let view = PublicStoreView {
        name,
        slug,
        niche,
        description,
        currency,
    };
    let body = serde_json::to_vec(&Data {
        data: view,
        error: None,
    })
    .map_err(ApiError::internal)?;
    Ok(Some(body.into()))
}

fn money(amount: i64, currency: &str) -> MoneyBody {
    MoneyBody {
        amount,
        currency: currency.to_owned(),
    }
}
