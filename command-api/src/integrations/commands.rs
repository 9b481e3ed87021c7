//! Connect, change, rotate and disconnect integrations and webhooks.

use api_core::{ApiError, ApiJson, openapi::WriteErrors, resource_id};
use axum::{
    extract::{Path, State},
    response::Response,
};
use domain::integration::{Connection, IntegrationCommand, Target};
use schemas::{
    api::bridge::{
        ConnectIntegrationRequest, CreateWebhookRequest, IntegrationView, UpdateIntegrationRequest,
    },
    integration::DisconnectReason,
};
use uuid::Uuid;

use super::{aggregate::IntegrationOf, parse};
use crate::{
    aggregate::{Answer, Write, execute_plain, owned_store},
    state::CommandState,
    write::{Idempotency, WriteContext},
};

/// A new `whsec_` secret, stored under a new id before the event that names it.
async fn new_secret(
    state: &CommandState,
    integration_id: Uuid,
) -> Result<(Uuid, String), ApiError> {
    let (secret_id, secret) = (Uuid::now_v7(), bridge_relay::new_secret());
    sqlx::query("INSERT INTO integration_secrets (id, integration_id, secret) VALUES ($1, $2, $3)")
        .bind(secret_id)
        .bind(integration_id)
        .bind(&secret)
        .execute(state.pool())
        .await
        .map_err(ApiError::internal)?;
    Ok((secret_id, secret))
}

async fn connect<const WEBHOOK: bool>(
    state: &CommandState,
    context: &WriteContext,
    store_id: Uuid,
    target: Target,
    connection: parse::Connection,
    raw: &[u8],
) -> Result<Response, ApiError> {
    owned_store(state, &context.principal, store_id).await?;
    let integration_id = Uuid::now_v7();
    let idempotency = context.idempotency(raw);
    if let Some(previous) = Idempotency::previous(idempotency.as_ref(), state.pool()).await? {
        return Ok(previous.into_http(true));
    }
    let (secret_id, secret) = new_secret(state, integration_id).await?;
    let command = IntegrationCommand::Connect(Connection {
        store_id,
        target,
        endpoint_url: connection.endpoint_url,
        event_types: connection.event_types,
        description: connection.description,
        secret_id,
    });
    execute_plain::<IntegrationOf<WEBHOOK>>(
        state,
        &Write::of(
            context,
            idempotency.as_ref(),
            store_id,
            integration_id,
            true,
        )
        .revealing(&secret),
        |_| Ok(command.clone()),
    )
    .await
    .map(Answer::into_http)
}

async fn change<const WEBHOOK: bool>(
    state: &CommandState,
    context: &WriteContext,
    (store_id, id): (&str, &str),
    command: impl Fn() -> Result<IntegrationCommand, ApiError>,
    raw: &[u8],
) -> Result<Response, ApiError> {
    let (store_id, id) = (resource_id(store_id)?, resource_id(id)?);
    owned_store(state, &context.principal, store_id).await?;
    let command = command()?;
    let idempotency = context.idempotency(raw);
    execute_plain::<IntegrationOf<WEBHOOK>>(
        state,
        &Write::of(context, idempotency.as_ref(), store_id, id, false),
        |_| Ok(command.clone()),
    )
    .await
    .map(Answer::into_http)
}

async fn rotate<const WEBHOOK: bool>(
    state: &CommandState,
    context: &WriteContext,
    (store_id, id): (&str, &str),
) -> Result<Response, ApiError> {
    let (store_id, id) = (resource_id(store_id)?, resource_id(id)?);
    owned_store(state, &context.principal, store_id).await?;
    let idempotency = context.idempotency(&[]);
    if let Some(previous) = Idempotency::previous(idempotency.as_ref(), state.pool()).await? {
        return Ok(previous.into_http(true));
    }
    let (secret_id, secret) = new_secret(state, id).await?;
    let command = IntegrationCommand::RotateSecret {
        secret_id,
        now_micros: chrono::Utc::now().timestamp_micros(),
    };
    execute_plain::<IntegrationOf<WEBHOOK>>(
        state,
        &Write::of(context, idempotency.as_ref(), store_id, id, false).revealing(&secret),
        |_| Ok(command.clone()),
    )
    .await
    .map(Answer::into_http)
}

/// Connect one of the platform's services. The answer carries the signing secret,
/// once; the service is told which store connected it by a first, signed delivery
/// (`integration.connected`).
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/integrations", tag = "bridge",
    request_body = ConnectIntegrationRequest,
    params(("store_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = api_core::Data<IntegrationView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn connect_integration(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
    body: ApiJson<ConnectIntegrationRequest>,
) -> Result<Response, ApiError> {
    let store_id = resource_id(&store_id)?;
    let request = &body.value;
    let target = parse::target(&request.service, state.service_urls())?;
    let connection = parse::connection(
        None,
        &request.event_types,
        request.description.as_deref(),
        state.addresses(),
    )?;
    connect::<false>(&state, &context, store_id, target, connection, &body.raw).await
}

/// Change a service integration's filter or description, or enable/disable it.
#[utoipa::path(
    patch, path = "/api/v1/stores/{store_id}/integrations/{integration_id}", tag = "bridge",
    request_body = UpdateIntegrationRequest,
    params(("store_id" = Uuid, Path), ("integration_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = api_core::Data<IntegrationView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn update_integration(
    State(state): State<CommandState>,
    Path((store_id, id)): Path<(String, String)>,
    context: WriteContext,
    body: ApiJson<UpdateIntegrationRequest>,
) -> Result<Response, ApiError> {
    let command = || parse::changes(&body.value, state.addresses()).map(IntegrationCommand::Update);
    change::<false>(&state, &context, (&store_id, &id), command, &body.raw).await
}

/// Disconnect a service: nothing more is delivered to it, and the store may connect it again.
#[utoipa::path(
    delete, path = "/api/v1/stores/{store_id}/integrations/{integration_id}", tag = "bridge",
    params(("store_id" = Uuid, Path), ("integration_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, description = "Disconnected", body = api_core::Data<Object>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn disconnect_integration(
    State(state): State<CommandState>,
    Path((store_id, id)): Path<(String, String)>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    let command = || Ok(IntegrationCommand::Disconnect(DisconnectReason::Merchant));
    change::<false>(&state, &context, (&store_id, &id), command, &[]).await
}

/// A new signing secret, answered once; the previous one keeps signing beside it for 24 h.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/integrations/{integration_id}/rotate-secret", tag = "bridge",
    params(("store_id" = Uuid, Path), ("integration_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = api_core::Data<IntegrationView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn rotate_integration_secret(
    State(state): State<CommandState>,
    Path((store_id, id)): Path<(String, String)>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    rotate::<false>(&state, &context, (&store_id, &id)).await
}

/// Register a webhook endpoint of the merchant's own for event types of this store.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/webhooks", tag = "bridge",
    request_body = CreateWebhookRequest,
    params(("store_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = api_core::Data<IntegrationView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn create_webhook(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
    body: ApiJson<CreateWebhookRequest>,
) -> Result<Response, ApiError> {
    let store_id = resource_id(&store_id)?;
    let request = &body.value;
    let connection = parse::connection(
        Some(&request.endpoint_url),
        &request.event_types,
        request.description.as_deref(),
        state.addresses(),
    )?;
    connect::<true>(
        &state,
        &context,
        store_id,
        Target::Webhook,
        connection,
        &body.raw,
    )
    .await
}

/// Change a webhook's URL, event types or description, or enable/disable it.
#[utoipa::path(
    patch, path = "/api/v1/stores/{store_id}/webhooks/{webhook_id}", tag = "bridge",
    request_body = UpdateIntegrationRequest,
    params(("store_id" = Uuid, Path), ("webhook_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = api_core::Data<IntegrationView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn update_webhook(
    State(state): State<CommandState>,
    Path((store_id, id)): Path<(String, String)>,
    context: WriteContext,
    body: ApiJson<UpdateIntegrationRequest>,
) -> Result<Response, ApiError> {
    let command = || parse::changes(&body.value, state.addresses()).map(IntegrationCommand::Update);
    change::<true>(&state, &context, (&store_id, &id), command, &body.raw).await
}

/// Remove a webhook endpoint.
#[utoipa::path(
    delete, path = "/api/v1/stores/{store_id}/webhooks/{webhook_id}", tag = "bridge",
    params(("store_id" = Uuid, Path), ("webhook_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, description = "Removed", body = api_core::Data<Object>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn delete_webhook(
    State(state): State<CommandState>,
    Path((store_id, id)): Path<(String, String)>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    let command = || Ok(IntegrationCommand::Disconnect(DisconnectReason::Merchant));
    change::<true>(&state, &context, (&store_id, &id), command, &[]).await
}

/// A new signing secret for a webhook; the previous one keeps signing for 24 h.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/webhooks/{webhook_id}/rotate-secret", tag = "bridge",
    params(("store_id" = Uuid, Path), ("webhook_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = api_core::Data<IntegrationView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn rotate_webhook_secret(
    State(state): State<CommandState>,
    Path((store_id, id)): Path<(String, String)>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    rotate::<true>(&state, &context, (&store_id, &id)).await
}
