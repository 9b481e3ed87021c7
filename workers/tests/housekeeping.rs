//! The housekeeping jobs, run by the real scheduler: what is past its retention goes,
//! what is not stays.

#![allow(clippy::unwrap_used)]

use std::{path::PathBuf, sync::Arc, time::Duration};

use sqlx::PgPool;
use testkit::eventually;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use workers::{
    housekeeping::{RemoveStoreMedia, Retention, housekeeping_jobs},
    scheduler::{SchedulerConfig, run_scheduler},
    status::job_statuses,
};

const DAY: Duration = Duration::from_secs(24 * 3600);

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn old_and_new_idempotency_keys(pool: &PgPool) {
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_fingerprint, response, created_at) \
         SELECT 'merchant:1', 'old-' || n, '\\x00'::bytea, '{}'::jsonb, now() - interval '25 hours' \
         FROM generate_series(1, 2500) n \
         UNION ALL SELECT 'merchant:1', 'new-' || n, '\\x00', '{}', now() - interval '23 hours' \
         FROM generate_series(1, 10) n",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Two events, each to two endpoints: event 1 delivered long ago to both; event 2
/// delivered long ago to one endpoint and exhausted at the other; plus a recent delivery.
async fn deliveries(pool: &PgPool) -> (Uuid, Uuid) {
    let (old_event, mixed_event) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query(
        "WITH messages AS ( \
            INSERT INTO bridge_messages (event_id, event_type, store_id, resource_type, resource_id, \
                event_at, endpoint_id, target, trigger, state, attempts, max_attempts, \
                next_attempt_at, finished_at) \
            SELECT m.event_id, 'product.created', gen_random_uuid(), 'product', 'p', now(), \
                gen_random_uuid(), 'rankpilot', 'scheduled', m.state, 1, 8, now(), m.finished_at \
            FROM (VALUES ($1::uuid, 'succeeded', now() - interval '31 days'), \
                         ($1, 'succeeded', now() - interval '40 days'), \
                         ($2, 'succeeded', now() - interval '31 days'), \
                         ($2, 'exhausted', now() - interval '31 days'), \
                         (gen_random_uuid(), 'succeeded', now() - interval '29 days')) \
                 AS m(event_id, state, finished_at) \
            RETURNING id, event_id, store_id, endpoint_id \
         ), bodies AS ( \
            INSERT INTO bridge_bodies (event_id, body) SELECT DISTINCT event_id, '{}' FROM messages \
         ) \
         INSERT INTO bridge_deliveries (message_id, event_id, event_type, store_id, resource_type, \
            resource_id, endpoint_id, service, attempt, trigger, status_code, latency_ms, success, \
            attempted_at) \
         SELECT id, event_id, 'product.created', store_id, 'product', 'p', endpoint_id, 'rankpilot', \
            1, 'scheduled', 200, 5, true, now() FROM messages",
    )
    .bind(old_event)
    .bind(mixed_event)
    .execute(pool)
    .await
    .unwrap();
    (old_event, mixed_event)
}

async fn sessions(pool: &PgPool) {
    sqlx::query(
        "INSERT INTO auth_sessions (id, merchant_id, current_jti, rotated_at) VALUES \
         (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), now() - interval '8 days'), \
         (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), now() - interval '6 days')",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// A media directory with two stores' files, one of them deleted.
async fn media(pool: &PgPool) -> (PathBuf, Uuid, Uuid) {
    let root = std::env::temp_dir().join(format!("dropship-media-{}", Uuid::new_v4().simple()));
    let (deleted, kept) = (Uuid::new_v4(), Uuid::new_v4());
    for store in [deleted, kept] {
        let directory = root.join(store.to_string());
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::write(directory.join("a.png"), b"png").unwrap();
    }
    sqlx::query(
        "INSERT INTO deleted_store_media (store_id, deleted_at) VALUES ($1, now()), ($2, now())",
    )
    .bind(deleted)
    // Deleted, but it never had media: nothing to remove is done too.
    .bind(Uuid::new_v4())
    .execute(pool)
    .await
    .unwrap();
    (root, deleted, kept)
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn housekeeping_removes_what_is_past_its_retention_and_nothing_else(pool: PgPool) {
    old_and_new_idempotency_keys(&pool).await;
    let (old_event, mixed_event) = deliveries(&pool).await;
    sessions(&pool).await;
    let (root, deleted_store, kept_store) = media(&pool).await;
    let media_root = root.clone();
    let remove: RemoveStoreMedia = Arc::new(move |store: Uuid| {
        let directory = media_root.join(store.to_string());
        Box::pin(async move {
            match tokio::fs::remove_dir_all(directory).await {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
                done => done,
            }
        })
    });
    let retention = Retention {
        idempotency_ttl: DAY,
        bridge_retention: DAY * 30,
        session_ttl: DAY * 7,
    };
    let mut jobs = housekeeping_jobs(pool.clone(), retention, remove);
    let names: Vec<&str> = jobs.iter().map(|job| job.name).collect();
    assert_eq!(
        names,
        [
            "expire_idempotency_keys",
            "remove_delivered_webhooks",
            "remove_expired_sessions",
            "remove_deleted_store_media"
        ]
    );
    // A failure shows at once, not after retries. Every job is due when new, the hourly
    // cron one too.
    jobs.iter_mut().for_each(|job| job.max_attempts = 1);
    let shutdown = CancellationToken::new();
    let config = SchedulerConfig {
        poll: Duration::from_millis(50),
        ..SchedulerConfig::default()
    };
    let scheduler = tokio::spawn(run_scheduler(pool.clone(), jobs, config, shutdown.clone()));
    assert!(
        eventually(Duration::from_secs(30), || async {
            let statuses = job_statuses(&pool).await.unwrap();
            statuses.len() == 4 && statuses.iter().all(|s| s.last_outcome.is_some())
        })
        .await
    );
    shutdown.cancel();
    scheduler.await.unwrap();
    let statuses = job_statuses(&pool).await.unwrap();
    for status in &statuses {
        assert_eq!(
            status.last_outcome.as_deref(),
            Some("succeeded"),
            "{status:?}"
        );
    }
    let detail = |name: &str| {
        statuses
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.last_detail.clone())
            .unwrap()
    };
    assert_eq!(
        detail("expire_idempotency_keys"),
        "2500 idempotency keys expired"
    );
    assert_eq!(
        detail("remove_delivered_webhooks"),
        "3 delivered webhooks and 3 attempts removed"
    );

    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM idempotency_keys WHERE key LIKE 'new-%'"
        )
        .await,
        10
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM idempotency_keys").await,
        10
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM bridge_messages WHERE state = 'succeeded'"
        )
        .await,
        1,
        "the recent delivery stays"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM bridge_messages WHERE state = 'exhausted'"
        )
        .await,
        1,
        "failed deliveries stay, to be redelivered"
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM bridge_deliveries").await,
        2
    );
    let bodies: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM bridge_bodies")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(!bodies.contains(&old_event), "no message needs it any more");
    assert!(
        bodies.contains(&mixed_event),
        "the exhausted delivery still needs it"
    );
    assert_eq!(bodies.len(), 2);
    assert_eq!(count(&pool, "SELECT count(*) FROM auth_sessions").await, 1);
    assert!(!root.join(deleted_store.to_string()).exists());
    assert!(root.join(kept_store.to_string()).join("a.png").exists());
    assert_eq!(
        count(&pool, "SELECT count(*) FROM deleted_store_media").await,
        0
    );
    std::fs::remove_dir_all(root).unwrap();
}
