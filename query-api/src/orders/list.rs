//! The store's orders: filtered by derived status and each axis, creation time, the
//! customer's email, total and number; sorted; paginated.

use api_core::{
    ApiError, ApiQuery, FieldError, Listed, PageRequest, auth::Reader, listed, openapi::ReadErrors,
    resource_id,
};
use axum::{
    Json,
    extract::{Path, State},
};
use chrono::{DateTime, Utc};
use ordering::money;
use schemas::api::orders::OrderSummary;
use serde::Deserialize;
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder, Row};
use utoipa::IntoParams;
use uuid::Uuid;

use super::{ORDER_MODELS, contact_view, open_contact};
use crate::{catalog::require_own_store, freshness::MinPosition, state::QueryState};

const STATUSES: [&str; 6] = [
    "pending",
    "paid",
    "shipped",
    "delivered",
    "cancelled",
    "refunded",
];
const PAYMENT_STATUSES: [&str; 5] = [
    "pending",
    "paid",
    "partially_refunded",
    "refunded",
    "voided",
];
const FULFILLMENT_STATUSES: [&str; 4] = [
    "unfulfilled",
    "partially_fulfilled",
    "fulfilled",
    "delivered",
];
const SORTS: [(&str, &str); 6] = [
    ("-created_at", "created_at DESC, number DESC"),
    ("created_at", "created_at, number"),
    ("-total", "total DESC, number DESC"),
    ("total", "total, number"),
    ("-number", "number DESC"),
    ("number", "number"),
];

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct OrderQuery {
    /// Derived status: pending, paid, shipped, delivered, cancelled, refunded.
    status: Option<String>,
    payment_status: Option<String>,
    fulfillment_status: Option<String>,
    /// Created at or after (RFC 3339).
    created_from: Option<String>,
    /// Created before (RFC 3339).
    created_to: Option<String>,
    /// The customer's email, matched exactly (case-insensitively).
    email: Option<String>,
    /// Total in minor units, inclusive bounds.
    total_min: Option<i64>,
    total_max: Option<i64>,
    /// `1001` or `#1001`.
    number: Option<String>,
    /// `-created_at` (default), `created_at`, `-total`, `total`, `-number`, `number`.
    sort: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

pub(super) struct Filters {
    status: Option<String>,
    payment_status: Option<String>,
    fulfillment_status: Option<String>,
    created_from: Option<DateTime<Utc>>,
    created_to: Option<DateTime<Utc>>,
    email_digest: Option<String>,
    total_min: Option<i64>,
    total_max: Option<i64>,
    number: Option<i64>,
    order_by: &'static str,
    page: PageRequest,
}

fn one_of(errors: &mut Vec<FieldError>, field: &str, value: Option<&String>, allowed: &[&str]) {
    if let Some(value) = value
        && !allowed.contains(&value.as_str())
    {
        errors.push(FieldError::new(
            field,
            "invalid_choice",
            format!("must be one of {}", allowed.join(", ")),
        ));
    }
}

fn time(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&String>,
) -> Option<DateTime<Utc>> {
    let raw = value?;
    match DateTime::parse_from_rfc3339(raw) {
        Ok(at) => Some(at.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::new(field, "invalid_time", "an RFC 3339 time"));
            None
        }
    }
}

impl Filters {
    pub(super) fn parse(query: &OrderQuery) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        one_of(&mut errors, "status", query.status.as_ref(), &STATUSES);
        one_of(
            &mut errors,
            "payment_status",
            query.payment_status.as_ref(),
            &PAYMENT_STATUSES,
        );
        one_of(
            &mut errors,
            "fulfillment_status",
            query.fulfillment_status.as_ref(),
            &FULFILLMENT_STATUSES,
        );
        let created_from = time(&mut errors, "created_from", query.created_from.as_ref());
        let created_to = time(&mut errors, "created_to", query.created_to.as_ref());
        let email_digest = match query.email.as_deref().map(domain::Email::parse) {
            None => None,
            Some(Ok(email)) => Some(pii::email_digest(email.as_str())),
            Some(Err(_)) => {
                errors.push(FieldError::new(
                    "email",
                    "invalid_email",
                    "an email address",
                ));
                None
            }
        };
        let number = match query.number.as_deref() {
            None => None,
            Some(raw) => match raw.trim_start_matches('#').parse::<i64>() {
                Ok(number) if number > 0 => Some(number),
                _ => {
                    errors.push(FieldError::new(
                        "number",
                        "invalid_number",
                        "like 1001 or #1001",
                    ));
                    None
                }
            },
        };
        let order_by = match query.sort.as_deref() {
            None => SORTS[0].1,
            Some(sort) => match SORTS.iter().find(|(name, _)| *name == sort) {
                Some((_, order_by)) => order_by,
                None => {
                    let names: Vec<&str> = SORTS.iter().map(|(name, _)| *name).collect();
                    errors.push(FieldError::new(
                        "sort",
                        "invalid_choice",
                        format!("must be one of {}", names.join(", ")),
                    ));
                    SORTS[0].1
                }
            },
        };
        let page = match PageRequest::parse(query.page, query.per_page) {
            Ok(page) => Some(page),
            Err(ApiError::Validation(more)) => {
                errors.extend(more);
                None
            }
            Err(other) => return Err(other),
        };
        match page {
            Some(page) if errors.is_empty() => Ok(Self {
                status: query.status.clone(),
                payment_status: query.payment_status.clone(),
                fulfillment_status: query.fulfillment_status.clone(),
                created_from,
                created_to,
                email_digest,
                total_min: query.total_min,
                total_max: query.total_max,
                number,
                order_by,
                page,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }

    pub(super) fn push_where(&self, sql: &mut QueryBuilder<Postgres>, store_id: Uuid) {
        sql.push(" WHERE o.store_id = ").push_bind(store_id);
        let mut equals = |column: &str, value: &Option<String>| {
            if let Some(value) = value {
                sql.push(format!(" AND o.{column} = "))
                    .push_bind(value.clone());
            }
        };
        equals("status", &self.status);
        equals("payment_status", &self.payment_status);
        equals("fulfillment_status", &self.fulfillment_status);
        if let Some(from) = self.created_from {
            sql.push(" AND o.created_at >= ").push_bind(from);
        }
        if let Some(to) = self.created_to {
            sql.push(" AND o.created_at < ").push_bind(to);
        }
        if let Some(min) = self.total_min {
            sql.push(" AND o.total >= ").push_bind(min);
        }
        if let Some(max) = self.total_max {
            sql.push(" AND o.total <= ").push_bind(max);
        }
        if let Some(number) = self.number {
            sql.push(" AND o.number = ").push_bind(number);
        }
        if let Some(digest) = &self.email_digest {
            sql.push(
                " AND o.customer_id IN (SELECT c.id FROM customers c WHERE c.store_id = o.store_id \
                 AND c.email_digest = ",
            )
            .push_bind(digest.clone())
            .push(")");
        }
    }
}

/// The store's orders, newest first unless sorted otherwise.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/orders", tag = "orders",
    params(("store_id" = Uuid, Path), OrderQuery, ("X-Min-Position" = Option<i64>, Header, description = "Wait until this log position is readable")),
    responses((status = 200, body = Listed<OrderSummary>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn list_orders(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<OrderQuery>,
) -> Result<Json<Listed<OrderSummary>>, ApiError> {
    let store_id = resource_id(&store_id)?;
    let filters = Filters::parse(&query)?;
    state.freshness.wait_for(ORDER_MODELS, min_position).await?;
    require_own_store(&state, &principal, store_id).await?;
    let mut sql = QueryBuilder::new(
        "SELECT o.id, o.number, o.status, o.payment_status, o.fulfillment_status, \
         o.cancelled_at, o.customer_id, o.currency, o.total, o.paid, o.refunded, \
         o.state->'contact' AS contact, o.created_at, o.updated_at, o.version, \
         count(*) OVER () AS total_rows FROM orders o",
    );
    filters.push_where(&mut sql, store_id);
    sql.push(format!(" ORDER BY {} LIMIT ", filters.order_by))
        .push_bind(filters.page.limit())
        .push(" OFFSET ")
        .push_bind(filters.page.offset());
    let rows = sql
        .build()
        .persistent(false)
        .fetch_all(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    let mut total = 0;
    let mut orders = Vec::with_capacity(rows.len());
    for row in rows {
        total = row.try_get("total_rows").map_err(ApiError::internal)?;
        orders.push(summary(&state, &row).await.map_err(ApiError::internal)?);
    }
    if orders.is_empty() && filters.page.page > 1 {
        let mut count = QueryBuilder::new("SELECT count(*) FROM orders o");
        filters.push_where(&mut count, store_id);
        total = count
            .build_query_scalar()
            .persistent(false)
            .fetch_one(&state.pool)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(listed(orders, total, filters.page))
}

pub(super) async fn summary(
    state: &QueryState,
    row: &sqlx::postgres::PgRow,
) -> Result<OrderSummary, ApiError> {
    let get = |e: sqlx::Error| ApiError::internal(e);
    let currency: String = row.try_get("currency").map_err(get)?;
    let contact: Value = row.try_get("contact").map_err(get)?;
    let number: i64 = row.try_get("number").map_err(get)?;
    Ok(OrderSummary {
        id: row.try_get("id").map_err(get)?,
        number: format!("#{number}"),
        status: row.try_get("status").map_err(get)?,
        payment_status: row.try_get("payment_status").map_err(get)?,
        fulfillment_status: row.try_get("fulfillment_status").map_err(get)?,
        cancelled_at: row.try_get("cancelled_at").map_err(get)?,
        customer_id: row.try_get("customer_id").map_err(get)?,
        customer: open_contact(&state.vault, &contact)
            .await?
            .as_ref()
            .map(contact_view),
        total: money(row.try_get("total").map_err(get)?, &currency),
        paid: money(row.try_get("paid").map_err(get)?, &currency),
        refunded: money(row.try_get("refunded").map_err(get)?, &currency),
        created_at: row.try_get("created_at").map_err(get)?,
        updated_at: row.try_get("updated_at").map_err(get)?,
        version: row.try_get("version").map_err(get)?,
    })
}
