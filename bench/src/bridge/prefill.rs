//! The relay's tables as months of other merchants' traffic leave them: delivered
//! messages with their attempt rows and bodies, kept until a retention job removes them.
//! Eight deliveries per event, as `product.created` makes for a store with eight
//! endpoints; event ids are time-ordered as the log's are.

use std::time::Instant;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// Events written by one statement (eight messages and eight attempts each).
const EVENTS_PER_STATEMENT: u64 = 50_000;
const ENDPOINTS_PER_EVENT: u64 = 8;

/// About the size of a `product.created` body.
fn body() -> String {
    let padding = "x".repeat(480);
    json!({"type": "product.created", "data": {"description": padding}}).to_string()
}

/// Writes `attempts` delivered attempts (rounded down to whole events) for a store of
/// their own.
pub async fn prefill(pool: &PgPool, attempts: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let store_id = Uuid::now_v7();
    let endpoint_ids: Vec<Uuid> = (0..ENDPOINTS_PER_EVENT).map(|_| Uuid::now_v7()).collect();
    let targets: Vec<String> = (0..ENDPOINTS_PER_EVENT)
        .map(|n| format!("webhook-{n}"))
        .collect();
    let body = body();
    let mut events_left = attempts / ENDPOINTS_PER_EVENT;
    while events_left > 0 {
        let events = events_left.min(EVENTS_PER_STATEMENT);
        let event_ids: Vec<Uuid> = (0..events).map(|_| Uuid::now_v7()).collect();
        sqlx::query(
            "WITH events AS (SELECT * FROM unnest($1::uuid[]) AS e(event_id)), \
             bodies AS (INSERT INTO bridge_bodies (event_id, body) SELECT event_id, $2 FROM events), \
             messages AS ( \
               INSERT INTO bridge_messages (event_id, event_type, store_id, resource_type, \
                 resource_id, event_at, endpoint_id, target, trigger, state, attempts, \
                 max_attempts, next_attempt_at, finished_at) \
               SELECT e.event_id, 'product.created', $3, 'product', e.event_id::text, now(), \
                 p.endpoint_id, p.target, 'scheduled', 'succeeded', 1, 8, now(), now() \
               FROM events e CROSS JOIN unnest($4::uuid[], $5::text[]) AS p(endpoint_id, target) \
               RETURNING *) \
             INSERT INTO bridge_deliveries (message_id, event_id, event_type, store_id, \
               resource_type, resource_id, endpoint_id, service, attempt, trigger, \
               status_code, latency_ms, response_excerpt, success, attempted_at) \
             SELECT id, event_id, event_type, store_id, resource_type, resource_id, \
               endpoint_id, target, 1, trigger, 200, 3, 'ok', true, finished_at \
             FROM messages",
        )
        .bind(&event_ids)
        .bind(&body)
        .bind(store_id)
        .bind(&endpoint_ids)
        .bind(&targets)
        .execute(pool)
        .await?;
        events_left -= events;
    }
    eprintln!(
        "{}",
        json!({
            "prefilled_attempts": attempts / ENDPOINTS_PER_EVENT * ENDPOINTS_PER_EVENT,
            "seconds": started.elapsed().as_secs(),
        })
    );
    Ok(())
}
