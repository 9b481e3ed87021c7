//! Product commands: create, update, archive (DELETE), publish, variants and stock.

use api_core::{ApiError, ApiJson, openapi::WriteErrors, resource_id};
use axum::{
    extract::{Path, State},
    response::Response,
};
use domain::{
    Currency, Slug, SlugSource,
    product::{CreateProduct, Product, ProductCommand, UpdateProduct},
    store::StoreProfile,
};
use schemas::api::products::{
    CreateProductRequest, InventoryAdjustmentRequest, NewVariantRequest, ProductView,
    UpdateProductRequest, UpdateVariantRequest,
};
use uuid::Uuid;

use super::{
    aggregates::{ProductFold, product_slug_scope},
    parse::{self, MAX_STOCK, Parser},
    references::require_live,
};
use crate::{
    aggregate::{Answer, Write, execute_plain, execute_with_slug, owned_store},
    state::CommandState,
    write::WriteContext,
};

/// The slug a thing named `name` should hold: none while its current one still fits,
/// else the free one found after a collision, else the first candidate.
pub(crate) fn slug_for(
    name: &impl SlugSource,
    current: Option<&str>,
    free: Option<&Slug>,
) -> Option<Slug> {
    if current.is_some_and(|current| Slug::from_recorded(current.to_owned()).belongs_to(name)) {
        return None;
    }
    Some(free.cloned().unwrap_or_else(|| Slug::candidate(name, 1)))
}

/// A command on one existing product of the caller's store.
pub(crate) async fn change_product(
    state: &CommandState,
    context: &WriteContext,
    store_id: Uuid,
    product_id: Uuid,
    body: &[u8],
    command: impl Fn(&StoreProfile) -> Result<ProductCommand, ApiError>,
) -> Result<Answer, ApiError> {
    let store = owned_store(state, &context.principal, store_id).await?;
    let command = command(&store)?;
    let idempotency = context.idempotency(body);
    let write = Write::of(context, idempotency.as_ref(), store_id, product_id, false);
    execute_plain::<ProductFold>(state, &write, |_| Ok(command.clone())).await
}

fn ids(raw_store_id: &str, raw_product_id: &str) -> Result<(Uuid, Uuid), ApiError> {
    Ok((resource_id(raw_store_id)?, resource_id(raw_product_id)?))
}

/// Create a product. Its slug comes from the title (`-2`, `-3`… when taken in the store).
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/products", tag = "products",
    request_body = CreateProductRequest,
    params(("store_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "Created", body = api_core::Data<ProductView>, headers(("ETag" = String, description = "The product's version, for If-Match"), ("X-Position" = i64, description = "The log position written, for X-Min-Position"))),
        WriteErrors,
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn create_product(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
    body: ApiJson<CreateProductRequest>,
) -> Result<Response, ApiError> {
    let store_id = resource_id(&store_id)?;
    let store = owned_store(&state, &context.principal, store_id).await?;
    let new = parse::new_product(&body.value, &store.currency)?;
    require_live(
        state.pool(),
        store_id,
        "category-",
        "category_ids",
        &new.category_ids,
    )
    .await?;
    let currency = Currency::parse(&store.currency).map_err(ApiError::internal)?;
    let base = CreateProduct {
        store_id,
        currency,
        slug: Slug::candidate(&new.title, 1),
        title: new.title,
        description: new.description,
        price: new.price,
        compare_at_price: new.compare_at_price,
        cost: new.cost,
        images: new.images,
        status: new.status,
        seo_title: new.seo_title,
        seo_description: new.seo_description,
        tags: new.tags,
        category_ids: new.category_ids,
        variants: new.variants,
    };
    let idempotency = context.idempotency(&body.raw);
    let write = Write::of(
        &context,
        idempotency.as_ref(),
        store_id,
        Uuid::now_v7(),
        true,
    );
    let scope = product_slug_scope(store_id);
    execute_with_slug::<ProductFold>(&state, &write, &scope, Some(&base.title), |_, free| {
        let mut create = base.clone();
        if let Some(slug) = slug_for(&create.title, None, free) {
            create.slug = slug;
        }
        Ok(ProductCommand::Create(Box::new(create)))
    })
    .await
    .map(Answer::into_http)
}

/// Change a product. Absent fields stay; `null` clears optional ones; `status` may
/// publish or archive it.
#[utoipa::path(
    patch, path = "/api/v1/stores/{store_id}/products/{product_id}", tag = "products",
    request_body = UpdateProductRequest,
    params(("store_id" = Uuid, Path), ("product_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, description = "Updated (or already so)", body = api_core::Data<ProductView>, headers(("ETag" = String), ("X-Position" = i64))),
        WriteErrors,
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn update_product(
    State(state): State<CommandState>,
    Path((store_id, product_id)): Path<(String, String)>,
    context: WriteContext,
    body: ApiJson<UpdateProductRequest>,
) -> Result<Response, ApiError> {
    let (store_id, product_id) = ids(&store_id, &product_id)?;
    let store = owned_store(&state, &context.principal, store_id).await?;
    let changes = parse::product_changes(&body.value, &store.currency)?;
    if let Some(category_ids) = &changes.category_ids {
        require_live(
            state.pool(),
            store_id,
            "category-",
            "category_ids",
            category_ids,
        )
        .await?;
    }
    let idempotency = context.idempotency(&body.raw);
    let write = Write::of(&context, idempotency.as_ref(), store_id, product_id, false);
    let scope = product_slug_scope(store_id);
    execute_with_slug::<ProductFold>(
        &state,
        &write,
        &scope,
        changes.title.as_ref(),
        |current: &Product, free| {
            let mut update: UpdateProduct = changes.clone();
            if let (Some(title), Some(product)) = (&changes.title, current.existing()) {
                update.slug = slug_for(title, Some(&product.slug), free);
            }
            Ok(ProductCommand::Update(Box::new(update)))
        },
    )
    .await
    .map(Answer::into_http)
}

/// Archive a product: it leaves the storefront and keeps its history, slug and SKUs.
#[utoipa::path(
    delete, path = "/api/v1/stores/{store_id}/products/{product_id}", tag = "products",
    params(("store_id" = Uuid, Path), ("product_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = api_core::Data<ProductView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn archive_product(
    State(state): State<CommandState>,
    Path((store_id, product_id)): Path<(String, String)>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    let (store_id, product_id) = ids(&store_id, &product_id)?;
    change_product(&state, &context, store_id, product_id, &[], |_| {
        Ok(ProductCommand::Archive)
    })
    .await
    .map(Answer::into_http)
}

/// Publish a product: it appears on the storefront (while the store is active).
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/products/{product_id}/publish", tag = "products",
    params(("store_id" = Uuid, Path), ("product_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = api_core::Data<ProductView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn publish_product(
    State(state): State<CommandState>,
    Path((store_id, product_id)): Path<(String, String)>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    let (store_id, product_id) = ids(&store_id, &product_id)?;
    change_product(&state, &context, store_id, product_id, &[], |_| {
        Ok(ProductCommand::Publish)
    })
    .await
    .map(Answer::into_http)
}

/// Add a variant. Its SKU must be unique within the store.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/products/{product_id}/variants", tag = "products",
    request_body = NewVariantRequest,
    params(("store_id" = Uuid, Path), ("product_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, description = "The product with its new variant", body = api_core::Data<ProductView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn add_variant(
    State(state): State<CommandState>,
    Path((store_id, product_id)): Path<(String, String)>,
    context: WriteContext,
    body: ApiJson<NewVariantRequest>,
) -> Result<Response, ApiError> {
    let (store_id, product_id) = ids(&store_id, &product_id)?;
    change_product(&state, &context, store_id, product_id, &body.raw, |store| {
        let mut parser = Parser::new(&store.currency);
        let variant = parser.new_variant("", &body.value);
        parser.finish(|| variant.map(ProductCommand::AddVariant))
    })
    .await
    .map(Answer::into_http)
}

/// Change a variant's name, SKU, price or options (stock moves through adjustments).
#[utoipa::path(
    patch, path = "/api/v1/stores/{store_id}/products/{product_id}/variants/{variant_id}", tag = "products",
    request_body = UpdateVariantRequest,
    params(("store_id" = Uuid, Path), ("product_id" = Uuid, Path), ("variant_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = api_core::Data<ProductView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn update_variant(
    State(state): State<CommandState>,
    Path((store_id, product_id, variant_id)): Path<(String, String, String)>,
    context: WriteContext,
    body: ApiJson<UpdateVariantRequest>,
) -> Result<Response, ApiError> {
    let (store_id, product_id) = ids(&store_id, &product_id)?;
    let variant_id = resource_id(&variant_id)?;
    change_product(&state, &context, store_id, product_id, &body.raw, |store| {
        let changes = parse::variant_changes(&body.value, &store.currency)?;
        Ok(ProductCommand::UpdateVariant {
            variant_id,
            changes,
        })
    })
    .await
    .map(Answer::into_http)
}

/// Remove a variant; its SKU becomes free.
#[utoipa::path(
    delete, path = "/api/v1/stores/{store_id}/products/{product_id}/variants/{variant_id}", tag = "products",
    params(("store_id" = Uuid, Path), ("product_id" = Uuid, Path), ("variant_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = api_core::Data<ProductView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn remove_variant(
    State(state): State<CommandState>,
    Path((store_id, product_id, variant_id)): Path<(String, String, String)>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    let (store_id, product_id) = ids(&store_id, &product_id)?;
    let variant_id = resource_id(&variant_id)?;
    change_product(&state, &context, store_id, product_id, &[], |_| {
        Ok(ProductCommand::RemoveVariant { variant_id })
    })
    .await
    .map(Answer::into_http)
}

/// Move a variant's stock by `delta` for a reason. Stock never goes below zero: a
/// decrement larger than the stock is refused with 409 `insufficient_stock`.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/products/{product_id}/inventory", tag = "products",
    request_body = InventoryAdjustmentRequest,
    params(("store_id" = Uuid, Path), ("product_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, description = "The product with the new stock", body = api_core::Data<ProductView>, headers(("ETag" = String), ("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn adjust_inventory(
    State(state): State<CommandState>,
    Path((store_id, product_id)): Path<(String, String)>,
    context: WriteContext,
    body: ApiJson<InventoryAdjustmentRequest>,
) -> Result<Response, ApiError> {
    let (store_id, product_id) = ids(&store_id, &product_id)?;
    let request = &body.value;
    change_product(&state, &context, store_id, product_id, &body.raw, |store| {
        let mut parser = Parser::new(&store.currency);
        let delta =
            Some(request.delta).filter(|d| *d != 0 && d.unsigned_abs() <= MAX_STOCK.unsigned_abs());
        if delta.is_none() {
            parser.fields.push(api_core::FieldError::new(
                "delta",
                "out_of_range",
                format!("must be a non-zero number of units, at most {MAX_STOCK} either way"),
            ));
        }
        let reason = parser.text("reason", &request.reason, domain::Reason::parse);
        parser.finish(|| {
            Some(ProductCommand::AdjustInventory {
                variant_id: request.variant_id,
                delta: delta?,
                reason: reason?,
                low_stock_threshold: store.low_stock_threshold,
            })
        })
    })
    .await
    .map(Answer::into_http)
}
