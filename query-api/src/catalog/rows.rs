//! Catalog rows as the read model holds them, and the views made from them.

use chrono::{DateTime, Utc};
use schemas::{
    api::products::{
        MoneyBody, OptionBody, ProductRecord, ProductView, PublicProductView, PublicVariantView,
        VariantView,
    },
    product::VariantData,
};
use sqlx::types::Json;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct ProductRow {
    pub id: Uuid,
    pub store_id: Uuid,
    pub title: String,
    pub slug: String,
    pub description: Option<String>,
    pub price_amount: i64,
    pub compare_at_amount: Option<i64>,
    pub cost_amount: Option<i64>,
    pub currency: String,
    pub images: Json<Vec<String>>,
    pub status: String,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub tags: Vec<String>,
    pub category_ids: Vec<Uuid>,
    pub variants: Json<Vec<VariantData>>,
    pub inventory_total: i64,
    pub in_stock: bool,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of a page: the product, the live groups it belongs to, and the number of
/// matches when the query counted them on the way.
#[derive(Debug, sqlx::FromRow)]
pub struct ListedProductRow {
    #[sqlx(flatten)]
    pub product: ProductRow,
    pub live_category_ids: Vec<Uuid>,
    pub collection_ids: Vec<Uuid>,
    pub total: Option<i64>,
}

impl ProductRow {
    fn money(&self, amount: i64) -> MoneyBody {
        MoneyBody {
            amount,
            currency: self.currency.clone(),
        }
    }

    fn options(variant: &VariantData) -> Vec<OptionBody> {
        variant
            .options
            .iter()
            .map(|o| OptionBody {
                name: o.name.clone(),
                value: o.value.clone(),
            })
            .collect()
    }

    pub fn view(&self, category_ids: Vec<Uuid>) -> ProductView {
        ProductView {
            id: self.id,
            store_id: self.store_id,
            title: self.title.clone(),
            slug: self.slug.clone(),
            description: self.description.clone(),
            price: self.money(self.price_amount),
            compare_at_price: self.compare_at_amount.map(|a| self.money(a)),
            cost: self.cost_amount.map(|a| self.money(a)),
            images: self.images.0.clone(),
            status: self.status.clone(),
            seo_title: self.seo_title.clone(),
            seo_description: self.seo_description.clone(),
            tags: self.tags.clone(),
            category_ids,
            variants: self
                .variants
                .iter()
                .map(|v| VariantView {
                    id: v.variant_id,
                    name: v.name.clone(),
                    sku: v.sku.clone(),
                    price: v.price.as_ref().map(|p| self.money(p.amount)),
                    inventory_count: v.inventory_count,
                    options: Self::options(v),
                })
                .collect(),
            inventory_total: self.inventory_total,
            in_stock: self.in_stock,
            version: self.version,
        }
    }

    /// What a shopper sees: no cost, no stock counts, each variant's own price.
    pub fn public_view(&self, category_ids: Vec<Uuid>) -> PublicProductView {
        PublicProductView {
            id: self.id,
            title: self.title.clone(),
            slug: self.slug.clone(),
            description: self.description.clone(),
            price: self.money(self.price_amount),
            compare_at_price: self.compare_at_amount.map(|a| self.money(a)),
            images: self.images.0.clone(),
            seo_title: self.seo_title.clone(),
            seo_description: self.seo_description.clone(),
            tags: self.tags.clone(),
            category_ids,
            available: self.in_stock,
            variants: self
                .variants
                .iter()
                .map(|v| PublicVariantView {
                    id: v.variant_id,
                    name: v.name.clone(),
                    sku: v.sku.clone(),
                    price: self.money(v.price.as_ref().map_or(self.price_amount, |p| p.amount)),
                    available: v.inventory_count > 0,
                    options: Self::options(v),
                })
                .collect(),
        }
    }
}

impl ListedProductRow {
    pub fn record(self) -> ProductRecord {
        ProductRecord {
            product: self.product.view(self.live_category_ids),
            collection_ids: self.collection_ids,
            created_at: self.product.created_at,
            updated_at: self.product.updated_at,
        }
    }
}
