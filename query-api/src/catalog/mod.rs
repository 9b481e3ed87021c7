//! Catalog reads: the merchant's products (search, filters, export), categories and
//! collections, and the storefront's cached views of them; uploaded media.

mod export;
mod filters;
mod groups;
mod media;
mod products;
pub(crate) mod public;
mod rows;

pub(crate) use products::require_own_store;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::QueryState;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(products::list_products))
        .routes(routes!(products::get_product))
        .routes(routes!(export::export_products))
        .routes(routes!(groups::list_categories))
        .routes(routes!(groups::get_category))
        .routes(routes!(groups::list_collections))
        .routes(routes!(groups::get_collection))
        .routes(routes!(public::list_public_products))
        .routes(routes!(public::get_public_product))
        .routes(routes!(public::list_public_categories))
        .routes(routes!(public::list_public_collections))
        .routes(routes!(media::get_media))
}
