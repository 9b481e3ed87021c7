//! The products a checkout reserves stock on, as this process last saw them. A cached
//! state is only a guess that the append checks: stock is reserved at the version the
//! state was read at, so a product another writer moved meanwhile is a version conflict,
//! which drops the guess and decides again from the log. Nothing a shopper is refused
//! stands on a guess (see `place`).

use std::{collections::HashMap, sync::Arc};

use api_core::ApiError;
use domain::product::{self, Product};
use moka::sync::Cache;
use schemas::Event;
use uuid::Uuid;

use crate::{aggregate::stream_id, catalog::aggregates::ProductFold, state::CommandState};

/// About this many bytes of products are kept; the busiest stay, the rest fall out. By
/// weight, not count: a merchant's products can be large (long descriptions, many
/// variants), and no store's shoppers may grow another process's memory at will.
const CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Clone)]
pub(crate) struct Stocked {
    pub product: Arc<Product>,
    pub version: i32,
}

impl Stocked {
    /// The product once `events`, appended at this version, are applied.
    pub fn after(&self, events: &[Event]) -> Self {
        let product = events
            .iter()
            .fold(Product::clone(&self.product), product::evolve);
        Self {
            product: Arc::new(product),
            version: self.version + i32::try_from(events.len()).unwrap_or(i32::MAX),
        }
    }
}

#[derive(Clone)]
pub(crate) struct StockCache(Cache<Uuid, Stocked>);

impl Default for StockCache {
    fn default() -> Self {
        Self(
            Cache::builder()
                .max_capacity(CAPACITY_BYTES)
                .weigher(|_, stocked: &Stocked| approximate_bytes(&stocked.product))
                .build(),
        )
    }
}

/// What a product holds in memory, near enough to bound the cache by.
fn approximate_bytes(product: &Product) -> u32 {
    let Some(data) = product.existing() else {
        return 64;
    };
    let texts = |values: &[String]| values.iter().map(|v| 24 + v.len()).sum::<usize>();
    let optional = |value: &Option<String>| value.as_ref().map_or(0, String::len);
    let variants: usize = data
        .variants
        .iter()
        .map(|variant| {
            128 + variant.name.len()
                + optional(&variant.sku)
                + variant
                    .options
                    .iter()
                    .map(|option| 48 + option.name.len() + option.value.len())
                    .sum::<usize>()
        })
        .sum();
    let bytes = 256
        + data.title.len()
        + data.slug.len()
        + optional(&data.description)
        + optional(&data.seo_title)
        + optional(&data.seo_description)
        + texts(&data.images)
        + texts(&data.tags)
        + 16 * data.category_ids.len()
        + variants;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Where a checkout reads its products from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The cached state where there is one: the append will check it.
    Cached,
    /// The log: what a refusal may stand on.
    Log,
}

impl StockCache {
    /// Records what a committed append left a product as.
    pub fn committed(&self, product_id: Uuid, stocked: Stocked) {
        self.0.insert(product_id, stocked);
    }

    pub fn forget(&self, product_ids: &[Uuid]) {
        for id in product_ids {
            self.0.invalidate(id);
        }
    }
}

pub(crate) async fn load_products(
    state: &CommandState,
    product_ids: &[Uuid],
    source: Source,
) -> Result<HashMap<Uuid, Stocked>, ApiError> {
    let mut stocked = HashMap::with_capacity(product_ids.len());
    for id in product_ids {
        let cached = match source {
            Source::Cached => state.stock_cache.0.get(id),
            Source::Log => None,
        };
        let product = match cached {
            Some(cached) => cached,
            None => {
                let loaded = eventlog::load::<ProductFold>(
                    state.pool(),
                    &stream_id::<ProductFold>(*id),
                    state.snapshot_every(),
                )
                .await
                .map_err(ApiError::internal)?;
                let read = Stocked {
                    product: Arc::new(loaded.state),
                    version: loaded.version,
                };
                state.stock_cache.0.insert(*id, read.clone());
                read
            }
        };
        stocked.insert(*id, product);
    }
    Ok(stocked)
}

#[cfg(test)]
mod tests {
    use schemas::product::{Money, ProductData, VariantData};

    use super::*;

    fn product(description: usize, variants: usize) -> Product {
        Product::Existing(Box::new(ProductData {
            store_id: Uuid::nil(),
            title: "Sock".into(),
            slug: "sock".into(),
            description: Some("x".repeat(description)),
            price: Money {
                amount: 100,
                currency: "USD".into(),
            },
            compare_at_price: None,
            cost: None,
            images: vec![],
            status: "active".into(),
            seo_title: None,
            seo_description: None,
            tags: vec![],
            category_ids: vec![],
            variants: (0..variants)
                .map(|n| VariantData {
                    variant_id: Uuid::nil(),
                    name: format!("variant {n}"),
                    sku: None,
                    price: None,
                    inventory_count: 1,
                    options: vec![],
                })
                .collect(),
        }))
    }

    #[test]
    fn a_product_weighs_at_least_what_it_holds() {
        let small = approximate_bytes(&product(10, 1));
        let long = approximate_bytes(&product(1_000_000, 1));
        let wide = approximate_bytes(&product(10, 1_000));
        assert!(small < 1_024, "{small}");
        assert!(long > 1_000_000, "{long}");
        assert!(wide > 128_000, "{wide}");
    }
}
