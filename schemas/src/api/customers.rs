//! A storefront customer's own account: profile, saved addresses, wishlist.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::orders::AddressBody;

/// The signed-in customer as they see themselves.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerAccountView {
    pub id: Uuid,
    pub store_id: Uuid,
    /// Absent once the customer's personal data was erased.
    pub email: Option<String>,
    pub name: Option<String>,
    /// The default address first, then the others in the order they were saved.
    pub addresses: Vec<SavedAddressView>,
    /// Product ids, in the order they were added.
    pub wishlist: Vec<Uuid>,
    pub version: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SavedAddressView {
    pub id: Uuid,
    pub default: bool,
    /// Absent once the customer's personal data was erased.
    pub address: Option<AddressBody>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomerRequest {
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveAddressRequest {
    pub address: AddressBody,
    /// Make it the default address (the first saved address always is).
    #[serde(default)]
    pub default: bool,
}
