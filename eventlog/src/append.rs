use std::{fmt, sync::Arc};

use schemas::{EncodeError, Event, EventMetadata};
use thiserror::Error;
use uuid::Uuid;

/// The version a writer expects a stream to be at; the stream version is the number of
/// events in it, so 0 means the stream does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    Any,
    NoStream,
    Exact(i32),
}

impl ExpectedVersion {
    pub(crate) fn admits(self, actual: i32) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::Exact(expected) => expected == actual,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event: Event,
}

impl NewEvent {
    pub fn new(event: Event) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event,
        }
    }
}

/// A value that must be unique within a scope across all streams, such as a store slug.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UniqueKey {
    pub scope: String,
    pub value: String,
}

impl UniqueKey {
    pub fn new(scope: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
            value: value.into(),
        }
    }
}

type Respond = dyn Fn(&Appended) -> serde_json::Value + Send + Sync;

/// An `Idempotency-Key` and the response to remember for it, built from the append's
/// result so that it is stored in the same transaction as the events.
pub struct IdempotencyClaim {
    pub scope: String,
    pub key: String,
    /// A digest of the request: the same key with a different request is refused.
    pub fingerprint: Vec<u8>,
    pub respond: Arc<Respond>,
}

impl fmt::Debug for IdempotencyClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyClaim")
            .field("scope", &self.scope)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct AppendRequest {
    pub stream_id: String,
    pub store_id: Option<Uuid>,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub metadata: EventMetadata,
    pub reserve: Vec<UniqueKey>,
    pub release: Vec<UniqueKey>,
    pub idempotency: Option<IdempotencyClaim>,
}

impl AppendRequest {
    pub fn new(
        stream_id: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        Self {
            stream_id: stream_id.into(),
            store_id: None,
            expected,
            events,
            metadata: EventMetadata::default(),
            reserve: Vec::new(),
            release: Vec::new(),
            idempotency: None,
        }
    }

    /// Names this append for as long as it is retried: event ids are unique in the log,
    /// so a retry after a lost answer finds what it already wrote by its first event.
    pub(crate) fn first_event_id(&self) -> Option<Uuid> {
        self.events.first().map(|event| event.event_id)
    }

    pub fn in_store(mut self, store_id: Uuid) -> Self {
        self.store_id = Some(store_id);
        self
    }

    pub fn with_metadata(mut self, metadata: EventMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    pub fn reserving(mut self, key: UniqueKey) -> Self {
        self.reserve.push(key);
        self
    }

    pub fn releasing(mut self, key: UniqueKey) -> Self {
        self.release.push(key);
        self
    }

    pub fn idempotent(mut self, claim: IdempotencyClaim) -> Self {
        self.idempotency = Some(claim);
        self
    }
}

/// What an append wrote: the stream's new version and each event's log position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub stream_id: String,
    pub version: i32,
    pub positions: Vec<i64>,
}

impl Appended {
    /// The position a client can wait for (`X-Position`) to read its own write.
    pub fn last_position(&self) -> i64 {
        self.positions.last().copied().unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AppendOutcome {
    Appended(Appended),
    /// The idempotency key was seen before with the same request: its stored response.
    Replayed(serde_json::Value),
}

/// What an append to several streams at once wrote: every part, or a stored response.
#[derive(Debug, Clone, PartialEq)]
pub enum MultiAppendOutcome {
    /// One result per part, in the order the parts were given.
    Appended(Vec<Appended>),
    /// A part's idempotency key was seen before with the same request: its stored
    /// response, and nothing was written.
    Replayed(serde_json::Value),
}

impl MultiAppendOutcome {
    /// The outcome of an append of one part (a batch answers every part it was given).
    pub(crate) fn into_single(self) -> AppendOutcome {
        match self {
            Self::Appended(mut parts) => AppendOutcome::Appended(parts.swap_remove(0)),
            Self::Replayed(response) => AppendOutcome::Replayed(response),
        }
    }
}

#[derive(Debug, Error, Clone)]
pub enum AppendError {
    #[error("stream {stream_id} is at version {actual}, expected {expected:?}")]
    VersionConflict {
        stream_id: String,
        expected: ExpectedVersion,
        actual: i32,
    },
    #[error("{scope} `{value}` is already taken")]
    UniqueKeyTaken { scope: String, value: String },
    #[error("idempotency key `{key}` was already used for a different request")]
    IdempotencyKeyReused { key: String },
    #[error("an append needs at least one event")]
    NoEvents,
    /// An append to several streams that cannot be written as asked (a caller's bug).
    #[error("malformed append: {0}")]
    Malformed(String),
    #[error(transparent)]
    Encode(Arc<EncodeError>),
    #[error("event log database error: {0}")]
    Database(Arc<sqlx::Error>),
    #[error("the event log is shutting down")]
    ShuttingDown,
}

impl From<sqlx::Error> for AppendError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(Arc::new(error))
    }
}
