//! The Product aggregate: a store's product with its variants and their stock. Slugs
//! and SKUs must be unique within the store; the aggregate says which of them it holds
//! ([`held_keys`]) and the log's reservations enforce the uniqueness across products.

mod decide;
mod stock;

use std::collections::BTreeSet;

use schemas::{
    Event,
    order::ItemQuantity,
    product::{ProductData, StockLine, VariantData},
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::{
    Amount, Currency, Description, ImageUrl, OptionText, ProductTitle, Reason, SeoDescription,
    SeoTitle, Sku, Slug, Tag, VariantName, store::Change,
};

pub use decide::decide;

/// A product may have at most this many variants.
pub const MAX_VARIANTS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "draft" => Some(Self::Draft),
            "active" => Some(Self::Active),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }
}

/// What the log says about one product.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Product {
    #[default]
    Unborn,
    Existing(Box<ProductData>),
}

impl Product {
    pub fn existing(&self) -> Option<&ProductData> {
        match self {
            Self::Existing(product) => Some(product),
            Self::Unborn => None,
        }
    }
}

/// A value unique within a store that a product holds while it exists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HeldKey {
    Slug(String),
    /// In the form SKUs are compared in ([`Sku::key`]).
    Sku(String),
}

/// The slug and every SKU a product holds. Comparing this before and after a command
/// gives what its append must reserve and release.
pub fn held_keys(product: &Product) -> BTreeSet<HeldKey> {
    let Some(product) = product.existing() else {
        return BTreeSet::new();
    };
    std::iter::once(HeldKey::Slug(product.slug.clone()))
        .chain(
            product
                .variants
                .iter()
                .filter_map(|variant| variant.sku.as_deref())
                .map(|sku| HeldKey::Sku(Sku::key(sku))),
        )
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVariant {
    pub variant_id: Uuid,
    pub name: VariantName,
    pub sku: Option<Sku>,
    pub price: Option<Amount>,
    pub inventory_count: u32,
    pub options: Vec<(OptionText, OptionText)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateProduct {
    pub store_id: Uuid,
    pub currency: Currency,
    pub title: ProductTitle,
    /// A free candidate for `title`, found by the caller among the store's reservations.
    pub slug: Slug,
    pub description: Option<Description>,
    pub price: Amount,
    pub compare_at_price: Option<Amount>,
    pub cost: Option<Amount>,
    pub images: Vec<ImageUrl>,
    pub status: ProductStatus,
    pub seo_title: Option<SeoTitle>,
    pub seo_description: Option<SeoDescription>,
    pub tags: Vec<Tag>,
    pub category_ids: Vec<Uuid>,
    pub variants: Vec<NewVariant>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateProduct {
    pub title: Option<ProductTitle>,
    /// Required when the new title no longer fits the current slug.
    pub slug: Option<Slug>,
    pub description: Change<Description>,
    pub price: Option<Amount>,
    pub compare_at_price: Change<Amount>,
    pub cost: Change<Amount>,
    pub images: Option<Vec<ImageUrl>>,
    pub status: Option<ProductStatus>,
    pub seo_title: Change<SeoTitle>,
    pub seo_description: Change<SeoDescription>,
    pub tags: Option<Vec<Tag>>,
    pub category_ids: Option<Vec<Uuid>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariantChanges {
    pub name: Option<VariantName>,
    pub sku: Change<Sku>,
    pub price: Change<Amount>,
    pub options: Option<Vec<(OptionText, OptionText)>>,
}

/// A price change applied to a product's price and every variant's own price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceAdjustment {
    /// Hundredths of a percent: `-1000` is 10 % off.
    BasisPoints(i64),
    /// Minor units added (or, negative, taken off).
    Amount(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductCommand {
    Create(Box<CreateProduct>),
    Update(Box<UpdateProduct>),
    Publish,
    Archive,
    AdjustPrices(PriceAdjustment),
    AddTags(Vec<Tag>),
    RemoveTags(Vec<Tag>),
    AddVariant(NewVariant),
    UpdateVariant {
        variant_id: Uuid,
        changes: VariantChanges,
    },
    RemoveVariant {
        variant_id: Uuid,
    },
    AdjustInventory {
        variant_id: Uuid,
        delta: i64,
        reason: Reason,
        /// The store's threshold at the time: crossing it raises `inventory.low_stock`.
        low_stock_threshold: u32,
    },
    /// A checkout takes units for an order; the product must be active.
    ReserveStock {
        order_id: Uuid,
        items: Vec<ItemQuantity>,
        low_stock_threshold: u32,
    },
    /// Units an order held come back.
    ReleaseStock {
        order_id: Uuid,
        items: Vec<ItemQuantity>,
        reason: Reason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProductError {
    #[error("the product already exists")]
    AlreadyExists,
    #[error("no such product")]
    NotFound,
    #[error("no such variant")]
    VariantNotFound,
    #[error("the slug does not belong to the product's title")]
    SlugMismatch,
    #[error("the product is already active")]
    AlreadyPublished,
    #[error("the product is already archived")]
    AlreadyArchived,
    #[error("SKU {0} is used by another variant of this product")]
    DuplicateSku(String),
    #[error("variant {0} already exists")]
    DuplicateVariant(Uuid),
    #[error("a product has at most {MAX_VARIANTS} variants")]
    TooManyVariants,
    #[error("only {available} in stock")]
    InsufficientStock { available: u32 },
    #[error("stock would exceed {}", u32::MAX)]
    StockOverflow,
    #[error("the price change would take a price below zero or above the maximum")]
    PriceOutOfRange,
    #[error("the product is not for sale")]
    NotForSale,
}

pub fn evolve(state: Product, event: &Event) -> Product {
    match (state, event) {
        (_, Event::ProductCreated(created)) => Product::Existing(Box::new(created.product.clone())),
        (Product::Existing(_), Event::ProductUpdated(updated)) => {
            Product::Existing(Box::new(updated.product.clone()))
        }
        (Product::Existing(mut product), event) => {
            match event {
                Event::ProductPublished(_) => product.status = "active".into(),
                Event::ProductArchived(_) => product.status = "archived".into(),
                Event::VariantAdded(added) => product.variants.push(added.variant.clone()),
                Event::VariantUpdated(updated) => {
                    if let Some(variant) = variant_mut(&mut product, updated.variant.variant_id) {
                        *variant = updated.variant.clone();
                    }
                }
                Event::VariantRemoved(removed) => product
                    .variants
                    .retain(|variant| variant.variant_id != removed.variant_id),
                Event::InventoryAdjusted(adjusted) => {
                    if let Some(variant) = variant_mut(&mut product, adjusted.variant_id) {
                        variant.inventory_count = adjusted.inventory_count;
                    }
                }
                Event::InventoryReserved(reserved) => set_stock(&mut product, &reserved.lines),
                Event::InventoryReleased(released) => set_stock(&mut product, &released.lines),
                _ => {}
            }
            Product::Existing(product)
        }
        (state, _) => state,
    }
}

fn set_stock(product: &mut ProductData, lines: &[StockLine]) {
    for line in lines {
        if let Some(variant) = variant_mut(product, line.variant_id) {
            variant.inventory_count = line.inventory_count;
        }
    }
}

fn variant_mut(product: &mut ProductData, variant_id: Uuid) -> Option<&mut VariantData> {
    product
        .variants
        .iter_mut()
        .find(|variant| variant.variant_id == variant_id)
}

#[cfg(test)]
mod tests;
