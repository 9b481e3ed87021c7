//! An event as integrators and auditors read it: the envelope's fields by name and the
//! payload as JSON. Sealed personal data shows only that it is sealed (opening it is the
//! reader's business, for its own store's customers), and cost prices never appear.

use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::RecordedEvent;

/// The event as one JSON object; a payload this build cannot decode is `null`.
pub fn render(event: &RecordedEvent) -> Value {
    let data = event
        .decode()
        .map_or(Value::Null, |decoded| public_data(decoded.to_json()));
    json!({
        "id": event.event_id,
        "type": event.event_type,
        "schema_version": event.schema_version,
        "store_id": event.store_id,
        "stream_id": event.stream_id,
        "stream_version": event.version,
        "position": event.position,
        "recorded_at": event.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "actor": event.metadata.actor,
        "correlation_id": event.metadata.correlation_id,
        "causation_id": event.metadata.causation_id,
        "request_id": event.metadata.request_id,
        "data": data,
    })
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
