//! A store's integrations (services) and webhooks, as the relay routes them.

use api_core::{
    ApiError, ApiQuery, Data, Listed, PageRequest, auth::Reader, data, listed, openapi::ReadErrors,
    resource_id,
};
use axum::{
    Json,
    extract::{Path, State},
};
use chrono::{DateTime, Utc};
use domain::integration::receives;
use schemas::api::bridge::IntegrationView;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::{
    catalog::require_own_store,
    freshness::{MinPosition, ReadModel},
    state::QueryState,
};

/// Integrations are written by the log and applied by the relay's consumer.
const MODELS: &[ReadModel] = &[ReadModel::Stores, ReadModel::Bridge];

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

#[derive(sqlx::FromRow)]
struct IntegrationRow {
    id: Uuid,
    store_id: Uuid,
    target: String,
    url: String,
    event_types: Vec<String>,
    description: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    previous_secret_until: Option<DateTime<Utc>>,
    version: i32,
    total: i64,
}

impl IntegrationRow {
    fn view(self) -> IntegrationView {
        IntegrationView {
            id: self.id,
            store_id: self.store_id,
            receives: receives(&self.target, &self.event_types),
            service: self.target,
            endpoint_url: Some(self.url).filter(|url| !url.is_empty()),
            event_types: self.event_types,
            description: self.description,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            previous_secret_valid_until: self
                .previous_secret_until
                .filter(|until| *until > Utc::now()),
            version: self.version,
            secret: None,
        }
    }
}

macro_rules! integration_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, store_id, target, url, event_types, description, enabled, disabled_reason, \
             previous_secret_until, version, count(*) OVER () AS total FROM bridge_endpoints \
             WHERE store_id = $1 AND (target = 'webhook') = $2 ",
            $tail
        )
    };
}

async fn page(
    state: &QueryState,
    principal: &api_core::auth::Principal,
    (store_id, webhooks): (&str, bool),
    min_position: Option<i64>,
    query: PageQuery,
) -> Result<Json<Listed<IntegrationView>>, ApiError> {
    let store_id = resource_id(store_id)?;
    let page = PageRequest::parse(query.page, query.per_page)?;
    state.freshness.wait_for(MODELS, min_position).await?;
    require_own_store(state, principal, store_id).await?;
    let rows: Vec<IntegrationRow> = sqlx::query_as(integration_select!(
        "ORDER BY connected_at, id LIMIT $3 OFFSET $4"
    ))
    .bind(store_id)
    .bind(webhooks)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&state.pool)
    .await
    .map_err(ApiError::internal)?;
    let total = rows.first().map_or(0, |r| r.total);
    Ok(listed(
        rows.into_iter().map(IntegrationRow::view).collect(),
        total,
        page,
    ))
}

async fn one(
    state: &QueryState,
    principal: &api_core::auth::Principal,
    (store_id, id, webhooks): (&str, &str, bool),
    min_position: Option<i64>,
) -> Result<Json<Data<IntegrationView>>, ApiError> {
    let (store_id, id) = (resource_id(store_id)?, resource_id(id)?);
    state.freshness.wait_for(MODELS, min_position).await?;
    require_own_store(state, principal, store_id).await?;
    let row: Option<IntegrationRow> = sqlx::query_as(integration_select!("AND id = $3"))
        .bind(store_id)
        .bind(webhooks)
        .bind(id)
        .fetch_optional(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    row.map(|row| data(row.view())).ok_or(ApiError::NotFound)
}

/// The store's connected services, in the order they were connected. Secrets are never shown.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/integrations", tag = "bridge",
    params(("store_id" = Uuid, Path), PageQuery, ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Listed<IntegrationView>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn list_integrations(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Listed<IntegrationView>>, ApiError> {
    page(&state, &principal, (&store_id, false), min_position, query).await
}

/// One connected service.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/integrations/{integration_id}", tag = "bridge",
    params(("store_id" = Uuid, Path), ("integration_id" = Uuid, Path), ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Data<IntegrationView>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn get_integration(
    State(state): State<QueryState>,
    Path((store_id, id)): Path<(String, String)>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
) -> Result<Json<Data<IntegrationView>>, ApiError> {
    one(&state, &principal, (&store_id, &id, false), min_position).await
}

/// The store's own webhook endpoints.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/webhooks", tag = "bridge",
    params(("store_id" = Uuid, Path), PageQuery, ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Listed<IntegrationView>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn list_webhooks(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Listed<IntegrationView>>, ApiError> {
    page(&state, &principal, (&store_id, true), min_position, query).await
}

/// One webhook endpoint.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/webhooks/{webhook_id}", tag = "bridge",
    params(("store_id" = Uuid, Path), ("webhook_id" = Uuid, Path), ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, body = Data<IntegrationView>), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn get_webhook(
    State(state): State<QueryState>,
    Path((store_id, id)): Path<(String, String)>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
) -> Result<Json<Data<IntegrationView>>, ApiError> {
    one(&state, &principal, (&store_id, &id, true), min_position).await
}
