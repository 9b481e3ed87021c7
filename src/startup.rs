//! Reaching Postgres and NATS at start, with one actionable line when either is away.

use std::time::Duration;

use eventlog::jetstream::{self, Connections};
use sqlx::{
    AssertSqlSafe, ConnectOptions, Connection, Executor, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use thiserror::Error;

use crate::config::Config;

const START_POSTGRES: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
const DUPLICATE_DATABASE: &str = "42P04";
const START_NATS: &str = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
                          -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server";

#[derive(Debug, Error)]
pub enum StartupError {
    #[error(
        "cannot reach PostgreSQL at {url} ({reason}); start it with `{START_POSTGRES}` or run `scripts/run`"
    )]
    Postgres { url: String, reason: String },
    #[error("cannot migrate the database at {url}: {reason}")]
    Migrate { url: String, reason: String },
    #[error(
        "cannot reach NATS at {url} ({reason}); start it with `{START_NATS}` or run `scripts/run`"
    )]
    Nats { url: String, reason: String },
}

/// Connects, creating the database when it does not exist yet.
pub async fn connect_postgres(config: &Config) -> Result<PgPool, StartupError> {
    let failed = |e: sqlx::Error| StartupError::Postgres {
        url: redacted(&config.database_url),
        reason: first_line(&e.to_string()),
    };
    let options: PgConnectOptions = config.database_url.parse().map_err(failed)?;
    create_database_unless_exists(&options)
        .await
        .map_err(failed)?;
    // Start-up, migrations and health checks only: each role has a pool of its own.
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(failed)
}

/// Creating a database takes seconds on a busy machine; that is expected, so the
/// maintenance connection does not log it as a slow statement on stderr.
async fn create_database_unless_exists(options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let Some(database) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut maintenance = options
        .clone()
        .database("postgres")
        .disable_statement_logging()
        .connect()
        .await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&database)
            .fetch_one(&mut maintenance)
            .await?;
    if exists {
        return maintenance.close().await;
    }
    let create = format!("CREATE DATABASE \"{}\"", database.replace('"', "\"\""));
    match maintenance.execute(AssertSqlSafe(create)).await {
        // Another process started at the same moment and created it first.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(DUPLICATE_DATABASE) => {}
        outcome => {
            outcome?;
        }
    }
    maintenance.close().await
}

pub async fn migrate(pool: &PgPool, config: &Config) -> Result<(), StartupError> {
    eventlog::MIGRATOR
        .run(pool)
        .await
        .map_err(|e| StartupError::Migrate {
            url: redacted(&config.database_url),
            reason: first_line(&e.to_string()),
        })
}

pub async fn connect_nats(
    config: &Config,
) -> Result<(async_nats::Client, Connections), StartupError> {
    jetstream::connect(&config.nats_url)
        .await
        .map_err(|e| StartupError::Nats {
            url: config.nats_url.clone(),
            reason: first_line(&e.to_string()),
        })
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// The URL without its password, fit for an error line.
fn redacted(url: &str) -> String {
    match url.parse::<PgConnectOptions>() {
        Ok(options) => format!(
            "postgres://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        ),
        Err(_) => "the configured DATABASE_URL".to_owned(),
    }
}
