//! Orders and customers on the write side: how their streams fold, how an order is
//! shown, how its rules' refusals read over HTTP, and the stores' order numbers.

mod commands;

use api_core::{ApiError, FieldError};
use domain::order::OrderError;
use sqlx::PgPool;
use uuid::Uuid;

pub(crate) use commands::write_failed;
pub(crate) use ordering::{OrderFold, money, order_stream, order_view};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::CommandState;

pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(commands::fulfil))
        .routes(routes!(commands::deliver))
        .routes(routes!(commands::cancel))
        .routes(routes!(commands::refund))
        .routes(routes!(commands::add_note))
}

pub(crate) const CUSTOMER_STREAM_PREFIX: &str = "customer-";

pub(crate) fn customer_stream(customer_id: Uuid) -> String {
    format!("{CUSTOMER_STREAM_PREFIX}{customer_id}")
}

/// The store's next order number. Its own transaction commits without waiting for the
/// WAL flush: an order that carries the number commits synchronously afterwards, which
/// flushes this earlier record too, so a number lost in a crash was never used. The row
/// lock is then held for microseconds rather than an fsync.
pub(crate) async fn next_order_number(pool: &PgPool, store_id: Uuid) -> Result<u64, sqlx::Error> {
    let number: i64 = sqlx::query_scalar(
        "WITH relaxed AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)) \
         INSERT INTO order_numbers (store_id, last) SELECT $1, 1001 FROM relaxed \
         ON CONFLICT (store_id) DO UPDATE SET last = order_numbers.last + 1 \
         RETURNING last",
    )
    .bind(store_id)
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(number).unwrap_or_default())
}

/// An order rule's refusal over HTTP: a transition the order's state does not allow is a
/// 409 naming that state; quantities and amounts out of bounds are 422 on `field`.
pub(crate) fn order_rule_broken(error: OrderError, field: &str) -> ApiError {
    let message = error.to_string();
    match error {
        OrderError::NotFound => ApiError::NotFound,
        OrderError::InvalidTransition { .. } => ApiError::Conflict {
            code: "invalid_transition",
            message,
        },
        OrderError::AmountMismatch { .. } => ApiError::Conflict {
            code: "amount_mismatch",
            message,
        },
        OrderError::NotYetDue { .. } => ApiError::Conflict {
            code: "not_yet_due",
            message,
        },
        OrderError::NothingToShip => ApiError::Conflict {
            code: "nothing_to_ship",
            message,
        },
        OrderError::TooManyUnits { .. } | OrderError::NotOnOrder(_) => {
            ApiError::Validation(vec![FieldError::new(field, "too_many_units", message)])
        }
        OrderError::RefundOutOfRange { .. } => {
            ApiError::Validation(vec![FieldError::new(field, "out_of_range", message)])
        }
        OrderError::AlreadyPlaced | OrderError::InvalidLines => ApiError::internal(message),
    }
}
