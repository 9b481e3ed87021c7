//! The `stores` read model: a store's whole life projected, its changes announced, and
//! a rebuild that reproduces it.

#![allow(clippy::unwrap_used)]

use std::{collections::BTreeSet, time::Duration};

use eventlog::{
    AppendRequest, EventLog, ExpectedVersion, GroupCommitConfig, NewEvent, Publisher,
    PublisherConfig, jetstream,
};
use projections::{
    ProjectorConfig, lag, rebuild, run_projector,
    stores::{STORE_CHANGED_CHANNEL, Stores},
};
use schemas::{
    Event,
    store::{StoreActivated, StoreCreated, StoreDeleted, StorePaused, StoreUpdated},
};
use sqlx::{PgPool, postgres::PgListener};
use testkit::{delete_stream, eventually, isolated_names};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

fn created(owner: Uuid, name: &str, slug: &str) -> Event {
    Event::StoreCreated(StoreCreated {
        owner_id: owner,
        name: name.into(),
        slug: slug.into(),
        niche: Some("socks".into()),
        description: Some("warm".into()),
        currency: "EUR".into(),
    })
}

async fn append(log: &EventLog, store: Uuid, events: Vec<Event>) {
    let request = AppendRequest::new(
        format!("store-{store}"),
        ExpectedVersion::Any,
        events.into_iter().map(NewEvent::new).collect(),
    )
    .in_store(store);
    log.append(request).await.unwrap();
}

type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i32,
);

async fn row(pool: &PgPool, table: &str, store: Uuid) -> Row {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT name, slug, niche, description, currency, status, version FROM {table} WHERE id = $1"
    )))
    .bind(store)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_stores_life_is_projected_announced_and_rebuilt_alike(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let owner = Uuid::new_v4();
    let (renamed, paused) = (Uuid::new_v4(), Uuid::new_v4());
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen(STORE_CHANGED_CHANNEL).await.unwrap();

    append(
        &log,
        renamed,
        vec![
            created(owner, "Sunny Socks", "sunny-socks"),
            Event::StoreUpdated(StoreUpdated {
                name: Some("Moon Socks".into()),
                slug: Some("moon-socks".into()),
                niche: Some(String::new()),
                description: Some("warmer".into()),
            }),
            Event::StorePaused(StorePaused { reason: None }),
            Event::StoreActivated(StoreActivated {}),
        ],
    )
    .await;
    append(
        &log,
        paused,
        vec![
            created(owner, "Star", "star"),
            Event::StorePaused(StorePaused { reason: None }),
        ],
    )
    .await;
    let gone = Uuid::new_v4();
    append(
        &log,
        gone,
        vec![
            created(owner, "Gone", "gone"),
            Event::StoreDeleted(StoreDeleted {}),
        ],
    )
    .await;

    let (client, connections) = jetstream::connect(&testkit::nats_url()).await.unwrap();
    let names = isolated_names();
    let shutdown = CancellationToken::new();
    let publisher = Publisher::new(
        pool.clone(),
        client.clone(),
        connections,
        PublisherConfig::new(names.clone()),
    );
    let publishing = tokio::spawn(publisher.run(shutdown.clone()));
    let projecting = tokio::spawn(run_projector(
        pool.clone(),
        client.clone(),
        ProjectorConfig::new(names.clone()),
        Stores,
        shutdown.clone(),
    ));
    assert!(
        eventually(PATIENCE, || async {
            lag(&pool, "stores").await.unwrap() == 0
        })
        .await
    );

    let expected_renamed: Row = (
        "Moon Socks".into(),
        "moon-socks".into(),
        None,
        Some("warmer".into()),
        "EUR".into(),
        "active".into(),
        4,
    );
    assert_eq!(row(&pool, "stores", renamed).await, expected_renamed);
    assert_eq!(row(&pool, "stores", paused).await.5, "paused");
    assert_eq!(row(&pool, "stores", gone).await.5, "deleted");

    let announced = drain(&mut listener).await;
    for slug in ["sunny-socks", "moon-socks", "star", "gone"] {
        assert!(
            announced.contains(slug),
            "{slug} not announced: {announced:?}"
        );
    }

    sqlx::query("UPDATE stores SET name = 'damaged', status = 'deleted'")
        .execute(&pool)
        .await
        .unwrap();
    rebuild(&pool, &Stores).await.unwrap();
    assert_eq!(row(&pool, "stores", renamed).await, expected_renamed);
    assert_eq!(row(&pool, "stores", paused).await.5, "paused");

    shutdown.cancel();
    let _ = tokio::join!(publishing, projecting);
    delete_stream(&client, &names).await;
}

/// Every slug announced so far; stops when nothing more arrives for half a second.
async fn drain(listener: &mut PgListener) -> BTreeSet<String> {
    let mut announced = BTreeSet::new();
    while let Ok(Ok(Some(notification))) =
        tokio::time::timeout(Duration::from_millis(500), listener.try_recv()).await
    {
        announced.insert(notification.payload().to_owned());
    }
    announced
}
