//! The relay's consumer of the stream. Each batch, in one transaction with the relay's
//! checkpoint: integration events update `bridge_endpoints`, and every event is routed
//! to the endpoints of its store as they stood at that event's position, becoming one
//! queued delivery per endpoint. The JetStream messages are acked only after that
//! commit, so no accepted event is ever without its deliveries.

use std::{collections::HashMap, time::Duration};

use pii::Vault;
use projections::{Projection, Target};
use schemas::{Event, RecordedEvent};
use sqlx::PgConnection;
use tracing::warn;
use uuid::Uuid;

use crate::{
    NAME,
    body::{body_of, resource_of},
    routing::{Endpoint, load_endpoints, receives},
};

/// Channel the queue is announced on when deliveries become due.
pub const READY_CHANNEL: &str = "dropship_bridge_ready";

pub struct BridgeIngest {
    pub first_wait: Duration,
    pub max_attempts: i32,
    pub vault: Vault,
}

impl Projection for BridgeIngest {
    const NAME: &'static str = NAME;
    /// Nothing to rebuild: replaying the log would deliver every event again.
    const TABLES: &'static [&'static str] = &[];

    async fn apply(
        &self,
        conn: &mut PgConnection,
        _target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        let mut stores: Vec<Uuid> = events.iter().filter_map(|e| e.store_id).collect();
        stores.sort_unstable();
        stores.dedup();
        let mut endpoints: HashMap<Uuid, Vec<Endpoint>> = HashMap::new();
        for endpoint in load_endpoints(&mut *conn, &stores).await? {
            endpoints
                .entry(endpoint.store_id)
                .or_default()
                .push(endpoint);
        }
        let mut queued = Queued::default();
        for event in events {
            if event.event_type.starts_with("integration.") {
                apply_integration(&mut *conn, event, &mut endpoints).await?;
            }
            let Some(store_id) = event.store_id else {
                continue;
            };
            let targets: Vec<&Endpoint> = endpoints
                .get(&store_id)
                .into_iter()
                .flatten()
                .filter(|endpoint| receives(endpoint, event))
                .collect();
            if targets.is_empty() {
                continue;
            }
            match body_of(event, &self.vault).await {
                Ok(body) => queued.push(event, &targets, &body),
                Err(error) => match error.into_transient() {
                    Ok(retry) => return Err(retry),
                    Err(error) => {
                        warn!(event_id = %event.event_id, %error, "event not delivered: its payload does not open");
                    }
                },
            }
        }
        queued.insert(conn, self).await
    }
}

/// Keeps `bridge_endpoints` (and the batch's view of it) in step with the integration.
async fn apply_integration(
    conn: &mut PgConnection,
    event: &RecordedEvent,
    endpoints: &mut HashMap<Uuid, Vec<Endpoint>>,
) -> Result<(), sqlx::Error> {
    let Ok(id) = resource_of(event).1.parse::<Uuid>() else {
        return Ok(());
    };
    let decoded = match event.decode() {
        Ok(decoded) => decoded,
        Err(error) => {
            warn!(event_id = %event.event_id, %error, "integration event does not decode");
            return Ok(());
        }
    };
    let at = event.recorded_at;
    let mine = |endpoints| endpoint_mut(endpoints, event.store_id, id);
    match decoded {
        Event::IntegrationConnected(connected) => {
            let data = connected.integration;
            sqlx::query(
                "INSERT INTO bridge_endpoints (id, store_id, target, url, event_types, description, \
                 enabled, secret_id, version, connected_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, true, $7, $8, $9, $9) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(data.store_id)
            .bind(&data.target)
            .bind(&data.endpoint_url)
            .bind(&data.event_types)
            .bind(&data.description)
            .bind(data.secret_id)
            .bind(event.version)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            endpoints
                .entry(data.store_id)
                .or_default()
                .push(Endpoint::new(
                    id,
                    data.store_id,
                    data.target,
                    &data.event_types,
                    true,
                ));
        }
        Event::IntegrationUpdated(updated) => {
            let data = updated.integration;
            sqlx::query(
                "UPDATE bridge_endpoints SET url = $2, event_types = $3, description = $4, \
                 version = $5, updated_at = $6 WHERE id = $1",
            )
            .bind(id)
            .bind(&data.endpoint_url)
            .bind(&data.event_types)
            .bind(&data.description)
            .bind(event.version)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if let Some(endpoint) = mine(endpoints) {
                endpoint.set_event_types(&data.event_types);
            }
        }
        Event::IntegrationEnabled(_) => {
            set_enabled(conn, event, id, None).await?;
            if let Some(endpoint) = mine(endpoints) {
                endpoint.enabled = true;
            }
        }
        Event::IntegrationDisabled(disabled) => {
            set_enabled(conn, event, id, Some(disabled.reason)).await?;
            if let Some(endpoint) = mine(endpoints) {
                endpoint.enabled = false;
            }
        }
        Event::IntegrationSecretRotated(rotated) => {
            sqlx::query(
                "UPDATE bridge_endpoints SET secret_id = $2, previous_secret_id = $3, \
                 previous_secret_until = $4, version = $5, updated_at = $6 WHERE id = $1",
            )
            .bind(id)
            .bind(rotated.secret_id)
            .bind(rotated.previous_secret_id)
            .bind(rotated.previous_valid_until)
            .bind(event.version)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        Event::IntegrationDisconnected(_) => {
            sqlx::query(
                "WITH gone AS (DELETE FROM bridge_endpoints WHERE id = $1) \
                 UPDATE bridge_messages SET state = 'cancelled', finished_at = now() \
                 WHERE endpoint_id = $1 AND state = 'pending'",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
            if let Some(list) = event.store_id.and_then(|s| endpoints.get_mut(&s)) {
                list.retain(|e| e.id != id);
            }
        }
        Event::IntegrationDeliveryExhausted(_) => {
            // No change to deliver by, but the stream moved: reads show its version.
            sqlx::query("UPDATE bridge_endpoints SET version = $2 WHERE id = $1")
                .bind(id)
                .bind(event.version)
                .execute(&mut *conn)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

fn endpoint_mut(
    endpoints: &mut HashMap<Uuid, Vec<Endpoint>>,
    store_id: Option<Uuid>,
    id: Uuid,
) -> Option<&mut Endpoint> {
    endpoints
        .get_mut(&store_id?)?
        .iter_mut()
        .find(|e| e.id == id)
}

/// Enabled when `disabled_reason` is `None`.
async fn set_enabled(
    conn: &mut PgConnection,
    event: &RecordedEvent,
    id: Uuid,
    disabled_reason: Option<String>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE bridge_endpoints SET enabled = $2, disabled_reason = $3, version = $4, \
         updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(disabled_reason.is_none())
    .bind(disabled_reason)
    .bind(event.version)
    .bind(event.recorded_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The batch's deliveries, column by column for one `unnest` insert.
#[derive(Default)]
struct Queued {
    event_ids: Vec<Uuid>,
    event_types: Vec<String>,
    store_ids: Vec<Uuid>,
    resource_types: Vec<String>,
    resource_ids: Vec<String>,
    event_ats: Vec<chrono::DateTime<chrono::Utc>>,
    endpoint_ids: Vec<Uuid>,
    targets: Vec<String>,
    /// One per event, however many endpoints it goes to.
    body_event_ids: Vec<Uuid>,
    bodies: Vec<String>,
}

impl Queued {
    fn push(&mut self, event: &RecordedEvent, targets: &[&Endpoint], body: &str) {
        let (resource_type, resource_id) = resource_of(event);
        for endpoint in targets {
            self.event_ids.push(event.event_id);
            self.event_types.push(event.event_type.clone());
            self.store_ids.push(endpoint.store_id);
            self.resource_types.push(resource_type.clone());
            self.resource_ids.push(resource_id.clone());
            self.event_ats.push(event.recorded_at);
            self.endpoint_ids.push(endpoint.id);
            self.targets.push(endpoint.target.clone());
        }
        self.body_event_ids.push(event.event_id);
        self.bodies.push(body.to_owned());
    }

    async fn insert(
        self,
        conn: &mut PgConnection,
        ingest: &BridgeIngest,
    ) -> Result<(), sqlx::Error> {
        if self.event_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "WITH bodies AS ( \
               INSERT INTO bridge_bodies (event_id, body) \
               SELECT * FROM unnest($9::uuid[], $10::text[]) ON CONFLICT DO NOTHING), \
             queued AS ( \
               INSERT INTO bridge_messages (event_id, event_type, store_id, resource_type, \
                 resource_id, event_at, endpoint_id, target, trigger, max_attempts, \
                 next_attempt_at) \
               SELECT q.event_id, q.event_type, q.store_id, q.resource_type, q.resource_id, \
                 q.event_at, q.endpoint_id, q.target, 'scheduled', $11, \
                 now() + make_interval(secs => $12) \
               FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], \
                 $6::timestamptz[], $7::uuid[], $8::text[]) \
                 AS q(event_id, event_type, store_id, resource_type, resource_id, event_at, \
                 endpoint_id, target) \
               ON CONFLICT (event_id, endpoint_id) WHERE trigger = 'scheduled' DO NOTHING \
               RETURNING 1) \
             SELECT pg_notify($13, '') FROM (SELECT 1 FROM queued LIMIT 1) AS any_queued",
        )
        .bind(&self.event_ids)
        .bind(&self.event_types)
        .bind(&self.store_ids)
        .bind(&self.resource_types)
        .bind(&self.resource_ids)
        .bind(&self.event_ats)
        .bind(&self.endpoint_ids)
        .bind(&self.targets)
        .bind(&self.body_event_ids)
        .bind(&self.bodies)
        .bind(ingest.max_attempts)
        .bind(ingest.first_wait.as_secs_f64())
        .bind(READY_CHANNEL)
        .execute(conn)
        .await?;
        Ok(())
    }
}
