#![allow(clippy::unwrap_used)]

use std::{collections::HashSet, sync::Arc};

use eventlog::{
    AppendError, AppendOutcome, AppendRequest, Appended, EventLog, ExpectedVersion,
    GroupCommitConfig, IdempotencyClaim, NewEvent, UniqueKey, read_stream,
};
use futures::future::join_all;
use schemas::{Event, store::StorePaused};
use sqlx::PgPool;
use testkit::{sized_event, store_stream};
use uuid::Uuid;

fn log(pool: PgPool) -> EventLog {
    EventLog::start(pool, GroupCommitConfig::default())
}

fn one_event(stream: &str, expected: ExpectedVersion) -> AppendRequest {
    AppendRequest::new(stream, expected, vec![NewEvent::new(sized_event(16))])
}

fn appended(outcome: Result<AppendOutcome, AppendError>) -> Appended {
    match outcome.unwrap() {
        AppendOutcome::Appended(appended) => appended,
        AppendOutcome::Replayed(response) => panic!("unexpected replay of {response}"),
    }
}

fn claim(key: &str, fingerprint: &[u8]) -> IdempotencyClaim {
    IdempotencyClaim {
        scope: "merchant-1".into(),
        key: key.into(),
        fingerprint: fingerprint.to_vec(),
        respond: Arc::new(
            |appended: &Appended| serde_json::json!({"version": appended.version, "position": appended.last_position()}),
        ),
    }
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_new_stream_starts_at_version_one_and_versions_count_its_events(pool: PgPool) {
    let log = log(pool.clone());
    let first = appended(
        log.append(one_event("s-1", ExpectedVersion::NoStream))
            .await,
    );
    let request = AppendRequest::new(
        "s-1",
        ExpectedVersion::Exact(1),
        vec![NewEvent::new(sized_event(8)), NewEvent::new(sized_event(8))],
    );
    let second = appended(log.append(request).await);
    assert_eq!((first.version, second.version), (1, 3));
    assert_eq!(
        second.positions,
        vec![first.last_position() + 1, first.last_position() + 2]
    );
    let read = read_stream(&pool, "s-1", 2).await.unwrap();
    assert_eq!(
        read.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(read[0].decode().unwrap(), sized_event(8));
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_stale_expected_version_is_a_conflict_carrying_the_actual_version(pool: PgPool) {
    let log = log(pool);
    appended(
        log.append(one_event("s-2", ExpectedVersion::NoStream))
            .await,
    );
    appended(
        log.append(one_event("s-2", ExpectedVersion::Exact(1)))
            .await,
    );
    let stale = log
        .append(one_event("s-2", ExpectedVersion::Exact(1)))
        .await;
    assert!(
        matches!(stale, Err(AppendError::VersionConflict { actual: 2, .. })),
        "{stale:?}"
    );
    let exists = log
        .append(one_event("s-2", ExpectedVersion::NoStream))
        .await;
    assert!(
        matches!(exists, Err(AppendError::VersionConflict { actual: 2, .. })),
        "{exists:?}"
    );
    let missing = log
        .append(one_event("s-none", ExpectedVersion::Exact(3)))
        .await;
    assert!(
        matches!(missing, Err(AppendError::VersionConflict { actual: 0, .. })),
        "{missing:?}"
    );
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn an_append_without_events_is_refused(pool: PgPool) {
    let outcome = log(pool)
        .append(AppendRequest::new("s-3", ExpectedVersion::Any, vec![]))
        .await;
    assert!(matches!(outcome, Err(AppendError::NoEvents)));
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn an_idempotent_replay_returns_the_first_response_and_appends_nothing(pool: PgPool) {
    let log = log(pool.clone());
    let first = log
        .append(one_event("s-4", ExpectedVersion::Any).idempotent(claim("k-1", b"body")))
        .await
        .unwrap();
    let again = log
        .append(one_event("s-4", ExpectedVersion::Any).idempotent(claim("k-1", b"body")))
        .await
        .unwrap();
    let AppendOutcome::Appended(written) = first else {
        panic!("first append must write")
    };
    assert_eq!(
        again,
        AppendOutcome::Replayed(
            serde_json::json!({"version": 1, "position": written.last_position()})
        )
    );
    assert_eq!(read_stream(&pool, "s-4", 1).await.unwrap().len(), 1);
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn the_same_idempotency_key_with_another_request_is_refused(pool: PgPool) {
    let log = log(pool.clone());
    appended(
        log.append(one_event("s-5", ExpectedVersion::Any).idempotent(claim("k-2", b"one")))
            .await,
    );
    let other = log
        .append(one_event("s-5", ExpectedVersion::Any).idempotent(claim("k-2", b"two")))
        .await;
    assert!(
        matches!(other, Err(AppendError::IdempotencyKeyReused { .. })),
        "{other:?}"
    );
    assert_eq!(read_stream(&pool, "s-5", 1).await.unwrap().len(), 1);
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn concurrent_requests_with_one_idempotency_key_append_once(pool: PgPool) {
    let log = log(pool.clone());
    let outcomes = join_all((0..8).map(|_| {
        log.append(one_event("s-6", ExpectedVersion::Any).idempotent(claim("k-3", b"same")))
    }))
    .await;
    let written = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(AppendOutcome::Appended(_))))
        .count();
    let replayed = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(AppendOutcome::Replayed(_))))
        .count();
    assert_eq!((written, replayed), (1, 7));
    assert_eq!(read_stream(&pool, "s-6", 1).await.unwrap().len(), 1);
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_reserved_value_belongs_to_one_stream_until_released(pool: PgPool) {
    let log = log(pool);
    let slug = UniqueKey::new("store_slug", "sunny-socks");
    appended(
        log.append(one_event("store-a", ExpectedVersion::Any).reserving(slug.clone()))
            .await,
    );
    // The owner may claim it again (a retried command); another stream may not.
    appended(
        log.append(one_event("store-a", ExpectedVersion::Any).reserving(slug.clone()))
            .await,
    );
    let taken = log
        .append(one_event("store-b", ExpectedVersion::Any).reserving(slug.clone()))
        .await;
    assert!(
        matches!(taken, Err(AppendError::UniqueKeyTaken { ref value, .. }) if value == "sunny-socks"),
        "{taken:?}"
    );
    // Releasing someone else's value does nothing.
    appended(
        log.append(one_event("store-b", ExpectedVersion::Any).releasing(slug.clone()))
            .await,
    );
    let still_taken = log
        .append(one_event("store-c", ExpectedVersion::Any).reserving(slug.clone()))
        .await;
    assert!(matches!(
        still_taken,
        Err(AppendError::UniqueKeyTaken { .. })
    ));
    appended(
        log.append(one_event("store-a", ExpectedVersion::Any).releasing(slug.clone()))
            .await,
    );
    appended(
        log.append(one_event("store-b", ExpectedVersion::Any).reserving(slug))
            .await,
    );
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn concurrent_claims_of_one_value_have_exactly_one_winner(pool: PgPool) {
    let log = log(pool);
    let outcomes = join_all((0..12).map(|i| {
        log.append(
            one_event(&format!("claimant-{i}"), ExpectedVersion::Any)
                .reserving(UniqueKey::new("email", "a@b.c")),
        )
    }))
    .await;
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert!(
        outcomes
            .iter()
            .filter(|o| o.is_err())
            .all(|o| matches!(o, Err(AppendError::UniqueKeyTaken { .. })))
    );
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn group_commit_batches_appends_and_one_conflict_fails_no_other(pool: PgPool) {
    let log = log(pool.clone());
    let contested = store_stream(Uuid::new_v4());
    let mut requests = Vec::new();
    for i in 0..200 {
        requests.push(one_event(
            &format!("distinct-{i}"),
            ExpectedVersion::NoStream,
        ));
        if i % 20 == 0 {
            requests.push(one_event(&contested, ExpectedVersion::NoStream));
        }
    }
    let outcomes = join_all(requests.into_iter().map(|r| log.append(r))).await;

    let conflicts = outcomes
        .iter()
        .filter(|o| matches!(o, Err(AppendError::VersionConflict { .. })))
        .count();
    let written: Vec<Appended> = outcomes
        .into_iter()
        .filter_map(|o| o.ok())
        .map(|o| appended(Ok(o)))
        .collect();
    assert_eq!(
        conflicts, 9,
        "all but one of the ten contested appends conflict"
    );
    assert_eq!(written.len(), 201, "every other append succeeds");

    let positions: Vec<i64> = written.iter().map(Appended::last_position).collect();
    let distinct: HashSet<i64> = positions.iter().copied().collect();
    assert_eq!(distinct.len(), 201);
    assert_eq!(
        (distinct.iter().min(), distinct.iter().max()),
        (Some(&1), Some(&201)),
        "positions are gapless"
    );

    let transactions: i64 = sqlx::query_scalar("SELECT count(DISTINCT tx_id)::bigint FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        transactions < 201,
        "concurrent appends share transactions ({transactions} for 201)"
    );
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn metadata_and_store_scope_are_recorded(pool: PgPool) {
    let log = log(pool.clone());
    let store_id = Uuid::new_v4();
    let metadata = schemas::EventMetadata {
        actor: Some("merchant:42".into()),
        correlation_id: Some(Uuid::new_v4()),
        request_id: Some("req-9".into()),
        ..Default::default()
    };
    let request = AppendRequest::new(
        store_stream(store_id),
        ExpectedVersion::NoStream,
        vec![NewEvent::new(Event::StorePaused(StorePaused {
            reason: None,
        }))],
    )
    .in_store(store_id)
    .with_metadata(metadata.clone());
    appended(log.append(request).await);
    let events = read_stream(&pool, &store_stream(store_id), 1)
        .await
        .unwrap();
    assert_eq!(events[0].store_id, Some(store_id));
    assert_eq!(events[0].metadata, metadata);
    assert_eq!(events[0].event_type, "store.paused");
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn two_writers_of_one_log_never_trust_stale_heads(pool: PgPool) {
    // Two committers stand for two processes: each remembers the heads it wrote, which
    // the other's appends make stale.
    let (first, second) = (log(pool.clone()), log(pool.clone()));
    let mut versions = Vec::new();
    for round in 0..10 {
        let writer = if round % 2 == 0 { &first } else { &second };
        versions.push(
            appended(
                writer
                    .append(one_event("shared", ExpectedVersion::Any))
                    .await,
            )
            .version,
        );
        appended(
            writer
                .append(one_event(&format!("own-{round}"), ExpectedVersion::Any))
                .await,
        );
    }
    assert_eq!(versions, (1..=10).collect::<Vec<_>>());
    let stale = second
        .append(one_event("shared", ExpectedVersion::Exact(9)))
        .await;
    assert!(
        matches!(stale, Err(AppendError::VersionConflict { actual: 10, .. })),
        "{stale:?}"
    );
    assert_eq!(
        eventlog::verify_stream(&pool, "shared").await.unwrap(),
        Ok(())
    );
    let positions: Vec<i64> = sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(positions, (1..=20).collect::<Vec<_>>());
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn two_writers_claiming_one_value_at_once_have_exactly_one_winner(pool: PgPool) {
    let (first, second) = (log(pool.clone()), log(pool.clone()));
    for round in 0..20 {
        let key = UniqueKey::new("slug", format!("contested-{round}"));
        let (a, b) = tokio::join!(
            first.append(
                one_event(&format!("a-{round}"), ExpectedVersion::Any).reserving(key.clone())
            ),
            second.append(
                one_event(&format!("b-{round}"), ExpectedVersion::Any).reserving(key.clone())
            ),
        );
        assert!(a.is_ok() != b.is_ok(), "round {round}: {a:?} / {b:?}");
        let loser = if a.is_ok() { b } else { a };
        assert!(
            matches!(loser, Err(AppendError::UniqueKeyTaken { .. })),
            "{loser:?}"
        );
    }
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn two_writers_sent_one_idempotency_key_append_once_and_replay_once(pool: PgPool) {
    let (first, second) = (log(pool.clone()), log(pool.clone()));
    for round in 0..20 {
        let key = format!("k-{round}");
        let (a, b) = tokio::join!(
            first
                .append(one_event("shared", ExpectedVersion::Any).idempotent(claim(&key, b"same"))),
            second
                .append(one_event("shared", ExpectedVersion::Any).idempotent(claim(&key, b"same"))),
        );
        let outcomes = [a.unwrap(), b.unwrap()];
        let replays = outcomes
            .iter()
            .filter(|o| matches!(o, AppendOutcome::Replayed(_)))
            .count();
        assert_eq!(replays, 1, "round {round}: {outcomes:?}");
    }
    assert_eq!(read_stream(&pool, "shared", 1).await.unwrap().len(), 20);
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_value_released_and_claimed_in_one_batch_changes_hands(pool: PgPool) {
    let log = log(pool);
    let slug = UniqueKey::new("store_slug", "hand-me-down");
    appended(
        log.append(one_event("giver", ExpectedVersion::Any).reserving(slug.clone()))
            .await,
    );
    for round in 0..10 {
        let (giver, taker) = if round % 2 == 0 {
            ("giver", "taker")
        } else {
            ("taker", "giver")
        };
        let (released, claimed) = tokio::join!(
            log.append(one_event(giver, ExpectedVersion::Any).releasing(slug.clone())),
            log.append(one_event(taker, ExpectedVersion::Any).reserving(slug.clone())),
        );
        appended(released);
        appended(claimed);
    }
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn closing_the_pool_stops_the_committer_instead_of_waiting_for_it(pool: PgPool) {
    let log = log(pool.clone());
    appended(log.append(one_event("s-close", ExpectedVersion::Any)).await);
    // The committer holds a connection between batches; close must not wait on it forever.
    tokio::time::timeout(std::time::Duration::from_secs(30), pool.close())
        .await
        .expect("the pool closes");
    assert!(
        log.append(one_event("s-close", ExpectedVersion::Any))
            .await
            .is_err()
    );
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_writer_that_remembers_an_old_version_still_accepts_the_current_one(pool: PgPool) {
    let (first, second) = (log(pool.clone()), log(pool.clone()));
    appended(
        first
            .append(one_event("moved", ExpectedVersion::NoStream))
            .await,
    );
    // The second writer moves the stream on; the first still remembers version 1.
    appended(
        second
            .append(one_event("moved", ExpectedVersion::Exact(1)))
            .await,
    );
    let current = first
        .append(one_event("moved", ExpectedVersion::Exact(2)))
        .await;
    assert_eq!(
        appended(current).version,
        3,
        "no conflict made up from a remembered head"
    );
    let slug = UniqueKey::new("slug", "passed-on");
    appended(
        first
            .append(one_event("owner", ExpectedVersion::Any).reserving(slug.clone()))
            .await,
    );
    appended(
        second
            .append(one_event("owner", ExpectedVersion::Any).releasing(slug.clone()))
            .await,
    );
    appended(
        first
            .append(one_event("heir", ExpectedVersion::Any).reserving(slug))
            .await,
    );
}

/// Sequential scans Postgres made of the log's tables, as far as its statistics know.
async fn sequential_scans(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(seq_scan), 0)::bigint FROM pg_stat_user_tables \
         WHERE relname IN ('events', 'unique_keys', 'idempotency_keys')",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A backend reports its statistics when it goes idle at least a second after it last
/// did: wait that long, then have the committer's backend finish one more append.
async fn sequential_scans_reported(pool: &PgPool, log: &EventLog) -> i64 {
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let stream = format!("flush-{}", Uuid::new_v4());
    appended(
        log.append(one_event(&stream, ExpectedVersion::NoStream))
            .await,
    );
    sequential_scans(pool).await
}

/// Streams created, a value reserved then released, an idempotency key stored: every
/// statement the committer makes.
async fn append_every_way(log: &EventLog, round: &str) {
    for i in 0..10 {
        let stream = format!("grow-{round}-{i}");
        let key = UniqueKey::new("slug", format!("value-{round}-{i}"));
        let first = one_event(&stream, ExpectedVersion::NoStream)
            .reserving(key.clone())
            .idempotent(claim(&format!("key-{round}-{i}"), b"request"));
        appended(log.append(first).await);
        let second = one_event(&stream, ExpectedVersion::Exact(1)).releasing(key);
        appended(log.append(second).await);
    }
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn the_committer_never_plans_a_sequential_scan_as_tables_grow(pool: PgPool) {
    let log = log(pool.clone());
    // Its plans are made now, while the tables are empty...
    append_every_way(&log, "empty").await;
    // ...and kept while they grow, unanalyzed. Events written behind the committer's
    // back also send its next batch down the locked path, with its reads.
    for grow in [
        "INSERT INTO unique_keys (scope, value, stream_id) \
         SELECT 'slug', 'bulk-' || n, 'bulk' FROM generate_series(1, 50000) n",
        "INSERT INTO idempotency_keys (scope, key, request_fingerprint, response) \
         SELECT 'merchant-1', 'bulk-' || n, '\\x00'::bytea, '{}'::jsonb FROM generate_series(1, 50000) n",
        "INSERT INTO events (position, stream_id, version, event_id, event_type, schema_version, \
                             payload, metadata, recorded_at, hash) \
         SELECT h.head + n, 'bulk-' || n, 1, gen_random_uuid(), 'store.paused', 1, '\\x'::bytea, \
                '{}'::jsonb, now(), '\\x'::bytea \
         FROM generate_series(1, 50000) n, (SELECT max(position) AS head FROM events) h",
    ] {
        sqlx::query(grow).execute(&pool).await.unwrap();
    }
    let before = sequential_scans_reported(&pool, &log).await;
    append_every_way(&log, "grown").await;
    let after = sequential_scans_reported(&pool, &log).await;
    assert_eq!(after, before, "the committer scanned a whole table");
}
