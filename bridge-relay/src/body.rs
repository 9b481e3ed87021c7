//! What a delivery carries: the event as JSON, in the Standard Webhooks payload shape
//! (`type`, `timestamp`, `data`) plus the ids a receiver needs to act on it. Personal
//! data sealed in the event is opened for the receiver (FlowSend mails the shopper);
//! a customer who was erased arrives as `"contact": null`.

use chrono::SecondsFormat;
use pii::{Vault, VaultError};
use schemas::{DecodeError, Event, RecordedEvent, pii::ContactDetails, pii::Sealed};
use serde_json::json;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BodyError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("personal data: {0}")]
    Sealed(#[from] VaultError),
}

impl BodyError {
    /// A failure that may pass on retry (the key store was unreachable), as opposed to
    /// an event that can never be delivered as it is.
    pub fn into_transient(self) -> Result<sqlx::Error, Self> {
        match self {
            Self::Sealed(VaultError::Database(error)) => Ok(error),
            other => Err(other),
        }
    }
}

/// The aggregate an event belongs to and its id, from the stream (`product-<id>`).
pub fn resource_of(event: &RecordedEvent) -> (String, String) {
    match event.stream_id.split_once('-') {
        Some((kind, id)) => (kind.to_owned(), id.to_owned()),
        None => (event.stream_id.clone(), String::new()),
    }
}

pub async fn body_of(event: &RecordedEvent, vault: &Vault) -> Result<String, BodyError> {
    let (resource_type, resource_id) = resource_of(event);
    let decoded = event.decode()?;
    let mut data = decoded.to_json();
    if let Some(sealed) = sealed_contact(&decoded) {
        let contact: Option<ContactDetails> = vault.open(sealed).await?;
        data["contact"] = json!(contact);
    }
    Ok(json!({
        "id": event.event_id,
        "type": event.event_type,
        "timestamp": event.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "store_id": event.store_id,
        "resource": {"type": resource_type, "id": resource_id},
        "position": event.position,
        "data": data,
    })
    .to_string())
}

fn sealed_contact(event: &Event) -> Option<&Sealed> {
    match event {
        Event::OrderCreated(created) => Some(&created.contact),
        Event::OrderShipped(shipped) => Some(&shipped.contact),
        Event::CustomerCreated(created) => Some(&created.contact),
        Event::CustomerUpdated(updated) => Some(&updated.contact),
        _ => None,
    }
}
