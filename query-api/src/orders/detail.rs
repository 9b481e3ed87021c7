//! One order: its lines and totals, the customer and address (opened), shipments and
//! refunds, and a timeline rendered from the order's own stream.

use api_core::{ApiError, Data, auth::Reader, data, openapi::ReadErrors, resource_id};
use axum::{
    extract::{Path, State},
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use domain::order::PlacedOrder;
use ordering::{money, order_stream, order_view};
use schemas::api::orders::{
    AddressBody, FulfillmentView, ItemQuantityBody, OrderDetail, RefundView, TimelineEntry,
};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use super::{ORDER_MODELS, contact_view, open_contact};
use crate::{catalog::require_own_store, freshness::MinPosition, state::QueryState};

/// One order of the store, with its timeline.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/orders/{order_id}", tag = "orders",
    params(("store_id" = Uuid, Path), ("order_id" = Uuid, Path), ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Data<OrderDetail>, headers(("ETag" = String, description = "The order's version, for If-Match"))), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn get_order(
    State(state): State<QueryState>,
    Path((store_id, order_id)): Path<(String, String)>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
) -> Result<Response, ApiError> {
    let (store_id, order_id) = (resource_id(&store_id)?, resource_id(&order_id)?);
    state.freshness.wait_for(ORDER_MODELS, min_position).await?;
    require_own_store(&state, &principal, store_id).await?;
    let detail = order_detail(&state, store_id, order_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let etag = format!("\"{}\"", detail.order.version);
    Ok(([(header::ETAG, etag)], data(detail)).into_response())
}

/// The order of `store_id`, or `None` when it has none by that id.
pub(crate) async fn order_detail(
    state: &QueryState,
    store_id: Uuid,
    order_id: Uuid,
) -> Result<Option<OrderDetail>, ApiError> {
    let row = sqlx::query(
        "SELECT state, fulfillments, refunds, version, created_at FROM orders \
         WHERE id = $1 AND store_id = $2",
    )
    .bind(order_id)
    .bind(store_id)
    .fetch_optional(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let get = |e: sqlx::Error| ApiError::internal(e);
    let stored: Value = row.try_get("state").map_err(get)?;
    let placed: PlacedOrder = serde_json::from_value(stored).map_err(ApiError::internal)?;
    let version: i32 = row.try_get("version").map_err(get)?;
    let currency = placed.totals.currency.clone();
    let contact = open_contact(&state.vault, &serde_json::json!(placed.contact)).await?;
    let fulfillments: Value = row.try_get("fulfillments").map_err(get)?;
    let refunds: Value = row.try_get("refunds").map_err(get)?;
    Ok(Some(OrderDetail {
        customer_id: placed.customer_id,
        customer: contact.as_ref().map(contact_view),
        shipping_address: contact
            .and_then(|c| c.shipping_address)
            .map(AddressBody::from),
        fulfillments: list_of(&fulfillments, fulfillment),
        refunds: list_of(&refunds, |value| refund(value, &currency)),
        created_at: row.try_get("created_at").map_err(get)?,
        timeline: timeline(state, order_id).await?,
        order: order_view(order_id, &placed, version),
    }))
}

fn list_of<T>(stored: &Value, read: impl Fn(&Value) -> Option<T>) -> Vec<T> {
    stored
        .as_array()
        .map(|values| values.iter().filter_map(read).collect())
        .unwrap_or_default()
}

fn items(value: &Value) -> Vec<ItemQuantityBody> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

fn at(value: &Value) -> Option<DateTime<Utc>> {
    serde_json::from_value(value.clone()).ok()
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn fulfillment(value: &Value) -> Option<FulfillmentView> {
    Some(FulfillmentView {
        fulfillment_id: serde_json::from_value(value["fulfillment_id"].clone()).ok()?,
        carrier: text(&value["carrier"])?,
        tracking_number: text(&value["tracking_number"]),
        tracking_url: text(&value["tracking_url"]),
        items: items(&value["items"]),
        shipped_at: at(&value["shipped_at"])?,
    })
}

fn refund(value: &Value, currency: &str) -> Option<RefundView> {
    Some(RefundView {
        refund_id: serde_json::from_value(value["refund_id"].clone()).ok()?,
        amount: money(value["amount"].as_i64()?, currency),
        reason: text(&value["reason"])?,
        restocked: items(&value["restocked"]),
        refunded_at: at(&value["refunded_at"])?,
    })
}

/// The order's stream, event by event; sealed contact details are left out.
async fn timeline(state: &QueryState, order_id: Uuid) -> Result<Vec<TimelineEntry>, ApiError> {
    let events = eventlog::read_stream(&state.pool, &order_stream(order_id), 1)
        .await
        .map_err(ApiError::internal)?;
    Ok(events
        .into_iter()
        .map(|event| {
            let mut data = event.decode().map(|e| e.to_json()).unwrap_or(Value::Null);
            if let Some(fields) = data.as_object_mut() {
                fields.remove("contact");
            }
            TimelineEntry {
                position: event.position,
                version: event.version,
                event_type: event.event_type,
                at: event.recorded_at,
                actor: event.metadata.actor,
                data,
            }
        })
        .collect())
}
