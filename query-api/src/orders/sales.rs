//! A store's sales today (UTC), from the `daily_sales` projection.

use api_core::{ApiError, Data, auth::Reader, data, openapi::ReadErrors, resource_id};
use axum::{
    Json,
    extract::{Path, State},
};
use chrono::Utc;
use ordering::money;
use schemas::api::orders::SalesDay;

use super::ORDER_MODELS;
use crate::{catalog::require_own_store, freshness::MinPosition, state::QueryState};

/// Orders paid, revenue, refunds and average order value today (UTC).
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/sales/today", tag = "orders",
    params(("store_id" = Uuid, Path), ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Data<SalesDay>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn sales_today(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
) -> Result<Json<Data<SalesDay>>, ApiError> {
    let store_id = resource_id(&store_id)?;
    state.freshness.wait_for(ORDER_MODELS, min_position).await?;
    require_own_store(&state, &principal, store_id).await?;
    let day = Utc::now().date_naive();
    let (currency, orders, gross, refunds): (String, i32, i64, i64) = sqlx::query_as(
        "SELECT s.currency, coalesce(d.orders, 0), coalesce(d.gross, 0), coalesce(d.refunds, 0) \
         FROM stores s LEFT JOIN daily_sales d ON d.store_id = s.id AND d.day = $2 \
         WHERE s.id = $1",
    )
    .bind(store_id)
    .bind(day)
    .fetch_one(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let average = if orders > 0 {
        gross / i64::from(orders)
    } else {
        0
    };
    Ok(data(SalesDay {
        day,
        orders,
        revenue: money(gross, &currency),
        refunds: money(refunds, &currency),
        average_order_value: money(average, &currency),
    }))
}
