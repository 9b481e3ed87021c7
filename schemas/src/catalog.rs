//! Payloads of the Category and Collection aggregates: how a store groups its products.
//! Updates carry the whole state after the change.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CategoryData {
    pub store_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// Categories nest one level: a parent never has a parent itself.
    pub parent_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CategoryCreated {
    pub category: CategoryData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CategoryUpdated {
    pub category: CategoryData,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CategoryDeleted {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CollectionData {
    pub store_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// The merchant's order.
    pub product_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CollectionCreated {
    pub collection: CollectionData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CollectionUpdated {
    pub collection: CollectionData,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CollectionDeleted {}
