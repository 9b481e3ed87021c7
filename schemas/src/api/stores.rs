use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{present, products::MoneyBody};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStoreRequest {
    /// 1–100 characters.
    pub name: String,
    /// Up to 100 characters.
    pub niche: Option<String>,
    /// Up to 5,000 characters.
    pub description: Option<String>,
    /// ISO 4217; `USD` when absent.
    pub currency: Option<String>,
}

/// A partial update: absent fields stay as they are; `null` clears `niche` or
/// `description`. A new name gives the store a new slug.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStoreRequest {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub niche: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Stock at or below this raises `inventory.low_stock` (0–1,000,000; 5 at first).
    pub low_stock_threshold: Option<i64>,
    /// What a checkout charges for shipping.
    pub shipping: Option<ShippingBody>,
    /// The tax a checkout charges.
    pub taxes: Option<TaxesBody>,
}

/// A flat rate per order, in the store's currency; nothing once the subtotal reaches
/// `free_above`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingBody {
    pub flat_rate: MoneyBody,
    pub free_above: Option<MoneyBody>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxRateBody {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// A region of the country with a rate of its own; the country's rate applies elsewhere.
    pub region: Option<String>,
    /// Hundredths of a percent, 0–10,000: 1900 is 19 %.
    pub basis_points: i64,
}

/// The store's tax rates (at most 200, each country and region once). A shipping address
/// with no rate pays none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxesBody {
    /// Whether catalog prices already contain the tax.
    pub prices_include_tax: bool,
    pub rates: Vec<TaxRateBody>,
}

/// A store as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StoreView {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub slug: String,
    pub niche: Option<String>,
    pub description: Option<String>,
    pub currency: String,
    /// `active`, `paused` or `deleted`.
    pub status: String,
    /// Stock at or below this raises `inventory.low_stock`.
    pub low_stock_threshold: u32,
    pub shipping: ShippingBody,
    pub taxes: TaxesBody,
    /// The stream version: send it back in `If-Match`.
    pub version: i32,
}

/// A store as the query API lists it: the view plus its timestamps.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoreRecord {
    #[serde(flatten)]
    pub store: StoreView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A store as anyone on the internet sees it: no owner, no internal state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicStoreView {
    pub name: String,
    pub slug: String,
    pub niche: Option<String>,
    pub description: Option<String>,
    pub currency: String,
}
