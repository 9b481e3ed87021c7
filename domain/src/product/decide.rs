//! Which events a product command produces, or why it is refused.

use std::collections::HashSet;

use schemas::{
    Event,
    product::{
        InventoryAdjusted, InventoryLowStock, Money, ProductArchived, ProductCreated, ProductData,
        ProductPublished, ProductUpdated, VariantAdded, VariantData, VariantOption, VariantRemoved,
        VariantUpdated,
    },
};
use uuid::Uuid;

use super::{
    CreateProduct, MAX_VARIANTS, NewVariant, PriceAdjustment, Product, ProductCommand,
    ProductError, ProductStatus, UpdateProduct, VariantChanges, stock,
};
use crate::{Amount, OptionText, Sku, Slug, store::Change};

pub fn decide(state: &Product, command: &ProductCommand) -> Result<Vec<Event>, ProductError> {
    if let ProductCommand::Create(create) = command {
        return create_product(state, create);
    }
    let current = state.existing().ok_or(ProductError::NotFound)?;
    match command {
        ProductCommand::Create(_) => Err(ProductError::AlreadyExists),
        ProductCommand::Update(update) => update_product(current, update),
        ProductCommand::Publish => match status_of(current) {
            ProductStatus::Active => Err(ProductError::AlreadyPublished),
            _ => Ok(vec![Event::ProductPublished(ProductPublished {})]),
        },
        ProductCommand::Archive => match status_of(current) {
            ProductStatus::Archived => Err(ProductError::AlreadyArchived),
            _ => Ok(vec![Event::ProductArchived(ProductArchived {})]),
        },
        ProductCommand::AdjustPrices(adjustment) => adjust_prices(current, *adjustment),
        ProductCommand::AddTags(tags) => {
            let added = tags.iter().map(|tag| tag.as_str().to_owned());
            Ok(retagged(current, current.tags.iter().cloned().chain(added)))
        }
        ProductCommand::RemoveTags(tags) => {
            let kept = current
                .tags
                .iter()
                .filter(|tag| !tags.iter().any(|removed| removed.as_str() == tag.as_str()))
                .cloned();
            Ok(retagged(current, kept))
        }
        ProductCommand::AddVariant(new) => add_variant(current, new),
        ProductCommand::UpdateVariant {
            variant_id,
            changes,
        } => update_variant(current, *variant_id, changes),
        ProductCommand::RemoveVariant { variant_id } => {
            variant(current, *variant_id)?;
            Ok(vec![Event::VariantRemoved(VariantRemoved {
                variant_id: *variant_id,
            })])
        }
        ProductCommand::AdjustInventory {
            variant_id,
            delta,
            reason,
            low_stock_threshold,
        } => {
            let before = variant(current, *variant_id)?.inventory_count;
            let after = i64::from(before) + delta;
            if after < 0 {
                return Err(ProductError::InsufficientStock { available: before });
            }
            let after = u32::try_from(after).map_err(|_| ProductError::StockOverflow)?;
            let mut events = vec![Event::InventoryAdjusted(InventoryAdjusted {
                variant_id: *variant_id,
                delta: *delta,
                reason: reason.as_str().to_owned(),
                inventory_count: after,
            })];
            if before > *low_stock_threshold && after <= *low_stock_threshold {
                events.push(Event::InventoryLowStock(InventoryLowStock {
                    variant_id: *variant_id,
                    sku: variant(current, *variant_id)?.sku.clone(),
                    inventory_count: after,
                    threshold: *low_stock_threshold,
                }));
            }
            Ok(events)
        }
        ProductCommand::ReserveStock {
            order_id,
            items,
            low_stock_threshold,
        } => stock::reserve(current, *order_id, items, *low_stock_threshold),
        ProductCommand::ReleaseStock {
            order_id,
            items,
            reason,
        } => stock::release(current, *order_id, items, reason),
    }
}

fn status_of(product: &ProductData) -> ProductStatus {
    ProductStatus::parse(&product.status).unwrap_or(ProductStatus::Draft)
}

/// `product.updated` with these tags (each once), or nothing when they are the same.
fn retagged(current: &ProductData, tags: impl Iterator<Item = String>) -> Vec<Event> {
    let tags = distinct_tags(tags);
    if tags == current.tags {
        return Vec::new();
    }
    let mut product = current.clone();
    product.tags = tags;
    vec![Event::ProductUpdated(ProductUpdated {
        product,
        changed: vec!["tags".to_owned()],
    })]
}

fn distinct_tags(tags: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    tags.filter(|tag| seen.insert(tag.clone())).collect()
}

fn money(amount: Amount, currency: &str) -> Money {
    Money {
        amount: amount.minor_units(),
        currency: currency.to_owned(),
    }
}

fn variant(product: &ProductData, variant_id: Uuid) -> Result<&VariantData, ProductError> {
    product
        .variants
        .iter()
        .find(|variant| variant.variant_id == variant_id)
        .ok_or(ProductError::VariantNotFound)
}

fn options(options: &[(OptionText, OptionText)]) -> Vec<VariantOption> {
    options
        .iter()
        .map(|(name, value)| VariantOption {
            name: name.as_str().to_owned(),
            value: value.as_str().to_owned(),
        })
        .collect()
}

fn variant_data(new: &NewVariant, currency: &str) -> VariantData {
    VariantData {
        variant_id: new.variant_id,
        name: new.name.as_str().to_owned(),
        sku: new.sku.as_ref().map(|sku| sku.as_str().to_owned()),
        price: new.price.map(|price| money(price, currency)),
        inventory_count: new.inventory_count,
        options: options(&new.options),
    }
}

/// Ids in their first-seen order, each once.
fn distinct_ids(ids: &[Uuid]) -> Vec<Uuid> {
    let mut seen = HashSet::new();
    ids.iter().filter(|id| seen.insert(**id)).copied().collect()
}

fn check_variants(variants: &[VariantData]) -> Result<(), ProductError> {
    if variants.len() > MAX_VARIANTS {
        return Err(ProductError::TooManyVariants);
    }
    let mut ids = HashSet::new();
    let mut skus = HashSet::new();
    for variant in variants {
        if !ids.insert(variant.variant_id) {
            return Err(ProductError::DuplicateVariant(variant.variant_id));
        }
        if let Some(sku) = &variant.sku
            && !skus.insert(Sku::key(sku))
        {
            return Err(ProductError::DuplicateSku(sku.clone()));
        }
    }
    Ok(())
}

fn create_product(state: &Product, create: &CreateProduct) -> Result<Vec<Event>, ProductError> {
    if *state != Product::Unborn {
        return Err(ProductError::AlreadyExists);
    }
    if !create.slug.belongs_to(&create.title) {
        return Err(ProductError::SlugMismatch);
    }
    let currency = create.currency.as_str();
    let variants: Vec<VariantData> = create
        .variants
        .iter()
        .map(|new| variant_data(new, currency))
        .collect();
    check_variants(&variants)?;
    let product = ProductData {
        store_id: create.store_id,
        title: create.title.as_str().to_owned(),
        slug: create.slug.as_str().to_owned(),
        description: create.description.as_ref().map(|d| d.as_str().to_owned()),
        price: money(create.price, currency),
        compare_at_price: create.compare_at_price.map(|a| money(a, currency)),
        cost: create.cost.map(|a| money(a, currency)),
        images: create
            .images
            .iter()
            .map(|i| i.as_str().to_owned())
            .collect(),
        status: create.status.as_str().to_owned(),
        seo_title: create.seo_title.as_ref().map(|t| t.as_str().to_owned()),
        seo_description: create
            .seo_description
            .as_ref()
            .map(|d| d.as_str().to_owned()),
        tags: distinct_tags(create.tags.iter().map(|t| t.as_str().to_owned())),
        category_ids: distinct_ids(&create.category_ids),
        variants,
    };
    Ok(vec![Event::ProductCreated(ProductCreated { product })])
}

/// Applies a change to an optional field, noting its JSON name when it changed.
fn apply_change<T>(field: &mut Option<String>, change: &Change<T>, as_str: fn(&T) -> &str) -> bool {
    let next = match change {
        Change::Keep => return false,
        Change::Clear => None,
        Change::Set(value) => Some(as_str(value).to_owned()),
    };
    let changed = *field != next;
    *field = next;
    changed
}

fn apply_money(field: &mut Option<Money>, change: &Change<Amount>, currency: &str) -> bool {
    let next = match change {
        Change::Keep => return false,
        Change::Clear => None,
        Change::Set(amount) => Some(money(*amount, currency)),
    };
    let changed = *field != next;
    *field = next;
    changed
}

fn update_product(
    current: &ProductData,
    update: &UpdateProduct,
) -> Result<Vec<Event>, ProductError> {
    let mut next = current.clone();
    let mut changed: Vec<&str> = Vec::new();
    let currency = current.price.currency.clone();
    if let Some(title) = update
        .title
        .as_ref()
        .filter(|t| t.as_str() != current.title)
    {
        let slug = update
            .slug
            .clone()
            .unwrap_or_else(|| Slug::from_recorded(current.slug.clone()));
        if !slug.belongs_to(title) {
            return Err(ProductError::SlugMismatch);
        }
        next.title = title.as_str().to_owned();
        changed.push("title");
        if slug.as_str() != current.slug {
            next.slug = slug.as_str().to_owned();
            changed.push("slug");
        }
    }
    if apply_change(
        &mut next.description,
        &update.description,
        crate::Description::as_str,
    ) {
        changed.push("description");
    }
    if let Some(price) = update.price.map(|p| money(p, &currency))
        && price != current.price
    {
        next.price = price;
        changed.push("price");
    }
    if apply_money(
        &mut next.compare_at_price,
        &update.compare_at_price,
        &currency,
    ) {
        changed.push("compare_at_price");
    }
    if apply_money(&mut next.cost, &update.cost, &currency) {
        changed.push("cost");
    }
    if let Some(images) = &update.images {
        let images: Vec<String> = images.iter().map(|i| i.as_str().to_owned()).collect();
        if images != current.images {
            next.images = images;
            changed.push("images");
        }
    }
    if apply_change(
        &mut next.seo_title,
        &update.seo_title,
        crate::SeoTitle::as_str,
    ) {
        changed.push("seo_title");
    }
    if apply_change(
        &mut next.seo_description,
        &update.seo_description,
        crate::SeoDescription::as_str,
    ) {
        changed.push("seo_description");
    }
    if let Some(tags) = &update.tags {
        let tags = distinct_tags(tags.iter().map(|t| t.as_str().to_owned()));
        if tags != current.tags {
            next.tags = tags;
            changed.push("tags");
        }
    }
    if let Some(ids) = &update.category_ids {
        let ids = distinct_ids(ids);
        if ids != current.category_ids {
            next.category_ids = ids;
            changed.push("category_ids");
        }
    }
    let mut status_event = None;
    match update.status {
        Some(status) if status == status_of(current) => {}
        Some(ProductStatus::Draft) => {
            next.status = ProductStatus::Draft.as_str().to_owned();
            changed.push("status");
        }
        Some(ProductStatus::Active) => {
            status_event = Some(Event::ProductPublished(ProductPublished {}));
        }
        Some(ProductStatus::Archived) => {
            status_event = Some(Event::ProductArchived(ProductArchived {}));
        }
        None => {}
    }
    let mut events = Vec::new();
    if !changed.is_empty() {
        events.push(Event::ProductUpdated(ProductUpdated {
            product: next,
            changed: changed.into_iter().map(str::to_owned).collect(),
        }));
    }
    events.extend(status_event);
    Ok(events)
}

fn adjusted(amount: i64, adjustment: PriceAdjustment) -> Result<i64, ProductError> {
    let next = match adjustment {
        PriceAdjustment::Amount(delta) => i128::from(amount) + i128::from(delta),
        PriceAdjustment::BasisPoints(points) => {
            // Rounded half away from zero, to the nearest minor unit.
            let scaled = i128::from(amount) * (10_000 + i128::from(points));
            (scaled + 5_000 * scaled.signum()) / 10_000
        }
    };
    i64::try_from(next)
        .ok()
        .filter(|n| (0..=Amount::MAX).contains(n))
        .ok_or(ProductError::PriceOutOfRange)
}

fn adjust_prices(
    current: &ProductData,
    adjustment: PriceAdjustment,
) -> Result<Vec<Event>, ProductError> {
    let mut events = Vec::new();
    let price = adjusted(current.price.amount, adjustment)?;
    let mut variant_events = Vec::new();
    for variant in &current.variants {
        if let Some(own) = &variant.price {
            let mut next = variant.clone();
            next.price = Some(Money {
                amount: adjusted(own.amount, adjustment)?,
                currency: own.currency.clone(),
            });
            if next != *variant {
                variant_events.push(Event::VariantUpdated(VariantUpdated { variant: next }));
            }
        }
    }
    if price != current.price.amount {
        let mut next = current.clone();
        next.price.amount = price;
        events.push(Event::ProductUpdated(ProductUpdated {
            product: next,
            changed: vec!["price".to_owned()],
        }));
    }
    events.extend(variant_events);
    Ok(events)
}

fn add_variant(current: &ProductData, new: &NewVariant) -> Result<Vec<Event>, ProductError> {
    let variant = variant_data(new, &current.price.currency);
    let mut all = current.variants.clone();
    all.push(variant.clone());
    check_variants(&all)?;
    Ok(vec![Event::VariantAdded(VariantAdded { variant })])
}

fn update_variant(
    current: &ProductData,
    variant_id: Uuid,
    changes: &VariantChanges,
) -> Result<Vec<Event>, ProductError> {
    let before = variant(current, variant_id)?;
    let mut next = before.clone();
    if let Some(name) = &changes.name {
        next.name = name.as_str().to_owned();
    }
    apply_change(&mut next.sku, &changes.sku, Sku::as_str);
    apply_money(&mut next.price, &changes.price, &current.price.currency);
    if let Some(new_options) = &changes.options {
        next.options = options(new_options);
    }
    if next == *before {
        return Ok(Vec::new());
    }
    let all: Vec<VariantData> = current
        .variants
        .iter()
        .map(|v| {
            if v.variant_id == variant_id {
                next.clone()
            } else {
                v.clone()
            }
        })
        .collect();
    check_variants(&all)?;
    Ok(vec![Event::VariantUpdated(VariantUpdated {
        variant: next,
    })])
}
