//! A signed-in shopper's order history: the orders they placed while signed in to this
//! store, newest first. Guest orders that only share the account's email stay out: an
//! account proves nobody typed that email at an earlier checkout.

use api_core::{
    ApiError, ApiQuery, Listed, PageRequest, auth::CustomerPrincipal, listed, openapi::ReadErrors,
};
use axum::{
    Json,
    extract::{Path, State},
};
use schemas::api::orders::OrderSummary;
use serde::Deserialize;
use sqlx::Row;
use utoipa::IntoParams;

use super::{ORDER_MODELS, list::summary};
use crate::{catalog::public::active_store, freshness::MinPosition, state::QueryState};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct HistoryQuery {
    page: Option<u32>,
    per_page: Option<u32>,
}

/// The signed-in customer's orders in this store.
#[utoipa::path(
    get, path = "/api/v1/public/stores/{slug}/customers/me/orders", tag = "customers",
    params(("slug" = String, Path), HistoryQuery, ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Listed<OrderSummary>), ReadErrors),
    security(("customer_bearer" = []))
)]
pub(super) async fn order_history(
    State(state): State<QueryState>,
    Path(slug): Path<String>,
    customer: CustomerPrincipal,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<Listed<OrderSummary>>, ApiError> {
    let page = PageRequest::parse(query.page, query.per_page)?;
    state.freshness.wait_for(ORDER_MODELS, min_position).await?;
    let store_id = active_store(&state, &slug, min_position)
        .await?
        .ok_or(ApiError::NotFound)?;
    // Another store's token is no credential here.
    if store_id != customer.store_id {
        return Err(ApiError::Unauthenticated);
    }
    let rows = sqlx::query(
        "SELECT o.id, o.number, o.status, o.payment_status, o.fulfillment_status, \
         o.cancelled_at, o.customer_id, o.currency, o.total, o.paid, o.refunded, \
         o.state->'contact' AS contact, o.created_at, o.updated_at, o.version, \
         count(*) OVER () AS total_rows FROM orders o \
         WHERE o.customer_id = $1 AND o.store_id = $2 AND o.by_account \
         ORDER BY o.created_at DESC, o.number DESC LIMIT $3 OFFSET $4",
    )
    .bind(customer.customer_id)
    .bind(store_id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let mut total = 0;
    let mut orders = Vec::with_capacity(rows.len());
    for row in &rows {
        total = row.try_get("total_rows").map_err(ApiError::internal)?;
        orders.push(summary(&state, row).await?);
    }
    if orders.is_empty() && page.page > 1 {
        total = sqlx::query_scalar(
            "SELECT count(*) FROM orders WHERE customer_id = $1 AND store_id = $2 AND by_account",
        )
        .bind(customer.customer_id)
        .bind(store_id)
        .fetch_one(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    }
    Ok(listed(orders, total, page))
}
