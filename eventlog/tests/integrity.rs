#![allow(clippy::unwrap_used)]

use eventlog::{
    AppendRequest, ChainBreak, EventLog, ExpectedVersion, Fold, GroupCommitConfig, NewEvent, load,
    verify_stream,
};
use schemas::{Event, store::StoreUpdated};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use testkit::sized_event;

async fn stream_of(pool: &PgPool, stream: &str, events: usize) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    for _ in 0..events {
        log.append(AppendRequest::new(
            stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(sized_event(24))],
        ))
        .await
        .unwrap();
    }
}

/// Edits the log behind the platform's back, as an intruder with database access would.
async fn tamper(pool: &PgPool, statement: &'static str) {
    sqlx::query(statement).execute(pool).await.unwrap();
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn an_untouched_stream_verifies(pool: PgPool) {
    stream_of(&pool, "chain", 5).await;
    assert_eq!(verify_stream(&pool, "chain").await.unwrap(), Ok(()));
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn an_edited_payload_breaks_the_chain_at_that_event(pool: PgPool) {
    stream_of(&pool, "chain", 5).await;
    let forged = Event::StoreUpdated(StoreUpdated {
        name: Some("forged".into()),
        ..Default::default()
    })
    .encode()
    .unwrap();
    sqlx::query("UPDATE events SET payload = $1 WHERE stream_id = 'chain' AND version = 3")
        .bind(forged)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        verify_stream(&pool, "chain").await.unwrap(),
        Err(ChainBreak::Altered { version: 3 })
    );
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn edited_metadata_breaks_the_chain(pool: PgPool) {
    stream_of(&pool, "chain", 3).await;
    tamper(&pool, "UPDATE events SET metadata = jsonb_set(metadata, '{actor}', '\"intruder\"') WHERE stream_id = 'chain' AND version = 2").await;
    assert_eq!(
        verify_stream(&pool, "chain").await.unwrap(),
        Err(ChainBreak::Altered { version: 2 })
    );
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_removed_event_is_detected(pool: PgPool) {
    stream_of(&pool, "chain", 5).await;
    tamper(
        &pool,
        "DELETE FROM events WHERE stream_id = 'chain' AND version = 2",
    )
    .await;
    assert_eq!(
        verify_stream(&pool, "chain").await.unwrap(),
        Err(ChainBreak::MissingVersion {
            expected: 2,
            found: 3
        })
    );
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_removed_and_renumbered_event_still_breaks_the_chain(pool: PgPool) {
    stream_of(&pool, "chain", 4).await;
    tamper(
        &pool,
        "DELETE FROM events WHERE stream_id = 'chain' AND version = 2",
    )
    .await;
    sqlx::query(
        "UPDATE events SET version = version - 1 WHERE stream_id = 'chain' AND version > 2",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        verify_stream(&pool, "chain").await.unwrap(),
        Err(ChainBreak::Altered { version: 2 })
    );
}

/// Counts events and sums name lengths: enough state to tell a wrong fold.
struct NameLengths;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Totals {
    events: u32,
    name_bytes: u64,
}

impl Fold for NameLengths {
    type State = Totals;
    const STATE_VERSION: u16 = 1;

    fn apply(mut state: Totals, event: &Event) -> Totals {
        state.events += 1;
        if let Event::StoreUpdated(StoreUpdated {
            name: Some(name), ..
        }) = event
        {
            state.name_bytes += name.len() as u64;
        }
        state
    }
}

async fn snapshot_version(pool: &PgPool, stream: &str) -> Option<i32> {
    sqlx::query_scalar("SELECT version FROM snapshots WHERE stream_id = $1")
        .bind(stream)
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_snapshot_is_taken_every_n_events_and_loading_from_it_matches_a_full_fold(pool: PgPool) {
    stream_of(&pool, "snap", 7).await;
    let first = load::<NameLengths>(&pool, "snap", 5).await.unwrap();
    assert_eq!(
        (first.version, first.state.events, first.state.name_bytes),
        (7, 7, 7 * 24)
    );
    assert_eq!(snapshot_version(&pool, "snap").await, Some(7));

    stream_of(&pool, "snap", 3).await;
    let from_snapshot = load::<NameLengths>(&pool, "snap", 5).await.unwrap();
    assert_eq!(
        snapshot_version(&pool, "snap").await,
        Some(7),
        "3 events since the snapshot: no new one yet"
    );
    let full = load::<NameLengths>(&pool, "snap", i32::MAX).await;
    tamper(&pool, "DELETE FROM snapshots").await;
    let without_snapshot = load::<NameLengths>(&pool, "snap", i32::MAX).await.unwrap();
    assert_eq!(from_snapshot, without_snapshot);
    assert_eq!(full.unwrap(), without_snapshot);
    assert_eq!(from_snapshot.version, 10);
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn an_unreadable_snapshot_falls_back_to_the_events(pool: PgPool) {
    stream_of(&pool, "snap", 6).await;
    load::<NameLengths>(&pool, "snap", 5).await.unwrap();
    tamper(&pool, "UPDATE snapshots SET state = '\\xffffffff'").await;
    let loaded = load::<NameLengths>(&pool, "snap", 100).await.unwrap();
    assert_eq!((loaded.version, loaded.state.events), (6, 6));
}
