//! Catalog commands under `/api/v1/stores/{store_id}/...`: products, variants, stock,
//! bulk operations, categories, collections and media uploads.

pub(crate) mod aggregates;
mod bulk;
mod groups;
mod media;
pub(crate) mod parse;
mod products;
mod references;

use api_core::media::MAX_MEDIA_BYTES;
use axum::extract::DefaultBodyLimit;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::CommandState;

pub fn router() -> OpenApiRouter<CommandState> {
    let media = OpenApiRouter::new()
        .routes(routes!(media::upload_media))
        .layer(DefaultBodyLimit::max(
            MAX_MEDIA_BYTES + media::MULTIPART_OVERHEAD,
        ));
    OpenApiRouter::new()
        .routes(routes!(products::create_product))
        .routes(routes!(products::update_product, products::archive_product))
        .routes(routes!(products::publish_product))
        .routes(routes!(products::add_variant))
        .routes(routes!(products::update_variant, products::remove_variant))
        .routes(routes!(products::adjust_inventory))
        .routes(routes!(bulk::bulk_products))
        .routes(routes!(groups::create_category))
        .routes(routes!(groups::update_category, groups::delete_category))
        .routes(routes!(groups::create_collection))
        .routes(routes!(
            groups::update_collection,
            groups::delete_collection
        ))
        .merge(media)
}
