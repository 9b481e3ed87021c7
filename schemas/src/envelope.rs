use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{DecodeError, EncodeError, decode_exact, encode};

/// Who and what caused an event. Stored as `jsonb` in the log and carried inside the
/// postcard envelope on the stream. Postcard is positional, so fields are never skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub actor: Option<String>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// W3C trace context of the request that appended the event.
    pub traceparent: Option<String>,
}

/// An event as the log recorded it: the unit the publisher puts on JetStream and every
/// consumer reads. `payload` is the postcard encoding of the typed [`crate::Event`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub position: i64,
    pub stream_id: String,
    pub version: i32,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub store_id: Option<Uuid>,
    pub metadata: EventMetadata,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub recorded_at: DateTime<Utc>,
    pub payload: Vec<u8>,
}

impl RecordedEvent {
    pub fn to_wire(&self) -> Result<Vec<u8>, EncodeError> {
        encode("event envelope", self)
    }

    pub fn from_wire(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_exact("event envelope", bytes)
    }

    /// The typed payload, upcast to the current schema version.
    pub fn decode(&self) -> Result<crate::Event, DecodeError> {
        crate::Event::decode(&self.event_type, self.schema_version, &self.payload)
    }

    /// `store.created` → `("store", "created")`; the aggregate names the subject token.
    pub fn aggregate_and_name(&self) -> (&str, &str) {
        self.event_type
            .split_once('.')
            .unwrap_or(("unknown", self.event_type.as_str()))
    }
}
