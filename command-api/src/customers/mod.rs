//! Storefront customer accounts, per store: register, login, refresh (rotating), logout,
//! and the signed-in customer's profile, saved addresses and wishlist. Customers hold
//! tokens of their own audience and store: none opens a merchant route, nor another
//! store's customer routes, and a merchant's token opens none of these.

mod account;
mod change;
mod profile;
mod sessions;

use api_core::{ApiError, auth::CustomerPrincipal};
use domain::customer::{Customer, CustomerError, CustomerProfile, evolve};
use eventlog::{Fold, Loaded};
use schemas::{
    Event,
    api::{
        customers::{CustomerAccountView, SavedAddressView},
        orders::AddressBody,
    },
    pii::{ContactDetails, PostalAddress},
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{checkout::open_store, orders::customer_stream, state::CommandState};

pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(account::register))
        .routes(routes!(account::login))
        .routes(routes!(account::refresh))
        .routes(routes!(account::logout))
        .routes(routes!(profile::me, profile::update_me))
        .routes(routes!(profile::add_address))
        .routes(routes!(profile::replace_address, profile::remove_address))
        .routes(routes!(profile::make_default_address))
        .routes(routes!(profile::wish, profile::unwish))
}

pub(crate) struct CustomerFold;

impl Fold for CustomerFold {
    type State = Customer;
    const STATE_VERSION: u16 = 2;

    fn apply(state: Customer, event: &Event) -> Customer {
        evolve(state, event)
    }
}

pub(crate) async fn load_customer(
    state: &CommandState,
    customer_id: Uuid,
) -> Result<Loaded<Customer>, ApiError> {
    eventlog::load::<CustomerFold>(
        state.pool(),
        &customer_stream(customer_id),
        state.snapshot_every(),
    )
    .await
    .map_err(ApiError::internal)
}

/// The store of `slug` (open, or a 404), which must be the one the customer's token
/// belongs to: another store's token is no credential here.
async fn customer_store(
    state: &CommandState,
    slug: &str,
    principal: &CustomerPrincipal,
) -> Result<Uuid, ApiError> {
    let (store_id, _) = open_store(state, slug).await?;
    if store_id == principal.store_id {
        Ok(store_id)
    } else {
        Err(ApiError::Unauthenticated)
    }
}

fn rule_broken(error: CustomerError) -> ApiError {
    match error {
        CustomerError::Unknown | CustomerError::UnknownAddress => ApiError::NotFound,
        CustomerError::AccountExists => email_taken(),
        CustomerError::AddressExists | CustomerError::AlreadyExists => ApiError::Conflict {
            code: "conflict",
            message: error.to_string(),
        },
        CustomerError::TooManyAddresses => ApiError::Validation(vec![api_core::FieldError::new(
            "address",
            "too_many",
            error.to_string(),
        )]),
        CustomerError::WishlistFull => ApiError::Validation(vec![api_core::FieldError::new(
            "product_id",
            "too_many",
            error.to_string(),
        )]),
    }
}

fn email_taken() -> ApiError {
    ApiError::Conflict {
        code: "email_taken",
        message: "this store has an account with this email; log in instead".into(),
    }
}

/// What the customer sees of themselves, with their personal data opened (or left out
/// once it was erased).
async fn account_view(
    state: &CommandState,
    customer_id: Uuid,
    profile: &CustomerProfile,
    version: i32,
) -> Result<CustomerAccountView, ApiError> {
    let contact: Option<ContactDetails> = state
        .vault
        .open(&profile.contact)
        .await
        .map_err(ApiError::internal)?;
    let mut addresses = Vec::with_capacity(profile.addresses.len());
    for saved in &profile.addresses {
        let address: Option<PostalAddress> = state
            .vault
            .open(&saved.sealed)
            .await
            .map_err(ApiError::internal)?;
        addresses.push(SavedAddressView {
            id: saved.id,
            default: profile.default_address == Some(saved.id),
            address: address.map(AddressBody::from),
        });
    }
    addresses.sort_by_key(|address| !address.default);
    let (email, name) = contact.map_or((None, None), |contact| (Some(contact.email), contact.name));
    Ok(CustomerAccountView {
        id: customer_id,
        store_id: profile.store_id,
        email,
        name,
        addresses,
        wishlist: profile.wishlist.clone(),
        version,
    })
}
