//! Manual deliveries: one event sent now, and everything that failed for a service in
//! a time window sent again. Both are `manual` attempts in the delivery log.

use api_core::{ApiError, ApiJson, Data, FieldError, openapi::WriteErrors};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use bridge_relay::queue;
use domain::integration::Target;
use schemas::api::bridge::{DispatchRequest, QueuedDeliveryView, RedeliverRequest, RedeliveryView};
use uuid::Uuid;

use crate::{aggregate::owned_store, state::CommandState, write::WriteContext};

fn invalid(field: &str, code: &str, message: &str) -> ApiError {
    ApiError::Validation(vec![FieldError::new(field, code, message)])
}

/// Send one event of the caller's stores now: to the named service or integration, or
/// to every endpoint it routes to. Answers the queued deliveries; their attempts appear
/// in the activity with `trigger: manual`.
#[utoipa::path(
    post, path = "/api/v1/bridge/dispatch", tag = "bridge",
    request_body = DispatchRequest,
    responses((status = 202, body = api_core::Data<Vec<QueuedDeliveryView>>), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn dispatch(
    State(state): State<CommandState>,
    context: WriteContext,
    body: ApiJson<DispatchRequest>,
) -> Result<(StatusCode, Json<Data<Vec<QueuedDeliveryView>>>), ApiError> {
    let request = &body.value;
    let event = eventlog::read_event(state.pool(), request.event_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotFound)?;
    let store_id = event.store_id.ok_or(ApiError::NotFound)?;
    owned_store(&state, &context.principal, store_id).await?;
    let endpoints = queue::load_endpoints(state.pool(), &[store_id])
        .await
        .map_err(ApiError::internal)?;
    let chosen: Vec<_> = match (&request.integration_id, &request.service) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "service",
                "conflicting",
                "give service or integration_id, not both",
            ));
        }
        (Some(id), None) => endpoints.iter().filter(|e| e.id == *id).collect(),
        (None, Some(service)) => {
            if Target::parse(service).is_none() {
                return Err(invalid(
                    "service",
                    "unknown_service",
                    "not a service of the platform",
                ));
            }
            endpoints.iter().filter(|e| &e.target == service).collect()
        }
        (None, None) => queue::routed(&endpoints, &event),
    };
    let field = if request.integration_id.is_some() {
        "integration_id"
    } else {
        "service"
    };
    if chosen.is_empty() {
        return Err(invalid(
            field,
            "not_connected",
            "no integration of this store receives it",
        ));
    }
    if chosen.iter().any(|e| !e.enabled) {
        return Err(invalid(
            field,
            "disabled",
            "the integration is disabled; enable it first",
        ));
    }
    let queued = queue::dispatch(state.pool(), &event, store_id, &chosen, &state.vault)
        .await
        .map_err(ApiError::internal)?;
    let views = queued
        .into_iter()
        .map(|q| QueuedDeliveryView {
            delivery_id: q.delivery_id,
            integration_id: q.endpoint_id,
            service: q.target,
        })
        .collect();
    Ok((StatusCode::ACCEPTED, api_core::data(views)))
}

/// Send again everything that failed for a service (or `webhook`) in `[from, to)` and
/// was not delivered since, to integrations that are enabled: one manual attempt each.
#[utoipa::path(
    post, path = "/api/v1/bridge/service/{name}/redeliver", tag = "bridge",
    request_body = RedeliverRequest,
    params(("name" = String, Path)),
    responses((status = 202, body = api_core::Data<RedeliveryView>), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn redeliver(
    State(state): State<CommandState>,
    Path(name): Path<String>,
    context: WriteContext,
    body: ApiJson<RedeliverRequest>,
) -> Result<(StatusCode, Json<Data<RedeliveryView>>), ApiError> {
    let target = Target::parse(&name).ok_or(ApiError::NotFound)?;
    let request = &body.value;
    if request.from >= request.to {
        return Err(invalid("to", "out_of_range", "must be after `from`"));
    }
    let stores: Vec<Uuid> = match request.store_id {
        Some(store_id) => {
            owned_store(&state, &context.principal, store_id).await?;
            vec![store_id]
        }
        None => {
            sqlx::query_scalar("SELECT id FROM stores WHERE owner_id = $1 AND status <> 'deleted'")
                .bind(context.principal.merchant_id)
                .fetch_all(state.pool())
                .await
                .map_err(ApiError::internal)?
        }
    };
    let queued = queue::redeliver_failed(
        state.pool(),
        &stores,
        target.as_str(),
        request.from,
        request.to,
    )
    .await
    .map_err(ApiError::internal)?;
    Ok((
        StatusCode::ACCEPTED,
        api_core::data(RedeliveryView { queued }),
    ))
}
