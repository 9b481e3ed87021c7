//! Mock payments: with no payment provider configured, a checkout's session is paid by
//! confirming it, as a shopper returning from the provider's page would.

use api_core::ApiError;
use domain::order::{self, OrderCommand, PaymentStatus};
use eventlog::{AppendError, AppendOutcome, AppendRequest, ExpectedVersion, NewEvent};
use schemas::EventMetadata;
use serde_json::json;
use uuid::Uuid;

use super::place::{MOCK_SESSION_PREFIX, load_order};
use crate::{
    aggregate::Answer,
    orders::{order_rule_broken, order_stream, order_view},
    state::CommandState,
    write::{RecordedResponse, append_failed},
};

/// Attempts after losing a race with another change of the order.
const MAX_ATTEMPTS: usize = 5;

/// Pays the order behind a mock session for its total. Confirming a session that is
/// already paid answers the order as it is.
pub(crate) async fn confirm(state: &CommandState, session: &str) -> Result<Answer, ApiError> {
    let order_id = session
        .strip_prefix(MOCK_SESSION_PREFIX)
        .and_then(|id| Uuid::try_parse(id).ok())
        .ok_or(ApiError::NotFound)?;
    for _ in 0..MAX_ATTEMPTS {
        let loaded = load_order(state, order_id).await?;
        let placed = loaded
            .state
            .placed()
            .filter(|placed| placed.payment_session == session)
            .ok_or(ApiError::NotFound)?;
        if placed.payment != PaymentStatus::Pending && placed.paid > 0 {
            return Ok(Answer {
                recorded: answer(order_id, placed, loaded.version, 0),
                replayed: false,
            });
        }
        let command = OrderCommand::Pay {
            amount: placed.totals.total,
            provider: "mock".into(),
            reference: session.to_owned(),
        };
        let events = order::decide(&loaded.state, &command)
            .map_err(|error| order_rule_broken(error, "session"))?;
        let after = events.iter().fold(loaded.state.clone(), order::evolve);
        let request = AppendRequest::new(
            order_stream(order_id),
            ExpectedVersion::Exact(loaded.version),
            events.into_iter().map(NewEvent::new).collect(),
        )
        .in_store(placed.store_id)
        .with_metadata(EventMetadata {
            actor: Some(format!("customer:{}", placed.customer_id)),
            correlation_id: Some(order_id),
            request_id: api_core::current_request_id(),
            ..EventMetadata::default()
        });
        match state.log.append(request).await {
            Ok(AppendOutcome::Appended(appended)) => {
                let paid = after.placed().ok_or(ApiError::NotFound)?;
                return Ok(Answer {
                    recorded: answer(order_id, paid, appended.version, appended.last_position()),
                    replayed: false,
                });
            }
            Ok(AppendOutcome::Replayed(_)) => return Err(ApiError::internal("no key to replay")),
            Err(AppendError::VersionConflict { .. }) => {}
            Err(other) => return Err(append_failed(other)),
        }
    }
    Err(ApiError::Conflict {
        code: "contended",
        message: "the order is changing; retry".into(),
    })
}

/// `position` 0: nothing was written, so there is nothing to wait for.
fn answer(
    order_id: Uuid,
    order: &order::PlacedOrder,
    version: i32,
    position: i64,
) -> RecordedResponse {
    RecordedResponse {
        status: 200,
        version,
        position,
        location: None,
        body: json!({ "data": order_view(order_id, order, version), "error": null }),
    }
}
