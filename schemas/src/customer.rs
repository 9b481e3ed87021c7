//! Payloads of the Customer aggregate's events: a shopper of one store. The contact
//! details are [`Sealed`] with the customer's own key, so they can be erased.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::pii::Sealed;

/// `customer.created`: the first checkout or registration of this email in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerCreated {
    pub store_id: Uuid,
    /// A digest of the normalised email, which the store's customers are unique by.
    pub email_digest: String,
    pub contact: Sealed,
}

/// `customer.updated`: the contact details as they are now, and which fields changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerUpdated {
    /// Set when the email changed.
    pub email_digest: Option<String>,
    pub contact: Sealed,
    pub changed: Vec<String>,
}

/// `customer.account_opened`: the customer can log in to the storefront. The password
/// hash is kept outside the log, under `credential_id`: of two registrations racing for
/// one email, the one whose event commits names the credential that is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerAccountOpened {
    pub credential_id: Uuid,
}

/// `customer.address_added`: a saved address ([`Sealed`] with the customer's key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerAddressAdded {
    pub address_id: Uuid,
    pub address: Sealed,
    /// Whether it became the default (the first address always does).
    pub default: bool,
}

/// `customer.address_updated`: a saved address as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerAddressUpdated {
    pub address_id: Uuid,
    pub address: Sealed,
}

/// `customer.address_removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerAddressRemoved {
    pub address_id: Uuid,
    /// The address that became the default in place of the removed one, if it was it.
    pub new_default: Option<Uuid>,
}

/// `customer.default_address_set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerDefaultAddressSet {
    pub address_id: Uuid,
}

/// `customer.wishlist_added`: a product the customer saved for later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerWishlistAdded {
    pub product_id: Uuid,
}

/// `customer.wishlist_removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerWishlistRemoved {
    pub product_id: Uuid,
}
