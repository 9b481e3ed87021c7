//! Payloads of the Integration aggregate: a store's connection to one of the platform's
//! services, or to a webhook endpoint of the merchant's own. Secrets are never in an
//! event (the log is replayed to auditors and streamed to integrators): an event names
//! the secret by id, and the secret itself is kept in `integration_secrets`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationData {
    pub store_id: Uuid,
    /// A service (`trendscout` … `shopchat`) or `webhook` for the merchant's own endpoint.
    pub target: String,
    pub endpoint_url: String,
    /// Event types and `aggregate.*` patterns it receives; empty means a service's
    /// default routes.
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// The id of the secret that signs its deliveries.
    pub secret_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationConnected {
    pub integration: IntegrationData,
}

/// The integration after the change, and the names of the fields that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationUpdated {
    pub integration: IntegrationData,
    pub changed: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationEnabled {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationDisabled {
    /// `merchant` (asked for) or `gone` (the endpoint answered 410).
    pub reason: String,
}

/// A new signing secret; the previous one keeps signing alongside it until
/// `previous_valid_until`, so receivers can switch without dropping deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationSecretRotated {
    pub secret_id: Uuid,
    pub previous_secret_id: Uuid,
    #[serde(with = "chrono::serde::ts_microseconds")]
    #[schemars(with = "i64", description = "Microseconds since the Unix epoch.")]
    pub previous_valid_until: DateTime<Utc>,
}

/// `integration.disconnected`, schema version 2: why it was disconnected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationDisconnected {
    pub reason: DisconnectReason,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectReason {
    /// The merchant (or an API key of theirs) disconnected it.
    #[default]
    Merchant,
    /// Its store was deleted; the platform disconnected it.
    StoreDeleted,
}

/// `integration.disconnected`, schema version 1, which carried no reason: only
/// merchants disconnected integrations then.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationDisconnectedV1 {}

impl From<IntegrationDisconnectedV1> for IntegrationDisconnected {
    fn from(_: IntegrationDisconnectedV1) -> Self {
        Self {
            reason: DisconnectReason::Merchant,
        }
    }
}

/// Every scheduled attempt to deliver one event to this integration failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationDeliveryExhausted {
    pub target: String,
    pub event_id: Uuid,
    pub event_type: String,
    pub resource_type: String,
    pub resource_id: String,
    pub attempts: u32,
    /// The last answer's HTTP status; 0 when the service could not be reached.
    pub last_status_code: u16,
    pub last_error: Option<String>,
}
