//! The store-deletion process manager: when a store is deleted, every integration it
//! still has is disconnected (`integration.disconnected`, reason `store_deleted`) and
//! its media is queued for removal.
//!
//! It runs as a projection of the workers' consumer, so its own state (which
//! integrations each store has) moves with its checkpoint. The commands it issues go
//! through the domain and the event log like the command API's, each under an
//! idempotency key derived from the causing event: a batch applied again after a crash,
//! a redelivery or a replay finds the key (or the integration already disconnected) and
//! issues nothing twice.

use bridge_relay::IntegrationFold;
use domain::integration::{Integration, IntegrationCommand, SERVICE_SCOPE_PREFIX, Target, decide};
use eventlog::{
    AppendError, AppendRequest, EventLog, ExpectedVersion, IdempotencyClaim, LoadError, NewEvent,
    UniqueKey, load,
};
use projections::{Projection, Target as Tables};
use schemas::{EventMetadata, RecordedEvent, integration::DisconnectReason};
use sqlx::PgConnection;
use thiserror::Error;
use tracing::info;
use uuid::Uuid;

pub const NAME: &str = "store_deletion";
const STREAM_PREFIX: &str = "integration-";
/// Who the events it appends name as their actor.
const ACTOR: &str = "process:store_deletion";
/// Writes that lost a race with another writer of the same integration are re-read and
/// decided again, this many times.
const MAX_ATTEMPTS: usize = 10;
const SNAPSHOT_EVERY: i32 = 100;

pub struct StoreDeletion {
    log: EventLog,
}

impl StoreDeletion {
    pub fn new(log: EventLog) -> Self {
        Self { log }
    }
}

impl Projection for StoreDeletion {
    const NAME: &'static str = NAME;
    /// Nothing to rebuild: replaying the log would issue its commands again.
    const TABLES: &'static [&'static str] = &[];

    async fn apply(
        &self,
        conn: &mut PgConnection,
        _target: Tables,
        events: &[RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        for event in events {
            let Some(store_id) = event.store_id else {
                continue;
            };
            match event.event_type.as_str() {
                "integration.connected" => {
                    if let Some(id) = integration_id(&event.stream_id) {
                        remember(conn, store_id, id).await?;
                    }
                }
                "integration.disconnected" => {
                    if let Some(id) = integration_id(&event.stream_id) {
                        forget(conn, store_id, id).await?;
                    }
                }
                "store.deleted" => self.store_deleted(conn, store_id, event).await?,
                _ => {}
            }
        }
        Ok(())
    }
}

impl StoreDeletion {
    async fn store_deleted(
        &self,
        conn: &mut PgConnection,
        store_id: Uuid,
        cause: &RecordedEvent,
    ) -> Result<(), sqlx::Error> {
        let integrations: Vec<Uuid> = sqlx::query_scalar(
            "SELECT integration_id FROM store_integrations WHERE store_id = $1 ORDER BY integration_id",
        )
        .bind(store_id)
        .fetch_all(&mut *conn)
        .await?;
        for integration in &integrations {
            // A failure fails the batch, which this lane alone retries; the commands
            // that went through already are replays then.
            disconnect(&self.log, *integration, cause)
                .await
                .map_err(|error| sqlx::Error::Protocol(error.to_string()))?;
        }
        sqlx::query(
            "INSERT INTO deleted_store_media (store_id, deleted_at) VALUES ($1, $2) \
             ON CONFLICT (store_id) DO NOTHING",
        )
        .bind(store_id)
        .bind(cause.recorded_at)
        .execute(&mut *conn)
        .await?;
        info!(%store_id, integrations = integrations.len(), "deleted store's integrations disconnected");
        Ok(())
    }
}

fn integration_id(stream_id: &str) -> Option<Uuid> {
    stream_id.strip_prefix(STREAM_PREFIX)?.parse().ok()
}

async fn remember(conn: &mut PgConnection, store_id: Uuid, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO store_integrations (store_id, integration_id) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(store_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

async fn forget(conn: &mut PgConnection, store_id: Uuid, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM store_integrations WHERE store_id = $1 AND integration_id = $2")
        .bind(store_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Error)]
pub enum CommandError {
    #[error("loading {stream_id}: {source}")]
    Load {
        stream_id: String,
        source: LoadError,
    },
    #[error("appending to {stream_id}: {source}")]
    Append {
        stream_id: String,
        source: AppendError,
    },
    #[error("{stream_id} kept changing under {MAX_ATTEMPTS} attempts")]
    Contended { stream_id: String },
}

/// Disconnects one integration because of `cause`, through the same load → decide →
/// append path as the command API. Already disconnected (by the merchant, or by this
/// same command before a crash) is done.
pub async fn disconnect(
    log: &EventLog,
    integration: Uuid,
    cause: &RecordedEvent,
) -> Result<(), CommandError> {
    let stream_id = format!("{STREAM_PREFIX}{integration}");
    for _ in 0..MAX_ATTEMPTS {
        let loaded = load::<IntegrationFold>(log.pool(), &stream_id, SNAPSHOT_EVERY)
            .await
            .map_err(|source| CommandError::Load {
                stream_id: stream_id.clone(),
                source,
            })?;
        let command = IntegrationCommand::Disconnect(DisconnectReason::StoreDeleted);
        // Disconnecting can only find nothing to disconnect: done already.
        let Ok(events) = decide(&loaded.state, &command) else {
            return Ok(());
        };
        let mut request = AppendRequest::new(
            &stream_id,
            ExpectedVersion::Exact(loaded.version),
            events.into_iter().map(NewEvent::new).collect(),
        )
        .with_metadata(caused_by(cause, integration))
        .idempotent(claim(cause, integration));
        if let Integration::Existing(current) = &loaded.state {
            request = request.in_store(current.data.store_id);
            if current.data.target != Target::WEBHOOK {
                request = request.releasing(UniqueKey::new(
                    format!("{SERVICE_SCOPE_PREFIX}{}", current.data.store_id),
                    &current.data.target,
                ));
            }
        }
        match log.append(request).await {
            Ok(_) => return Ok(()),
            Err(AppendError::VersionConflict { .. }) => continue,
            Err(source) => {
                return Err(CommandError::Append { stream_id, source });
            }
        }
    }
    Err(CommandError::Contended { stream_id })
}

/// The new events name the event that caused them and carry its correlation on.
fn caused_by(cause: &RecordedEvent, integration: Uuid) -> EventMetadata {
    EventMetadata {
        actor: Some(ACTOR.to_owned()),
        correlation_id: cause.metadata.correlation_id.or(Some(cause.event_id)),
        causation_id: Some(cause.event_id),
        request_id: cause.metadata.request_id.clone(),
        idempotency_key: Some(idempotency_key(cause, integration)),
        traceparent: cause.metadata.traceparent.clone(),
    }
}

fn idempotency_key(cause: &RecordedEvent, integration: Uuid) -> String {
    format!("{}:{integration}", cause.event_id)
}

/// The key is the causing event and the integration: one command per pair, ever (while
/// the key is kept; after that the integration is long disconnected).
fn claim(cause: &RecordedEvent, integration: Uuid) -> IdempotencyClaim {
    let key = idempotency_key(cause, integration);
    IdempotencyClaim {
        scope: ACTOR.to_owned(),
        fingerprint: key.as_bytes().to_vec(),
        key,
        respond: std::sync::Arc::new(
            |appended| serde_json::json!({"stream_id": appended.stream_id, "version": appended.version}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_ids_come_from_their_stream() {
        let id = Uuid::from_u128(7);
        assert_eq!(integration_id(&format!("integration-{id}")), Some(id));
        assert_eq!(integration_id(&format!("store-{id}")), None);
        assert_eq!(integration_id("integration-not-a-uuid"), None);
    }
}
