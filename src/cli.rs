use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use projections::{
    Projection, catalog::Catalog, orders::Orders, rebuild, store_activity::StoreActivity,
    stores::Stores,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;
use workers::status::{JobStatus, job_statuses, run_now};

use crate::{
    Platform, Role,
    config::Config,
    replay::{self, ReplayCommand},
    startup,
};

#[derive(Debug, Parser)]
#[command(
    name = "dropship",
    about = "The Dropship platform: event log, stream, projections and APIs"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform: every role, or only those named with --role.
    Serve {
        #[arg(long = "role", value_enum)]
        roles: Vec<Role>,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Read-model maintenance.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// The auditor's tools: a stream at any version or time, the log as NDJSON, and a
    /// walk of every hash chain and position.
    Replay {
        #[command(subcommand)]
        command: ReplayCommand,
    },
    /// The periodic jobs: when each last ran, how it went, when it runs next.
    Jobs {
        #[command(subcommand)]
        command: Option<JobsCommand>,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Make a job due now; a workers process runs it within a second or so.
    Run { name: String },
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Replay the log into fresh tables and swap them in, without downtime.
    Rebuild {
        #[arg(value_parser = PROJECTIONS)]
        name: String,
    },
    /// Each projection's checkpoint, how far behind the log it is, and when it last moved.
    Status,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        let config = Config::from_env()?;
        match self.command {
            Command::Serve { roles } => {
                let roles = if roles.is_empty() {
                    Role::ALL.to_vec()
                } else {
                    roles
                };
                let platform = Platform::start(config.clone()).await?;
                let listener = TcpListener::bind(config.http_addr).await.map_err(|e| {
                    anyhow::anyhow!("cannot listen on {} (HTTP_ADDR): {e}", config.http_addr)
                })?;
                let shutdown = CancellationToken::new();
                tokio::spawn(cancel_on_signal(shutdown.clone()));
                platform.serve(&roles, listener, shutdown).await?;
            }
            Command::Migrate => {
                let pool = startup::connect_postgres(&config).await?;
                startup::migrate(&pool, &config).await?;
                info!("migrations applied");
            }
            Command::Replay { command } => {
                let pool = startup::connect_postgres(&config).await?;
                startup::migrate(&pool, &config).await?;
                replay::run(&pool, command).await?;
            }
            Command::Projections {
                command: ProjectionsCommand::Status,
            } => {
                let pool = startup::connect_postgres(&config).await?;
                startup::migrate(&pool, &config).await?;
                print!("{}", projections_table(&pool).await?);
            }
            Command::Projections {
                command: ProjectionsCommand::Rebuild { name },
            } => {
                let pool = startup::connect_postgres(&config).await?;
                startup::migrate(&pool, &config).await?;
                let report = match name.as_str() {
                    Stores::NAME => rebuild(&pool, &Stores).await?,
                    Catalog::NAME => rebuild(&pool, &Catalog).await?,
                    Orders::NAME => rebuild(&pool, &Orders).await?,
                    _ => rebuild(&pool, &StoreActivity).await?,
                };
                info!(
                    replayed = report.events_replayed,
                    position = report.position,
                    "projection rebuilt"
                );
            }
            Command::Jobs { command } => {
                let pool = startup::connect_postgres(&config).await?;
                startup::migrate(&pool, &config).await?;
                match command {
                    None => print!("{}", jobs_table(&job_statuses(&pool).await?)),
                    Some(JobsCommand::Run { name }) => {
                        if !run_now(&pool, &name).await? {
                            anyhow::bail!(
                                "no job named `{name}` (a workers process registers its jobs when it starts)"
                            );
                        }
                        println!("{name} is due now");
                    }
                }
            }
        }
        Ok(())
    }
}

const PROJECTIONS: [&str; 4] = [
    Stores::NAME,
    Catalog::NAME,
    Orders::NAME,
    StoreActivity::NAME,
];

/// One line per projection the projector role runs, in columns.
async fn projections_table(pool: &sqlx::PgPool) -> anyhow::Result<String> {
    let rows: Vec<(String, i64, i64, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT n.name, coalesce(c.position, 0), \
                (SELECT coalesce(max(position), 0) FROM events) - coalesce(c.position, 0), \
                c.updated_at \
         FROM unnest($1::text[]) WITH ORDINALITY AS n(name, i) \
         LEFT JOIN projection_checkpoints c USING (name) ORDER BY n.i",
    )
    .bind(PROJECTIONS)
    .fetch_all(pool)
    .await?;
    let mut table = vec![["PROJECTION", "CHECKPOINT", "LAG", "LAST MOVED"].map(str::to_owned)];
    for (name, position, lag, moved) in rows {
        table.push([
            name,
            position.to_string(),
            lag.to_string(),
            moved.map_or_else(
                || "never".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
            ),
        ]);
    }
    Ok(columns(&table))
}

/// One line per job, in columns.
fn jobs_table(statuses: &[JobStatus]) -> String {
    let time = |t: Option<DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
    };
    let mut rows = vec![
        [
            "JOB", "SCHEDULE", "LAST RUN", "DURATION", "OUTCOME", "NEXT RUN", "RUNS", "FAILURES",
            "DETAIL",
        ]
        .map(str::to_owned),
    ];
    for status in statuses {
        let outcome = match (status.running, status.last_outcome.as_deref()) {
            (true, _) => "running".to_owned(),
            (false, Some(outcome)) if status.attempt > 0 => {
                format!("{outcome} (attempt {})", status.attempt)
            }
            (false, outcome) => outcome.unwrap_or("never run").to_owned(),
        };
        rows.push([
            status.name.clone(),
            status.schedule.clone(),
            time(status.last_finished_at),
            status
                .last_duration_ms
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms")),
            outcome,
            time(Some(status.next_run_at)),
            status.runs.to_string(),
            status.failures.to_string(),
            status.last_detail.clone().unwrap_or_default(),
        ]);
    }
    columns(&rows)
}

/// Rows of cells as text, each column as wide as its widest cell.
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
}

/// SIGTERM or Ctrl-C starts a drain: roles finish what they hold, then the process exits 0.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = terminate => info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => info!("interrupt: draining"),
    }
    shutdown.cancel();
}
