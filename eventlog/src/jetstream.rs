//! The JetStream side of the log: stream layout (DESIGN §3), subjects, headers, and a
//! connection that counts reconnects so the publisher knows when to re-check the stream.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_nats::{
    HeaderMap,
    jetstream::{self, stream},
};
use schemas::RecordedEvent;

pub const POSITION_HEADER: &str = "Dropship-Position";
pub const EVENT_TYPE_HEADER: &str = "Dropship-Event-Type";
pub const SCHEMA_VERSION_HEADER: &str = "Dropship-Schema-Version";
pub const CONTENT_TYPE: &str = "application/postcard";

/// Where this platform's events live on a NATS server that other platforms or test runs
/// may share: its own stream name and subject prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamNames {
    pub stream: String,
    pub subject_prefix: String,
}

impl StreamNames {
    pub fn new(stream: impl Into<String>, subject_prefix: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            subject_prefix: subject_prefix.into(),
        }
    }

    /// `events.<store_id>.<aggregate>.<event>`; events outside any store use `platform`.
    pub fn subject_for(&self, event: &RecordedEvent) -> String {
        let (aggregate, name) = event.aggregate_and_name();
        match event.store_id {
            Some(store_id) => format!("{}.{store_id}.{aggregate}.{name}", self.subject_prefix),
            None => format!("{}.platform.{aggregate}.{name}", self.subject_prefix),
        }
    }

    pub fn all_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// Durable consumer names derive from the stream name, so two platforms on one
    /// server never share (and steal from) a consumer.
    pub fn consumer_name(&self, role: &str) -> String {
        format!("{}_{role}", self.stream)
    }
}

pub async fn ensure_stream(
    js: &jetstream::Context,
    names: &StreamNames,
) -> Result<stream::Stream, jetstream::context::CreateStreamError> {
    js.get_or_create_stream(stream::Config {
        name: names.stream.clone(),
        subjects: vec![names.all_subjects()],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        num_replicas: 1,
        ..Default::default()
    })
    .await
}

pub fn headers_for(event: &RecordedEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.event_id.to_string().as_str());
    headers.insert(EVENT_TYPE_HEADER, event.event_type.as_str());
    headers.insert(
        SCHEMA_VERSION_HEADER,
        event.schema_version.to_string().as_str(),
    );
    headers.insert(POSITION_HEADER, event.position.to_string().as_str());
    headers.insert("Content-Type", CONTENT_TYPE);
    if let Some(traceparent) = &event.metadata.traceparent {
        headers.insert("traceparent", traceparent.as_str());
    }
    headers
}

pub fn position_of(headers: &HeaderMap) -> Option<i64> {
    headers.get(POSITION_HEADER)?.as_str().parse().ok()
}

/// Counts the connections a client has made; a change means NATS came back, possibly
/// without the messages it had acknowledged last.
#[derive(Debug, Clone, Default)]
pub struct Connections(Arc<AtomicU64>);

impl Connections {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// Connects with unbounded reconnects; the client keeps retrying while NATS is away.
pub async fn connect(
    url: &str,
) -> Result<(async_nats::Client, Connections), async_nats::ConnectError> {
    let connections = Connections::default();
    let counter = Arc::clone(&connections.0);
    let client = async_nats::ConnectOptions::new()
        .max_reconnects(None)
        .event_callback(move |event| {
            let counter = Arc::clone(&counter);
            async move {
                if matches!(event, async_nats::Event::Connected) {
                    counter.fetch_add(1, Ordering::AcqRel);
                }
            }
        })
        .connect(url)
        .await?;
    Ok((client, connections))
}
