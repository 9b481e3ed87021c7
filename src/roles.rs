//! The platform's roles and their lifecycle: start, serve, drain on shutdown.

use eventlog::{
    Publisher, PublisherConfig,
    jetstream::{Connections, ensure_stream},
};
use projections::{ProjectorConfig, run_projector, store_activity::StoreActivity};
use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{
    config::Config,
    http,
    startup::{self, StartupError},
};

/// A part of the platform that can run alone (`dropship serve --role ...`). The roles
/// share no memory, only Postgres and JetStream, so any split behaves as all-in-one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Tails the event log and publishes it to JetStream (one leader at a time).
    Publisher,
    /// Builds the read models from the stream.
    Projector,
}

impl Role {
    pub const ALL: &'static [Role] = &[Role::Publisher, Role::Projector];
}

/// Connections every role needs, made and checked before any role starts.
pub struct Platform {
    pool: PgPool,
    client: async_nats::Client,
    connections: Connections,
    config: Config,
}

impl Platform {
    /// Reaches Postgres (creating and migrating the database) and NATS (creating the
    /// stream), or says in one line which one is missing.
    pub async fn start(config: Config) -> Result<Self, StartupError> {
        let pool = startup::connect_postgres(&config).await?;
        startup::migrate(&pool, &config).await?;
        let (client, connections) = startup::connect_nats(&config).await?;
        ensure_stream(&async_nats::jetstream::new(client.clone()), &config.names)
            .await
            .map_err(|e| StartupError::Nats {
                url: config.nats_url.clone(),
                reason: format!(
                    "cannot create stream {}: {e} (is JetStream enabled, `-js`?)",
                    config.names.stream
                ),
            })?;
        Ok(Self {
            pool,
            client,
            connections,
            config,
        })
    }

    /// Runs `roles` and the health endpoints on `listener` until `shutdown`, then lets
    /// every role finish its batch, write its checkpoint and acks, and returns.
    pub async fn serve(
        self,
        roles: &[Role],
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let mut tasks = JoinSet::new();
        for role in roles {
            match role {
                Role::Publisher => {
                    let publisher = Publisher::new(
                        self.pool.clone(),
                        self.client.clone(),
                        self.connections.clone(),
                        PublisherConfig::new(self.config.names.clone()),
                    );
                    tasks.spawn(publisher.run(shutdown.clone()));
                }
                Role::Projector => {
                    tasks.spawn(run_projector(
                        self.pool.clone(),
                        self.client.clone(),
                        ProjectorConfig::new(self.config.names.clone()),
                        StoreActivity,
                        shutdown.clone(),
                    ));
                }
            }
        }
        info!(address = %listener.local_addr()?, ?roles, "dropship serving");
        let router = http::router(http::HealthState::new(
            self.pool.clone(),
            self.client.clone(),
            self.config.names.clone(),
        ));
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await;
        shutdown.cancel();
        while tasks.join_next().await.is_some() {}
        // Acks are fire-and-forget publishes: make sure they left before exiting.
        let _ = self.client.flush().await;
        self.pool.close().await;
        info!("dropship stopped");
        served
    }
}
