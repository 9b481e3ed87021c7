//! Store commands: create, update, pause, activate, delete.

mod commands;
mod parse;
pub(crate) mod slug;

pub(crate) use commands::StoreFold;

use api_core::{ApiError, ApiJson, openapi::ErrorEnvelope};
use axum::{
    extract::{Path, State},
    response::Response,
};
use schemas::api::stores::{CreateStoreRequest, StoreView, UpdateStoreRequest};
use utoipa_axum::{router::OpenApiRouter, routes};

use self::commands::{ChangeRequest, Intent};
use crate::{state::CommandState, write::WriteContext};

pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(create_store))
        .routes(routes!(update_store, delete_store))
        .routes(routes!(pause_store))
        .routes(routes!(activate_store))
}

/// Create a store. Its slug comes from the name, with `-2`, `-3`… when taken.
#[utoipa::path(
    post, path = "/api/v1/stores", tag = "stores",
    request_body = CreateStoreRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses(
        (status = 201, description = "Created", body = api_core::Data<StoreView>, headers(("ETag" = String, description = "The store's version, for If-Match"), ("X-Position" = i64, description = "The log position written, for X-Min-Position"))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope),
        (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn create_store(
    State(state): State<CommandState>,
    context: WriteContext,
    body: ApiJson<CreateStoreRequest>,
) -> Result<Response, ApiError> {
    let new = parse::new_store(&body.value)?;
    let idempotency = context.idempotency(&body.raw);
    commands::create(&state, context.principal, idempotency, new).await
}

/// Change a store's name, niche or description. A new name gives it a new slug.
#[utoipa::path(
    patch, path = "/api/v1/stores/{store_id}", tag = "stores",
    request_body = UpdateStoreRequest,
    params(
        ("store_id" = Uuid, Path),
        ("If-Match" = Option<String>, Header, description = "The version this change is based on"),
        ("Idempotency-Key" = Option<String>, Header),
    ),
    responses(
        (status = 200, description = "Updated (or already so)", body = api_core::Data<StoreView>, headers(("ETag" = String, description = "The store's version, for If-Match"), ("X-Position" = i64, description = "The log position written, for X-Min-Position"))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`If-Match` is not the current version", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn update_store(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
    body: ApiJson<UpdateStoreRequest>,
) -> Result<Response, ApiError> {
    let changes = parse::store_changes(&body.value)?;
    let request = change_request(context, store_id, &body.raw, Intent::Update(changes));
    commands::change(&state, request).await
}

/// Pause a store: its storefront goes dark until it is activated.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/pause", tag = "stores",
    params(("store_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = api_core::Data<StoreView>, headers(("ETag" = String, description = "The store's version, for If-Match"), ("X-Position" = i64, description = "The log position written, for X-Min-Position"))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "Already paused, or `If-Match` is stale", body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn pause_store(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    commands::change(
        &state,
        change_request(context, store_id, &[], Intent::Pause),
    )
    .await
}

/// Activate a paused store.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/activate", tag = "stores",
    params(("store_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = api_core::Data<StoreView>, headers(("ETag" = String, description = "The store's version, for If-Match"), ("X-Position" = i64, description = "The log position written, for X-Min-Position"))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "Already active, or `If-Match` is stale", body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn activate_store(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    commands::change(
        &state,
        change_request(context, store_id, &[], Intent::Activate),
    )
    .await
}

/// Delete a store (softly: its history stays in the log, its slug is freed).
#[utoipa::path(
    delete, path = "/api/v1/stores/{store_id}", tag = "stores",
    params(("store_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = api_core::Data<StoreView>, headers(("ETag" = String, description = "The store's version, for If-Match"), ("X-Position" = i64, description = "The log position written, for X-Min-Position"))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn delete_store(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    commands::change(
        &state,
        change_request(context, store_id, &[], Intent::Delete),
    )
    .await
}

fn change_request(
    context: WriteContext,
    raw_store_id: String,
    body: &[u8],
    intent: Intent,
) -> ChangeRequest {
    ChangeRequest {
        idempotency: context.idempotency(body),
        principal: context.principal,
        raw_store_id,
        if_match: context.if_match.0,
        intent,
    }
}
