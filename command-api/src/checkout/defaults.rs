//! What a signed-in customer may leave out of a checkout: their account's email and
//! their default saved address fill in for it.

use api_core::{ApiError, auth::CustomerPrincipal};
use domain::customer::Customer;
use schemas::{
    api::orders::{AddressBody, CheckoutRequest},
    pii::{ContactDetails, PostalAddress},
};

use crate::{customers::load_customer, state::CommandState};

pub(super) async fn filled_in(
    state: &CommandState,
    customer: CustomerPrincipal,
    mut request: CheckoutRequest,
) -> Result<CheckoutRequest, ApiError> {
    if request.email.is_some() && request.shipping_address.is_some() {
        return Ok(request);
    }
    let loaded = load_customer(state, customer.customer_id).await?;
    let Customer::Existing(profile) = &loaded.state else {
        return Err(ApiError::Unauthenticated);
    };
    if request.email.is_none() {
        let contact: Option<ContactDetails> = state
            .vault
            .open(&profile.contact)
            .await
            .map_err(ApiError::internal)?;
        request.email = contact.map(|contact| contact.email);
    }
    let default = profile
        .default_address
        .and_then(|id| profile.addresses.iter().find(|saved| saved.id == id));
    if request.shipping_address.is_none()
        && let Some(saved) = default
    {
        let address: Option<PostalAddress> = state
            .vault
            .open(&saved.sealed)
            .await
            .map_err(ApiError::internal)?;
        request.shipping_address = address.map(AddressBody::from);
    }
    Ok(request)
}
