//! The catalog as CSV, one line per variant (or per product without variants), streamed
//! page by page: memory stays flat however large the catalog is, and no database
//! connection waits on a client that does not read.

use std::time::Duration;

use api_core::{ApiError, ApiQuery, auth::Reader, openapi::ReadErrors, resource_id};
use axum::{
    body::Body,
    extract::{Path, State},
    http::header,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures::stream;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tracing::warn;
use uuid::Uuid;

use super::{
    filters::{Membership, ProductFilters, ProductQuery, export_query},
    products::{CATALOG_MODELS, require_own_store},
    rows::ProductRow,
};
use crate::{freshness::MinPosition, state::QueryState};

/// Lines are sent in chunks of about this size.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks buffered between the database reader and the client: the reader waits for a
/// slow client instead of piling rows up in memory.
const CHUNKS_IN_FLIGHT: usize = 4;
/// Products read per statement; the connection goes back to the pool between pages.
const PAGE_ROWS: i64 = 200;
/// A client that takes no chunk for this long is cut off (its file ends short).
const STALLED_CLIENT: Duration = Duration::from_secs(30);

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

fn lines(product: &ProductRow, out: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
    let price = product.price_amount.to_string();
    let compare_at = product
        .compare_at_amount
        .map(|a| a.to_string())
        .unwrap_or_default();
    let cost = product
        .cost_amount
        .map(|a| a.to_string())
        .unwrap_or_default();
    let tags = product.tags.join("|");
    let categories: Vec<String> = product.category_ids.iter().map(Uuid::to_string).collect();
    let categories = categories.join("|");
    let (created, updated) = (
        product.created_at.to_rfc3339(),
        product.updated_at.to_rfc3339(),
    );
    let id = product.id.to_string();
    let description = product.description.as_deref().unwrap_or_default();
    let mut line = |variant: [&str; 6]| {
        out.write_record([
            id.as_str(),
            &product.title,
            &product.slug,
            &product.status,
            &product.currency,
            &price,
            &compare_at,
            &cost,
            &tags,
            &categories,
            variant[0],
            variant[1],
            variant[2],
            variant[3],
            variant[4],
            variant[5],
            description,
            &created,
            &updated,
        ])
    };
    if product.variants.is_empty() {
        return line(["", "", "", "", "", ""]);
    }
    for variant in product.variants.iter() {
        let options: Vec<String> = variant
            .options
            .iter()
            .map(|o| format!("{}={}", o.name, o.value))
            .collect();
        line([
            &variant.variant_id.to_string(),
            &variant.name,
            variant.sku.as_deref().unwrap_or_default(),
            &variant
                .price
                .as_ref()
                .map(|p| p.amount.to_string())
                .unwrap_or_default(),
            &variant.inventory_count.to_string(),
            &options.join("|"),
        ])?;
    }
    Ok(())
}

/// What an export reads: the store, its filters and the product sets they stand for.
struct ExportQuery {
    store_id: Uuid,
    filters: ProductFilters,
    membership: Membership,
}

/// Reads the products a page at a time and sends CSV chunks until done, the client left
/// or it stalled.
async fn produce(pool: PgPool, export: ExportQuery, chunks: mpsc::Sender<Bytes>) {
    let new_writer = || csv::Writer::from_writer(Vec::with_capacity(CHUNK_BYTES * 2));
    let mut out = new_writer();
    if out.write_record(HEADER).is_err() {
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
            Err(error) => {
                // The status line is long gone: the client sees a truncated file, and
                // the cut is logged.
                warn!(%error, "catalog export stopped");
                return;
            }
        };
        let last_page = page.len() < usize::try_from(PAGE_ROWS).unwrap_or(usize::MAX);
        after = page.last().map(|product| (product.created_at, product.id));
        for product in &page {
            if lines(product, &mut out)
                .and_then(|()| Ok(out.flush()?))
                .is_err()
            {
                return;
            }
            if out.get_ref().len() >= CHUNK_BYTES {
                let Ok(chunk) = std::mem::replace(&mut out, new_writer()).into_inner() else {
                    return;
                };
                if !send(&chunks, chunk).await {
                    return;
                }
            }
        }
        if last_page {
            break;
        }
    }
    if let Ok(rest) = out.into_inner() {
        send(&chunks, rest).await;
    }
}

/// Hands a chunk to the response; false when the client left or stalled.
async fn send(chunks: &mpsc::Sender<Bytes>, chunk: Vec<u8>) -> bool {
    match tokio::time::timeout(STALLED_CLIENT, chunks.send(Bytes::from(chunk))).await {
        Ok(sent) => sent.is_ok(),
        Err(_) => {
            warn!("catalog export cut off: the client took nothing for 30 s");
            false
        }
    }
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
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let export = ExportQuery {
        store_id,
        filters,
        membership,
    };
    tokio::spawn(produce(state.pool.clone(), export, sender));
    let body = stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), receiver))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"catalog-{store_id}.csv\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
