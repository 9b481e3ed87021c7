//! The catalog as CSV, one line per variant (or per product without variants), streamed
//! from a database cursor: memory stays flat however large the catalog is.

use api_core::{ApiError, ApiQuery, auth::Reader, openapi::ReadErrors, resource_id};
use axum::{
    body::Body,
    extract::{Path, State},
    http::header,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures::{StreamExt, stream};
use sqlx::{PgPool, Postgres, QueryBuilder};
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

/// Reads the products row by row and sends CSV chunks until done or the client left.
async fn produce(pool: PgPool, mut query: QueryBuilder<Postgres>, chunks: mpsc::Sender<Bytes>) {
    let new_writer = || csv::Writer::from_writer(Vec::with_capacity(CHUNK_BYTES * 2));
    let mut out = new_writer();
    if out.write_record(HEADER).is_err() {
        return;
    }
    let mut rows = query.build_query_as::<ProductRow>().fetch(&pool);
    while let Some(row) = rows.next().await {
        let written = match row {
            Ok(product) => lines(&product, &mut out),
            Err(error) => {
                // The status line is long gone: the client sees a truncated file, and
                // the cut is logged.
                warn!(%error, "catalog export stopped");
                return;
            }
        };
        if written.and_then(|()| Ok(out.flush()?)).is_err() {
            return;
        }
        if out.get_ref().len() >= CHUNK_BYTES {
            let Ok(chunk) = std::mem::replace(&mut out, new_writer()).into_inner() else {
                return;
            };
            if chunks.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
    }
    if let Ok(rest) = out.into_inner() {
        let _ = chunks.send(Bytes::from(rest)).await;
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
    tokio::spawn(produce(
        state.pool.clone(),
        export_query(store_id, &filters, &membership),
        sender,
    ));
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
