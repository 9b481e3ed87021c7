//! The store-deletion process manager against the real log: a deleted store's
//! integrations are disconnected once, however often the events are applied again.

#![allow(clippy::unwrap_used)]

use domain::integration::{
    Connection, EndpointUrl, EventFilter, IntegrationCommand, SERVICE_SCOPE_PREFIX, Service,
    Target, decide,
};
use eventlog::{
    AppendRequest, EventLog, ExpectedVersion, GroupCommitConfig, NewEvent, UniqueKey, read_after,
    read_stream,
};
use projections::{Projection, Target as Tables};
use schemas::{
    Event, RecordedEvent,
    integration::{DisconnectReason, IntegrationDisconnected},
    store::StoreDeleted,
};
use sqlx::PgPool;
use uuid::Uuid;
use workers::store_deletion::StoreDeletion;

async fn connect(log: &EventLog, store_id: Uuid, target: Target) -> String {
    let id = Uuid::new_v4();
    let connection = Connection {
        store_id,
        target,
        endpoint_url: (target == Target::Webhook)
            .then(|| EndpointUrl::parse("https://hooks.example.com/in").unwrap()),
        event_types: EventFilter::parse(&if target == Target::Webhook {
            vec!["*".to_owned()]
        } else {
            Vec::new()
        })
        .unwrap(),
        description: None,
        secret_id: Uuid::new_v4(),
    };
    let events = decide(
        &Default::default(),
        &IntegrationCommand::Connect(connection),
    )
    .unwrap();
    let stream = format!("integration-{id}");
    let mut request = AppendRequest::new(
        &stream,
        ExpectedVersion::NoStream,
        events.into_iter().map(NewEvent::new).collect(),
    )
    .in_store(store_id);
    if let Target::Service(service) = target {
        request = request.reserving(UniqueKey::new(
            format!("{SERVICE_SCOPE_PREFIX}{store_id}"),
            service.as_str(),
        ));
    }
    log.append(request).await.unwrap();
    stream
}

async fn delete_store(log: &EventLog, store_id: Uuid) {
    let request = AppendRequest::new(
        format!("store-{store_id}"),
        ExpectedVersion::Any,
        vec![NewEvent::new(Event::StoreDeleted(StoreDeleted::default()))],
    )
    .in_store(store_id);
    log.append(request).await.unwrap();
}

/// Applies `events` in a transaction of its own, as one lane batch would.
async fn apply(pool: &PgPool, manager: &StoreDeletion, events: &[RecordedEvent]) {
    let mut tx = pool.begin().await.unwrap();
    manager.apply(&mut tx, Tables::Live, events).await.unwrap();
    tx.commit().await.unwrap();
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_deleted_store_disconnects_its_integrations_once_however_often_replayed(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let (store, other_store) = (Uuid::new_v4(), Uuid::new_v4());
    let service = connect(&log, store, Target::Service(Service::RankPilot)).await;
    let webhook = connect(&log, store, Target::Webhook).await;
    let untouched = connect(&log, other_store, Target::Service(Service::RankPilot)).await;
    delete_store(&log, store).await;
    let history = read_after(&pool, 0, 1000).await.unwrap();
    let cause = history
        .iter()
        .find(|event| event.event_type == "store.deleted")
        .unwrap()
        .clone();

    let manager = StoreDeletion::new(log.clone());
    apply(&pool, &manager, &history).await;
    // A redelivery, and a batch whose transaction rolled back after its commands went
    // through: the state is read again and the commands are issued again.
    apply(&pool, &manager, &history).await;
    let mut rolled_back = pool.begin().await.unwrap();
    sqlx::query("DELETE FROM store_integrations")
        .execute(&mut *rolled_back)
        .await
        .unwrap();
    rolled_back.rollback().await.unwrap();
    let mut replay = pool.begin().await.unwrap();
    manager
        .apply(&mut replay, Tables::Live, &history)
        .await
        .unwrap();
    replay.rollback().await.unwrap();
    apply(&pool, &manager, &history).await;

    for stream in [&service, &webhook] {
        let events = read_stream(&pool, stream, 1).await.unwrap();
        let disconnections: Vec<_> = events
            .iter()
            .filter(|event| event.event_type == "integration.disconnected")
            .collect();
        assert_eq!(disconnections.len(), 1, "{stream}: {events:?}");
        let disconnected = disconnections[0];
        assert_eq!(
            disconnected.decode().unwrap(),
            Event::IntegrationDisconnected(IntegrationDisconnected {
                reason: DisconnectReason::StoreDeleted
            })
        );
        assert_eq!(disconnected.metadata.causation_id, Some(cause.event_id));
        assert_eq!(disconnected.metadata.correlation_id, Some(cause.event_id));
        assert_eq!(
            disconnected.metadata.actor.as_deref(),
            Some("process:store_deletion")
        );
        assert_eq!(disconnected.store_id, Some(store));
    }
    let other = read_stream(&pool, &untouched, 1).await.unwrap();
    assert_eq!(
        other.len(),
        1,
        "another store's integration stays connected"
    );

    let reserved: Vec<String> = sqlx::query_scalar("SELECT scope FROM unique_keys ORDER BY scope")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        reserved,
        [format!("{SERVICE_SCOPE_PREFIX}{other_store}")],
        "the deleted store's service reservation is released"
    );
    let media_queued: Vec<Uuid> = sqlx::query_scalar("SELECT store_id FROM deleted_store_media")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(media_queued, [store]);
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn an_integration_the_merchant_disconnected_first_is_left_alone(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let store = Uuid::new_v4();
    let stream = connect(&log, store, Target::Webhook).await;
    log.append(
        AppendRequest::new(
            &stream,
            ExpectedVersion::Exact(1),
            vec![NewEvent::new(Event::IntegrationDisconnected(
                IntegrationDisconnected::default(),
            ))],
        )
        .in_store(store),
    )
    .await
    .unwrap();
    let manager = StoreDeletion::new(log.clone());
    // The manager saw the connection, then the store is deleted before it sees the
    // merchant's disconnection (another batch, say).
    let connected = read_after(&pool, 0, 1).await.unwrap();
    apply(&pool, &manager, &connected).await;
    delete_store(&log, store).await;
    let deleted = read_after(&pool, 2, 10).await.unwrap();
    apply(&pool, &manager, &deleted).await;

    let events = read_stream(&pool, &stream, 1).await.unwrap();
    assert_eq!(events.len(), 2, "connected, disconnected by the merchant");
}
