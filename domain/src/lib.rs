//! The aggregates' rules, with no I/O: each aggregate decides which events a command
//! produces from its current state (`decide`) and folds events into state (`evolve`).
//! Everything a rule needs from the outside world (ids, the chosen slug) arrives in the
//! command, so every rule is a plain function that tests call directly.

pub mod catalog;
pub mod checkout;
pub mod customer;
pub mod history;
pub mod integration;
pub mod merchant;
pub mod order;
pub mod product;
pub mod store;
mod values;

pub use values::{
    AddressLine, Amount, Carrier, Country, Currency, Description, DisplayName, Email, GroupName,
    ImageUrl, InvalidValue, Niche, Note, OptionText, PersonName, Phone, PlaceName, PostalCode,
    ProductTitle, Reason, SeoDescription, SeoTitle, Sku, Slug, SlugSource, StoreName, Tag,
    TrackingNumber, TrackingUrl, VariantName,
};
