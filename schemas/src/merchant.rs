//! Payloads of the Merchant aggregate's events. Credentials (password hashes, API key
//! digests, refresh sessions) never enter the log: it is published to every subscriber.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `merchant.registered`: the account exists; `email` is normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MerchantRegistered {
    pub email: String,
    pub name: Option<String>,
}
