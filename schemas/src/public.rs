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
#[derive(Debug, Clone, Serialize, ToSchema, schemars::JsonSchema)]
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
    /// Who caused it: `merchant:<id>` (a session), `merchant:<id>/api-key:<key id>`,
    /// `customer:<id>` or `customer:<id>/session:<id>`, `stripe` (its webhook),
    /// `process:<name>` (a worker reacting to `causation_id`) or `bridge-relay`.
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

/// The JSON Schema (draft 2020-12) of one event type at one schema version: the envelope
/// with that type's payload under `data`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventSchema {
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub schema_version: u16,
    #[schema(value_type = Object)]
    pub schema: Value,
}

/// Every event type the platform writes today, with its schema, in catalogue order.
pub fn event_schemas() -> Vec<EventSchema> {
    crate::Event::payload_schemas()
        .into_iter()
        .map(|(event_type, schema_version, payload)| EventSchema {
            event_type,
            schema_version,
            schema: event_schema(event_type, schema_version, payload.to_value()),
        })
        .collect()
}

fn event_schema(event_type: &str, schema_version: u16, mut payload: Value) -> Value {
    let mut envelope = schemars::schema_for!(PublicEvent).to_value();
    let mut definitions = envelope
        .as_object_mut()
        .and_then(|root| root.remove("$defs"))
        .unwrap_or_else(|| json!({}));
    if let Some(payload) = payload.as_object_mut() {
        payload.remove("$schema");
        if let (Some(Value::Object(theirs)), Some(ours)) =
            (payload.remove("$defs"), definitions.as_object_mut())
        {
            ours.extend(theirs);
        }
    }
    envelope["$id"] = json!(format!(
        "https://dropship.dev/schemas/events/{event_type}.v{schema_version}.json"
    ));
    envelope["title"] = json!(event_type);
    envelope["properties"]["type"] = json!({"const": event_type});
    envelope["properties"]["schema_version"] = json!({"const": schema_version});
    envelope["properties"]["data"] = payload;
    if definitions.as_object().is_some_and(|defs| !defs.is_empty()) {
        envelope["$defs"] = definitions;
    }
    envelope
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
