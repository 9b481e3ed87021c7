//! How the write flow sees each catalog aggregate: its stream, rules, held keys and view.

use std::collections::BTreeSet;

use api_core::{ApiError, FieldError};
use domain::{
    catalog::{
        Category, CategoryCommand, Collection, CollectionCommand, GroupError, decide_category,
        decide_collection, evolve_category, evolve_collection,
    },
    product::{HeldKey, Product, ProductCommand, ProductError, decide, held_keys},
};
use eventlog::{Fold, UniqueKey};
use schemas::{
    Event,
    api::{
        catalog::{CategoryView, CollectionView},
        products::{MoneyBody, OptionBody, ProductView, VariantView},
    },
    product::{Money, ProductData},
};
use serde_json::{Value, json};
use uuid::Uuid;

pub use ordering::ProductFold;

use crate::aggregate::{Aggregate, SKU_SCOPE_PREFIX};

pub fn product_slug_scope(store_id: Uuid) -> String {
    format!("product.slug:{store_id}")
}

pub fn sku_scope(store_id: Uuid) -> String {
    format!("{SKU_SCOPE_PREFIX}{store_id}")
}

pub fn category_slug_scope(store_id: Uuid) -> String {
    format!("category.slug:{store_id}")
}

pub fn collection_slug_scope(store_id: Uuid) -> String {
    format!("collection.slug:{store_id}")
}

fn money(money: &Money) -> MoneyBody {
    MoneyBody {
        amount: money.amount,
        currency: money.currency.clone(),
    }
}

pub fn product_view(id: Uuid, product: &ProductData, version: i32) -> ProductView {
    let inventory_total: i64 = product
        .variants
        .iter()
        .map(|v| i64::from(v.inventory_count))
        .sum();
    ProductView {
        id,
        store_id: product.store_id,
        title: product.title.clone(),
        slug: product.slug.clone(),
        description: product.description.clone(),
        price: money(&product.price),
        compare_at_price: product.compare_at_price.as_ref().map(money),
        cost: product.cost.as_ref().map(money),
        images: product.images.clone(),
        status: product.status.clone(),
        seo_title: product.seo_title.clone(),
        seo_description: product.seo_description.clone(),
        tags: product.tags.clone(),
        category_ids: product.category_ids.clone(),
        variants: product
            .variants
            .iter()
            .map(|v| VariantView {
                id: v.variant_id,
                name: v.name.clone(),
                sku: v.sku.clone(),
                price: v.price.as_ref().map(money),
                inventory_count: v.inventory_count,
                options: v
                    .options
                    .iter()
                    .map(|o| OptionBody {
                        name: o.name.clone(),
                        value: o.value.clone(),
                    })
                    .collect(),
            })
            .collect(),
        inventory_total,
        in_stock: product.variants.is_empty() || inventory_total > 0,
        version,
    }
}

fn invalid(field: &str, code: &str, message: String) -> ApiError {
    ApiError::Validation(vec![FieldError::new(field, code, message)])
}

impl Aggregate for ProductFold {
    type Command = ProductCommand;
    type Error = ProductError;
    const STREAM_PREFIX: &'static str = "product-";

    fn decide(state: &Product, command: &ProductCommand) -> Result<Vec<Event>, ProductError> {
        decide(state, command)
    }

    fn rule_broken(error: ProductError) -> ApiError {
        let message = error.to_string();
        match error {
            ProductError::NotFound | ProductError::VariantNotFound => ApiError::NotFound,
            ProductError::AlreadyPublished => ApiError::Conflict {
                code: "already_published",
                message,
            },
            ProductError::AlreadyArchived => ApiError::Conflict {
                code: "already_archived",
                message,
            },
            ProductError::InsufficientStock { .. } => ApiError::Conflict {
                code: "insufficient_stock",
                message,
            },
            ProductError::NotForSale => ApiError::Conflict {
                code: "not_for_sale",
                message,
            },
            ProductError::DuplicateSku(_) => invalid("variants", "duplicate_sku", message),
            ProductError::TooManyVariants => invalid("variants", "too_many", message),
            ProductError::StockOverflow => invalid("delta", "out_of_range", message),
            ProductError::PriceOutOfRange => invalid("price", "out_of_range", message),
            ProductError::AlreadyExists
            | ProductError::SlugMismatch
            | ProductError::DuplicateVariant(_) => ApiError::internal(message),
        }
    }

    fn lives_in(state: &Product, store_id: Uuid) -> bool {
        state.existing().is_some_and(|p| p.store_id == store_id)
    }

    fn held_keys(state: &Product, store_id: Uuid) -> BTreeSet<UniqueKey> {
        held_keys(state)
            .into_iter()
            .map(|key| match key {
                HeldKey::Slug(slug) => UniqueKey::new(product_slug_scope(store_id), slug),
                HeldKey::Sku(sku) => UniqueKey::new(sku_scope(store_id), sku),
            })
            .collect()
    }

    fn view(id: Uuid, state: &Product, version: i32) -> Value {
        state
            .existing()
            .map(|product| json!(product_view(id, product, version)))
            .unwrap_or(Value::Null)
    }

    fn location(store_id: Uuid, id: Uuid) -> String {
        format!("/api/v1/stores/{store_id}/products/{id}")
    }
}

fn group_rule_broken(error: GroupError) -> ApiError {
    let message = error.to_string();
    match error {
        GroupError::NotFound => ApiError::NotFound,
        GroupError::OwnParent | GroupError::NestedTooDeep => {
            invalid("parent_id", "invalid_parent", message)
        }
        GroupError::RepeatedProduct(_) => invalid("product_ids", "duplicate", message),
        GroupError::TooManyProducts => invalid("product_ids", "too_many", message),
        GroupError::AlreadyExists | GroupError::SlugMismatch => ApiError::internal(message),
    }
}

pub struct CategoryFold;

impl Fold for CategoryFold {
    type State = Category;
    const STATE_VERSION: u16 = 1;

    fn apply(state: Category, event: &Event) -> Category {
        evolve_category(state, event)
    }
}

/// The category command with the id the category's own rules need.
pub struct IdentifiedCategoryCommand {
    pub category_id: Uuid,
    pub command: CategoryCommand,
}

impl Aggregate for CategoryFold {
    type Command = IdentifiedCategoryCommand;
    type Error = GroupError;
    const STREAM_PREFIX: &'static str = "category-";

    fn decide(
        state: &Category,
        command: &IdentifiedCategoryCommand,
    ) -> Result<Vec<Event>, GroupError> {
        decide_category(state, command.category_id, &command.command)
    }

    fn rule_broken(error: GroupError) -> ApiError {
        group_rule_broken(error)
    }

    fn lives_in(state: &Category, store_id: Uuid) -> bool {
        matches!(state, Category::Existing(c) if c.store_id == store_id)
    }

    fn held_keys(state: &Category, store_id: Uuid) -> BTreeSet<UniqueKey> {
        match state {
            Category::Existing(c) => {
                BTreeSet::from([UniqueKey::new(category_slug_scope(store_id), &c.slug)])
            }
            _ => BTreeSet::new(),
        }
    }

    fn view(id: Uuid, state: &Category, version: i32) -> Value {
        match state {
            Category::Existing(c) => json!(CategoryView {
                id,
                store_id: c.store_id,
                name: c.name.clone(),
                slug: c.slug.clone(),
                description: c.description.clone(),
                parent_id: c.parent_id,
                version,
            }),
            _ => Value::Null,
        }
    }

    fn location(store_id: Uuid, id: Uuid) -> String {
        format!("/api/v1/stores/{store_id}/categories/{id}")
    }
}

pub struct CollectionFold;

impl Fold for CollectionFold {
    type State = Collection;
    const STATE_VERSION: u16 = 1;

    fn apply(state: Collection, event: &Event) -> Collection {
        evolve_collection(state, event)
    }
}

impl Aggregate for CollectionFold {
    type Command = CollectionCommand;
    type Error = GroupError;
    const STREAM_PREFIX: &'static str = "collection-";

    fn decide(state: &Collection, command: &CollectionCommand) -> Result<Vec<Event>, GroupError> {
        decide_collection(state, command)
    }

    fn rule_broken(error: GroupError) -> ApiError {
        group_rule_broken(error)
    }

    fn lives_in(state: &Collection, store_id: Uuid) -> bool {
        matches!(state, Collection::Existing(c) if c.store_id == store_id)
    }

    fn held_keys(state: &Collection, store_id: Uuid) -> BTreeSet<UniqueKey> {
        match state {
            Collection::Existing(c) => {
                BTreeSet::from([UniqueKey::new(collection_slug_scope(store_id), &c.slug)])
            }
            _ => BTreeSet::new(),
        }
    }

    fn view(id: Uuid, state: &Collection, version: i32) -> Value {
        match state {
            Collection::Existing(c) => json!(CollectionView {
                id,
                store_id: c.store_id,
                name: c.name.clone(),
                slug: c.slug.clone(),
                description: c.description.clone(),
                product_ids: c.product_ids.clone(),
                version,
            }),
            _ => Value::Null,
        }
    }

    fn location(store_id: Uuid, id: Uuid) -> String {
        format!("/api/v1/stores/{store_id}/collections/{id}")
    }
}
