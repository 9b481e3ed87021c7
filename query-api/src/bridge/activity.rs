//! The delivery log of the caller's stores: every attempt, newest first, filtered; and
//! each service's last 24 hours at a glance.

use api_core::{
    ApiError, ApiQuery, Data, Listed, PageRequest,
    auth::{Principal, Reader},
    data, listed,
    openapi::ReadErrors,
};
use axum::{
    Json,
    extract::{Path, State},
};
use chrono::{DateTime, Utc};
use domain::integration::{Service, Target};
use schemas::api::bridge::{DeliveryAttemptView, LastError, ServiceSummary};
use serde::Deserialize;
use sqlx::Row;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::{catalog::require_own_store, state::QueryState};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    /// A service name or `webhook`.
    pub service: Option<String>,
    pub event_type: Option<String>,
    pub success: Option<bool>,
    pub store_id: Option<Uuid>,
    /// Attempts at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Attempts before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StoreQuery {
    pub store_id: Option<Uuid>,
}

/// The stores whose deliveries the caller may see: the one asked for (if theirs), or all.
async fn scope(
    state: &QueryState,
    principal: &Principal,
    store_id: Option<Uuid>,
) -> Result<Vec<Uuid>, ApiError> {
    if let Some(store_id) = store_id {
        require_own_store(state, principal, store_id).await?;
        return Ok(vec![store_id]);
    }
    sqlx::query_scalar("SELECT id FROM stores WHERE owner_id = $1 AND status <> 'deleted'")
        .bind(principal.merchant_id)
        .fetch_all(&state.pool)
        .await
        .map_err(ApiError::internal)
}

struct Resource<'a> {
    kind: &'a str,
    id: &'a str,
}

async fn attempts(
    state: &QueryState,
    principal: &Principal,
    query: ActivityQuery,
    resource: Option<Resource<'_>>,
) -> Result<Json<Listed<DeliveryAttemptView>>, ApiError> {
    let page = PageRequest::parse(query.page, query.per_page)?;
    let stores = scope(state, principal, query.store_id).await?;
    let rows = sqlx::query(
        "SELECT id, message_id, event_id, event_type, store_id, resource_type, resource_id, \
           endpoint_id, service, attempt, trigger, status_code, latency_ms, response_excerpt, \
           error, success, attempted_at, count(*) OVER () AS total \
         FROM bridge_deliveries \
         WHERE store_id = ANY($1) \
           AND ($2::text IS NULL OR service = $2) \
           AND ($3::text IS NULL OR event_type = $3) \
           AND ($4::bool IS NULL OR success = $4) \
           AND ($5::timestamptz IS NULL OR attempted_at >= $5) \
           AND ($6::timestamptz IS NULL OR attempted_at < $6) \
           AND ($7::text IS NULL OR (resource_type = $7 AND resource_id = $8)) \
         ORDER BY attempted_at DESC, id DESC LIMIT $9 OFFSET $10",
    )
    .bind(&stores)
    .bind(&query.service)
    .bind(&query.event_type)
    .bind(query.success)
    .bind(query.from)
    .bind(query.to)
    .bind(resource.as_ref().map(|r| r.kind))
    .bind(resource.as_ref().map(|r| r.id))
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let total = rows
        .first()
        .map(|row| row.try_get::<i64, _>("total"))
        .transpose()
        .map_err(ApiError::internal)?
        .unwrap_or(0);
    let views = rows
        .iter()
        .map(|row| {
            Ok(DeliveryAttemptView {
                id: row.try_get("id")?,
                delivery_id: row.try_get("message_id")?,
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                store_id: row.try_get("store_id")?,
                resource_type: row.try_get("resource_type")?,
                resource_id: row.try_get("resource_id")?,
                integration_id: row.try_get("endpoint_id")?,
                service: row.try_get("service")?,
                attempt: row.try_get("attempt")?,
                trigger: row.try_get("trigger")?,
                status_code: row.try_get("status_code")?,
                latency_ms: row.try_get("latency_ms")?,
                response_excerpt: row.try_get("response_excerpt")?,
                error: row.try_get("error")?,
                success: row.try_get("success")?,
                attempted_at: row.try_get("attempted_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(ApiError::internal)?;
    Ok(listed(views, total, page))
}

/// Every delivery attempt to the caller's stores' integrations and webhooks, newest first.
#[utoipa::path(
    get, path = "/api/v1/bridge/activity", tag = "bridge",
    params(ActivityQuery),
    responses((status = 200, body = Listed<DeliveryAttemptView>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn activity(
    State(state): State<QueryState>,
    Reader(principal): Reader,
    ApiQuery(query): ApiQuery<ActivityQuery>,
) -> Result<Json<Listed<DeliveryAttemptView>>, ApiError> {
    attempts(&state, &principal, query, None).await
}

/// The attempts to deliver the events of one resource (`product`, `order`, …).
#[utoipa::path(
    get, path = "/api/v1/bridge/activity/{resource_type}/{resource_id}", tag = "bridge",
    params(("resource_type" = String, Path), ("resource_id" = String, Path), ActivityQuery),
    responses((status = 200, body = Listed<DeliveryAttemptView>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn resource_activity(
    State(state): State<QueryState>,
    Path((kind, id)): Path<(String, String)>,
    Reader(principal): Reader,
    ApiQuery(query): ApiQuery<ActivityQuery>,
) -> Result<Json<Listed<DeliveryAttemptView>>, ApiError> {
    attempts(
        &state,
        &principal,
        query,
        Some(Resource {
            kind: &kind,
            id: &id,
        }),
    )
    .await
}

/// The attempts to one service (or `webhook` for the merchant's own endpoints).
#[utoipa::path(
    get, path = "/api/v1/bridge/service/{name}/activity", tag = "bridge",
    params(("name" = String, Path), ActivityQuery),
    responses((status = 200, body = Listed<DeliveryAttemptView>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn service_activity(
    State(state): State<QueryState>,
    Path(name): Path<String>,
    Reader(principal): Reader,
    ApiQuery(mut query): ApiQuery<ActivityQuery>,
) -> Result<Json<Listed<DeliveryAttemptView>>, ApiError> {
    if Target::parse(&name).is_none() {
        return Err(ApiError::NotFound);
    }
    query.service = Some(name);
    attempts(&state, &principal, query, None).await
}

/// Each service's last 24 hours over the caller's stores (or one of them): attempts,
/// successes, failures, success rate, latency p50/p95 and the last error.
#[utoipa::path(
    get, path = "/api/v1/bridge/summary", tag = "bridge",
    params(StoreQuery),
    responses((status = 200, body = Data<Vec<ServiceSummary>>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn summary(
    State(state): State<QueryState>,
    Reader(principal): Reader,
    ApiQuery(query): ApiQuery<StoreQuery>,
) -> Result<Json<Data<Vec<ServiceSummary>>>, ApiError> {
    let stores = scope(&state, &principal, query.store_id).await?;
    let rows = sqlx::query(
        "SELECT service, count(*) AS attempts, count(*) FILTER (WHERE success) AS successes, \
           percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50, \
           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95, \
           (array_agg(error ORDER BY attempted_at DESC, id DESC) FILTER (WHERE NOT success))[1] AS last_error, \
           (array_agg(status_code ORDER BY attempted_at DESC, id DESC) FILTER (WHERE NOT success))[1] AS last_status, \
           max(attempted_at) FILTER (WHERE NOT success) AS last_error_at \
         FROM bridge_deliveries \
         WHERE store_id = ANY($1) AND attempted_at > now() - interval '24 hours' \
         GROUP BY service",
    )
    .bind(&stores)
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let names = Service::ALL
        .iter()
        .map(|s| s.as_str())
        .chain([Target::WEBHOOK]);
    let summaries = names
        .map(|name| {
            let Some(row) = rows
                .iter()
                .find(|row| row.try_get::<String, _>("service").is_ok_and(|s| s == name))
            else {
                return Ok(ServiceSummary {
                    service: name.to_owned(),
                    attempts: 0,
                    successes: 0,
                    failures: 0,
                    success_rate: None,
                    latency_p50_ms: None,
                    latency_p95_ms: None,
                    last_error: None,
                });
            };
            let attempts: i64 = row.try_get("attempts")?;
            let successes: i64 = row.try_get("successes")?;
            let last_error = match row.try_get::<Option<DateTime<Utc>>, _>("last_error_at")? {
                Some(at) => Some(LastError {
                    message: row.try_get("last_error")?,
                    status_code: row
                        .try_get::<Option<i32>, _>("last_status")?
                        .unwrap_or_default(),
                    at,
                }),
                None => None,
            };
            Ok(ServiceSummary {
                service: name.to_owned(),
                attempts,
                successes,
                failures: attempts - successes,
                success_rate: (attempts > 0).then(|| successes as f64 / attempts as f64),
                latency_p50_ms: row.try_get("p50")?,
                latency_p95_ms: row.try_get("p95")?,
                last_error,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(ApiError::internal)?;
    Ok(data(summaries))
}
