//! Payloads of the Store aggregate's events.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `store.created`, schema version 2: a store has one currency (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoreCreated {
    pub owner_id: Uuid,
    pub name: String,
    pub slug: String,
    pub niche: Option<String>,
    pub description: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
}

/// `store.created`, schema version 1, written before stores carried a currency. Kept so
/// that old log entries still decode; read as version 2 with the platform default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoreCreatedV1 {
    pub owner_id: Uuid,
    pub name: String,
    pub slug: String,
    pub niche: Option<String>,
    pub description: Option<String>,
}

impl From<StoreCreatedV1> for StoreCreated {
    fn from(v1: StoreCreatedV1) -> Self {
        Self {
            owner_id: v1.owner_id,
            name: v1.name,
            slug: v1.slug,
            niche: v1.niche,
            description: v1.description,
            currency: "USD".to_owned(),
        }
    }
}

/// `store.updated`: only the fields that changed are set. An empty `niche` or
/// `description` means the merchant cleared it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoreUpdated {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub niche: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StorePaused {
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoreActivated {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoreDeleted {}

/// Stock at or below `threshold` raises `inventory.low_stock` for the variant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoreLowStockThresholdChanged {
    pub threshold: u32,
}

/// `store.shipping_changed`: what a checkout charges for shipping, in minor units of the
/// store's currency: a flat rate per order, nothing once the subtotal reaches `free_above`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoreShippingChanged {
    pub flat_rate: i64,
    pub free_above: Option<i64>,
}

/// A tax rate for a country (ISO 3166-1 alpha-2), or for one region of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaxRateData {
    pub country: String,
    pub region: Option<String>,
    /// Hundredths of a percent: 1900 is 19 %.
    pub basis_points: u32,
}

/// `store.taxes_changed`: the store's tax rates, and whether its prices include them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoreTaxesChanged {
    pub prices_include_tax: bool,
    pub rates: Vec<TaxRateData>,
}
