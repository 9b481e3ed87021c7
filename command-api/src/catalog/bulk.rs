//! Bulk operations over up to 500 products of a store, answered per product: each
//! product is its own command, appended on its own, so one product's failure never
//! undoes another's change.

use std::collections::HashSet;

use api_core::{ApiError, ApiJson, FieldError, openapi::WriteErrors, resource_id};
use axum::{
    extract::{Path, State},
    http::HeaderValue,
    response::{IntoResponse, Response},
};
use domain::{
    InvalidValue, Tag,
    product::{PriceAdjustment, ProductCommand, ProductStatus, UpdateProduct},
};
use futures::{StreamExt, stream};
use schemas::api::products::{BulkAction, BulkItemError, BulkItemResult, BulkRequest, BulkResult};
use uuid::Uuid;

use super::{
    aggregates::ProductFold,
    parse::{NO_MONEY, Parser},
};
use crate::{
    aggregate::{Write, execute_plain, owned_store},
    fields::Fields,
    preconditions::X_POSITION,
    state::CommandState,
    write::WriteContext,
};

const MAX_PRODUCTS: usize = 500;
/// Products worked on at once: enough to fill the log's group commits.
const CONCURRENCY: usize = 16;
/// Percent changes from -100 % (free) to +1000 %.
const PERCENT_RANGE: std::ops::RangeInclusive<f64> = -100.0..=1000.0;

fn command_for(action: &BulkAction) -> Result<ProductCommand, ApiError> {
    let mut fields = Fields::default();
    let command = match action {
        BulkAction::SetStatus { status } => {
            let mut parser = Parser::new(NO_MONEY);
            let status = parser.status(
                "action.status",
                status,
                &[
                    ProductStatus::Draft,
                    ProductStatus::Active,
                    ProductStatus::Archived,
                ],
            );
            fields = parser.fields;
            status.map(|status| {
                ProductCommand::Update(Box::new(UpdateProduct {
                    status: Some(status),
                    ..UpdateProduct::default()
                }))
            })
        }
        BulkAction::AdjustPrice { percent, amount } => match (percent, amount) {
            (Some(percent), None) if percent.is_finite() && PERCENT_RANGE.contains(percent) => {
                // Basis points: 12.5 % is 1250; finer precision than that is noise.
                #[expect(clippy::cast_possible_truncation, reason = "bounded by PERCENT_RANGE")]
                let points = (percent * 100.0).round() as i64;
                Some(ProductCommand::AdjustPrices(PriceAdjustment::BasisPoints(
                    points,
                )))
            }
            (None, Some(amount)) if amount.unsigned_abs() <= domain::Amount::MAX.unsigned_abs() => {
                Some(ProductCommand::AdjustPrices(PriceAdjustment::Amount(
                    *amount,
                )))
            }
            _ => {
                fields.push(FieldError::new(
                    "action",
                    "invalid_price_change",
                    "give exactly one of `percent` (-100 to 1000) and `amount` (minor units)",
                ));
                None
            }
        },
        BulkAction::AddTags { tags } | BulkAction::RemoveTags { tags } => {
            let parsed: Vec<Option<Tag>> = tags
                .iter()
                .enumerate()
                .map(|(i, tag)| fields.check(&format!("action.tags[{i}]"), Tag::parse(tag)))
                .collect();
            if tags.is_empty() {
                fields.check::<()>("action.tags", Err(InvalidValue::Empty));
            }
            parsed
                .into_iter()
                .collect::<Option<Vec<Tag>>>()
                .map(|tags| {
                    if matches!(action, BulkAction::AddTags { .. }) {
                        ProductCommand::AddTags(tags)
                    } else {
                        ProductCommand::RemoveTags(tags)
                    }
                })
        }
    };
    fields.finish(|| command)
}

fn check_ids(ids: &[Uuid]) -> Result<(), ApiError> {
    if ids.is_empty() || ids.len() > MAX_PRODUCTS {
        return Err(ApiError::Validation(vec![FieldError::new(
            "product_ids",
            "out_of_range",
            format!("must name 1 to {MAX_PRODUCTS} products"),
        )]));
    }
    let mut seen = HashSet::new();
    let repeated: Vec<FieldError> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !seen.insert(**id))
        .map(|(i, _)| FieldError::new(format!("product_ids[{i}]"), "duplicate", "listed twice"))
        .collect();
    if repeated.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(repeated))
    }
}

/// Change the status, the price (by percent or amount) or the tags of many products.
/// Every product gets its own result; the request succeeds even when some items fail.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/products/bulk", tag = "products",
    request_body = BulkRequest,
    params(("store_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Each item's answer is recorded under it; a retry replays finished items")),
    responses((status = 200, description = "One result per product", body = api_core::Data<BulkResult>, headers(("X-Position" = i64))), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn bulk_products(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
    body: ApiJson<BulkRequest>,
) -> Result<Response, ApiError> {
    let store_id = resource_id(&store_id)?;
    owned_store(&state, &context.principal, store_id).await?;
    check_ids(&body.value.product_ids)?;
    let command = command_for(&body.value.action)?;
    let results: Vec<(BulkItemResult, i64)> = stream::iter(body.value.product_ids.iter().copied())
        .map(|product_id| {
            let (state, context, command, raw) = (&state, &context, &command, &body.raw);
            async move {
                let idempotency = context.item_idempotency(raw, &product_id.to_string());
                let write = Write {
                    principal: &context.principal,
                    store_id,
                    id: product_id,
                    if_match: None,
                    idempotency: idempotency.as_ref(),
                    creating: false,
                    revealed: None,
                };
                let outcome =
                    execute_plain::<ProductFold>(state, &write, |_| Ok(command.clone())).await;
                item_result(product_id, outcome)
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let position = results.iter().map(|(_, p)| *p).max().unwrap_or_default();
    let succeeded = results.iter().filter(|(r, _)| r.error.is_none()).count();
    let results: Vec<BulkItemResult> = results.into_iter().map(|(r, _)| r).collect();
    let result = BulkResult {
        failed: results.len() - succeeded,
        succeeded,
        results,
        position,
    };
    let mut response = api_core::data(result).into_response();
    response
        .headers_mut()
        .insert(X_POSITION, HeaderValue::from(position));
    Ok(response)
}

fn item_result(
    product_id: Uuid,
    outcome: Result<crate::aggregate::Answer, ApiError>,
) -> (BulkItemResult, i64) {
    match outcome {
        Ok(answer) => (
            BulkItemResult {
                product_id,
                status: answer.recorded.status,
                version: Some(answer.recorded.version),
                error: None,
            },
            answer.recorded.position,
        ),
        Err(error) => {
            let message = match &error {
                ApiError::Internal(cause) => {
                    tracing::error!(%cause, %product_id, "bulk item failed");
                    "something went wrong on our side".to_owned()
                }
                other => other.to_string(),
            };
            (
                BulkItemResult {
                    product_id,
                    status: error.status().as_u16(),
                    version: None,
                    error: Some(BulkItemError {
                        code: error.code().to_owned(),
                        message,
                    }),
                },
                0,
            )
        }
    }
}
