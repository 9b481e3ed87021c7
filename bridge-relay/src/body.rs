//! What a delivery carries: the event as JSON, in the Standard Webhooks payload shape
//! (`type`, `timestamp`, `data`) plus the ids a receiver needs to act on it.

use chrono::SecondsFormat;
use schemas::{DecodeError, RecordedEvent};
use serde_json::json;

/// The aggregate an event belongs to and its id, from the stream (`product-<id>`).
pub fn resource_of(event: &RecordedEvent) -> (String, String) {
    match event.stream_id.split_once('-') {
        Some((kind, id)) => (kind.to_owned(), id.to_owned()),
        None => (event.stream_id.clone(), String::new()),
    }
}

pub fn body_of(event: &RecordedEvent) -> Result<String, DecodeError> {
    let (resource_type, resource_id) = resource_of(event);
    Ok(json!({
        "id": event.event_id,
        "type": event.event_type,
        "timestamp": event.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "store_id": event.store_id,
        "resource": {"type": resource_type, "id": resource_id},
        "position": event.position,
        "data": event.decode()?.to_json(),
    })
    .to_string())
}
