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

/// Products kept; a store's busiest products stay, the rest fall out.
const CAPACITY: u64 = 20_000;

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
        Self(Cache::new(CAPACITY))
    }
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
