//! Categories (a tree one level deep) and collections (hand-ordered product lists):
//! the two ways a store groups its products. Each is an aggregate of its own; the
//! facts about other aggregates a command depends on (is the parent a top-level
//! category of this store, do these products exist) arrive checked in the command.

use std::collections::HashSet;

use schemas::{
    Event,
    catalog::{
        CategoryCreated, CategoryData, CategoryDeleted, CategoryUpdated, CollectionCreated,
        CollectionData, CollectionDeleted, CollectionUpdated,
    },
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::{Description, GroupName, Slug, store::Change};

/// A collection holds at most this many products.
pub const MAX_COLLECTION_PRODUCTS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GroupError {
    #[error("it already exists")]
    AlreadyExists,
    #[error("not found")]
    NotFound,
    #[error("the slug does not belong to the name")]
    SlugMismatch,
    #[error("a category cannot be its own parent")]
    OwnParent,
    #[error("categories nest one level deep: the parent has a parent itself")]
    NestedTooDeep,
    #[error("product {0} is listed twice")]
    RepeatedProduct(Uuid),
    #[error("a collection holds at most {MAX_COLLECTION_PRODUCTS} products")]
    TooManyProducts,
}

/// What is shared by categories and collections: a name, its slug, a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDetails {
    pub name: GroupName,
    /// A free candidate for `name` within the store.
    pub slug: Slug,
    pub description: Option<Description>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupChanges {
    pub name: Option<GroupName>,
    /// Required when the new name no longer fits the current slug.
    pub slug: Option<Slug>,
    pub description: Change<Description>,
}

/// A parent the caller found among the store's live categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentCategory {
    pub category_id: Uuid,
    pub has_parent: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Category {
    #[default]
    Unborn,
    Existing(CategoryData),
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CategoryCommand {
    Create {
        store_id: Uuid,
        details: GroupDetails,
        parent: Option<ParentCategory>,
    },
    Update {
        changes: GroupChanges,
        parent: Change<ParentCategory>,
    },
    Delete,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Collection {
    #[default]
    Unborn,
    Existing(CollectionData),
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectionCommand {
    Create {
        store_id: Uuid,
        details: GroupDetails,
        /// Products of the store, checked by the caller.
        product_ids: Vec<Uuid>,
    },
    Update {
        changes: GroupChanges,
        product_ids: Option<Vec<Uuid>>,
    },
    Delete,
}

fn checked_parent(own_id: Uuid, parent: &ParentCategory) -> Result<Uuid, GroupError> {
    if parent.category_id == own_id {
        return Err(GroupError::OwnParent);
    }
    if parent.has_parent {
        return Err(GroupError::NestedTooDeep);
    }
    Ok(parent.category_id)
}

/// Name, slug and description after `changes`, or `SlugMismatch`.
fn renamed(
    name: &mut String,
    slug: &mut String,
    description: &mut Option<String>,
    changes: &GroupChanges,
) -> Result<(), GroupError> {
    if let Some(new_name) = changes.name.as_ref().filter(|n| n.as_str() != name) {
        let new_slug = changes
            .slug
            .clone()
            .unwrap_or_else(|| Slug::from_recorded(slug.clone()));
        if !new_slug.belongs_to(new_name) {
            return Err(GroupError::SlugMismatch);
        }
        *name = new_name.as_str().to_owned();
        *slug = new_slug.as_str().to_owned();
    }
    match &changes.description {
        Change::Keep => {}
        Change::Clear => *description = None,
        Change::Set(text) => *description = Some(text.as_str().to_owned()),
    }
    Ok(())
}

fn check_details(details: &GroupDetails) -> Result<(), GroupError> {
    if details.slug.belongs_to(&details.name) {
        Ok(())
    } else {
        Err(GroupError::SlugMismatch)
    }
}

pub fn decide_category(
    state: &Category,
    category_id: Uuid,
    command: &CategoryCommand,
) -> Result<Vec<Event>, GroupError> {
    match (state, command) {
        (
            Category::Unborn,
            CategoryCommand::Create {
                store_id,
                details,
                parent,
            },
        ) => {
            check_details(details)?;
            let parent_id = parent
                .as_ref()
                .map(|p| checked_parent(category_id, p))
                .transpose()?;
            Ok(vec![Event::CategoryCreated(CategoryCreated {
                category: CategoryData {
                    store_id: *store_id,
                    name: details.name.as_str().to_owned(),
                    slug: details.slug.as_str().to_owned(),
                    description: details.description.as_ref().map(|d| d.as_str().to_owned()),
                    parent_id,
                },
            })])
        }
        (_, CategoryCommand::Create { .. }) => Err(GroupError::AlreadyExists),
        (Category::Existing(current), CategoryCommand::Update { changes, parent }) => {
            let mut next = current.clone();
            renamed(
                &mut next.name,
                &mut next.slug,
                &mut next.description,
                changes,
            )?;
            match parent {
                Change::Keep => {}
                Change::Clear => next.parent_id = None,
                Change::Set(parent) => next.parent_id = Some(checked_parent(category_id, parent)?),
            }
            if next == *current {
                return Ok(Vec::new());
            }
            Ok(vec![Event::CategoryUpdated(CategoryUpdated {
                category: next,
            })])
        }
        (Category::Existing(_), CategoryCommand::Delete) => {
            Ok(vec![Event::CategoryDeleted(CategoryDeleted {})])
        }
        (_, _) => Err(GroupError::NotFound),
    }
}

pub fn evolve_category(state: Category, event: &Event) -> Category {
    match event {
        Event::CategoryCreated(created) => Category::Existing(created.category.clone()),
        Event::CategoryUpdated(updated) => Category::Existing(updated.category.clone()),
        Event::CategoryDeleted(_) => Category::Deleted,
        _ => state,
    }
}

fn checked_products(product_ids: &[Uuid]) -> Result<Vec<Uuid>, GroupError> {
    if product_ids.len() > MAX_COLLECTION_PRODUCTS {
        return Err(GroupError::TooManyProducts);
    }
    let mut seen = HashSet::new();
    if let Some(repeated) = product_ids.iter().find(|id| !seen.insert(**id)) {
        return Err(GroupError::RepeatedProduct(*repeated));
    }
    Ok(product_ids.to_vec())
}

pub fn decide_collection(
    state: &Collection,
    command: &CollectionCommand,
) -> Result<Vec<Event>, GroupError> {
    match (state, command) {
        (
            Collection::Unborn,
            CollectionCommand::Create {
                store_id,
                details,
                product_ids,
            },
        ) => {
            check_details(details)?;
            Ok(vec![Event::CollectionCreated(CollectionCreated {
                collection: CollectionData {
                    store_id: *store_id,
                    name: details.name.as_str().to_owned(),
                    slug: details.slug.as_str().to_owned(),
                    description: details.description.as_ref().map(|d| d.as_str().to_owned()),
                    product_ids: checked_products(product_ids)?,
                },
            })])
        }
        (_, CollectionCommand::Create { .. }) => Err(GroupError::AlreadyExists),
        (
            Collection::Existing(current),
            CollectionCommand::Update {
                changes,
                product_ids,
            },
        ) => {
            let mut next = current.clone();
            renamed(
                &mut next.name,
                &mut next.slug,
                &mut next.description,
                changes,
            )?;
            if let Some(product_ids) = product_ids {
                next.product_ids = checked_products(product_ids)?;
            }
            if next == *current {
                return Ok(Vec::new());
            }
            Ok(vec![Event::CollectionUpdated(CollectionUpdated {
                collection: next,
            })])
        }
        (Collection::Existing(_), CollectionCommand::Delete) => {
            Ok(vec![Event::CollectionDeleted(CollectionDeleted {})])
        }
        (_, _) => Err(GroupError::NotFound),
    }
}

pub fn evolve_collection(state: Collection, event: &Event) -> Collection {
    match event {
        Event::CollectionCreated(created) => Collection::Existing(created.collection.clone()),
        Event::CollectionUpdated(updated) => Collection::Existing(updated.collection.clone()),
        Event::CollectionDeleted(_) => Collection::Deleted,
        _ => state,
    }
}

#[cfg(test)]
mod tests;
