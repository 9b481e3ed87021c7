use schemas::RecordedEvent;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use thiserror::Error;

use crate::read::recorded_event;

/// The link of the per-stream hash chain: SHA-256 over the previous event's hash (empty
/// for the first) and the whole postcard envelope, payload included.
pub(crate) fn chain_hash(
    previous: &[u8],
    event: &RecordedEvent,
) -> Result<Vec<u8>, schemas::EncodeError> {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(event.to_wire()?);
    Ok(hasher.finalize().to_vec())
}

/// Where a stream's history stops matching its hash chain.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChainBreak {
    #[error("version {expected} is missing (found {found})")]
    MissingVersion { expected: i32, found: i32 },
    #[error("event at version {version} was altered")]
    Altered { version: i32 },
    #[error("event at version {version} cannot be re-encoded: {reason}")]
    Unreadable { version: i32, reason: String },
}

/// Recomputes a stream's hash chain and reports the first version where it breaks:
/// an edited event changes its hash, a removed one leaves a version gap (and breaks the
/// link of the event after it).
pub async fn verify_stream(
    pool: &PgPool,
    stream_id: &str,
) -> Result<Result<(), ChainBreak>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT position, stream_id, version, event_id, event_type, schema_version, store_id, \
         metadata, recorded_at, payload, hash FROM events WHERE stream_id = $1 ORDER BY version",
    )
    .bind(stream_id)
    .fetch_all(pool)
    .await?;
    let mut chain = Chain::default();
    for row in &rows {
        let event = recorded_event(row)?;
        let stored: Vec<u8> = sqlx::Row::try_get(row, "hash")?;
        if let Err(broken) = chain.link(&event, stored) {
            return Ok(Err(broken));
        }
    }
    Ok(Ok(()))
}

/// One stream's chain as it is walked in version order.
#[derive(Default)]
pub(crate) struct Chain {
    version: i32,
    previous: Vec<u8>,
}

impl Chain {
    /// Checks the next event of the stream against its stored hash.
    pub(crate) fn link(
        &mut self,
        event: &RecordedEvent,
        stored: Vec<u8>,
    ) -> Result<(), ChainBreak> {
        let expected = self.version.saturating_add(1);
        if event.version != expected {
            return Err(ChainBreak::MissingVersion {
                expected,
                found: event.version,
            });
        }
        let computed = chain_hash(&self.previous, event).map_err(|e| ChainBreak::Unreadable {
            version: event.version,
            reason: e.to_string(),
        })?;
        if computed != stored {
            return Err(ChainBreak::Altered {
                version: event.version,
            });
        }
        self.version = expected;
        self.previous = stored;
        Ok(())
    }
}
