//! What the tests of every crate share: an isolated JetStream namespace per test, a
//! private nats-server a test may kill and restart, event factories and polling.

#![allow(clippy::unwrap_used)]

mod nats;

use std::{future::Future, time::Duration};

use eventlog::{
    AppendOutcome, AppendRequest, Appended, EventLog, ExpectedVersion, NewEvent,
    jetstream::StreamNames,
};
use schemas::{Event, RecordedEvent, store::StoreUpdated};
use uuid::Uuid;

pub use nats::PrivateNats;

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The URL of database `name` on the server of `DATABASE_URL`, for tests that create
/// a database of their own.
pub fn database_url(name: &str) -> String {
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/dropship".into());
    let base = server
        .rsplit_once('/')
        .map_or(server.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// A stream name and subject prefix no other test uses, so tests share one server.
pub fn isolated_names() -> StreamNames {
    let id = Uuid::new_v4().simple().to_string();
    StreamNames::new(format!("TEST_{id}"), format!("test_{id}"))
}

/// Deletes the test's stream (and with it its consumers).
pub async fn delete_stream(client: &async_nats::Client, names: &StreamNames) {
    let _ = async_nats::jetstream::new(client.clone())
        .delete_stream(&names.stream)
        .await;
}

/// An event with a payload of about `size` bytes.
pub fn sized_event(size: usize) -> Event {
    Event::StoreUpdated(StoreUpdated {
        name: Some("x".repeat(size)),
        ..Default::default()
    })
}

pub fn store_stream(store_id: Uuid) -> String {
    format!("store-{store_id}")
}

/// Appends `count` single-event appends to one store's stream and returns what was written.
pub async fn append_to_store(log: &EventLog, store_id: Uuid, count: usize) -> Vec<Appended> {
    let mut written = Vec::with_capacity(count);
    for _ in 0..count {
        let request = AppendRequest::new(
            store_stream(store_id),
            ExpectedVersion::Any,
            vec![NewEvent::new(sized_event(32))],
        )
        .in_store(store_id);
        match log.append(request).await.unwrap() {
            AppendOutcome::Appended(appended) => written.push(appended),
            AppendOutcome::Replayed(_) => unreachable!("no idempotency key was given"),
        }
    }
    written
}

/// Every message of a stream, decoded, in stream order.
pub async fn stream_contents(
    client: &async_nats::Client,
    names: &StreamNames,
) -> Vec<RecordedEvent> {
    let js = async_nats::jetstream::new(client.clone());
    let Ok(stream) = js.get_stream(&names.stream).await else {
        return Vec::new();
    };
    let info = stream.get_info().await.unwrap();
    let mut events = Vec::new();
    if info.state.messages == 0 {
        return events;
    }
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            events.push(RecordedEvent::from_wire(&message.payload).unwrap());
        }
    }
    events
}

/// Polls `check` every 50 ms until it returns true; false after `limit`. Tests assert on
/// the outcome, never on how long it took.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
