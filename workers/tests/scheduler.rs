//! The scheduler against the real Postgres: several schedulers (as several processes
//! would) run each job on one of them at a time, retry failures with backoff, and hand
//! a running job back on shutdown.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use sqlx::PgPool;
use testkit::eventually;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use workers::{
    scheduler::{Job, Schedule, SchedulerConfig, run_scheduler},
    status::{JobStatus, job_statuses, run_now},
};

const PATIENCE: Duration = Duration::from_secs(30);

fn quick() -> SchedulerConfig {
    SchedulerConfig {
        lease: Duration::from_secs(3),
        poll: Duration::from_millis(50),
        backoff: Duration::from_millis(100),
        drain: Duration::from_millis(500),
    }
}

/// A scheduler of `job`, as one process runs it, and what shuts it down.
fn start(pool: &PgPool, job: Job) -> (CancellationToken, JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let scheduler = tokio::spawn(run_scheduler(
        pool.clone(),
        vec![job],
        quick(),
        shutdown.clone(),
    ));
    (shutdown, scheduler)
}

async fn status(pool: &PgPool, name: &str) -> Option<JobStatus> {
    job_statuses(pool)
        .await
        .unwrap()
        .into_iter()
        .find(|status| status.name == name)
}

/// Counts runs, and the most that ever ran at once.
#[derive(Default)]
struct Overlap {
    running: AtomicUsize,
    most: AtomicUsize,
    runs: AtomicUsize,
}

fn counted_job(overlap: Arc<Overlap>) -> Job {
    Job::new(
        "counted",
        Schedule::Every(Duration::from_millis(10)),
        move |_stop| {
            let overlap = overlap.clone();
            async move {
                let now = overlap.running.fetch_add(1, Ordering::SeqCst) + 1;
                overlap.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                overlap.running.fetch_sub(1, Ordering::SeqCst);
                overlap.runs.fetch_add(1, Ordering::SeqCst);
                Ok("counted".to_owned())
            }
        },
    )
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn four_schedulers_never_run_one_job_twice_at_once(pool: PgPool) {
    let overlap = Arc::new(Overlap::default());
    let shutdown = CancellationToken::new();
    let mut schedulers = JoinSet::new();
    for _ in 0..4 {
        schedulers.spawn(run_scheduler(
            pool.clone(),
            vec![counted_job(overlap.clone())],
            quick(),
            shutdown.clone(),
        ));
    }
    assert!(
        eventually(PATIENCE, || async {
            overlap.runs.load(Ordering::SeqCst) >= 20
        })
        .await
    );
    shutdown.cancel();
    while schedulers.join_next().await.is_some() {}
    assert_eq!(overlap.most.load(Ordering::SeqCst), 1);
    let counted = status(&pool, "counted").await.unwrap();
    assert!(counted.runs >= 20, "{counted:?}");
    assert!(!counted.running, "the lease is handed back on shutdown");
    assert_eq!(counted.schedule, "every 10ms");
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_failing_job_is_retried_with_backoff_then_waits_for_its_schedule(pool: PgPool) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let mut job = Job::new(
        "flaky",
        Schedule::Every(Duration::from_secs(3600)),
        move |_stop| {
            let counter = counter.clone();
            async move {
                match counter.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err("the database said no".to_owned()),
                    _ => Ok("done at last".to_owned()),
                }
            }
        },
    );
    job.max_attempts = 3;
    let (shutdown, scheduler) = start(&pool, job);
    assert!(
        eventually(PATIENCE, || async {
            status(&pool, "flaky")
                .await
                .is_some_and(|s| s.last_outcome.as_deref() == Some("succeeded"))
        })
        .await
    );
    let flaky = status(&pool, "flaky").await.unwrap();
    assert_eq!((flaky.runs, flaky.failures, flaky.attempt), (3, 2, 0));
    assert_eq!(flaky.last_detail.as_deref(), Some("done at last"));
    let wait = flaky.next_run_at - flaky.last_finished_at.unwrap();
    assert!(
        wait > chrono::Duration::minutes(59),
        "next run on the schedule: {wait}"
    );

    // Exhausting its attempts makes it wait for its next scheduled time.
    attempts.store(0, Ordering::SeqCst);
    assert!(run_now(&pool, "flaky").await.unwrap());
    assert!(!run_now(&pool, "no_such_job").await.unwrap());
    assert!(
        eventually(PATIENCE, || async {
            status(&pool, "flaky").await.is_some_and(|s| s.runs == 6)
        })
        .await
    );
    let flaky = status(&pool, "flaky").await.unwrap();
    assert_eq!(flaky.last_outcome.as_deref(), Some("succeeded"));
    shutdown.cancel();
    scheduler.await.unwrap();
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_job_gives_up_after_its_attempts(pool: PgPool) {
    let mut job = Job::new(
        "broken",
        Schedule::Every(Duration::from_secs(3600)),
        |_stop| async { Err("always".to_owned()) },
    );
    job.max_attempts = 2;
    let (shutdown, scheduler) = start(&pool, job);
    assert!(
        eventually(PATIENCE, || async {
            status(&pool, "broken")
                .await
                .is_some_and(|s| s.last_outcome.as_deref() == Some("failed"))
        })
        .await
    );
    shutdown.cancel();
    scheduler.await.unwrap();
    let broken = status(&pool, "broken").await.unwrap();
    assert_eq!((broken.runs, broken.failures, broken.attempt), (2, 2, 0));
    assert_eq!(broken.last_detail.as_deref(), Some("always"));
    assert!(broken.next_run_at - broken.last_finished_at.unwrap() > chrono::Duration::minutes(59));
}

/// A job that works in steps until told to stop.
fn long_job(steps: Arc<AtomicUsize>) -> Job {
    Job::new(
        "long",
        Schedule::Every(Duration::from_secs(3600)),
        move |stop: CancellationToken| {
            let steps = steps.clone();
            async move {
                while !stop.is_cancelled() {
                    steps.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok("stopped between steps".to_owned())
            }
        },
    )
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn shutdown_hands_a_running_job_to_another_process(pool: PgPool) {
    let first_steps = Arc::new(AtomicUsize::new(0));
    let (first, first_scheduler) = start(&pool, long_job(first_steps.clone()));
    assert!(
        eventually(PATIENCE, || async {
            first_steps.load(Ordering::SeqCst) > 5
        })
        .await
    );
    let second_steps = Arc::new(AtomicUsize::new(0));
    let (second, second_scheduler) = start(&pool, long_job(second_steps.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        second_steps.load(Ordering::SeqCst),
        0,
        "the lease keeps it on the first"
    );

    first.cancel();
    first_scheduler.await.unwrap();
    let handed_back = status(&pool, "long").await.unwrap();
    assert_eq!(handed_back.last_outcome.as_deref(), Some("interrupted"));
    assert!(
        eventually(PATIENCE, || async {
            second_steps.load(Ordering::SeqCst) > 0
        })
        .await,
        "the other process takes it at once, not at its next scheduled time"
    );
    second.cancel();
    second_scheduler.await.unwrap();
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_killed_process_leaves_its_lease_to_run_out_and_the_job_moves_on(pool: PgPool) {
    let dead_steps = Arc::new(AtomicUsize::new(0));
    let (_, dead) = start(&pool, long_job(dead_steps.clone()));
    assert!(eventually(PATIENCE, || async { dead_steps.load(Ordering::SeqCst) > 0 }).await);
    // Killed: no drain, no hand-back, the lease stays until it runs out.
    dead.abort();
    let _ = dead.await;
    let steps = Arc::new(AtomicUsize::new(0));
    let (shutdown, scheduler) = start(&pool, long_job(steps.clone()));
    assert!(eventually(PATIENCE, || async { steps.load(Ordering::SeqCst) > 0 }).await);
    shutdown.cancel();
    scheduler.await.unwrap();
}
