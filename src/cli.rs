use clap::{Parser, Subcommand};
use projections::{
    Projection, catalog::Catalog, rebuild, store_activity::StoreActivity, stores::Stores,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{Platform, Role, config::Config, startup};

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
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Replay the log into fresh tables and swap them in, without downtime.
    Rebuild {
        #[arg(value_parser = [StoreActivity::NAME, Stores::NAME, Catalog::NAME])]
        name: String,
    },
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
            Command::Projections {
                command: ProjectionsCommand::Rebuild { name },
            } => {
                let pool = startup::connect_postgres(&config).await?;
                startup::migrate(&pool, &config).await?;
                let report = match name.as_str() {
                    Stores::NAME => rebuild(&pool, &Stores).await?,
                    Catalog::NAME => rebuild(&pool, &Catalog).await?,
                    _ => rebuild(&pool, &StoreActivity).await?,
                };
                info!(
                    replayed = report.events_replayed,
                    position = report.position,
                    "projection rebuilt"
                );
            }
        }
        Ok(())
    }
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
