//! Payloads of the Product aggregate's events. `product.created` and `product.updated`
//! carry the whole product as it is after the change, because the connected services
//! (ContentForge, RankPilot, ShopChat…) react to them without reading anything else.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An amount in minor units of an ISO 4217 currency (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Money {
    pub amount: i64,
    pub currency: String,
}

/// One option a variant stands for, such as `size: M`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VariantOption {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VariantData {
    pub variant_id: Uuid,
    pub name: String,
    pub sku: Option<String>,
    /// Overrides the product's price when set.
    pub price: Option<Money>,
    pub inventory_count: u32,
    pub options: Vec<VariantOption>,
}

/// A product as a whole, in the order its merchant arranged images and variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductData {
    pub store_id: Uuid,
    pub title: String,
    pub slug: String,
    pub description: Option<String>,
    pub price: Money,
    pub compare_at_price: Option<Money>,
    // What the merchant paid: theirs alone, so never in what integrators read.
    #[schemars(skip)]
    pub cost: Option<Money>,
    pub images: Vec<String>,
    /// `draft`, `active` or `archived`.
    pub status: String,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub tags: Vec<String>,
    pub category_ids: Vec<Uuid>,
    pub variants: Vec<VariantData>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductCreated {
    pub product: ProductData,
}

/// The product after the change, and the names of the JSON fields that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductUpdated {
    pub product: ProductData,
    pub changed: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductPublished {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProductArchived {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VariantAdded {
    pub variant: VariantData,
}

/// The variant as it is after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VariantUpdated {
    pub variant: VariantData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VariantRemoved {
    pub variant_id: Uuid,
}

/// Stock of one variant moved by `delta` for `reason`, to `inventory_count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryAdjusted {
    pub variant_id: Uuid,
    pub delta: i64,
    pub reason: String,
    pub inventory_count: u32,
}

/// Stock of one variant fell to or below its store's threshold (once per crossing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryLowStock {
    pub variant_id: Uuid,
    pub sku: Option<String>,
    pub inventory_count: u32,
    pub threshold: u32,
}

/// Units of one variant moved between its stock and an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StockLine {
    pub variant_id: Uuid,
    pub quantity: u32,
    /// The variant's stock after the move.
    pub inventory_count: u32,
}

/// `inventory.reserved`: a checkout took units of this product for an order. They are
/// the order's from then on: sold once it is paid, back in stock if it is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryReserved {
    pub order_id: Uuid,
    pub lines: Vec<StockLine>,
}

/// `inventory.released`: units an order held came back to stock, because its payment
/// expired, it was cancelled before they shipped, or a refund restocked them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryReleased {
    pub order_id: Uuid,
    /// `expired`, `cancelled` or `refunded`.
    pub reason: String,
    pub lines: Vec<StockLine>,
}
