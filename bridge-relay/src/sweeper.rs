//! Housekeeping, once a second: deliveries whose lease ran out (their relay died
//! mid-attempt) get an attempt row saying so and go back to the queue; notices left by
//! the recorder become events in the log (`integration.delivery_exhausted`, and
//! `integration.disabled` for an endpoint that answered 410).

use std::{sync::Arc, time::Duration};

use domain::integration::{DisableReason, IntegrationCommand, IntegrationError, decide};
use eventlog::{AppendRequest, EventLog, ExpectedVersion, IdempotencyClaim, NewEvent};
use schemas::{Event, EventMetadata, integration::IntegrationDeliveryExhausted};
use sqlx::{PgPool, Row, postgres::PgRow};
use tokio_util::sync::CancellationToken;
use tracing::warn;
use uuid::Uuid;

use crate::{config::RelayConfig, integration::IntegrationFold, record::OUTCOME_UNKNOWN};

const EVERY: Duration = Duration::from_secs(1);
const ACTOR: &str = "bridge-relay";

pub async fn run_sweeper(
    pool: PgPool,
    log: EventLog,
    config: Arc<RelayConfig>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        if let Err(error) = recover_expired(&pool, &config).await {
            warn!(%error, "cannot recover expired deliveries yet");
        }
        if let Err(error) = report_notices(&pool, &log).await {
            warn!(%error, "cannot report delivery notices yet");
        }
    }
}

/// Deliveries claimed by a relay that stopped before recording the outcome.
pub async fn recover_expired(pool: &PgPool, config: &RelayConfig) -> Result<(), sqlx::Error> {
    let schedule: Vec<f64> = config
        .delivery
        .retry_schedule
        .iter()
        .map(Duration::as_secs_f64)
        .collect();
    sqlx::query(
        "WITH expired AS ( \
           SELECT id, lease_until FROM bridge_messages \
           WHERE state = 'delivering' AND lease_until < now() \
           ORDER BY lease_until LIMIT 1000 FOR UPDATE SKIP LOCKED), \
         moved AS ( \
           UPDATE bridge_messages m SET \
             state = CASE WHEN m.trigger = 'manual' OR m.attempts >= m.max_attempts \
                          THEN 'exhausted' ELSE 'pending' END, \
             next_attempt_at = now() + make_interval(secs => coalesce(($1::float8[])[m.attempts + 1], 0)), \
             finished_at = CASE WHEN m.trigger = 'manual' OR m.attempts >= m.max_attempts \
                                THEN now() END, \
             claim = NULL, lease_until = NULL \
           FROM expired WHERE m.id = expired.id AND m.id = ANY(ARRAY(SELECT id FROM expired)) \
           RETURNING m.*, expired.lease_until AS expired_at), \
         logged AS ( \
           INSERT INTO bridge_deliveries (message_id, event_id, event_type, store_id, \
             resource_type, resource_id, endpoint_id, service, attempt, trigger, status_code, \
             latency_ms, error, success, attempted_at) \
           SELECT id, event_id, event_type, store_id, resource_type, resource_id, endpoint_id, \
             target, attempts, trigger, 0, 0, $2, false, \
             expired_at - make_interval(secs => $3) \
           FROM moved) \
         INSERT INTO bridge_notices (kind, endpoint_id, store_id, message_id) \
         SELECT 'exhausted', endpoint_id, store_id, id FROM moved \
         WHERE state = 'exhausted' AND trigger = 'scheduled'",
    )
    .bind(&schedule)
    .bind(OUTCOME_UNKNOWN)
    .bind(config.lease().as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

async fn report_notices(pool: &PgPool, log: &EventLog) -> Result<(), sqlx::Error> {
    let notices = sqlx::query(
        "SELECT n.id, n.kind, n.endpoint_id, n.store_id, m.event_id, m.event_type, \
           m.resource_type, m.resource_id, m.target, m.attempts, d.status_code, d.error \
         FROM bridge_notices n JOIN bridge_messages m ON m.id = n.message_id \
         LEFT JOIN LATERAL (SELECT status_code, error FROM bridge_deliveries \
           WHERE message_id = m.id ORDER BY id DESC LIMIT 1) d ON true \
         ORDER BY n.id LIMIT 100",
    )
    .fetch_all(pool)
    .await?;
    for notice in notices {
        let id: i64 = notice.try_get("id")?;
        let kind: String = notice.try_get("kind")?;
        let reported = if kind == "gone" {
            report_gone(pool, log, &notice).await
        } else {
            report_exhausted(log, &notice).await
        };
        match reported {
            Ok(()) => {
                sqlx::query("DELETE FROM bridge_notices WHERE id = $1")
                    .bind(id)
                    .execute(pool)
                    .await?;
            }
            Err(error) => warn!(notice = id, %error, "notice not reported yet"),
        }
    }
    Ok(())
}

fn stream_of(notice: &PgRow) -> Result<(String, Uuid), sqlx::Error> {
    let endpoint: Uuid = notice.try_get("endpoint_id")?;
    Ok((
        format!("integration-{endpoint}"),
        notice.try_get("store_id")?,
    ))
}

fn metadata() -> EventMetadata {
    EventMetadata {
        actor: Some(ACTOR.to_owned()),
        ..Default::default()
    }
}

/// The notice's id is the idempotency key: a sweep that dies after appending and
/// before deleting the notice appends nothing the second time.
fn once(notice: &PgRow) -> Result<IdempotencyClaim, sqlx::Error> {
    let id: i64 = notice.try_get("id")?;
    Ok(IdempotencyClaim {
        scope: ACTOR.to_owned(),
        key: format!("notice-{id}"),
        fingerprint: Vec::new(),
        respond: Arc::new(|_| serde_json::Value::Null),
    })
}

async fn report_exhausted(
    log: &EventLog,
    notice: &PgRow,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (stream, store_id) = stream_of(notice)?;
    let status: Option<i32> = notice.try_get("status_code")?;
    let event = Event::IntegrationDeliveryExhausted(IntegrationDeliveryExhausted {
        target: notice.try_get("target")?,
        event_id: notice.try_get("event_id")?,
        event_type: notice.try_get("event_type")?,
        resource_type: notice.try_get("resource_type")?,
        resource_id: notice.try_get("resource_id")?,
        attempts: u32::try_from(notice.try_get::<i32, _>("attempts")?).unwrap_or_default(),
        last_status_code: status
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or_default(),
        last_error: notice.try_get("error")?,
    });
    let request = AppendRequest::new(stream, ExpectedVersion::Any, vec![NewEvent::new(event)])
        .in_store(store_id)
        .with_metadata(metadata())
        .idempotent(once(notice)?);
    log.append(request).await?;
    Ok(())
}

async fn report_gone(
    pool: &PgPool,
    log: &EventLog,
    notice: &PgRow,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (stream, store_id) = stream_of(notice)?;
    let loaded = eventlog::load::<IntegrationFold>(pool, &stream, 100).await?;
    let events = match decide(
        &loaded.state,
        &IntegrationCommand::Disable(DisableReason::Gone),
    ) {
        Ok(events) if !events.is_empty() => events,
        // Already disabled, or disconnected meanwhile: nothing left to say.
        Ok(_) | Err(IntegrationError::NotFound) => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    let request = AppendRequest::new(
        stream,
        ExpectedVersion::Exact(loaded.version),
        events.into_iter().map(NewEvent::new).collect(),
    )
    .in_store(store_id)
    .with_metadata(metadata())
    .idempotent(once(notice)?);
    // A version conflict (the merchant changed it meanwhile) keeps the notice: it is
    // decided again at the next sweep.
    log.append(request).await?;
    Ok(())
}
