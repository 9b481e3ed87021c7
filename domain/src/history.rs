//! Time travel: an aggregate's state after some of its stream's events, folded with the
//! same `evolve` the command side decides with.

use schemas::Event;
use serde::Serialize;

use crate::{catalog, customer, integration, merchant, order, product, store};

/// The state of the aggregate `stream_id` names after `events` (its stream's, in version
/// order), as JSON; `None` for a stream that is no aggregate's.
pub fn state_after(stream_id: &str, events: &[Event]) -> Option<serde_json::Value> {
    let (kind, _) = stream_id.split_once('-')?;
    let state = match kind {
        "merchant" => fold(events, merchant::evolve),
        "store" => fold(events, store::evolve),
        "product" => fold(events, product::evolve),
        "category" => fold(events, catalog::evolve_category),
        "collection" => fold(events, catalog::evolve_collection),
        "customer" => fold(events, customer::evolve),
        "order" => fold(events, order::evolve),
        "integration" => fold(events, integration::evolve),
        _ => return None,
    };
    Some(state)
}

fn fold<S: Default + Serialize>(events: &[Event], evolve: fn(S, &Event) -> S) -> serde_json::Value {
    let state = events.iter().fold(S::default(), evolve);
    serde_json::to_value(state).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use schemas::store::{StoreCreated, StorePaused};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn a_store_after_each_of_its_versions() {
        let created = Event::StoreCreated(StoreCreated {
            owner_id: Uuid::new_v4(),
            name: "Lamps".into(),
            slug: "lamps".into(),
            niche: None,
            description: None,
            currency: "USD".into(),
        });
        let paused = Event::StorePaused(StorePaused { reason: None });
        let stream = format!("store-{}", Uuid::new_v4());
        let at_one = state_after(&stream, std::slice::from_ref(&created)).unwrap();
        let at_two = state_after(&stream, &[created, paused]).unwrap();
        assert_ne!(at_one, at_two);
        assert!(at_two.to_string().contains("Lamps"));
        assert_eq!(state_after("unique-x", &[]), None);
    }
}
