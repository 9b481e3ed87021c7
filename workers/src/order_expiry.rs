//! Unpaid orders expire (`ORDER_PAYMENT_TIMEOUT_MINUTES` after checkout) and give their
//! stock back. A process manager keeps each unpaid order's deadline as the events say
//! (placed, then paid, cancelled or expired); a job every 30 s expires those past due
//! through the shared order write flow, under an idempotency key derived from the order's
//! `order.created`, so a job run twice (or on two processes) expires an order once.

use std::time::Duration;

use chrono::Utc;
use domain::order::{OrderCommand, OrderError};
use eventlog::{EventLog, IdempotencyClaim};
use ordering::{OrderChange, OrderWriteError, change_order};
use projections::{Projection, Target};
use schemas::{Event, EventMetadata, RecordedEvent};
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use uuid::Uuid;

use crate::scheduler::{Job, RunResult, Schedule};

pub const NAME: &str = "order_expiry";
const ACTOR: &str = "process:order_expiry";
/// Orders one run expires at most; the next run takes the rest.
const BATCH: i64 = 200;

pub struct OrderDeadlines;

impl Projection for OrderDeadlines {
    const NAME: &'static str = NAME;
    /// Its table moves with its checkpoint; a replay from scratch would rebuild it.
    const TABLES: &'static [&'static str] = &[];

    async fn apply(
        &self,
        conn: &mut PgConnection,
        _target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        for event in events {
            let Some(order_id) = order_id(&event.stream_id) else {
                continue;
            };
            match event.event_type.as_str() {
                "order.created" => {
                    let Ok(Event::OrderCreated(created)) = event.decode() else {
                        warn!(
                            position = event.position,
                            "undecodable order.created skipped"
                        );
                        continue;
                    };
                    sqlx::query(
                        "INSERT INTO order_deadlines (order_id, store_id, due, cause) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO NOTHING",
                    )
                    .bind(order_id)
                    .bind(created.store_id)
                    .bind(created.payment_due)
                    .bind(event.event_id)
                    .execute(&mut *conn)
                    .await?;
                }
                "order.paid" | "order.cancelled" | "order.expired" => {
                    sqlx::query("DELETE FROM order_deadlines WHERE order_id = $1")
                        .bind(order_id)
                        .execute(&mut *conn)
                        .await?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn order_id(stream_id: &str) -> Option<Uuid> {
    stream_id
        .strip_prefix(ordering::ORDER_STREAM_PREFIX)?
        .parse()
        .ok()
}

pub fn job(log: EventLog) -> Job {
    Job::new(
        "expire_unpaid_orders",
        Schedule::Every(Duration::from_secs(30)),
        move |stop| expire_due(log.clone(), stop),
    )
}

pub async fn expire_due(log: EventLog, stop: CancellationToken) -> RunResult {
    let due: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        "SELECT order_id, store_id, cause FROM order_deadlines WHERE due <= now() \
         ORDER BY due LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(log.pool())
    .await
    .map_err(|error| error.to_string())?;
    let mut expired = 0;
    for (order_id, store_id, cause) in due {
        if stop.is_cancelled() {
            break;
        }
        match expire(&log, order_id, store_id, cause).await {
            Ok(()) => expired += 1,
            // Paid, cancelled or expired meanwhile: the deadline is moot.
            Err(
                OrderWriteError::Rule(OrderError::InvalidTransition { .. })
                | OrderWriteError::NotFound,
            ) => {
                forget(&log, order_id).await?;
            }
            // This clock is behind the one that set the deadline: next run.
            Err(OrderWriteError::Rule(OrderError::NotYetDue { .. })) => {}
            Err(other) => return Err(format!("order {order_id}: {other}")),
        }
    }
    Ok(format!("{expired} unpaid orders expired"))
}

async fn expire(
    log: &EventLog,
    order_id: Uuid,
    store_id: Uuid,
    cause: Uuid,
) -> Result<(), OrderWriteError> {
    let key = format!("{cause}:expire");
    let claim = |_: &domain::order::Order| IdempotencyClaim {
        scope: ACTOR.to_owned(),
        key: key.clone(),
        fingerprint: key.as_bytes().to_vec(),
        respond: std::sync::Arc::new(
            |appended| serde_json::json!({"stream_id": appended.stream_id, "version": appended.version}),
        ),
    };
    let now = Utc::now();
    let command = move |_: &domain::order::Order| OrderCommand::Expire { now };
    let change = OrderChange {
        order_id,
        store_id,
        if_match: None,
        command: &command,
        metadata: EventMetadata {
            actor: Some(ACTOR.to_owned()),
            correlation_id: Some(order_id),
            causation_id: Some(cause),
            idempotency_key: Some(key.clone()),
            ..EventMetadata::default()
        },
        claim: Some(&claim),
    };
    change_order(log, &change).await?;
    // The process manager forgets it when order.expired arrives; not waiting for that
    // keeps the next run from trying it again.
    forget(log, order_id)
        .await
        .map_err(|_| OrderWriteError::Contended)
}

async fn forget(log: &EventLog, order_id: Uuid) -> Result<(), String> {
    sqlx::query("DELETE FROM order_deadlines WHERE order_id = $1")
        .bind(order_id)
        .execute(log.pool())
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}
