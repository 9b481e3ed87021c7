//! Categories and collections over HTTP.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::present;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategoryRequest {
    /// 1–100 characters.
    pub name: String,
    pub description: Option<String>,
    /// A top-level category of the same store (categories nest one level deep).
    pub parent_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCategoryRequest {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `null` makes it a top-level category.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CategoryView {
    pub id: Uuid,
    pub store_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub parent_id: Option<Uuid>,
    pub version: i32,
}

/// A category as the query API shows it, with its products counted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryRecord {
    #[serde(flatten)]
    pub category: CategoryView,
    pub product_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollectionRequest {
    /// 1–100 characters.
    pub name: String,
    pub description: Option<String>,
    /// Products of the store, in display order.
    #[serde(default)]
    pub product_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollectionRequest {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Replaces the list (and its order).
    pub product_ids: Option<Vec<Uuid>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CollectionView {
    pub id: Uuid,
    pub store_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub product_ids: Vec<Uuid>,
    pub version: i32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CollectionRecord {
    #[serde(flatten)]
    pub collection: CollectionView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A category or collection as a shopper sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicGroupView {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// Categories only: the parent category.
    pub parent_id: Option<Uuid>,
}
