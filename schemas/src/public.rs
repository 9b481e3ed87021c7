//! An event as integrators and auditors read it: the envelope's fields by name and the
//! payload as JSON. Sealed personal data shows only that it is sealed (opening it is the
//! reader's business, for its own store's customers), and cost prices never appear.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::RecordedEvent;

/// One event of the log, as integrators and auditors receive it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicEvent {
    pub id: Uuid,
    /// `aggregate.name`, such as `order.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload's schema version (its fields are added to, never changed, within one).
    pub schema_version: u16,
    pub store_id: Option<Uuid>,
    /// The aggregate's stream, `<aggregate>-<id>`.
    pub stream_id: String,
    /// The event's place in its stream, from 1.
    pub stream_version: i32,
    /// The event's place in the whole log: gapless, in commit order.
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
    /// Who caused it: `user:<id>/session:<id>`, `api_key:<id>`, `customer:<id>/…`, a
    /// worker or the relay.
    pub actor: Option<String>,
    pub correlation_id: Option<Uuid>,
    /// The event that caused this one, for events a process manager wrote.
    pub causation_id: Option<Uuid>,
    pub request_id: Option<String>,
    /// The payload; `null` for a type or version this build does not know.
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<&RecordedEvent> for PublicEvent {
    fn from(event: &RecordedEvent) -> Self {
        Self {
            id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            store_id: event.store_id,
            stream_id: event.stream_id.clone(),
            stream_version: event.version,
            position: event.position,
            recorded_at: event.recorded_at,
            actor: event.metadata.actor.clone(),
            correlation_id: event.metadata.correlation_id,
            causation_id: event.metadata.causation_id,
            request_id: event.metadata.request_id.clone(),
            data: event
                .decode()
                .map_or(Value::Null, |decoded| public_data(decoded.to_json())),
        }
    }
}

/// The event as one JSON object.
pub fn render(event: &RecordedEvent) -> Value {
    serde_json::to_value(PublicEvent::from(event)).unwrap_or_default()
}

fn public_data(mut data: Value) -> Value {
    hide_sealed(&mut data);
    if let Some(product) = data.get_mut("product").and_then(Value::as_object_mut) {
        product.remove("cost");
    }
    data
}

/// Replaces every sealed value (key id, nonce, ciphertext) with `{"sealed": true}`.
fn hide_sealed(value: &mut Value) {
    match value {
        Value::Object(fields)
            if fields.contains_key("ciphertext") && fields.contains_key("nonce") =>
        {
            *value = json!({"sealed": true});
        }
        Value::Object(fields) => fields.values_mut().for_each(hide_sealed),
        Value::Array(items) => items.iter_mut().for_each(hide_sealed),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::{
        Event, EventMetadata,
        customer::CustomerCreated,
        pii::Sealed,
        product::{ProductCreated, ProductData},
    };

    fn recorded(event: &Event) -> RecordedEvent {
        RecordedEvent {
            position: 7,
            stream_id: "x-1".into(),
            version: 2,
            event_id: Uuid::new_v4(),
            event_type: event.event_type().into(),
            schema_version: event.schema_version(),
            store_id: Some(Uuid::new_v4()),
            metadata: EventMetadata {
                actor: Some("user:42".into()),
                ..EventMetadata::default()
            },
            recorded_at: Utc::now(),
            payload: event.encode().unwrap(),
        }
    }

    #[test]
    fn the_envelope_is_named_and_sealed_data_stays_sealed() {
        let event = Event::CustomerCreated(CustomerCreated {
            store_id: Uuid::new_v4(),
            email_digest: "digest".into(),
            contact: Sealed {
                key_id: Uuid::new_v4(),
                nonce: vec![1; 12],
                ciphertext: vec![2; 40],
            },
        });
        let rendered = render(&recorded(&event));
        assert_eq!(rendered["type"], "customer.created");
        assert_eq!(rendered["position"], 7);
        assert_eq!(rendered["stream_version"], 2);
        assert_eq!(rendered["actor"], "user:42");
        assert_eq!(rendered["data"]["contact"], json!({"sealed": true}));
    }

    #[test]
    fn cost_prices_never_appear() {
        let product: ProductData = serde_json::from_value(json!({
            "store_id": Uuid::nil(), "title": "Lamp", "slug": "lamp", "description": null,
            "price": {"amount": 1000, "currency": "USD"}, "compare_at_price": null,
            "cost": {"amount": 300, "currency": "USD"}, "images": [], "status": "active",
            "seo_title": null, "seo_description": null, "tags": [], "category_ids": [],
            "variants": []
        }))
        .unwrap();
        let rendered = render(&recorded(&Event::ProductCreated(ProductCreated {
            product,
        })));
        assert_eq!(rendered["data"]["product"]["title"], "Lamp");
        assert!(rendered["data"]["product"].get("cost").is_none());
    }
}
