//! A merchant's commands on an order: ship, mark delivered, cancel, refund, note. Each
//! goes through the shared order write flow, with `If-Match` and `Idempotency-Key`.

use api_core::{ApiError, ApiJson, FieldError, openapi::WriteErrors, resource_id};
use axum::{
    extract::{Path, State},
    response::Response,
};
use domain::{
    Carrier, Note, Reason, TrackingNumber, TrackingUrl,
    order::{Fulfil, Order, OrderCommand, Refund},
};
use eventlog::Appended;
use ordering::{OrderChange, OrderOutcome, OrderWriteError, change_order};
use schemas::{
    api::orders::{
        CancelRequest, FulfillmentRequest, ItemQuantityBody, NoteRequest, OrderView, RefundRequest,
    },
    order::ItemQuantity,
};
use serde_json::json;
use uuid::Uuid;

use super::{order_rule_broken, order_view};
use crate::{
    aggregate::owned_store,
    catalog::parse::Parser,
    fields::Fields,
    state::CommandState,
    write::{RecordedResponse, WriteContext, append_failed, metadata, recorded},
};

/// Ship some or all of what is left to ship: `order.shipped`.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/orders/{order_id}/fulfillments", tag = "orders",
    request_body = FulfillmentRequest,
    params(("store_id" = Uuid, Path), ("order_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, description = "Shipped", body = api_core::Data<OrderView>), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn fulfil(
    State(state): State<CommandState>,
    Path((store_id, order_id)): Path<(String, String)>,
    context: WriteContext,
    body: ApiJson<FulfillmentRequest>,
) -> Result<Response, ApiError> {
    let request = &body.value;
    let mut fields = Fields::default();
    let carrier = fields.check("carrier", Carrier::parse(&request.carrier));
    let tracking_number = fields.optional(
        "tracking_number",
        request.tracking_number.as_deref(),
        TrackingNumber::parse,
    );
    let tracking_url = fields.optional(
        "tracking_url",
        request.tracking_url.as_deref(),
        TrackingUrl::parse,
    );
    let items = quantities(&mut fields, "items", &request.items);
    let fulfil = fields.finish(|| {
        Some(Fulfil {
            fulfillment_id: Uuid::now_v7(),
            carrier: carrier?,
            tracking_number: tracking_number?,
            tracking_url: tracking_url?,
            items: items?,
        })
    })?;
    let command = move |_: &Order| OrderCommand::Fulfil(Box::new(fulfil.clone()));
    run(
        &state,
        &context,
        (&store_id, &order_id),
        &body.raw,
        201,
        "items",
        &command,
    )
    .await
}

/// Mark a fully shipped order delivered.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/orders/{order_id}/deliver", tag = "orders",
    params(("store_id" = Uuid, Path), ("order_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, description = "Delivered", body = api_core::Data<OrderView>), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn deliver(
    State(state): State<CommandState>,
    Path((store_id, order_id)): Path<(String, String)>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    let command = |_: &Order| OrderCommand::MarkDelivered;
    run(
        &state,
        &context,
        (&store_id, &order_id),
        &[],
        200,
        "order",
        &command,
    )
    .await
}

/// Cancel an order that has not shipped in full: what was paid is refunded and what did
/// not ship goes back to stock.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/orders/{order_id}/cancel", tag = "orders",
    request_body = CancelRequest,
    params(("store_id" = Uuid, Path), ("order_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, description = "Cancelled", body = api_core::Data<OrderView>), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn cancel(
    State(state): State<CommandState>,
    Path((store_id, order_id)): Path<(String, String)>,
    context: WriteContext,
    body: ApiJson<CancelRequest>,
) -> Result<Response, ApiError> {
    let mut fields = Fields::default();
    let reason = fields.check("reason", Reason::parse(&body.value.reason));
    let reason = fields.finish(|| reason)?;
    let command = move |_: &Order| OrderCommand::Cancel {
        reason: reason.clone(),
    };
    run(
        &state,
        &context,
        (&store_id, &order_id),
        &body.raw,
        200,
        "order",
        &command,
    )
    .await
}

/// Refund part or all of what was paid, optionally putting units back in stock.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/orders/{order_id}/refunds", tag = "orders",
    request_body = RefundRequest,
    params(("store_id" = Uuid, Path), ("order_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, description = "Refunded", body = api_core::Data<OrderView>), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn refund(
    State(state): State<CommandState>,
    Path((store_id, order_id)): Path<(String, String)>,
    context: WriteContext,
    body: ApiJson<RefundRequest>,
) -> Result<Response, ApiError> {
    let ids = ids(&store_id, &order_id)?;
    let store = owned_store(&state, &context.principal, ids.0).await?;
    let request = &body.value;
    let mut parser = Parser::new(&store.currency);
    let amount = parser.money("amount", &request.amount);
    let reason = parser
        .fields
        .check("reason", Reason::parse(&request.reason));
    let restock = quantities(&mut parser.fields, "restock", &request.restock);
    let refund = parser.fields.finish(|| {
        Some(Refund {
            refund_id: Uuid::now_v7(),
            amount: amount?.minor_units(),
            reason: reason?,
            restock: restock?,
        })
    })?;
    let command = move |_: &Order| OrderCommand::Refund(Box::new(refund.clone()));
    run(
        &state,
        &context,
        (&store_id, &order_id),
        &body.raw,
        201,
        "amount",
        &command,
    )
    .await
}

/// Add a note to the order's timeline.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/orders/{order_id}/notes", tag = "orders",
    request_body = NoteRequest,
    params(("store_id" = Uuid, Path), ("order_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, description = "Noted", body = api_core::Data<OrderView>), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn add_note(
    State(state): State<CommandState>,
    Path((store_id, order_id)): Path<(String, String)>,
    context: WriteContext,
    body: ApiJson<NoteRequest>,
) -> Result<Response, ApiError> {
    let mut fields = Fields::default();
    let note = fields.check("note", Note::parse(&body.value.note));
    let note = fields.finish(|| note)?;
    let command = move |_: &Order| OrderCommand::AddNote(note.clone());
    run(
        &state,
        &context,
        (&store_id, &order_id),
        &body.raw,
        201,
        "note",
        &command,
    )
    .await
}

fn ids(store_id: &str, order_id: &str) -> Result<(Uuid, Uuid), ApiError> {
    Ok((resource_id(store_id)?, resource_id(order_id)?))
}

/// Runs `command` on the order of the caller's store; `field` is where a quantity or
/// amount the order refuses is reported.
async fn run(
    state: &CommandState,
    context: &WriteContext,
    (store_id, order_id): (&str, &str),
    body: &[u8],
    status: u16,
    field: &str,
    command: &(dyn Fn(&Order) -> OrderCommand + Sync),
) -> Result<Response, ApiError> {
    let (store_id, order_id) = ids(store_id, order_id)?;
    owned_store(state, &context.principal, store_id).await?;
    let idempotency = context.idempotency(body);
    if let Some(previous) =
        crate::write::Idempotency::previous(idempotency.as_ref(), state.pool()).await?
    {
        return Ok(previous.into_http(true));
    }
    let claim = idempotency.as_ref().map(|idempotency| {
        move |after: &Order| {
            let after = after.clone();
            idempotency.claim(move |appended| answer(order_id, &after, appended, status))
        }
    });
    let change = OrderChange {
        order_id,
        store_id,
        if_match: context.if_match.0,
        command,
        metadata: metadata(&context.principal, idempotency.as_ref()),
        claim: claim
            .as_ref()
            .map(|claim| claim as &(dyn Fn(&Order) -> eventlog::IdempotencyClaim + Sync)),
    };
    match change_order(&state.log, &change).await {
        Ok(OrderOutcome::Changed {
            after,
            version,
            position,
        }) => {
            let appended = Appended {
                stream_id: ordering::order_stream(order_id),
                version,
                positions: vec![position],
            };
            Ok(answer(order_id, &after, &appended, status).into_http(false))
        }
        Ok(OrderOutcome::Replayed(stored)) => Ok(recorded(stored)?.into_http(true)),
        Err(error) => Err(write_failed(error, field)),
    }
}

fn answer(order_id: Uuid, after: &Order, appended: &Appended, status: u16) -> RecordedResponse {
    let view = after
        .placed()
        .map(|placed| order_view(order_id, placed, appended.version));
    RecordedResponse {
        status,
        version: appended.version,
        position: appended.last_position(),
        location: None,
        body: json!({ "data": view, "error": null }),
    }
}

pub(crate) fn write_failed(error: OrderWriteError, field: &str) -> ApiError {
    match error {
        OrderWriteError::NotFound => ApiError::NotFound,
        OrderWriteError::VersionConflict { current } => ApiError::VersionConflict {
            current_version: current,
        },
        OrderWriteError::Rule(rule) => order_rule_broken(rule, field),
        OrderWriteError::Append(append) => append_failed(append),
        OrderWriteError::Contended => ApiError::Conflict {
            code: "contended",
            message: error.to_string(),
        },
        OrderWriteError::Stock(_) | OrderWriteError::Load { .. } => ApiError::internal(error),
    }
}

fn quantities(
    fields: &mut Fields,
    field: &str,
    raw: &[ItemQuantityBody],
) -> Option<Vec<ItemQuantity>> {
    let mut valid = true;
    let items = raw
        .iter()
        .enumerate()
        .filter_map(|(index, item)| {
            match u32::try_from(item.quantity)
                .ok()
                .filter(|q| (1..=999).contains(q))
            {
                Some(quantity) => Some(ItemQuantity {
                    variant_id: item.variant_id,
                    quantity,
                }),
                None => {
                    fields.push(FieldError::new(
                        format!("{field}[{index}].quantity"),
                        "out_of_range",
                        "must be between 1 and 999",
                    ));
                    valid = false;
                    None
                }
            }
        })
        .collect();
    valid.then_some(items)
}
