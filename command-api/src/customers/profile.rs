//! The signed-in customer's own data: profile, saved addresses (one of them the
//! default) and wishlist. Each change answers the account as it now is, with its version
//! as `ETag`; `If-Match` and `Idempotency-Key` work as on every write.

use api_core::{ApiError, ApiJson, Data, auth::CustomerPrincipal, data, openapi::ErrorEnvelope};
use axum::{
    Json,
    extract::{Path, State},
    http::{Method, Uri},
    response::Response,
};
use domain::{
    DisplayName,
    customer::{Customer, CustomerCommand},
    product::ProductStatus,
};
use schemas::{
    api::customers::{CustomerAccountView, SaveAddressRequest, UpdateCustomerRequest},
    pii::ContactDetails,
};
use uuid::Uuid;

use super::{
    account_view,
    change::{Change, seal},
    customer_store, load_customer,
};
use crate::{
    catalog::aggregates::ProductFold,
    checkout::parse::postal_address,
    fields::Fields,
    preconditions::{IdempotencyKey, IfMatch},
    state::CommandState,
};

/// The signed-in customer: profile, addresses (default first) and wishlist.
#[utoipa::path(
    get, path = "/api/v1/public/stores/{slug}/customers/me", tag = "customers",
    params(("slug" = String, Path)),
    responses(
        (status = 200, body = Data<CustomerAccountView>),
        (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ),
    security(("customer_bearer" = []))
)]
pub(super) async fn me(
    State(state): State<CommandState>,
    Path(slug): Path<String>,
    principal: CustomerPrincipal,
) -> Result<Json<Data<CustomerAccountView>>, ApiError> {
    customer_store(&state, &slug, &principal).await?;
    let loaded = load_customer(&state, principal.customer_id).await?;
    let Customer::Existing(profile) = &loaded.state else {
        return Err(ApiError::NotFound);
    };
    let view = account_view(&state, principal.customer_id, profile, loaded.version).await?;
    Ok(data(view))
}

/// Change the customer's name.
#[utoipa::path(
    patch, path = "/api/v1/public/stores/{slug}/customers/me", tag = "customers",
    params(("slug" = String, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    request_body = UpdateCustomerRequest,
    responses(
        (status = 200, body = Data<CustomerAccountView>, headers(("ETag" = String), ("X-Position" = i64))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ),
    security(("customer_bearer" = []))
)]
pub(super) async fn update_me(
    State(state): State<CommandState>,
    Path(slug): Path<String>,
    principal: CustomerPrincipal,
    conditions: (IfMatch, IdempotencyKey),
    method: Method,
    uri: Uri,
    body: ApiJson<UpdateCustomerRequest>,
) -> Result<Response, ApiError> {
    let mut fields = Fields::default();
    let name = fields.optional("name", body.value.name.as_deref(), DisplayName::parse);
    let name = fields.finish(|| name)?;
    let change = Change::of(
        &state,
        &slug,
        principal,
        conditions,
        (&method, &uri, &body.raw),
    )
    .await?;
    let state_ref = &state;
    change
        .run(&state, |profile| {
            let name = name.as_ref().map(|n| n.as_str().to_owned());
            async move {
                let mut contact: ContactDetails = state_ref
                    .vault
                    .open(&profile.contact)
                    .await
                    .map_err(ApiError::internal)?
                    .ok_or(ApiError::NotFound)?;
                contact.name = name;
                let contact = seal(state_ref, &profile, principal.customer_id, &contact).await?;
                Ok(CustomerCommand::UpdateContact {
                    contact,
                    changed: vec!["name".into()],
                })
            }
        })
        .await
}

fn parsed_address(request: &SaveAddressRequest) -> Result<schemas::pii::PostalAddress, ApiError> {
    let mut fields = Fields::default();
    let parsed = postal_address(&mut fields, "address", &request.address);
    fields.finish(|| parsed.map(|parsed| parsed.address))
}

/// Save an address; the first one, or one sent with `default: true`, is the default.
#[utoipa::path(
    post, path = "/api/v1/public/stores/{slug}/customers/me/addresses", tag = "customers",
    params(("slug" = String, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    request_body = SaveAddressRequest,
    responses(
        (status = 201, body = Data<CustomerAccountView>, headers(("ETag" = String), ("X-Position" = i64))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope),
        (status = 422, description = "An invalid field, or 20 addresses saved already", body = ErrorEnvelope),
    ),
    security(("customer_bearer" = []))
)]
pub(super) async fn add_address(
    State(state): State<CommandState>,
    Path(slug): Path<String>,
    principal: CustomerPrincipal,
    conditions: (IfMatch, IdempotencyKey),
    method: Method,
    uri: Uri,
    body: ApiJson<SaveAddressRequest>,
) -> Result<Response, ApiError> {
    let address = parsed_address(&body.value)?;
    let make_default = body.value.default;
    let change = Change::of(
        &state,
        &slug,
        principal,
        conditions,
        (&method, &uri, &body.raw),
    )
    .await?
    .answering(201);
    let (state_ref, address) = (&state, &address);
    // One id for every attempt, so a retried decision saves the same address.
    let address_id = Uuid::now_v7();
    change
        .run(&state, |profile| async move {
            let address = seal(state_ref, &profile, principal.customer_id, address).await?;
            Ok(CustomerCommand::AddAddress {
                address_id,
                address,
                make_default,
            })
        })
        .await
}

/// Replace a saved address.
#[utoipa::path(
    put, path = "/api/v1/public/stores/{slug}/customers/me/addresses/{address_id}", tag = "customers",
    params(("slug" = String, Path), ("address_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    request_body = SaveAddressRequest,
    responses(
        (status = 200, body = Data<CustomerAccountView>, headers(("ETag" = String), ("X-Position" = i64))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ),
    security(("customer_bearer" = []))
)]
pub(super) async fn replace_address(
    State(state): State<CommandState>,
    Path((slug, address_id)): Path<(String, String)>,
    principal: CustomerPrincipal,
    conditions: (IfMatch, IdempotencyKey),
    method: Method,
    uri: Uri,
    body: ApiJson<SaveAddressRequest>,
) -> Result<Response, ApiError> {
    let address_id = path_id(&address_id)?;
    let address = parsed_address(&body.value)?;
    let make_default = body.value.default;
    let change = Change::of(
        &state,
        &slug,
        principal,
        conditions,
        (&method, &uri, &body.raw),
    )
    .await?;
    let (state_ref, address) = (&state, &address);
    change
        .run(&state, |profile| async move {
            let address = seal(state_ref, &profile, principal.customer_id, address).await?;
            Ok(CustomerCommand::UpdateAddress {
                address_id,
                address,
                make_default,
            })
        })
        .await
}

/// Remove a saved address; if it was the default, the earliest other one becomes it.
#[utoipa::path(
    delete, path = "/api/v1/public/stores/{slug}/customers/me/addresses/{address_id}", tag = "customers",
    params(("slug" = String, Path), ("address_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = Data<CustomerAccountView>, headers(("ETag" = String), ("X-Position" = i64))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
    ),
    security(("customer_bearer" = []))
)]
pub(super) async fn remove_address(
    State(state): State<CommandState>,
    Path((slug, address_id)): Path<(String, String)>,
    principal: CustomerPrincipal,
    conditions: (IfMatch, IdempotencyKey),
    method: Method,
    uri: Uri,
) -> Result<Response, ApiError> {
    let address_id = path_id(&address_id)?;
    let change = Change::of(&state, &slug, principal, conditions, (&method, &uri, &[])).await?;
    change
        .always(&state, CustomerCommand::RemoveAddress { address_id })
        .await
}

/// Make a saved address the default.
#[utoipa::path(
    post, path = "/api/v1/public/stores/{slug}/customers/me/addresses/{address_id}/default", tag = "customers",
    params(("slug" = String, Path), ("address_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = Data<CustomerAccountView>, headers(("ETag" = String), ("X-Position" = i64))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
    ),
    security(("customer_bearer" = []))
)]
pub(super) async fn make_default_address(
    State(state): State<CommandState>,
    Path((slug, address_id)): Path<(String, String)>,
    principal: CustomerPrincipal,
    conditions: (IfMatch, IdempotencyKey),
    method: Method,
    uri: Uri,
) -> Result<Response, ApiError> {
    let address_id = path_id(&address_id)?;
    let change = Change::of(&state, &slug, principal, conditions, (&method, &uri, &[])).await?;
    change
        .always(&state, CustomerCommand::SetDefaultAddress { address_id })
        .await
}

/// Put a product of this store on the wishlist (a product already on it stays once).
#[utoipa::path(
    put, path = "/api/v1/public/stores/{slug}/customers/me/wishlist/{product_id}", tag = "customers",
    params(("slug" = String, Path), ("product_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = Data<CustomerAccountView>, headers(("ETag" = String), ("X-Position" = i64))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such product on sale in this store", body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope),
        (status = 422, description = "200 products on the wishlist already", body = ErrorEnvelope),
    ),
    security(("customer_bearer" = []))
)]
pub(super) async fn wish(
    State(state): State<CommandState>,
    Path((slug, product_id)): Path<(String, String)>,
    principal: CustomerPrincipal,
    conditions: (IfMatch, IdempotencyKey),
    method: Method,
    uri: Uri,
) -> Result<Response, ApiError> {
    let product_id = path_id(&product_id)?;
    let change = Change::of(&state, &slug, principal, conditions, (&method, &uri, &[])).await?;
    on_sale(&state, principal.store_id, product_id).await?;
    change
        .always(&state, CustomerCommand::AddToWishlist { product_id })
        .await
}

/// Take a product off the wishlist (one not on it changes nothing).
#[utoipa::path(
    delete, path = "/api/v1/public/stores/{slug}/customers/me/wishlist/{product_id}", tag = "customers",
    params(("slug" = String, Path), ("product_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = Data<CustomerAccountView>, headers(("ETag" = String), ("X-Position" = i64))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
    ),
    security(("customer_bearer" = []))
)]
pub(super) async fn unwish(
    State(state): State<CommandState>,
    Path((slug, product_id)): Path<(String, String)>,
    principal: CustomerPrincipal,
    conditions: (IfMatch, IdempotencyKey),
    method: Method,
    uri: Uri,
) -> Result<Response, ApiError> {
    let product_id = path_id(&product_id)?;
    let change = Change::of(&state, &slug, principal, conditions, (&method, &uri, &[])).await?;
    change
        .always(&state, CustomerCommand::RemoveFromWishlist { product_id })
        .await
}

/// A product shoppers of this store can see: active and the store's; anything else is
/// a 404, as it is on the storefront.
async fn on_sale(state: &CommandState, store_id: Uuid, product_id: Uuid) -> Result<(), ApiError> {
    let loaded = eventlog::load::<ProductFold>(
        state.pool(),
        &format!("product-{product_id}"),
        state.snapshot_every(),
    )
    .await
    .map_err(ApiError::internal)?;
    match loaded.state.existing() {
        Some(product)
            if product.store_id == store_id && product.status == ProductStatus::Active.as_str() =>
        {
            Ok(())
        }
        _ => Err(ApiError::NotFound),
    }
}

/// An id in the path; anything that is not one names nothing.
fn path_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)
}
