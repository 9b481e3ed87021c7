//! The store's customers, with how many orders each placed and what they paid net of
//! refunds.

use api_core::{
    ApiError, ApiQuery, Data, Listed, PageRequest, auth::Reader, data, listed, openapi::ReadErrors,
    resource_id,
};
use axum::{
    Json,
    extract::{Path, State},
};
use ordering::money;
use schemas::api::orders::CustomerRecord;
use serde::Deserialize;
use serde_json::Value;
use sqlx::{Row, postgres::PgRow};
use utoipa::IntoParams;
use uuid::Uuid;

use super::{ORDER_MODELS, contact_view, open_contact};
use crate::{catalog::require_own_store, freshness::MinPosition, state::QueryState};

const SELECT: &str = "SELECT c.id, c.contact, c.orders, c.lifetime_value, c.last_order_at, \
     c.created_at, s.currency, count(*) OVER () AS total_rows \
     FROM customers c JOIN stores s ON s.id = c.store_id";

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CustomerQuery {
    page: Option<u32>,
    per_page: Option<u32>,
}

/// The store's customers, newest first.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/customers", tag = "customers",
    params(("store_id" = Uuid, Path), CustomerQuery, ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Listed<CustomerRecord>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn list_customers(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<CustomerQuery>,
) -> Result<Json<Listed<CustomerRecord>>, ApiError> {
    let store_id = resource_id(&store_id)?;
    let page = PageRequest::parse(query.page, query.per_page)?;
    state.freshness.wait_for(ORDER_MODELS, min_position).await?;
    require_own_store(&state, &principal, store_id).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE c.store_id = $1 ORDER BY c.created_at DESC, c.id LIMIT $2 OFFSET $3"
    )))
    .bind(store_id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let mut total = 0;
    let mut customers = Vec::with_capacity(rows.len());
    for row in &rows {
        total = row.try_get("total_rows").map_err(ApiError::internal)?;
        customers.push(record(&state, row).await?);
    }
    if customers.is_empty() && page.page > 1 {
        total = sqlx::query_scalar("SELECT count(*) FROM customers WHERE store_id = $1")
            .bind(store_id)
            .fetch_one(&state.pool)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(listed(customers, total, page))
}

/// One customer of the store.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/customers/{customer_id}", tag = "customers",
    params(("store_id" = Uuid, Path), ("customer_id" = Uuid, Path), ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Data<CustomerRecord>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn get_customer(
    State(state): State<QueryState>,
    Path((store_id, customer_id)): Path<(String, String)>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
) -> Result<Json<Data<CustomerRecord>>, ApiError> {
    let (store_id, customer_id) = (resource_id(&store_id)?, resource_id(&customer_id)?);
    state.freshness.wait_for(ORDER_MODELS, min_position).await?;
    require_own_store(&state, &principal, store_id).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE c.store_id = $1 AND c.id = $2"
    )))
    .bind(store_id)
    .bind(customer_id)
    .fetch_optional(&state.pool)
    .await
    .map_err(ApiError::internal)?
    .ok_or(ApiError::NotFound)?;
    Ok(data(record(&state, &row).await?))
}

async fn record(state: &QueryState, row: &PgRow) -> Result<CustomerRecord, ApiError> {
    let get = |e: sqlx::Error| ApiError::internal(e);
    let contact: Value = row.try_get("contact").map_err(get)?;
    let currency: String = row.try_get("currency").map_err(get)?;
    let id: Uuid = row.try_get("id").map_err(get)?;
    Ok(CustomerRecord {
        id,
        customer: open_contact(&state.vault, &contact)
            .await?
            .as_ref()
            .map(contact_view),
        orders: row.try_get("orders").map_err(get)?,
        lifetime_value: money(row.try_get("lifetime_value").map_err(get)?, &currency),
        last_order_at: row.try_get("last_order_at").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
    })
}
