//! The Store aggregate: a merchant's shop, from creation to soft deletion.

use schemas::{
    Event,
    store::{
        StoreActivated, StoreCreated, StoreDeleted, StoreLowStockThresholdChanged, StorePaused,
        StoreShippingChanged, StoreTaxesChanged, StoreUpdated, TaxRateData,
    },
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::{
    Currency, Description, Niche, Slug, StoreName,
    checkout::{ShippingSettings, TaxRate, TaxSettings},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreStatus {
    Active,
    Paused,
    Deleted,
}

impl StoreStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Deleted => "deleted",
        }
    }
}

/// What the log says about one store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Store {
    #[default]
    Unborn,
    Existing(StoreProfile),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreProfile {
    pub owner_id: Uuid,
    pub name: String,
    pub slug: String,
    pub niche: Option<String>,
    pub description: Option<String>,
    pub currency: String,
    pub status: StoreStatus,
    /// Stock at or below this raises `inventory.low_stock`.
    pub low_stock_threshold: u32,
    /// What a checkout charges for shipping (nothing until set).
    pub shipping: ShippingSettings,
    /// The tax a checkout charges (none until set).
    pub taxes: TaxSettings,
}

/// The threshold a store starts with, until its merchant picks one.
pub const DEFAULT_LOW_STOCK_THRESHOLD: u32 = 5;
/// Thresholds above this are surely a typo.
pub const MAX_LOW_STOCK_THRESHOLD: u32 = 1_000_000;

impl Store {
    /// The store as its owner may see and change it: not unborn, not deleted.
    pub fn live(&self) -> Option<&StoreProfile> {
        match self {
            Self::Existing(profile) if profile.status != StoreStatus::Deleted => Some(profile),
            _ => None,
        }
    }
}

/// A field an update either leaves alone, clears, or sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateStore {
    pub owner_id: Uuid,
    pub name: StoreName,
    /// A free candidate for `name`, found by the caller among the reservations.
    pub slug: Slug,
    pub niche: Option<Niche>,
    pub description: Option<Description>,
    pub currency: Currency,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateStore {
    pub name: Option<StoreName>,
    /// Required when the new name no longer fits the current slug.
    pub slug: Option<Slug>,
    pub niche: Change<Niche>,
    pub description: Change<Description>,
    pub low_stock_threshold: Option<u32>,
    pub shipping: Option<ShippingSettings>,
    pub taxes: Option<TaxSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreCommand {
    Create(CreateStore),
    Update(UpdateStore),
    Pause,
    Activate,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StoreError {
    #[error("the store already exists")]
    AlreadyExists,
    #[error("no such store")]
    NotFound,
    #[error("the slug does not belong to the store's name")]
    SlugMismatch,
    #[error("the store is already paused")]
    AlreadyPaused,
    #[error("the store is already active")]
    AlreadyActive,
    #[error("the low-stock threshold is above {MAX_LOW_STOCK_THRESHOLD}")]
    ThresholdTooHigh,
}

pub fn decide(state: &Store, command: &StoreCommand) -> Result<Vec<Event>, StoreError> {
    match command {
        StoreCommand::Create(create) => create_store(state, create),
        StoreCommand::Update(update) => update_store(live(state)?, update),
        StoreCommand::Pause => match live(state)?.status {
            StoreStatus::Paused => Err(StoreError::AlreadyPaused),
            _ => Ok(vec![Event::StorePaused(StorePaused { reason: None })]),
        },
        StoreCommand::Activate => match live(state)?.status {
            StoreStatus::Active => Err(StoreError::AlreadyActive),
            _ => Ok(vec![Event::StoreActivated(StoreActivated {})]),
        },
        StoreCommand::Delete => {
            live(state)?;
            Ok(vec![Event::StoreDeleted(StoreDeleted {})])
        }
    }
}

fn live(state: &Store) -> Result<&StoreProfile, StoreError> {
    state.live().ok_or(StoreError::NotFound)
}

fn create_store(state: &Store, create: &CreateStore) -> Result<Vec<Event>, StoreError> {
    if *state != Store::Unborn {
        return Err(StoreError::AlreadyExists);
    }
    if !create.slug.belongs_to(&create.name) {
        return Err(StoreError::SlugMismatch);
    }
    Ok(vec![Event::StoreCreated(StoreCreated {
        owner_id: create.owner_id,
        name: create.name.as_str().to_owned(),
        slug: create.slug.as_str().to_owned(),
        niche: create.niche.as_ref().map(|n| n.as_str().to_owned()),
        description: create.description.as_ref().map(|d| d.as_str().to_owned()),
        currency: create.currency.as_str().to_owned(),
    })])
}

fn update_store(current: &StoreProfile, update: &UpdateStore) -> Result<Vec<Event>, StoreError> {
    let name = update.name.as_ref().filter(|n| n.as_str() != current.name);
    let slug_after = update
        .slug
        .clone()
        .unwrap_or_else(|| Slug::from_recorded(current.slug.clone()));
    if let Some(name) = name
        && !slug_after.belongs_to(name)
    {
        return Err(StoreError::SlugMismatch);
    }
    let changed = StoreUpdated {
        name: name.map(|n| n.as_str().to_owned()),
        slug: (slug_after.as_str() != current.slug && name.is_some())
            .then(|| slug_after.as_str().to_owned()),
        niche: changed_text(&current.niche, &update.niche, Niche::as_str),
        description: changed_text(
            &current.description,
            &update.description,
            Description::as_str,
        ),
    };
    let mut events = Vec::new();
    if changed != StoreUpdated::default() {
        events.push(Event::StoreUpdated(changed));
    }
    match update.low_stock_threshold {
        Some(threshold) if threshold > MAX_LOW_STOCK_THRESHOLD => {
            return Err(StoreError::ThresholdTooHigh);
        }
        Some(threshold) if threshold != current.low_stock_threshold => events.push(
            Event::StoreLowStockThresholdChanged(StoreLowStockThresholdChanged { threshold }),
        ),
        _ => {}
    }
    if let Some(shipping) = update.shipping.as_ref().filter(|s| **s != current.shipping) {
        events.push(Event::StoreShippingChanged(StoreShippingChanged {
            flat_rate: shipping.flat_rate,
            free_above: shipping.free_above,
        }));
    }
    if let Some(taxes) = update.taxes.as_ref().filter(|t| **t != current.taxes) {
        events.push(Event::StoreTaxesChanged(StoreTaxesChanged {
            prices_include_tax: taxes.prices_include_tax,
            rates: taxes
                .rates
                .iter()
                .map(|rate| TaxRateData {
                    country: rate.country.clone(),
                    region: rate.region.clone(),
                    basis_points: rate.basis_points,
                })
                .collect(),
        }));
    }
    Ok(events)
}

/// The event's encoding of an optional text change: `None` unchanged, `""` cleared.
fn changed_text<T>(
    current: &Option<String>,
    change: &Change<T>,
    as_str: fn(&T) -> &str,
) -> Option<String> {
    match change {
        Change::Keep => None,
        Change::Clear => current.is_some().then(String::new),
        Change::Set(value) => {
            (current.as_deref() != Some(as_str(value))).then(|| as_str(value).to_owned())
        }
    }
}

pub fn evolve(state: Store, event: &Event) -> Store {
    match (state, event) {
        (_, Event::StoreCreated(created)) => Store::Existing(StoreProfile {
            owner_id: created.owner_id,
            name: created.name.clone(),
            slug: created.slug.clone(),
            niche: created.niche.clone(),
            description: created.description.clone(),
            currency: created.currency.clone(),
            status: StoreStatus::Active,
            low_stock_threshold: DEFAULT_LOW_STOCK_THRESHOLD,
            shipping: ShippingSettings::default(),
            taxes: TaxSettings::default(),
        }),
        (Store::Existing(mut profile), event) => {
            match event {
                Event::StoreUpdated(updated) => {
                    if let Some(name) = &updated.name {
                        profile.name.clone_from(name);
                    }
                    if let Some(slug) = &updated.slug {
                        profile.slug.clone_from(slug);
                    }
                    apply_text(&mut profile.niche, &updated.niche);
                    apply_text(&mut profile.description, &updated.description);
                }
                Event::StorePaused(_) => profile.status = StoreStatus::Paused,
                Event::StoreActivated(_) => profile.status = StoreStatus::Active,
                Event::StoreDeleted(_) => profile.status = StoreStatus::Deleted,
                Event::StoreLowStockThresholdChanged(changed) => {
                    profile.low_stock_threshold = changed.threshold;
                }
                Event::StoreShippingChanged(changed) => {
                    profile.shipping = ShippingSettings {
                        flat_rate: changed.flat_rate,
                        free_above: changed.free_above,
                    };
                }
                Event::StoreTaxesChanged(changed) => {
                    profile.taxes = TaxSettings {
                        prices_include_tax: changed.prices_include_tax,
                        rates: changed
                            .rates
                            .iter()
                            .map(|rate| TaxRate {
                                country: rate.country.clone(),
                                region: rate.region.clone(),
                                basis_points: rate.basis_points,
                            })
                            .collect(),
                    };
                }
                _ => {}
            }
            Store::Existing(profile)
        }
        (state, _) => state,
    }
}

fn apply_text(field: &mut Option<String>, change: &Option<String>) {
    match change.as_deref() {
        None => {}
        Some("") => *field = None,
        Some(value) => *field = Some(value.to_owned()),
    }
}

#[cfg(test)]
mod tests;
