//! Stock an order takes from a product and gives back. The order says how many units of
//! which variants; the product says whether it has them.

use std::collections::BTreeMap;

use schemas::{
    Event,
    order::ItemQuantity,
    product::{InventoryLowStock, InventoryReleased, InventoryReserved, ProductData, StockLine},
};
use uuid::Uuid;

use super::{ProductError, ProductStatus};
use crate::Reason;

pub fn reserve(
    product: &ProductData,
    order_id: Uuid,
    items: &[ItemQuantity],
    low_stock_threshold: u32,
) -> Result<Vec<Event>, ProductError> {
    if ProductStatus::parse(&product.status) != Some(ProductStatus::Active) {
        return Err(ProductError::NotForSale);
    }
    let mut lines = Vec::new();
    let mut low = Vec::new();
    for (variant_id, quantity) in by_variant(items) {
        let variant = product
            .variants
            .iter()
            .find(|variant| variant.variant_id == variant_id)
            .ok_or(ProductError::VariantNotFound)?;
        let before = variant.inventory_count;
        let after = before
            .checked_sub(quantity)
            .ok_or(ProductError::InsufficientStock { available: before })?;
        if before > low_stock_threshold && after <= low_stock_threshold {
            low.push(Event::InventoryLowStock(InventoryLowStock {
                variant_id,
                sku: variant.sku.clone(),
                inventory_count: after,
                threshold: low_stock_threshold,
            }));
        }
        lines.push(StockLine {
            variant_id,
            quantity,
            inventory_count: after,
        });
    }
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let mut events = vec![Event::InventoryReserved(InventoryReserved {
        order_id,
        lines,
    })];
    events.extend(low);
    Ok(events)
}

/// Units of variants removed since the order was placed have nowhere to go back to.
pub fn release(
    product: &ProductData,
    order_id: Uuid,
    items: &[ItemQuantity],
    reason: &Reason,
) -> Result<Vec<Event>, ProductError> {
    let mut lines = Vec::new();
    for (variant_id, quantity) in by_variant(items) {
        let Some(variant) = product
            .variants
            .iter()
            .find(|variant| variant.variant_id == variant_id)
        else {
            continue;
        };
        let after = variant
            .inventory_count
            .checked_add(quantity)
            .ok_or(ProductError::StockOverflow)?;
        lines.push(StockLine {
            variant_id,
            quantity,
            inventory_count: after,
        });
    }
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Event::InventoryReleased(InventoryReleased {
        order_id,
        reason: reason.as_str().to_owned(),
        lines,
    })])
}

/// Units by variant, zero quantities left out.
fn by_variant(items: &[ItemQuantity]) -> BTreeMap<Uuid, u32> {
    let mut units: BTreeMap<Uuid, u32> = BTreeMap::new();
    for item in items.iter().filter(|item| item.quantity > 0) {
        let total = units.entry(item.variant_id).or_default();
        *total = total.saturating_add(item.quantity);
    }
    units
}
