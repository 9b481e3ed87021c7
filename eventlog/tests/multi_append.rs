//! Appends to several streams at once: each part keeps its own checks, and the parts
//! commit together or not at all.

#![allow(clippy::unwrap_used)]

use std::{collections::HashSet, sync::Arc};

use eventlog::{
    AppendError, AppendRequest, Appended, BEGIN_APPEND, EventLog, ExpectedVersion,
    GroupCommitConfig, IdempotencyClaim, KnownHeads, MultiAppendOutcome, NewEvent, Reads,
    UniqueKey, read_stream, write_batch,
};
use futures::future::join_all;
use sqlx::PgPool;
use testkit::sized_event;

fn log(pool: PgPool) -> EventLog {
    EventLog::start(pool, GroupCommitConfig::default())
}

fn part(stream: &str, expected: ExpectedVersion) -> AppendRequest {
    AppendRequest::new(stream, expected, vec![NewEvent::new(sized_event(16))])
}

fn written(outcome: Result<MultiAppendOutcome, AppendError>) -> Vec<Appended> {
    match outcome.unwrap() {
        MultiAppendOutcome::Appended(parts) => parts,
        MultiAppendOutcome::Replayed(response) => panic!("unexpected replay of {response}"),
    }
}

fn claim(key: &str, fingerprint: &[u8]) -> IdempotencyClaim {
    IdempotencyClaim {
        scope: "store-1".into(),
        key: key.into(),
        fingerprint: fingerprint.to_vec(),
        respond: Arc::new(
            |appended: &Appended| serde_json::json!({"stream": appended.stream_id, "position": appended.last_position()}),
        ),
    }
}

async fn event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*)::bigint FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn every_part_is_written_in_one_transaction_with_consecutive_positions(pool: PgPool) {
    let log = log(pool.clone());
    written(
        log.append_multi(vec![part("product-a", ExpectedVersion::NoStream)])
            .await,
    );
    let order = AppendRequest::new(
        "order-1",
        ExpectedVersion::NoStream,
        vec![NewEvent::new(sized_event(8)), NewEvent::new(sized_event(8))],
    );
    let parts = written(
        log.append_multi(vec![
            order,
            part("product-a", ExpectedVersion::Exact(1)),
            part("product-b", ExpectedVersion::NoStream),
        ])
        .await,
    );
    let summary: Vec<(&str, i32, Vec<i64>)> = parts
        .iter()
        .map(|p| (p.stream_id.as_str(), p.version, p.positions.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("order-1", 2, vec![2, 3]),
            ("product-a", 2, vec![4]),
            ("product-b", 1, vec![5]),
        ]
    );
    let transactions: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT tx_id)::bigint FROM events WHERE position > 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(transactions, 1);
    for stream in ["order-1", "product-a", "product-b"] {
        assert_eq!(
            eventlog::verify_stream(&pool, stream).await.unwrap(),
            Ok(())
        );
    }
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn one_part_in_conflict_writes_no_part_and_takes_nothing(pool: PgPool) {
    let log = log(pool.clone());
    written(
        log.append_multi(vec![part("product-a", ExpectedVersion::NoStream)])
            .await,
    );
    let sku = UniqueKey::new("sku", "WS-M");
    let failed = log
        .append_multi(vec![
            part("order-1", ExpectedVersion::NoStream)
                .reserving(sku.clone())
                .idempotent(claim("checkout-1", b"cart")),
            part("product-a", ExpectedVersion::Exact(7)),
        ])
        .await;
    assert!(
        matches!(&failed, Err(AppendError::VersionConflict { stream_id, actual: 1, .. }) if stream_id == "product-a"),
        "{failed:?}"
    );
    assert_eq!(event_count(&pool).await, 1, "no part was written");
    // Nothing of the failed append holds: the stream is new, the value free, the key unused.
    let retried = written(
        log.append_multi(vec![
            part("order-1", ExpectedVersion::NoStream)
                .reserving(sku.clone())
                .idempotent(claim("checkout-1", b"cart")),
            part("product-a", ExpectedVersion::Exact(1)),
        ])
        .await,
    );
    assert_eq!(retried[0].version, 1);
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_failed_part_undoes_the_parts_before_it_for_the_rest_of_its_batch(pool: PgPool) {
    let log = log(pool.clone());
    // Sent together, so that most land in one batch: each failing append plans its
    // first part before its second fails, and the single append after it must see the
    // stream as it was.
    let sku = UniqueKey::new("sku", "shared");
    let mut failing = Vec::new();
    let mut singles = Vec::new();
    for i in 0..20 {
        let stream = format!("order-{i}");
        failing.push(log.append_multi(vec![
            part(&stream, ExpectedVersion::NoStream).reserving(sku.clone()),
            part(&format!("missing-{i}"), ExpectedVersion::Exact(3)),
        ]));
        singles.push(log.append(part(&stream, ExpectedVersion::NoStream)));
    }
    let (failing, singles) = tokio::join!(join_all(failing), join_all(singles));
    assert!(
        failing
            .iter()
            .all(|o| matches!(o, Err(AppendError::VersionConflict { .. }))),
        "{failing:?}"
    );
    assert!(singles.iter().all(Result::is_ok), "{singles:?}");
    let positions: Vec<i64> = sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(positions, (1..=20).collect::<Vec<_>>(), "gapless");
    let reserved: i64 = sqlx::query_scalar("SELECT count(*)::bigint FROM unique_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(reserved, 0);
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_replayed_multi_append_answers_its_stored_response_and_writes_nothing(pool: PgPool) {
    let log = log(pool.clone());
    let request = || {
        vec![
            part("order-1", ExpectedVersion::NoStream).idempotent(claim("checkout-1", b"cart")),
            part("product-a", ExpectedVersion::Any),
        ]
    };
    let first = written(log.append_multi(request()).await);
    let again = log.append_multi(request()).await.unwrap();
    assert_eq!(
        again,
        MultiAppendOutcome::Replayed(
            serde_json::json!({"stream": "order-1", "position": first[0].last_position()})
        )
    );
    let other_cart = log
        .append_multi(vec![
            part("order-2", ExpectedVersion::NoStream).idempotent(claim("checkout-1", b"other")),
            part("product-a", ExpectedVersion::Any),
        ])
        .await;
    assert!(
        matches!(other_cart, Err(AppendError::IdempotencyKeyReused { .. })),
        "{other_cart:?}"
    );
    assert_eq!(event_count(&pool).await, 2);
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn an_append_no_batch_could_write_is_refused(pool: PgPool) {
    let log = log(pool.clone());
    let empty = log.append_multi(Vec::new()).await;
    assert!(matches!(empty, Err(AppendError::NoEvents)), "{empty:?}");
    let empty_part = log
        .append_multi(vec![
            part("a", ExpectedVersion::Any),
            AppendRequest::new("b", ExpectedVersion::Any, Vec::new()),
        ])
        .await;
    assert!(
        matches!(empty_part, Err(AppendError::NoEvents)),
        "{empty_part:?}"
    );
    let twice = log
        .append_multi(vec![
            part("a", ExpectedVersion::Any),
            part("a", ExpectedVersion::Any),
        ])
        .await;
    assert!(matches!(twice, Err(AppendError::Malformed(_))), "{twice:?}");
    let key = UniqueKey::new("sku", "moved");
    let moved = log
        .append_multi(vec![
            part("a", ExpectedVersion::Any).releasing(key.clone()),
            part("b", ExpectedVersion::Any).reserving(key),
        ])
        .await;
    assert!(matches!(moved, Err(AppendError::Malformed(_))), "{moved:?}");
    let claimed_twice = log
        .append_multi(vec![
            part("a", ExpectedVersion::Any).idempotent(claim("k", b"x")),
            part("b", ExpectedVersion::Any).idempotent(claim("k", b"x")),
        ])
        .await;
    assert!(
        matches!(claimed_twice, Err(AppendError::Malformed(_))),
        "{claimed_twice:?}"
    );
    assert_eq!(event_count(&pool).await, 0);
}

/// A product stream with `units` in stock: a sale appends one event to it, so the units
/// sold are its version minus the first event.
async fn buy_one(log: &EventLog, pool: &PgPool, shopper: usize, units: i32) -> bool {
    loop {
        let version: i32 = sqlx::query_scalar(
            "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = 'product-last'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if version > units {
            return false;
        }
        let outcome = log
            .append_multi(vec![
                part(&format!("order-{shopper}"), ExpectedVersion::NoStream),
                part("product-last", ExpectedVersion::Exact(version)),
            ])
            .await;
        match outcome {
            Ok(_) => return true,
            Err(AppendError::VersionConflict { .. }) => continue,
            Err(other) => panic!("shopper {shopper}: {other:?}"),
        }
    }
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn shoppers_racing_for_the_last_units_through_two_writers_never_oversell(pool: PgPool) {
    // Two committers stand for two processes, so stale plans and the locked path race too.
    let writers = [log(pool.clone()), log(pool.clone())];
    let units = 3;
    written(
        writers[0]
            .append_multi(vec![part("product-last", ExpectedVersion::NoStream)])
            .await,
    );
    let bought =
        join_all((0..32).map(|shopper| buy_one(&writers[shopper % 2], &pool, shopper, units)))
            .await;
    assert_eq!(bought.iter().filter(|b| **b).count(), 3);
    let product = read_stream(&pool, "product-last", 1).await.unwrap();
    assert_eq!(product.len(), 4, "one stocking event and three sales");
    let orders: Vec<String> = sqlx::query_scalar(
        "SELECT stream_id FROM events WHERE stream_id LIKE 'order-%' ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let winners: HashSet<String> = bought
        .iter()
        .enumerate()
        .filter(|(_, b)| **b)
        .map(|(shopper, _)| format!("order-{shopper}"))
        .collect();
    assert_eq!(orders.iter().cloned().collect::<HashSet<_>>(), winners);
    // Each sale sits next to its order: the parts of one append are consecutive.
    let sales: Vec<i64> = product[1..].iter().map(|e| e.position).collect();
    let order_positions: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM events WHERE stream_id LIKE 'order-%' ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        sales,
        order_positions.iter().map(|p| p + 1).collect::<Vec<_>>()
    );
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_multi_append_retried_after_its_commit_finds_every_part(pool: PgPool) {
    // What the committer does when a commit's answer was lost: the same request again,
    // under the lock.
    let parts = vec![
        part("order-1", ExpectedVersion::NoStream),
        part("product-a", ExpectedVersion::NoStream),
    ];
    let mut first = pool.begin_with(BEGIN_APPEND).await.unwrap();
    let outcome = write_batch(
        &mut first,
        &[parts.as_slice()],
        &KnownHeads::default(),
        Reads::UnderLock,
    )
    .await
    .unwrap()
    .unwrap();
    first.commit().await.unwrap();
    let mut retry = pool.begin_with(BEGIN_APPEND).await.unwrap();
    let again = write_batch(
        &mut retry,
        &[parts.as_slice()],
        &KnownHeads::default(),
        Reads::UnderLock,
    )
    .await
    .unwrap()
    .unwrap();
    retry.commit().await.unwrap();
    let original = outcome.outcomes[0].clone().unwrap().unwrap();
    assert_eq!(again.outcomes[0].clone().unwrap().unwrap(), original);
    assert!(matches!(original, MultiAppendOutcome::Appended(ref p) if p.len() == 2));
    assert_eq!(event_count(&pool).await, 2);
}
