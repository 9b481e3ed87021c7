//! Products, variants, stock and bulk operations over HTTP.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::present;

/// An amount in minor units (`1999` is 19.99) of the store's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyBody {
    pub amount: i64,
    /// ISO 4217; must be the store's currency.
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionBody {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVariantRequest {
    /// 1–255 characters.
    pub name: String,
    /// Unique within the store, regardless of case.
    pub sku: Option<String>,
    /// Overrides the product's price.
    pub price: Option<MoneyBody>,
    /// Stock to start with (0 when absent); later changes go through adjustments.
    pub inventory_count: Option<i64>,
    #[serde(default)]
    pub options: Vec<OptionBody>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    /// 1–255 characters.
    pub title: String,
    pub description: Option<String>,
    pub price: MoneyBody,
    pub compare_at_price: Option<MoneyBody>,
    /// What the product costs the merchant; never shown on the storefront.
    pub cost: Option<MoneyBody>,
    /// Image URLs in display order.
    #[serde(default)]
    pub images: Vec<String>,
    /// `draft` (default) or `active`.
    pub status: Option<String>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub category_ids: Vec<Uuid>,
    #[serde(default)]
    pub variants: Vec<NewVariantRequest>,
}

/// A partial update: absent fields stay; `null` clears the optional ones.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProductRequest {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub price: Option<MoneyBody>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<MoneyBody>)]
    pub compare_at_price: Option<Option<MoneyBody>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<MoneyBody>)]
    pub cost: Option<Option<MoneyBody>>,
    pub images: Option<Vec<String>>,
    /// `draft`, `active` or `archived`.
    pub status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub seo_title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub seo_description: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub category_ids: Option<Vec<Uuid>>,
}

/// Changes to a variant; its stock changes through inventory adjustments only.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVariantRequest {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub sku: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<MoneyBody>)]
    pub price: Option<Option<MoneyBody>>,
    pub options: Option<Vec<OptionBody>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryAdjustmentRequest {
    pub variant_id: Uuid,
    /// Units added (positive) or taken (negative); never below zero in total.
    pub delta: i64,
    /// Why: `sale`, `restock`, `damaged`… (1–200 characters).
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// 1–500 products of the store.
    pub product_ids: Vec<Uuid>,
    pub action: BulkAction,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BulkAction {
    /// `draft`, `active` or `archived`.
    SetStatus {
        status: String,
    },
    /// Exactly one of `percent` (e.g. `-10` or `12.5`) and `amount` (minor units).
    AdjustPrice {
        percent: Option<f64>,
        amount: Option<i64>,
    },
    AddTags {
        tags: Vec<String>,
    },
    RemoveTags {
        tags: Vec<String>,
    },
}

/// What happened to one product of a bulk operation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkItemResult {
    pub product_id: Uuid,
    /// The HTTP status this product's own request would have had.
    pub status: u16,
    /// The product's version after the operation, when it succeeded.
    pub version: Option<i32>,
    /// The error code and message, when it failed.
    pub error: Option<BulkItemError>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkItemError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkResult {
    pub succeeded: usize,
    pub failed: usize,
    /// One entry per requested product, in the request's order.
    pub results: Vec<BulkItemResult>,
    /// The last log position written, for `X-Min-Position`.
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VariantView {
    pub id: Uuid,
    pub name: String,
    pub sku: Option<String>,
    /// The variant's own price; the product's price applies when absent.
    pub price: Option<MoneyBody>,
    pub inventory_count: u32,
    pub options: Vec<OptionBody>,
}

/// A product as its merchant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProductView {
    pub id: Uuid,
    pub store_id: Uuid,
    pub title: String,
    pub slug: String,
    pub description: Option<String>,
    pub price: MoneyBody,
    pub compare_at_price: Option<MoneyBody>,
    pub cost: Option<MoneyBody>,
    pub images: Vec<String>,
    /// `draft`, `active` or `archived`.
    pub status: String,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub tags: Vec<String>,
    pub category_ids: Vec<Uuid>,
    pub variants: Vec<VariantView>,
    /// Stock over all variants.
    pub inventory_total: i64,
    /// Whether any variant has stock (a product without variants does not track it).
    pub in_stock: bool,
    /// The stream version: send it back in `If-Match`.
    pub version: i32,
}

/// A product as the query API shows it: the view, its collections, its timestamps.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProductRecord {
    #[serde(flatten)]
    pub product: ProductView,
    pub collection_ids: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicVariantView {
    pub id: Uuid,
    pub name: String,
    pub sku: Option<String>,
    /// The price a shopper pays for this variant.
    pub price: MoneyBody,
    pub available: bool,
    pub options: Vec<OptionBody>,
}

/// A product as a shopper sees it: no cost, no stock counts, no internal state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicProductView {
    pub id: Uuid,
    pub title: String,
    pub slug: String,
    pub description: Option<String>,
    pub price: MoneyBody,
    pub compare_at_price: Option<MoneyBody>,
    pub images: Vec<String>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub tags: Vec<String>,
    pub category_ids: Vec<Uuid>,
    pub available: bool,
    pub variants: Vec<PublicVariantView>,
}

/// An uploaded image.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MediaView {
    /// Where the image is served; use it in a product's `images`.
    pub url: String,
    /// `image/jpeg`, `image/png`, `image/webp` or `image/gif`, from the bytes themselves.
    pub content_type: String,
    pub size: u64,
}
