//! The tailer reads in commit order and never skips an event whose transaction was
//! still open when later ones were appended (the bug readers of Postgres event stores
//! hit when sequence order is not commit order).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use eventlog::{
    AppendRequest, BEGIN_APPEND, EventLog, ExpectedVersion, GroupCommitConfig, KnownHeads,
    NewEvent, Reads, read_after, write_batch,
};
use futures::future::join_all;
use sqlx::PgPool;
use testkit::{eventually, sized_event};

fn positions(events: &[schemas::RecordedEvent]) -> Vec<i64> {
    events.iter().map(|e| e.position).collect()
}

async fn appends_waiting_for_the_lock(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*)::bigint FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn the_tailer_never_moves_past_an_append_whose_transaction_is_open(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    for i in 0..3 {
        log.append(AppendRequest::new(
            format!("before-{i}"),
            ExpectedVersion::Any,
            vec![NewEvent::new(sized_event(8))],
        ))
        .await
        .unwrap();
    }

    // An append's transaction, opened and written exactly as the committer does it, held open.
    let mut held = pool.begin_with(BEGIN_APPEND).await.unwrap();
    let slow = AppendRequest::new(
        "slow",
        ExpectedVersion::NoStream,
        vec![NewEvent::new(sized_event(8))],
    );
    let slow_outcome = write_batch(
        &mut held,
        &[std::slice::from_ref(&slow)],
        &KnownHeads::default(),
        Reads::UnderLock,
    )
    .await
    .unwrap();
    assert!(matches!(
        slow_outcome.expect("written under the lock").outcomes[0],
        Some(Ok(_))
    ));

    // Later appends arrive meanwhile from other writers.
    let writer = log.clone();
    let later = tokio::spawn(async move {
        join_all((0..5).map(|i| {
            writer.append(AppendRequest::new(
                format!("later-{i}"),
                ExpectedVersion::Any,
                vec![NewEvent::new(sized_event(8))],
            ))
        }))
        .await
    });
    assert!(
        eventually(Duration::from_secs(10), || async {
            appends_waiting_for_the_lock(&pool).await >= 1
        })
        .await,
        "the later appends reach the log while the first is open"
    );

    assert_eq!(
        positions(&read_after(&pool, 0, 100).await.unwrap()),
        vec![1, 2, 3],
        "nothing past the open append"
    );
    assert!(
        !later.is_finished(),
        "no later append commits ahead of the open one"
    );

    held.commit().await.unwrap();
    let later_outcomes = later.await.unwrap();
    assert!(later_outcomes.iter().all(Result::is_ok));

    let rest = read_after(&pool, 3, 100).await.unwrap();
    assert_eq!(
        positions(&rest),
        (4..=9).collect::<Vec<_>>(),
        "every event arrives, in log order"
    );
    assert_eq!(rest[0].stream_id, "slow", "the held append comes first");
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_tailer_racing_many_writers_sees_every_position_once_in_order(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let total: i64 = 1500;
    let writers = join_all((0..15).map(|w| {
        let log = log.clone();
        tokio::spawn(async move {
            for i in 0..(total / 15) {
                let request = AppendRequest::new(
                    format!("w{w}-{i}"),
                    ExpectedVersion::NoStream,
                    vec![NewEvent::new(sized_event(8))],
                );
                log.append(request).await.unwrap();
            }
        })
    }));
    let tailer = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut seen = Vec::new();
            while (seen.len() as i64) < total {
                let after = seen.last().copied().unwrap_or(0);
                let batch = read_after(&pool, after, 37).await.unwrap();
                seen.extend(positions(&batch));
                tokio::task::yield_now().await;
            }
            seen
        }
    });
    writers.await;
    let seen = tokio::time::timeout(Duration::from_secs(60), tailer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
}
