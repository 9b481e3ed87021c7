//! Payloads of the Customer aggregate's events: a shopper of one store. The contact
//! details are [`Sealed`] with the customer's own key, so they can be erased.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::pii::Sealed;

/// `customer.created`: the first checkout or registration of this email in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerCreated {
    pub store_id: Uuid,
    /// A digest of the normalised email, which the store's customers are unique by.
    pub email_digest: String,
    pub contact: Sealed,
}

/// `customer.updated`: the contact details as they are now, and which fields changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerUpdated {
    /// Set when the email changed.
    pub email_digest: Option<String>,
    pub contact: Sealed,
    pub changed: Vec<String>,
}
