//! API keys: long-lived credentials for integrations, limited to `read` and/or `write`.

use api_core::{
    ApiError, ApiJson, ApiQuery, Data, FieldError, Listed, PageRequest,
    auth::{Reader, Scope, SessionPrincipal, generate_api_key},
    data, listed,
    openapi::ErrorEnvelope,
    resource_id,
};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use domain::DisplayName;
use schemas::api::accounts::{ApiKeyView, CreateApiKeyRequest, CreatedApiKey};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{fields::Fields, state::CommandState};

pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
}

type KeyRow = (
    Uuid,
    String,
    String,
    Vec<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

fn view((id, name, prefix, scopes, created_at, revoked_at): KeyRow) -> ApiKeyView {
    ApiKeyView {
        id,
        name,
        prefix,
        scopes,
        created_at,
        revoked_at,
    }
}

fn parse_scopes(fields: &mut Fields, raw: &[String]) -> Vec<Scope> {
    let mut scopes = Vec::new();
    for (index, scope) in raw.iter().enumerate() {
        match Scope::parse(scope) {
            Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
            Some(_) => {}
            None => fields.push(FieldError::new(
                format!("scopes[{index}]"),
                "invalid_scope",
                "must be `read`, `write` or `events:read`",
            )),
        }
    }
    if raw.is_empty() {
        fields.push(FieldError::new(
            "scopes",
            "required",
            "name at least one scope",
        ));
    }
    scopes
}

/// Create a key. The key itself is in this answer and nowhere else, ever. Only a
/// logged-in session may mint keys: a key that could would grant scopes it lacks.
#[utoipa::path(
    post, path = "/api/v1/api-keys", tag = "api-keys",
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, body = Data<CreatedApiKey>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
async fn create_api_key(
    State(state): State<CommandState>,
    principal: SessionPrincipal,
    body: ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<Data<CreatedApiKey>>), ApiError> {
    let mut fields = Fields::default();
    let name = fields.check("name", DisplayName::parse(&body.value.name));
    let scopes = parse_scopes(&mut fields, &body.value.scopes);
    let name = fields.finish(|| name)?;
    let generated = generate_api_key();
    let scope_names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let row: KeyRow = sqlx::query_as(
        "INSERT INTO api_keys (id, merchant_id, name, prefix, key_sha256, scopes) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING id, name, prefix, scopes, created_at, revoked_at",
    )
    .bind(Uuid::now_v7())
    .bind(principal.merchant_id)
    .bind(name.as_str())
    .bind(&generated.prefix)
    .bind(&generated.sha256)
    .bind(&scope_names)
    .fetch_one(state.pool())
    .await
    .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        data(CreatedApiKey {
            api_key: view(row),
            key: generated.raw,
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListKeys {
    page: Option<u32>,
    per_page: Option<u32>,
}

/// The caller's keys that still work, newest first, by prefix only.
#[utoipa::path(
    get, path = "/api/v1/api-keys", tag = "api-keys",
    params(ListKeys),
    responses(
        (status = 200, body = Listed<ApiKeyView>),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn list_api_keys(
    State(state): State<CommandState>,
    Reader(principal): Reader,
    ApiQuery(query): ApiQuery<ListKeys>,
) -> Result<Json<Listed<ApiKeyView>>, ApiError> {
    let page = PageRequest::parse(query.page, query.per_page)?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys WHERE merchant_id = $1 AND revoked_at IS NULL",
    )
    .bind(principal.merchant_id)
    .fetch_one(state.pool())
    .await
    .map_err(ApiError::internal)?;
    let rows: Vec<KeyRow> = sqlx::query_as(
        "SELECT id, name, prefix, scopes, created_at, revoked_at FROM api_keys \
         WHERE merchant_id = $1 AND revoked_at IS NULL \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(principal.merchant_id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(state.pool())
    .await
    .map_err(ApiError::internal)?;
    Ok(listed(rows.into_iter().map(view).collect(), total, page))
}

/// Revoke a key: it stops authenticating at once. Needs a logged-in session, like
/// creating one: a leaked key must not be able to revoke the merchant's other keys.
#[utoipa::path(
    delete, path = "/api/v1/api-keys/{key_id}", tag = "api-keys",
    params(("key_id" = Uuid, Path)),
    responses(
        (status = 200, body = Data<ApiKeyView>),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
async fn revoke_api_key(
    State(state): State<CommandState>,
    principal: SessionPrincipal,
    Path(key_id): Path<String>,
) -> Result<Json<Data<ApiKeyView>>, ApiError> {
    let key_id = resource_id(&key_id)?;
    let row: Option<KeyRow> = sqlx::query_as(
        "UPDATE api_keys SET revoked_at = now() \
         WHERE id = $1 AND merchant_id = $2 AND revoked_at IS NULL \
         RETURNING id, name, prefix, scopes, created_at, revoked_at",
    )
    .bind(key_id)
    .bind(principal.merchant_id)
    .fetch_optional(state.pool())
    .await
    .map_err(ApiError::internal)?;
    state.authenticator.forget_api_keys();
    row.map(|row| data(view(row))).ok_or(ApiError::NotFound)
}
