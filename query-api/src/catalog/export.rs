//! The catalog as CSV, one line per variant (or per product without variants), streamed
//! page by page (`csv_stream`).

use api_core::{ApiError, ApiQuery, auth::Reader, openapi::ReadErrors, resource_id};
use axum::{
    extract::{Path, State},
    response::Response,
};
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    filters::{Membership, ProductFilters, ProductQuery, export_query},
    products::{CATALOG_MODELS, require_own_store},
    rows::ProductRow,
};
use crate::{
    csv_stream::{CsvSink, streamed},
    freshness::MinPosition,
    state::QueryState,
};

/// Products read per statement; the connection goes back to the pool between pages.
const PAGE_ROWS: i64 = 200;

const HEADER: [&str; 19] = [
    "product_id",
    "title",
    "slug",
    "status",
    "currency",
    "price_minor",
    "compare_at_price_minor",
    "cost_minor",
    "tags",
    "category_ids",
    "variant_id",
    "variant_name",
    "sku",
    "variant_price_minor",
    "inventory_count",
    "options",
    "description",
    "created_at",
    "updated_at",
];

/// The product's lines: one per variant, or one for a product without variants.
fn lines(product: &ProductRow) -> Vec<[String; 19]> {
    let optional = |amount: Option<i64>| amount.map(|a| a.to_string()).unwrap_or_default();
    let categories: Vec<String> = product.category_ids.iter().map(Uuid::to_string).collect();
    let line = |variant: [String; 6]| {
        let [variant_id, name, sku, price, inventory, options] = variant;
        [
            product.id.to_string(),
            product.title.clone(),
            product.slug.clone(),
            product.status.clone(),
            product.currency.clone(),
            product.price_amount.to_string(),
            optional(product.compare_at_amount),
            optional(product.cost_amount),
            product.tags.join("|"),
            categories.join("|"),
            variant_id,
            name,
            sku,
            price,
            inventory,
            options,
            product.description.clone().unwrap_or_default(),
            product.created_at.to_rfc3339(),
            product.updated_at.to_rfc3339(),
        ]
    };
    if product.variants.is_empty() {
        return vec![line(Default::default())];
    }
    product
        .variants
        .iter()
        .map(|variant| {
            let options: Vec<String> = variant
                .options
                .iter()
                .map(|o| format!("{}={}", o.name, o.value))
                .collect();
            line([
                variant.variant_id.to_string(),
                variant.name.clone(),
                variant.sku.clone().unwrap_or_default(),
                optional(variant.price.as_ref().map(|p| p.amount)),
                variant.inventory_count.to_string(),
                options.join("|"),
            ])
        })
        .collect()
}

/// What an export reads: the store, its filters and the product sets they stand for.
struct ExportQuery {
    store_id: Uuid,
    filters: ProductFilters,
    membership: Membership,
}

/// Reads the products a page at a time and writes their lines until done, the client
/// left or it stalled.
async fn produce(pool: PgPool, export: ExportQuery, mut sink: CsvSink) {
    if !sink.record(HEADER).await {
        return;
    }
    let mut after = None;
    loop {
        let page: Vec<ProductRow> = match export_query(
            export.store_id,
            &export.filters,
            &export.membership,
            after,
            PAGE_ROWS,
        )
        .build_query_as::<ProductRow>()
        .fetch_all(&pool)
        .await
        {
            Ok(page) => page,
            Err(error) => return sink.failed(&error),
        };
        let last_page = page.len() < usize::try_from(PAGE_ROWS).unwrap_or(usize::MAX);
        after = page.last().map(|product| (product.created_at, product.id));
        for line in page.iter().flat_map(lines) {
            if !sink.record(&line).await {
                return;
            }
        }
        if last_page {
            break;
        }
    }
    sink.finish().await;
}

/// The catalog as CSV (one line per variant), with the list's filters. Streamed.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/products/export.csv", tag = "products",
    params(("store_id" = Uuid, Path), ProductQuery, ("X-Min-Position" = Option<i64>, Header)),
    responses((status = 200, description = "CSV, one line per variant", content_type = "text/csv", body = String), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn export_products(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    Reader(principal): Reader,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<ProductQuery>,
) -> Result<Response, ApiError> {
    let store_id = resource_id(&store_id)?;
    let filters = ProductFilters::parse(&query, false)?;
    state
        .freshness
        .wait_for(CATALOG_MODELS, min_position)
        .await?;
    require_own_store(&state, &principal, store_id).await?;
    let membership = Membership::load(&state.pool, store_id, &filters).await?;
    let export = ExportQuery {
        store_id,
        filters,
        membership,
    };
    let pool = state.pool.clone();
    Ok(streamed(
        "catalog",
        format!("catalog-{store_id}.csv"),
        move |sink| produce(pool, export, sink),
    ))
}
