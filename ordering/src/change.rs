//! One command on an existing order. What it puts back in stock (a cancellation, an
//! expiry, a refund that restocks) is released on each product in the same append, at
//! the version the product was read at; a product or the order moving meanwhile means
//! reading and deciding again.

use std::collections::BTreeMap;

use domain::{
    Reason,
    order::{self, Order, OrderCommand, OrderError},
    product::{self, ProductCommand, ProductError},
};
use eventlog::{
    AppendError, AppendRequest, EventLog, ExpectedVersion, IdempotencyClaim, LoadError,
    MultiAppendOutcome, NewEvent, load,
};
use schemas::{Event, EventMetadata, order::ItemQuantity};
use thiserror::Error;
use uuid::Uuid;

use crate::{OrderFold, ProductFold, SNAPSHOT_EVERY, order_stream, product_stream};

/// Attempts after losing a race with another writer of the order or its products.
const MAX_ATTEMPTS: usize = 10;

pub struct OrderChange<'a> {
    pub order_id: Uuid,
    /// The order must belong to this store; any other is not found.
    pub store_id: Uuid,
    /// `If-Match`: the version the caller saw; a race lost with it is a conflict.
    pub if_match: Option<i32>,
    pub command: &'a (dyn Fn(&Order) -> OrderCommand + Sync),
    pub metadata: EventMetadata,
    /// The `Idempotency-Key` claim for the order's part, built from the order after.
    pub claim: Option<&'a (dyn Fn(&Order) -> IdempotencyClaim + Sync)>,
}

#[derive(Debug)]
pub enum OrderOutcome {
    Changed {
        after: Order,
        version: i32,
        /// The append's highest position: the one to wait for to read all of it.
        position: i64,
    },
    /// The idempotency key's stored answer.
    Replayed(serde_json::Value),
}

#[derive(Debug, Error)]
pub enum OrderWriteError {
    #[error("no such order")]
    NotFound,
    #[error("the order is at version {current}")]
    VersionConflict { current: i32 },
    #[error(transparent)]
    Rule(#[from] OrderError),
    #[error("giving stock back: {0}")]
    Stock(ProductError),
    #[error("loading {stream_id}: {source}")]
    Load {
        stream_id: String,
        source: LoadError,
    },
    #[error(transparent)]
    Append(AppendError),
    #[error("the order and its products kept changing")]
    Contended,
}

pub async fn change_order(
    log: &EventLog,
    change: &OrderChange<'_>,
) -> Result<OrderOutcome, OrderWriteError> {
    let stream = order_stream(change.order_id);
    for _ in 0..MAX_ATTEMPTS {
        let loaded = load::<OrderFold>(log.pool(), &stream, SNAPSHOT_EVERY)
            .await
            .map_err(|source| OrderWriteError::Load {
                stream_id: stream.clone(),
                source,
            })?;
        let Some(placed) = loaded
            .state
            .placed()
            .filter(|placed| placed.store_id == change.store_id)
        else {
            return Err(OrderWriteError::NotFound);
        };
        if let Some(expected) = change.if_match
            && expected != loaded.version
        {
            return Err(OrderWriteError::VersionConflict {
                current: loaded.version,
            });
        }
        let events = order::decide(&loaded.state, &(change.command)(&loaded.state))?;
        let mut parts = release_parts(log, placed, change, &events).await?;
        let after = events.iter().fold(loaded.state.clone(), order::evolve);
        let mut order = AppendRequest::new(
            stream.clone(),
            ExpectedVersion::Exact(loaded.version),
            events.into_iter().map(NewEvent::new).collect(),
        )
        .in_store(change.store_id)
        .with_metadata(change.metadata.clone());
        if let Some(claim) = change.claim {
            order = order.idempotent(claim(&after));
        }
        // The order goes last, so its position is the append's highest.
        parts.push(order);
        match log.append_multi(parts).await {
            Ok(MultiAppendOutcome::Appended(appended)) => {
                let order_part = appended.last().ok_or(OrderWriteError::Contended)?;
                return Ok(OrderOutcome::Changed {
                    after,
                    version: order_part.version,
                    position: order_part.last_position(),
                });
            }
            Ok(MultiAppendOutcome::Replayed(stored)) => return Ok(OrderOutcome::Replayed(stored)),
            Err(AppendError::VersionConflict {
                stream_id, actual, ..
            }) if stream_id == stream && change.if_match.is_some() => {
                return Err(OrderWriteError::VersionConflict { current: actual });
            }
            Err(AppendError::VersionConflict { .. }) => {}
            Err(other) => return Err(OrderWriteError::Append(other)),
        }
    }
    Err(OrderWriteError::Contended)
}

/// A part per product that gets stock back from these events.
async fn release_parts(
    log: &EventLog,
    placed: &order::PlacedOrder,
    change: &OrderChange<'_>,
    events: &[Event],
) -> Result<Vec<AppendRequest>, OrderWriteError> {
    let (reason, restocked) = match events.first() {
        Some(Event::OrderCancelled(e)) => ("cancelled", &e.restocked),
        Some(Event::OrderRefunded(e)) => ("refunded", &e.restocked),
        Some(Event::OrderExpired(e)) => ("expired", &e.restocked),
        _ => return Ok(Vec::new()),
    };
    let product_of: BTreeMap<Uuid, Uuid> = placed
        .lines
        .iter()
        .map(|line| (line.variant_id, line.product_id))
        .collect();
    let mut by_product: BTreeMap<Uuid, Vec<ItemQuantity>> = BTreeMap::new();
    for item in restocked {
        if let Some(product_id) = product_of.get(&item.variant_id) {
            by_product
                .entry(*product_id)
                .or_default()
                .push(item.clone());
        }
    }
    let reason = Reason::parse(reason).expect("the release reasons are valid reasons");
    let mut parts = Vec::with_capacity(by_product.len());
    for (product_id, items) in by_product {
        let stream_id = product_stream(product_id);
        let loaded = load::<ProductFold>(log.pool(), &stream_id, SNAPSHOT_EVERY)
            .await
            .map_err(|source| OrderWriteError::Load {
                stream_id: stream_id.clone(),
                source,
            })?;
        let release = ProductCommand::ReleaseStock {
            order_id: change.order_id,
            items,
            reason: reason.clone(),
        };
        let events = match product::decide(&loaded.state, &release) {
            Ok(events) if !events.is_empty() => events,
            // Gone since (or every variant removed): nothing to take stock back into.
            Ok(_) | Err(ProductError::NotFound) => continue,
            Err(other) => return Err(OrderWriteError::Stock(other)),
        };
        parts.push(
            AppendRequest::new(
                stream_id,
                ExpectedVersion::Exact(loaded.version),
                events.into_iter().map(NewEvent::new).collect(),
            )
            .in_store(change.store_id)
            .with_metadata(change.metadata.clone()),
        );
    }
    Ok(parts)
}
