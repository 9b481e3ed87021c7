//! The shopper's order status page: the order number and the email it was placed with
//! open it, with no account. A wrong email, number or store is the same 404, so the page
//! tells nothing about orders the caller cannot already name.

use api_core::{ApiError, ApiQuery, Data, data, openapi::ReadErrors};
use axum::{
    Json,
    extract::{Path, State},
};
use schemas::api::orders::ShopperOrderView;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{ORDER_MODELS, detail::order_detail};
use crate::{catalog::public::active_store, freshness::MinPosition, state::QueryState};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct StatusQuery {
    /// The email the order was placed with.
    email: String,
}

/// An order's status and tracking, for the shopper who placed it.
#[utoipa::path(
    get, path = "/api/v1/public/stores/{slug}/orders/{number}", tag = "storefront",
    params(("slug" = String, Path), ("number" = String, Path, description = "`1001` or `#1001`"), StatusQuery, ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Data<ShopperOrderView>), ReadErrors),
)]
pub(super) async fn order_status(
    State(state): State<QueryState>,
    Path((slug, number)): Path<(String, String)>,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<StatusQuery>,
) -> Result<Json<Data<ShopperOrderView>>, ApiError> {
    let number: i64 = number
        .trim_start_matches('#')
        .parse()
        .map_err(|_| ApiError::NotFound)?;
    let email = domain::Email::parse(&query.email).map_err(|_| ApiError::NotFound)?;
    state.freshness.wait_for(ORDER_MODELS, min_position).await?;
    let store_id = active_store(&state, &slug, min_position)
        .await?
        .ok_or(ApiError::NotFound)?;
    let order_id: Option<Uuid> = sqlx::query_scalar(
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.store_id = $1 AND o.number = $2 AND c.email_digest = $3",
    )
    .bind(store_id)
    .bind(number)
    .bind(pii::email_digest(email.as_str()))
    .fetch_optional(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let detail = order_detail(&state, store_id, order_id.ok_or(ApiError::NotFound)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(data(ShopperOrderView {
        order: detail.order,
        fulfillments: detail.fulfillments,
    }))
}
