//! The storefront's write side: checkout and (mock) payment. Anonymous shoppers reach
//! it, so every input is bounded and every price comes from the catalog.

mod defaults;
pub(crate) mod parse;
mod payment;
mod place;
pub(crate) use place::customer_email_scope;
pub(crate) mod stock;
mod stripe;
pub(crate) mod stripe_sessions;
mod stripe_signature;

use api_core::{ApiError, ApiJson, openapi::ErrorEnvelope};
use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, Method, Uri, header::AUTHORIZATION},
    response::Response,
};
use domain::store::{Store, StoreStatus};
use schemas::api::orders::{CheckoutRequest, CheckoutView, OrderView, StripeReceipt};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    preconditions::IdempotencyKey,
    state::CommandState,
    stores::{StoreFold, slug::SLUG_SCOPE},
    write::Idempotency,
};

pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(checkout))
        .routes(routes!(confirm_payment))
        .routes(routes!(stripe_webhook))
}

/// Place an order. Prices, stock and totals come from the catalog (a price sent with a
/// line is ignored); every line that cannot be bought is a 422 naming it (`items[2]`).
/// With a customer's bearer token the order is theirs, and a left-out email or address
/// is the account's (its default saved address). The answer carries the payment
/// session to pay through.
#[utoipa::path(
    post, path = "/api/v1/public/stores/{slug}/checkout", tag = "checkout",
    request_body = CheckoutRequest,
    params(("slug" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    security((), ("customer_bearer" = [])),
    responses(
        (status = 201, description = "Placed, awaiting payment", body = api_core::Data<CheckoutView>, headers(("ETag" = String, description = "The order's version"), ("X-Position" = i64, description = "The log position written, for X-Min-Position"))),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope),
        (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ),
)]
async fn checkout(
    State(state): State<CommandState>,
    Path(slug): Path<String>,
    key: IdempotencyKey,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: ApiJson<CheckoutRequest>,
) -> Result<Response, ApiError> {
    let (store_id, store) = open_store(&state, &slug).await?;
    // A shopper who sends a token must be this store's signed-in customer; none is a guest.
    let signed_in = if headers.contains_key(AUTHORIZATION) {
        Some(state.authenticator.authenticate_customer(&headers).await?)
    } else {
        None
    };
    if signed_in.is_some_and(|customer| customer.store_id != store_id) {
        return Err(ApiError::Unauthenticated);
    }
    let cart = match signed_in {
        Some(customer) => {
            let request = defaults::filled_in(&state, customer, body.value.clone()).await?;
            parse::cart(&request)?
        }
        None => parse::cart(&body.value)?,
    };
    let email = cart.email.as_str().to_owned();
    let idempotency = Idempotency::scoped(
        format!("storefront:{store_id}"),
        key.0,
        &method,
        uri.path(),
        &body.raw,
    );
    let placing = place::Placing {
        store_id,
        store: &store,
        cart,
        idempotency,
        signed_in,
    };
    let mut answer = place::place(&state, placing).await?;
    if let Some(stripe) = state.payments().stripe() {
        stripe
            .attach_session(&mut answer.recorded.body, &email)
            .await?;
    }
    Ok(answer.into_http())
}

/// Pay a mock payment session (only when no payment provider is configured).
#[utoipa::path(
    post, path = "/api/v1/public/payments/{session}/confirm", tag = "checkout",
    params(("session" = String, Path)),
    responses(
        (status = 200, description = "Paid", body = api_core::Data<OrderView>),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
    ),
)]
async fn confirm_payment(
    State(state): State<CommandState>,
    Path(session): Path<String>,
) -> Result<Response, ApiError> {
    Ok(payment::confirm(&state, &session).await?.into_http())
}

/// Stripe's webhook (`checkout.session.completed`, `payment_intent.payment_failed`,
/// `charge.refunded`), verified by `Stripe-Signature` within 300 s; a redelivered event
/// id answers what its first delivery did. 404 unless `STRIPE_WEBHOOK_SECRET` is set.
#[utoipa::path(
    post, path = "/api/v1/webhooks/stripe", tag = "checkout",
    request_body(content = String, content_type = "application/json", description = "A Stripe event, exactly as Stripe signed it"),
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of t.body>`")),
    responses(
        (status = 200, description = "Handled or ignored", body = api_core::Data<StripeReceipt>),
        (status = 400, description = "Bad or stale signature, or not a Stripe event", body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope),
    ),
)]
async fn stripe_webhook(
    State(state): State<CommandState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    stripe::receive(&state, signature, &body).await
}

/// The live, open store with this slug; anything else is a 404.
pub(crate) async fn open_store(
    state: &CommandState,
    slug: &str,
) -> Result<(Uuid, domain::store::StoreProfile), ApiError> {
    let owner: Option<String> =
        sqlx::query_scalar("SELECT stream_id FROM unique_keys WHERE scope = $1 AND value = $2")
            .bind(SLUG_SCOPE)
            .bind(slug)
            .fetch_optional(state.pool())
            .await
            .map_err(ApiError::internal)?;
    let store_id = owner
        .as_deref()
        .and_then(|stream| stream.strip_prefix("store-"))
        .and_then(|id| Uuid::try_parse(id).ok())
        .ok_or(ApiError::NotFound)?;
    let loaded = eventlog::load::<StoreFold>(
        state.pool(),
        &format!("store-{store_id}"),
        state.snapshot_every(),
    )
    .await
    .map_err(ApiError::internal)?;
    match loaded.state {
        Store::Existing(profile) if profile.status == StoreStatus::Active => {
            Ok((store_id, profile))
        }
        _ => Err(ApiError::NotFound),
    }
}
