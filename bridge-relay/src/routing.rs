//! Which endpoints of a store an event goes to: the ServiceBridge map and each
//! integration's filter, a merchant webhook's own topics, and the provisioning call
//! that tells a newly connected endpoint which store connected it.

use domain::integration::{EventFilter, Target};
use schemas::RecordedEvent;
use sqlx::{PgExecutor, Row};
use uuid::Uuid;

use crate::body::resource_of;

/// An integration as routing sees it, its filter parsed once.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: Uuid,
    pub store_id: Uuid,
    pub target: String,
    pub enabled: bool,
    kind: Option<Target>,
    /// `None` when what is stored does not parse: such an endpoint receives nothing.
    filter: Option<EventFilter>,
}

impl Endpoint {
    pub fn new(
        id: Uuid,
        store_id: Uuid,
        target: String,
        event_types: &[String],
        enabled: bool,
    ) -> Self {
        Self {
            id,
            store_id,
            kind: Target::parse(&target),
            target,
            enabled,
            filter: EventFilter::parse(event_types).ok(),
        }
    }

    pub fn set_event_types(&mut self, event_types: &[String]) {
        self.filter = EventFilter::parse(event_types).ok();
    }
}

/// The integrations of `stores`, enabled or not, in the order they were connected.
pub async fn load_endpoints(
    db: impl PgExecutor<'_>,
    stores: &[Uuid],
) -> Result<Vec<Endpoint>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, store_id, target, event_types, enabled FROM bridge_endpoints \
         WHERE store_id = ANY($1) ORDER BY connected_at",
    )
    .bind(stores)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            let event_types: Vec<String> = row.try_get("event_types")?;
            Ok(Endpoint::new(
                row.try_get("id")?,
                row.try_get("store_id")?,
                row.try_get("target")?,
                &event_types,
                row.try_get("enabled")?,
            ))
        })
        .collect()
}

pub fn receives(endpoint: &Endpoint, event: &RecordedEvent) -> bool {
    if !endpoint.enabled || event.store_id != Some(endpoint.store_id) {
        return false;
    }
    let about_itself = event.event_type.starts_with("integration.")
        && resource_of(event).1 == endpoint.id.to_string();
    if about_itself {
        // Its own connection is the provisioning call; nothing else about itself (an
        // exhausted delivery to it would only fail, and be reported, again).
        return event.event_type == "integration.connected";
    }
    let Some(filter) = &endpoint.filter else {
        return false;
    };
    match endpoint.kind {
        Some(Target::Webhook) => filter.matches(&event.event_type),
        Some(Target::Service(service)) => {
            service.routes().contains(&event.event_type.as_str())
                && (filter.is_empty() || filter.matches(&event.event_type))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use domain::integration::Service;
    use schemas::EventMetadata;

    use super::*;

    fn event(event_type: &str, stream_id: &str, store_id: Uuid) -> RecordedEvent {
        RecordedEvent {
            position: 1,
            stream_id: stream_id.to_owned(),
            version: 1,
            event_id: Uuid::new_v4(),
            event_type: event_type.to_owned(),
            schema_version: 1,
            store_id: Some(store_id),
            metadata: EventMetadata::default(),
            recorded_at: Utc::now(),
            payload: Vec::new(),
        }
    }

    fn endpoint(target: &str, event_types: &[&str], store_id: Uuid) -> Endpoint {
        let event_types: Vec<String> = event_types.iter().map(|t| (*t).to_owned()).collect();
        Endpoint::new(
            Uuid::new_v4(),
            store_id,
            target.to_owned(),
            &event_types,
            true,
        )
    }

    #[test]
    fn product_created_goes_to_exactly_the_six_mapped_services() {
        let store = Uuid::new_v4();
        let created = event("product.created", "product-1", store);
        let receiving: Vec<&str> = Service::ALL
            .iter()
            .filter(|s| receives(&endpoint(s.as_str(), &[], store), &created))
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            receiving,
            [
                "trendscout",
                "contentforge",
                "rankpilot",
                "postpilot",
                "adscale",
                "shopchat"
            ]
        );
    }

    #[test]
    fn filters_narrow_services_and_choose_for_webhooks() {
        let store = Uuid::new_v4();
        let updated = event("product.updated", "product-1", store);
        assert!(receives(&endpoint("rankpilot", &[], store), &updated));
        assert!(!receives(
            &endpoint("rankpilot", &["product.created"], store),
            &updated
        ));
        assert!(receives(
            &endpoint("webhook", &["product.*"], store),
            &updated
        ));
        assert!(!receives(
            &endpoint("webhook", &["order.*"], store),
            &updated
        ));
    }

    #[test]
    fn another_stores_events_and_disabled_endpoints_receive_nothing() {
        let (mine, theirs) = (Uuid::new_v4(), Uuid::new_v4());
        let created = event("product.created", "product-1", theirs);
        assert!(!receives(&endpoint("rankpilot", &[], mine), &created));
        let mut disabled = endpoint("rankpilot", &[], theirs);
        disabled.enabled = false;
        assert!(!receives(&disabled, &created));
    }

    #[test]
    fn an_endpoint_hears_its_own_connection_but_not_its_own_exhaustion() {
        let store = Uuid::new_v4();
        let hook = endpoint("webhook", &["integration.*"], store);
        let own = |event_type| event(event_type, &format!("integration-{}", hook.id), store);
        assert!(receives(&hook, &own("integration.connected")));
        assert!(!receives(&hook, &own("integration.delivery_exhausted")));
        let other = event("integration.delivery_exhausted", "integration-x", store);
        assert!(receives(&hook, &other));
        let service = endpoint("adscale", &[], store);
        let connected = event(
            "integration.connected",
            &format!("integration-{}", service.id),
            store,
        );
        assert!(receives(&service, &connected));
    }
}
