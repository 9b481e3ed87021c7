//! The store's orders as CSV, one line per item with the order's figures repeated on
//! each, newest first, with the list's filters; streamed page by page (`csv_stream`).
//! Contact details are opened per order, as in every order read.

use api_core::{ApiError, ApiQuery, auth::Reader, openapi::ReadErrors, resource_id};
use axum::{
    extract::{Path, State},
    response::Response,
};
use chrono::{DateTime, Utc};
use domain::order::PlacedOrder;
use schemas::pii::ContactDetails;
use serde_json::Value;
use sqlx::{QueryBuilder, Row, postgres::PgRow};
use uuid::Uuid;

use super::{
    ORDER_MODELS,
    list::{Filters, OrderQuery},
};
use crate::{
    catalog::require_own_store,
    csv_stream::{CsvSink, streamed},
    freshness::MinPosition,
    state::QueryState,
};

/// Orders read per statement; the connection goes back to the pool between pages.
const PAGE_ROWS: i64 = 200;

const HEADER: [&str; 26] = [
    "order_id",
    "number",
    "created_at",
    "status",
    "payment_status",
    "fulfillment_status",
    "currency",
    "subtotal_minor",
    "shipping_minor",
    "tax_minor",
    "taxes_included",
    "total_minor",
    "paid_minor",
    "refunded_minor",
    "customer_id",
    "email",
    "name",
    "country",
    "item_product_id",
    "item_variant_id",
    "item_title",
    "item_variant",
    "item_sku",
    "item_quantity",
    "item_unit_price_minor",
    "item_tax_minor",
];

/// The order's lines as the export writes them.
async fn lines(state: &QueryState, row: &PgRow) -> Result<Vec<Vec<String>>, sqlx::Error> {
    let id: Uuid = row.try_get("id")?;
    let created_at: DateTime<Utc> = row.try_get("created_at")?;
    let stored: Value = row.try_get("state")?;
    let order: PlacedOrder =
        serde_json::from_value(stored).map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    let contact: Option<ContactDetails> = state
        .vault
        .open(&order.contact)
        .await
        .map_err(|error| sqlx::Error::Protocol(error.to_string()))?;
    // An erased customer's order keeps its figures and loses who bought it.
    let (email, name, country) = contact.map_or_else(Default::default, |contact| {
        let country = contact
            .shipping_address
            .map(|address| address.country)
            .unwrap_or_default();
        (contact.email, contact.name.unwrap_or_default(), country)
    });
    let column = |name: &str| -> Result<String, sqlx::Error> { row.try_get(name) };
    let totals = &order.totals;
    let common = [
        id.to_string(),
        format!("#{}", order.number),
        created_at.to_rfc3339(),
        column("status")?,
        column("payment_status")?,
        column("fulfillment_status")?,
        totals.currency.clone(),
        totals.subtotal.to_string(),
        totals.shipping.to_string(),
        totals.tax.to_string(),
        totals.taxes_included.to_string(),
        totals.total.to_string(),
        order.paid.to_string(),
        order.refunded.to_string(),
        order.customer_id.to_string(),
        email,
        name,
        country,
    ];
    Ok(order
        .lines
        .iter()
        .map(|line| {
            let item = [
                line.product_id.to_string(),
                line.variant_id.to_string(),
                line.title.clone(),
                line.variant_name.clone(),
                line.sku.clone().unwrap_or_default(),
                line.quantity.to_string(),
                line.unit_price.to_string(),
                line.tax.to_string(),
            ];
            common.iter().cloned().chain(item).collect()
        })
        .collect())
}

/// Reads the orders a page at a time (keyset on creation time and id) and writes their
/// lines until done, the client left or it stalled.
async fn produce(state: QueryState, store_id: Uuid, filters: Filters, mut sink: CsvSink) {
    if !sink.record(HEADER).await {
        return;
    }
    let mut after: Option<(DateTime<Utc>, Uuid)> = None;
    loop {
        let mut sql = QueryBuilder::new(
            "SELECT o.id, o.status, o.payment_status, o.fulfillment_status, o.state, \
             o.created_at FROM orders o",
        );
        filters.push_where(&mut sql, store_id);
        if let Some((created_at, id)) = after {
            sql.push(" AND (o.created_at, o.id) < (")
                .push_bind(created_at)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        sql.push(" ORDER BY o.created_at DESC, o.id DESC LIMIT ")
            .push_bind(PAGE_ROWS);
        let page = match sql.build().persistent(false).fetch_all(&state.pool).await {
            Ok(page) => page,
            Err(error) => return sink.failed(&error),
        };
        let last_page = page.len() < usize::try_from(PAGE_ROWS).unwrap_or(usize::MAX);
        for row in &page {
            let written = match lines(&state, row).await {
                Ok(written) => written,
                Err(error) => return sink.failed(&error),
            };
            for line in &written {
                if !sink.record(line).await {
                    return;
                }
            }
            after = match (row.try_get("created_at"), row.try_get("id")) {
                (Ok(created_at), Ok(id)) => Some((created_at, id)),
                _ => return sink.failed(&"an order row without its keys"),
            };
        }
        if last_page {
            break;
        }
    }
    sink.finish().await;
}

/// The store's orders as CSV, one line per item, newest first, with the list's filters
/// (`page`, `per_page` and `sort` do not apply). Streamed.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/orders/export.csv", tag = "orders",
    params(("store_id" = Uuid, Path), OrderQuery, ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, description = "CSV, one line per order item", content_type = "text/csv", body = String), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn export_orders(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<OrderQuery>,
) -> Result<Response, ApiError> {
    let store_id = resource_id(&store_id)?;
    let filters = Filters::parse(&query)?;
    state.freshness.wait_for(ORDER_MODELS, min_position).await?;
    require_own_store(&state, &principal, store_id).await?;
    let reader = state.clone();
    Ok(streamed(
        "orders",
        format!("orders-{store_id}.csv"),
        move |sink| produce(reader, store_id, filters, sink),
    ))
}
