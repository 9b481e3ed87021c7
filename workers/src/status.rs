//! Where each periodic job stands, for `dropship jobs` and `/metrics`.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};

#[derive(Debug, Clone, FromRow)]
pub struct JobStatus {
    pub name: String,
    pub schedule: String,
    pub next_run_at: DateTime<Utc>,
    /// Whether a process holds the job's lease now (it is running).
    pub running: bool,
    pub attempt: i32,
    pub last_started_at: Option<DateTime<Utc>>,
    pub last_finished_at: Option<DateTime<Utc>>,
    pub last_duration_ms: Option<i64>,
    pub last_outcome: Option<String>,
    pub last_detail: Option<String>,
    pub runs: i64,
    pub failures: i64,
}

pub async fn job_statuses(db: impl PgExecutor<'_>) -> Result<Vec<JobStatus>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, schedule, next_run_at, coalesce(lease_until > now(), false) AS running, \
                attempt, last_started_at, last_finished_at, last_duration_ms, last_outcome, \
                last_detail, runs, failures \
         FROM scheduled_jobs ORDER BY name",
    )
    .fetch_all(db)
    .await
}

/// Makes a job due now (`dropship jobs run NAME`); false when there is no such job.
pub async fn run_now(db: impl PgExecutor<'_>, name: &str) -> Result<bool, sqlx::Error> {
    let due = sqlx::query("UPDATE scheduled_jobs SET next_run_at = now() WHERE name = $1")
        .bind(name)
        .execute(db)
        .await?;
    Ok(due.rows_affected() == 1)
}

/// Prometheus text lines for every job.
pub fn metrics(statuses: &[JobStatus]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, value: &dyn Fn(&JobStatus) -> Option<f64>| {
        out.push_str(&format!("# TYPE {name} {kind}\n"));
        for status in statuses {
            if let Some(value) = value(status) {
                out.push_str(&format!("{name}{{job=\"{}\"}} {value}\n", status.name));
            }
        }
    };
    let seconds = |time: Option<DateTime<Utc>>| time.map(|t| t.timestamp_millis() as f64 / 1000.0);
    family("dropship_job_last_run_timestamp_seconds", "gauge", &|s| {
        seconds(s.last_finished_at)
    });
    family("dropship_job_last_duration_seconds", "gauge", &|s| {
        s.last_duration_ms.map(|ms| ms as f64 / 1000.0)
    });
    family("dropship_job_last_success", "gauge", &|s| {
        s.last_outcome
            .as_deref()
            .map(|outcome| f64::from(u8::from(outcome == "succeeded")))
    });
    family("dropship_job_next_run_timestamp_seconds", "gauge", &|s| {
        seconds(Some(s.next_run_at))
    });
    family("dropship_job_running", "gauge", &|s| {
        Some(f64::from(u8::from(s.running)))
    });
    family("dropship_job_runs_total", "counter", &|s| {
        Some(s.runs as f64)
    });
    family("dropship_job_failures_total", "counter", &|s| {
        Some(s.failures as f64)
    });
    out
}
