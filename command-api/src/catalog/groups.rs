//! Category and collection commands: create, update, delete.

use api_core::{ApiError, ApiJson, FieldError, openapi::WriteErrors, resource_id};
use axum::{
    extract::{Path, State},
    response::Response,
};
use domain::{
    Slug,
    catalog::{
        Category, CategoryCommand, Collection, CollectionCommand, GroupChanges, GroupDetails,
        ParentCategory,
    },
    store::Change,
};
use schemas::api::catalog::{
    CategoryView, CollectionView, CreateCategoryRequest, CreateCollectionRequest,
    UpdateCategoryRequest, UpdateCollectionRequest,
};
use uuid::Uuid;

use super::{
    aggregates::{
        CategoryFold, CollectionFold, IdentifiedCategoryCommand, category_slug_scope,
        collection_slug_scope,
    },
    parse::{group, group_changes},
    products::slug_for,
    references::require_live,
};
use crate::{
    aggregate::{Answer, Write, execute_plain, execute_with_slug, owned_store},
    state::CommandState,
    write::WriteContext,
};

/// The parent a request names, looked up in the log: a live category of this store.
async fn parent(
    state: &CommandState,
    store_id: Uuid,
    parent_id: Uuid,
) -> Result<ParentCategory, ApiError> {
    let loaded = eventlog::load::<CategoryFold>(
        state.pool(),
        &format!("category-{parent_id}"),
        state.snapshot_every(),
    )
    .await
    .map_err(ApiError::internal)?;
    match loaded.state {
        Category::Existing(parent) if parent.store_id == store_id => Ok(ParentCategory {
            category_id: parent_id,
            has_parent: parent.parent_id.is_some(),
        }),
        _ => Err(ApiError::Validation(vec![FieldError::new(
            "parent_id",
            "not_found",
            "no such category in this store",
        )])),
    }
}

/// Create a category, optionally under a top-level parent.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/categories", tag = "catalog",
    request_body = CreateCategoryRequest,
    params(("store_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = api_core::Data<CategoryView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn create_category(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
    body: ApiJson<CreateCategoryRequest>,
) -> Result<Response, ApiError> {
    let store_id = resource_id(&store_id)?;
    owned_store(&state, &context.principal, store_id).await?;
    let (name, description) = group(&body.value.name, body.value.description.as_deref())?;
    let parent = match body.value.parent_id {
        Some(parent_id) => Some(parent(&state, store_id, parent_id).await?),
        None => None,
    };
    let category_id = Uuid::now_v7();
    let idempotency = context.idempotency(&body.raw);
    let scope = category_slug_scope(store_id);
    execute_with_slug::<CategoryFold>(
        &state,
        &Write::of(&context, idempotency.as_ref(), store_id, category_id, true),
        &scope,
        Some(&name),
        |_, free| {
            let slug = slug_for(&name, None, free).unwrap_or_else(|| Slug::candidate(&name, 1));
            Ok(IdentifiedCategoryCommand {
                category_id,
                command: CategoryCommand::Create {
                    store_id,
                    details: GroupDetails {
                        name: name.clone(),
                        slug,
                        description: description.clone(),
                    },
                    parent,
                },
            })
        },
    )
    .await
    .map(Answer::into_http)
}

/// Rename a category, change its description, or move it (`parent_id: null` makes it
/// top-level).
#[utoipa::path(
    patch, path = "/api/v1/stores/{store_id}/categories/{category_id}", tag = "catalog",
    request_body = UpdateCategoryRequest,
    params(("store_id" = Uuid, Path), ("category_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = api_core::Data<CategoryView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn update_category(
    State(state): State<CommandState>,
    Path((store_id, category_id)): Path<(String, String)>,
    context: WriteContext,
    body: ApiJson<UpdateCategoryRequest>,
) -> Result<Response, ApiError> {
    let (store_id, category_id) = (resource_id(&store_id)?, resource_id(&category_id)?);
    owned_store(&state, &context.principal, store_id).await?;
    let changes: GroupChanges = group_changes(body.value.name.as_deref(), &body.value.description)?;
    let parent_change = match body.value.parent_id {
        None => Change::Keep,
        Some(None) => Change::Clear,
        Some(Some(parent_id)) => Change::Set(parent(&state, store_id, parent_id).await?),
    };
    let idempotency = context.idempotency(&body.raw);
    let scope = category_slug_scope(store_id);
    execute_with_slug::<CategoryFold>(
        &state,
        &Write::of(&context, idempotency.as_ref(), store_id, category_id, false),
        &scope,
        changes.name.as_ref(),
        |current: &Category, free| {
            let mut changes = changes.clone();
            if let (Some(name), Category::Existing(current)) = (&changes.name, current) {
                changes.slug = slug_for(name, Some(&current.slug), free);
            }
            Ok(IdentifiedCategoryCommand {
                category_id,
                command: CategoryCommand::Update {
                    changes,
                    parent: parent_change.clone(),
                },
            })
        },
    )
    .await
    .map(Answer::into_http)
}

/// Delete a category: its slug is freed, its products simply leave it, and its
/// subcategories become top-level.
#[utoipa::path(
    delete, path = "/api/v1/stores/{store_id}/categories/{category_id}", tag = "catalog",
    params(("store_id" = Uuid, Path), ("category_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, description = "Deleted", body = api_core::Data<Object>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn delete_category(
    State(state): State<CommandState>,
    Path((store_id, category_id)): Path<(String, String)>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    let (store_id, category_id) = (resource_id(&store_id)?, resource_id(&category_id)?);
    owned_store(&state, &context.principal, store_id).await?;
    let idempotency = context.idempotency(&[]);
    execute_plain::<CategoryFold>(
        &state,
        &Write::of(&context, idempotency.as_ref(), store_id, category_id, false),
        |_| {
            Ok(IdentifiedCategoryCommand {
                category_id,
                command: CategoryCommand::Delete,
            })
        },
    )
    .await
    .map(Answer::into_http)
}

/// Create a collection: a hand-ordered list of the store's products.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/collections", tag = "catalog",
    request_body = CreateCollectionRequest,
    params(("store_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = api_core::Data<CollectionView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn create_collection(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
    body: ApiJson<CreateCollectionRequest>,
) -> Result<Response, ApiError> {
    let store_id = resource_id(&store_id)?;
    owned_store(&state, &context.principal, store_id).await?;
    let (name, description) = group(&body.value.name, body.value.description.as_deref())?;
    let product_ids = body.value.product_ids.clone();
    require_live(
        state.pool(),
        store_id,
        "product-",
        "product_ids",
        &product_ids,
    )
    .await?;
    let idempotency = context.idempotency(&body.raw);
    let scope = collection_slug_scope(store_id);
    execute_with_slug::<CollectionFold>(
        &state,
        &Write::of(
            &context,
            idempotency.as_ref(),
            store_id,
            Uuid::now_v7(),
            true,
        ),
        &scope,
        Some(&name),
        |_, free| {
            let slug = slug_for(&name, None, free).unwrap_or_else(|| Slug::candidate(&name, 1));
            Ok(CollectionCommand::Create {
                store_id,
                details: GroupDetails {
                    name: name.clone(),
                    slug,
                    description: description.clone(),
                },
                product_ids: product_ids.clone(),
            })
        },
    )
    .await
    .map(Answer::into_http)
}

/// Rename a collection, change its description, or replace its products (and order).
#[utoipa::path(
    patch, path = "/api/v1/stores/{store_id}/collections/{collection_id}", tag = "catalog",
    request_body = UpdateCollectionRequest,
    params(("store_id" = Uuid, Path), ("collection_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = api_core::Data<CollectionView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn update_collection(
    State(state): State<CommandState>,
    Path((store_id, collection_id)): Path<(String, String)>,
    context: WriteContext,
    body: ApiJson<UpdateCollectionRequest>,
) -> Result<Response, ApiError> {
    let (store_id, collection_id) = (resource_id(&store_id)?, resource_id(&collection_id)?);
    owned_store(&state, &context.principal, store_id).await?;
    let changes: GroupChanges = group_changes(body.value.name.as_deref(), &body.value.description)?;
    if let Some(product_ids) = &body.value.product_ids {
        require_live(
            state.pool(),
            store_id,
            "product-",
            "product_ids",
            product_ids,
        )
        .await?;
    }
    let idempotency = context.idempotency(&body.raw);
    let scope = collection_slug_scope(store_id);
    execute_with_slug::<CollectionFold>(
        &state,
        &Write::of(
            &context,
            idempotency.as_ref(),
            store_id,
            collection_id,
            false,
        ),
        &scope,
        changes.name.as_ref(),
        |current: &Collection, free| {
            let mut changes = changes.clone();
            if let (Some(name), Collection::Existing(current)) = (&changes.name, current) {
                changes.slug = slug_for(name, Some(&current.slug), free);
            }
            Ok(CollectionCommand::Update {
                changes,
                product_ids: body.value.product_ids.clone(),
            })
        },
    )
    .await
    .map(Answer::into_http)
}

/// Delete a collection (its products stay as they are).
#[utoipa::path(
    delete, path = "/api/v1/stores/{store_id}/collections/{collection_id}", tag = "catalog",
    params(("store_id" = Uuid, Path), ("collection_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, description = "Deleted", body = api_core::Data<Object>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn delete_collection(
    State(state): State<CommandState>,
    Path((store_id, collection_id)): Path<(String, String)>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    let (store_id, collection_id) = (resource_id(&store_id)?, resource_id(&collection_id)?);
    owned_store(&state, &context.principal, store_id).await?;
    let idempotency = context.idempotency(&[]);
    execute_plain::<CollectionFold>(
        &state,
        &Write::of(
            &context,
            idempotency.as_ref(),
            store_id,
            collection_id,
            false,
        ),
        |_| Ok(CollectionCommand::Delete),
    )
    .await
    .map(Answer::into_http)
}
