//! Stripe's webhook: a signed event moves an order through the same write flow as every
//! other change. The event id is the idempotency key (a redelivery answers what the
//! first delivery did), and each handled change is also idempotent in itself (a paid
//! order is not paid twice; a refund records only what Stripe refunded beyond what the
//! order already shows), so a redelivery after the key expired changes nothing either.
//! Events that concern no order of ours, or that the order's state no longer allows,
//! are answered 200 `ignored` so that Stripe stops retrying them.

use std::sync::Arc;

use api_core::ApiError;
use axum::{
    Json,
    http::Method,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use domain::{
    Reason,
    order::{Order, OrderCommand, PaymentStatus, Refund},
};
use eventlog::{Appended, IdempotencyClaim};
use ordering::{OrderChange, OrderOutcome, OrderWriteError, change_order};
use schemas::{EventMetadata, api::orders::StripeReceipt};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::warn;
use uuid::Uuid;

use super::{place::load_order, stripe_sessions::stripe_reference, stripe_signature};
use crate::{
    orders::write_failed,
    state::CommandState,
    write::{Idempotency, RecordedResponse, recorded},
};

const PATH: &str = "/api/v1/webhooks/stripe";
const PROVIDER: &str = "stripe";
const SCOPE: &str = "stripe";
/// Stripe's longest ids are well under this; anything longer is not an event of theirs.
const MAX_EVENT_ID: usize = 255;

#[derive(Debug, Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: Value,
}

/// What an event asks of an order, before the order is read.
enum Action {
    Pay {
        session: String,
        amount: i64,
        currency: String,
        payment_intent: Option<String>,
    },
    Fail {
        payment_intent: String,
        reason: String,
    },
    /// `amount_refunded` is Stripe's running total for the charge.
    Refund { amount_refunded: i64 },
}

impl Action {
    fn outcome(&self) -> &'static str {
        match self {
            Self::Pay { .. } => "paid",
            Self::Fail { .. } => "payment_failed",
            Self::Refund { .. } => "refunded",
        }
    }
}

/// The webhook's signing secret, when one is configured; without it every call is 404.
pub(crate) async fn receive(
    state: &CommandState,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let secret = state
        .payments()
        .webhook_secret()
        .ok_or(ApiError::NotFound)?;
    stripe_signature::verify(signature, body, secret, Utc::now().timestamp())
        .map_err(|error| ApiError::Malformed(error.to_string()))?;
    let event: StripeEvent = serde_json::from_slice(body)
        .map_err(|error| ApiError::Malformed(format!("not a Stripe event: {error}")))?;
    if event.id.is_empty() || event.id.len() > MAX_EVENT_ID {
        return Err(ApiError::Malformed(
            "the event id is missing or too long".into(),
        ));
    }
    let idempotency = Idempotency::scoped(
        SCOPE.into(),
        Some(event.id.clone()),
        &Method::POST,
        PATH,
        event.id.as_bytes(),
    )
    .ok_or_else(|| ApiError::internal("a key was given"))?;
    if let Some(previous) = Idempotency::previous(Some(&idempotency), state.pool()).await? {
        return Ok(previous.into_http(true));
    }
    let receipt = |outcome: &str, order_id: Option<Uuid>, detail: Option<String>| StripeReceipt {
        event_id: event.id.clone(),
        outcome: outcome.to_owned(),
        order_id,
        detail,
    };
    let Some(action) = action_of(&event) else {
        let detail = format!("{} is not handled", event.kind);
        return Ok(unrecorded(receipt("ignored", None, Some(detail))));
    };
    let Some(order_id) = order_of(state, &event.data.object).await? else {
        return Ok(unrecorded(receipt(
            "ignored",
            None,
            Some("no order of ours".into()),
        )));
    };
    let loaded = load_order(state, order_id).await?;
    let Some(placed) = loaded.state.placed() else {
        return Ok(unrecorded(receipt(
            "ignored",
            None,
            Some("no order of ours".into()),
        )));
    };
    if let Action::Pay {
        session,
        currency,
        payment_intent,
        ..
    } = &action
    {
        // A session we opened through the API names the order it is for, which is how the
        // order was found; a mock session is known by its id.
        let ours = *session == placed.payment_session
            || placed.payment_session == stripe_reference(order_id);
        if !ours || !currency.eq_ignore_ascii_case(&placed.totals.currency) {
            let detail = "the session or currency is not the order's".to_owned();
            return Ok(unrecorded(receipt("ignored", Some(order_id), Some(detail))));
        }
        if let Some(intent) = payment_intent {
            remember_intent(state, intent, order_id).await?;
        }
    }
    let answer = receipt(action.outcome(), Some(order_id), None);
    let stored = Arc::new(answer.clone());
    let claim = move |_: &Order| -> IdempotencyClaim {
        let stored = stored.clone();
        idempotency.claim(move |appended| response(&stored, appended))
    };
    let command = |order: &Order| command_of(&action, order);
    let change = OrderChange {
        order_id,
        store_id: placed.store_id,
        if_match: None,
        command: &command,
        metadata: EventMetadata {
            actor: Some(PROVIDER.into()),
            correlation_id: Some(order_id),
            idempotency_key: Some(event.id.clone()),
            request_id: api_core::current_request_id(),
            ..EventMetadata::default()
        },
        claim: Some(&claim),
    };
    match change_order(&state.log, &change).await {
        Ok(OrderOutcome::Changed {
            version, position, ..
        }) => Ok(response(
            &answer,
            &Appended {
                stream_id: ordering::order_stream(order_id),
                version,
                positions: vec![position],
            },
        )
        .into_http(false)),
        Ok(OrderOutcome::Replayed(stored)) => Ok(recorded(stored)?.into_http(true)),
        Err(OrderWriteError::Rule(rule)) => {
            let closed_unpaid = placed.payment == PaymentStatus::Pending && placed.is_closed();
            if matches!(action, Action::Pay { .. }) && closed_unpaid {
                warn!(%order_id, event_id = %event.id, %rule, "Stripe took a payment for an order that no longer takes one; refund it in Stripe");
            }
            let detail = Some(rule.to_string());
            Ok(unrecorded(receipt("ignored", Some(order_id), detail)))
        }
        Err(error) => Err(write_failed(error, "data.object")),
    }
}

fn action_of(event: &StripeEvent) -> Option<Action> {
    let object = &event.data.object;
    let text = |field: &str| object[field].as_str().map(str::to_owned);
    match event.kind.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            // A session paid by a delayed method completes unpaid; its async success
            // follows.
            if object["payment_status"].as_str() != Some("paid") {
                return None;
            }
            Some(Action::Pay {
                session: text("id")?,
                amount: object["amount_total"].as_i64()?,
                currency: text("currency")?,
                payment_intent: text("payment_intent"),
            })
        }
        "payment_intent.payment_failed" => Some(Action::Fail {
            payment_intent: text("id")?,
            reason: object["last_payment_error"]["message"]
                .as_str()
                .unwrap_or("the payment failed")
                .chars()
                .take(200)
                .collect(),
        }),
        "charge.refunded" => Some(Action::Refund {
            amount_refunded: object["amount_refunded"].as_i64()?,
        }),
        _ => None,
    }
}

fn command_of(action: &Action, order: &Order) -> OrderCommand {
    match action {
        Action::Pay {
            session,
            amount,
            payment_intent,
            ..
        } => OrderCommand::Pay {
            amount: *amount,
            provider: PROVIDER.into(),
            reference: payment_intent.clone().unwrap_or_else(|| session.clone()),
        },
        Action::Fail {
            payment_intent,
            reason,
        } => OrderCommand::FailPayment {
            provider: PROVIDER.into(),
            reference: payment_intent.clone(),
            reason: reason.clone(),
        },
        Action::Refund { amount_refunded } => {
            let already = order.placed().map_or(0, |placed| placed.refunded);
            OrderCommand::Refund(Box::new(Refund {
                refund_id: Uuid::new_v4(),
                amount: amount_refunded - already,
                reason: Reason::parse("refunded in Stripe").expect("a valid reason"),
                restock: Vec::new(),
            }))
        }
    }
}

/// The order an object names: our `order_id` in its metadata, the checkout session's
/// `client_reference_id`, or the order its payment intent was recorded for.
async fn order_of(state: &CommandState, object: &Value) -> Result<Option<Uuid>, ApiError> {
    let named = [
        &object["metadata"]["order_id"],
        &object["client_reference_id"],
    ]
    .into_iter()
    .find_map(|value| value.as_str().and_then(|id| Uuid::try_parse(id).ok()));
    if named.is_some() {
        return Ok(named);
    }
    let intent = match object["object"].as_str() {
        Some("payment_intent") => object["id"].as_str(),
        _ => object["payment_intent"].as_str(),
    };
    let Some(intent) = intent else {
        return Ok(None);
    };
    sqlx::query_scalar("SELECT order_id FROM stripe_payment_intents WHERE payment_intent = $1")
        .bind(intent)
        .fetch_optional(state.pool())
        .await
        .map_err(ApiError::internal)
}

async fn remember_intent(
    state: &CommandState,
    intent: &str,
    order_id: Uuid,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO stripe_payment_intents (payment_intent, order_id) VALUES ($1, $2) \
         ON CONFLICT (payment_intent) DO NOTHING",
    )
    .bind(intent)
    .bind(order_id)
    .execute(state.pool())
    .await
    .map_err(ApiError::internal)?;
    Ok(())
}

fn response(receipt: &StripeReceipt, appended: &Appended) -> RecordedResponse {
    RecordedResponse {
        status: 200,
        version: appended.version,
        position: appended.last_position(),
        location: None,
        body: json!({ "data": receipt, "error": null }),
    }
}

/// An answer for an event that changed nothing, so nothing is stored for its id.
fn unrecorded(receipt: StripeReceipt) -> Response {
    Json(json!({ "data": receipt, "error": null })).into_response()
}
