//! Periodic jobs, each run by one process at a time: a job's row in `scheduled_jobs` is
//! leased by the process that runs it, and the lease is renewed while it runs. A
//! process that dies loses its lease when it runs out and another takes the job over. A
//! failed run is retried with backoff a bounded number of times, then waits for its next
//! scheduled time. On shutdown a running job is asked to stop between two of its steps;
//! one that does not within the drain time is abandoned, and either way the lease is
//! handed back due at once, so another process runs it next.

use std::{future::Future, pin::Pin, str::FromStr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

/// When a job runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every so often, counted from the end of the last run.
    Every(Duration),
    /// A cron expression with seconds (`sec min hour day month weekday`), in UTC.
    Cron(Box<cron::Schedule>),
}

impl Schedule {
    pub fn cron(expression: &str) -> Result<Self, cron::error::Error> {
        Ok(Self::Cron(Box::new(cron::Schedule::from_str(expression)?)))
    }

    /// The first run time after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Every(interval) => now + *interval,
            Self::Cron(schedule) => schedule
                .after(&now)
                .next()
                .unwrap_or(now + chrono::Duration::days(365)),
        }
    }

    /// How `dropship jobs` shows it.
    pub fn describe(&self) -> String {
        match self {
            Self::Every(interval) => format!("every {interval:?}"),
            Self::Cron(schedule) => format!("cron {}", schedule.source()),
        }
    }
}

/// What a run returns: a line for `dropship jobs` (what it did), or why it failed.
pub type RunResult = Result<String, String>;
type Run =
    dyn Fn(CancellationToken) -> Pin<Box<dyn Future<Output = RunResult> + Send>> + Send + Sync;

/// A periodic job. `run` gets a token that is cancelled when the process shuts down or
/// loses the lease; a job checks it between bounded steps and returns early.
#[derive(Clone)]
pub struct Job {
    pub name: &'static str,
    pub schedule: Schedule,
    /// Runs tried before a failed run waits for its next scheduled time.
    pub max_attempts: i32,
    run: Arc<Run>,
}

impl Job {
    pub fn new<F, Fut>(name: &'static str, schedule: Schedule, run: F) -> Self
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RunResult> + Send + 'static,
    {
        Self {
            name,
            schedule,
            max_attempts: 5,
            run: Arc::new(move |stop| Box::pin(run(stop))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How long a lease lasts without renewal; renewed every third of it.
    pub lease: Duration,
    /// How often due jobs are looked for.
    pub poll: Duration,
    /// The first retry's wait; each further one doubles it.
    pub backoff: Duration,
    /// How long a running job may take to stop on shutdown.
    pub drain: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            backoff: Duration::from_secs(10),
            drain: Duration::from_secs(10),
        }
    }
}

/// The wait before retry `attempt` (1-based): `backoff` doubled each time, ±20 %.
fn backoff(config: &SchedulerConfig, attempt: i32) -> Duration {
    let doubled = config
        .backoff
        .saturating_mul(1 << attempt.clamp(1, 16).saturating_sub(1));
    doubled.mul_f64(rand::random_range(0.8..1.2))
}

/// Registers the jobs, then runs each one whenever it is due and this process holds
/// its lease, until `shutdown`.
pub async fn run_scheduler(
    pool: PgPool,
    jobs: Vec<Job>,
    config: SchedulerConfig,
    shutdown: CancellationToken,
) {
    let owner = Uuid::new_v4();
    let mut running: JoinSet<()> = JoinSet::new();
    let mut registered = false;
    while !shutdown.is_cancelled() {
        if !registered {
            match register(&pool, &jobs).await {
                Ok(()) => registered = true,
                Err(error) => warn!(%error, "cannot register the periodic jobs; retrying"),
            }
        }
        if registered {
            match take_due(&pool, &jobs, owner, &config).await {
                Ok(taken) => {
                    for job in taken {
                        running.spawn(run_leased(
                            pool.clone(),
                            job,
                            owner,
                            config.clone(),
                            shutdown.clone(),
                        ));
                    }
                }
                Err(error) => warn!(%error, "cannot look for due jobs; retrying"),
            }
        }
        while running.try_join_next().is_some() {}
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(config.poll) => {}
        }
    }
    while running.join_next().await.is_some() {}
}

/// Adds the jobs this build runs, due at once when new; an existing job keeps its
/// state and takes the schedule it is now built with.
async fn register(pool: &PgPool, jobs: &[Job]) -> Result<(), sqlx::Error> {
    for job in jobs {
        sqlx::query(
            "INSERT INTO scheduled_jobs (name, schedule, next_run_at) VALUES ($1, $2, now()) \
             ON CONFLICT (name) DO UPDATE SET schedule = EXCLUDED.schedule",
        )
        .bind(job.name)
        .bind(job.schedule.describe())
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Leases every due job whose lease is free (never held, handed back or run out).
async fn take_due(
    pool: &PgPool,
    jobs: &[Job],
    owner: Uuid,
    config: &SchedulerConfig,
) -> Result<Vec<(Job, i32)>, sqlx::Error> {
    let names: Vec<&str> = jobs.iter().map(|job| job.name).collect();
    let taken: Vec<(String, i32)> = sqlx::query_as(
        "UPDATE scheduled_jobs SET lease_owner = $2, \
                lease_until = now() + make_interval(secs => $3), last_started_at = now() \
         WHERE name = ANY($1) AND next_run_at <= now() \
           AND (lease_until IS NULL OR lease_until < now()) \
         RETURNING name, attempt",
    )
    .bind(&names)
    .bind(owner)
    .bind(config.lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    Ok(taken
        .into_iter()
        .filter_map(|(name, attempt)| {
            let job = jobs.iter().find(|job| job.name == name)?;
            Some((job.clone(), attempt))
        })
        .collect())
}

/// How a leased run ended.
enum Ended {
    Finished(RunResult),
    /// Shut down or lost the lease before it finished.
    Interrupted,
}

async fn run_leased(
    pool: PgPool,
    (job, attempt): (Job, i32),
    owner: Uuid,
    config: SchedulerConfig,
    shutdown: CancellationToken,
) {
    let started = std::time::Instant::now();
    let stop = shutdown.child_token();
    // Owned by this task: if it is dropped (the process dying), the run goes with it.
    let mut work = JoinSet::new();
    work.spawn((job.run)(stop.clone()));
    let mut renew = tokio::time::interval(config.lease / 3);
    renew.tick().await;
    let ended = loop {
        tokio::select! {
            Some(finished) = work.join_next() => break match finished {
                Ok(result) if !stop.is_cancelled() => Ended::Finished(result),
                Ok(_) => Ended::Interrupted,
                Err(error) => Ended::Finished(Err(format!("the job panicked: {error}"))),
            },
            _ = renew.tick() => {
                if !matches!(renew_lease(&pool, job.name, owner, &config).await, Ok(true)) {
                    warn!(job = job.name, "lost the job's lease; stopping it");
                    stop.cancel();
                }
            }
            _ = stop.cancelled() => {
                // Whatever it finished before the drain time, it was asked to stop.
                let _ = tokio::time::timeout(config.drain, work.join_next()).await;
                work.abort_all();
                break Ended::Interrupted;
            }
        }
    };
    let elapsed = started.elapsed();
    if let Err(error) = record(&pool, &job, owner, attempt, ended, elapsed, &config).await {
        // The lease runs out and the job is run again: its steps are idempotent.
        warn!(job = job.name, %error, "cannot record the job's run");
    }
}

async fn renew_lease(
    pool: &PgPool,
    name: &str,
    owner: Uuid,
    config: &SchedulerConfig,
) -> Result<bool, sqlx::Error> {
    let renewed = sqlx::query(
        "UPDATE scheduled_jobs SET lease_until = now() + make_interval(secs => $3) \
         WHERE name = $1 AND lease_owner = $2",
    )
    .bind(name)
    .bind(owner)
    .bind(config.lease.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// Hands the lease back with the run's outcome and when the job is due next.
async fn record(
    pool: &PgPool,
    job: &Job,
    owner: Uuid,
    attempt: i32,
    ended: Ended,
    elapsed: Duration,
    config: &SchedulerConfig,
) -> Result<(), sqlx::Error> {
    let now = Utc::now();
    let (outcome, detail, next_attempt, next_run_at, failed) = match ended {
        Ended::Finished(Ok(summary)) => ("succeeded", summary, 0, job.schedule.next_after(now), 0),
        Ended::Finished(Err(error)) if attempt + 1 < job.max_attempts => {
            let wait = backoff(config, attempt + 1);
            let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
            ("retrying", error, attempt + 1, next, 1)
        }
        Ended::Finished(Err(error)) => ("failed", error, 0, job.schedule.next_after(now), 1),
        Ended::Interrupted => ("interrupted", String::new(), attempt, now, 0),
    };
    match outcome {
        "succeeded" => info!(job = job.name, detail, ?elapsed, "job ran"),
        "interrupted" => info!(job = job.name, "job handed back"),
        _ => warn!(
            job = job.name,
            outcome,
            detail,
            attempt = attempt + 1,
            "job failed"
        ),
    }
    sqlx::query(
        "UPDATE scheduled_jobs SET lease_owner = NULL, lease_until = NULL, \
                last_finished_at = now(), last_duration_ms = $3, last_outcome = $4, \
                last_detail = $5, attempt = $6, next_run_at = $7, \
                runs = runs + 1, failures = failures + $8 \
         WHERE name = $1 AND lease_owner = $2",
    )
    .bind(job.name)
    .bind(owner)
    .bind(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
    .bind(outcome)
    .bind(detail)
    .bind(next_attempt)
    .bind(next_run_at)
    .bind(failed)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_schedules_run_at_their_next_match() {
        let schedule = Schedule::cron("0 15 * * * *").expect("valid");
        let now = DateTime::parse_from_rfc3339("2026-12-03T10:20:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            schedule.next_after(now).to_rfc3339(),
            "2026-12-03T11:15:00+00:00"
        );
        assert_eq!(schedule.describe(), "cron 0 15 * * * *");
    }

    #[test]
    fn retries_back_off_doubling_within_jitter() {
        let config = SchedulerConfig {
            backoff: Duration::from_secs(10),
            ..SchedulerConfig::default()
        };
        for (attempt, base) in [(1, 10.0), (2, 20.0), (3, 40.0)] {
            let wait = backoff(&config, attempt).as_secs_f64();
            assert!(
                (base * 0.8..=base * 1.2).contains(&wait),
                "{attempt}: {wait}"
            );
        }
    }

    #[test]
    fn a_bad_cron_expression_is_refused() {
        assert!(Schedule::cron("every tuesday").is_err());
    }
}
