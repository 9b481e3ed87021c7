//! Personal data in events, sealed with a key of its own (DESIGN §2): the log keeps only
//! ciphertext, so destroying the key erases the data from every event that carries it
//! without rewriting the log.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Authenticated ciphertext of a JSON document, under the key `key_id` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub key_id: Uuid,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Where an order ships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
    pub phone: Option<String>,
}

/// The document a customer's or an order's [`Sealed`] contact opens to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDetails {
    pub email: String,
    pub name: Option<String>,
    pub shipping_address: Option<PostalAddress>,
}
