//! The platform's roles and their lifecycle: start, serve, drain on shutdown.

use eventlog::{
    Publisher, PublisherConfig,
    jetstream::{Connections, ensure_stream},
};
use std::{net::SocketAddr, sync::Arc};

use api_core::{
    auth::Authenticator,
    media::{LocalMedia, Media},
    tokens::TokenKeys,
};
use bridge_relay::RelayConfig;
use command_api::{AttemptLimits, CommandState};
use eventlog::{EventLog, GroupCommitConfig};
use projections::{
    ProjectorConfig, catalog::Catalog, run_projector, store_activity::StoreActivity, stores::Stores,
};
use query_api::{Freshness, QueryState};
use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    api,
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
    /// The write API: accounts, credentials and commands.
    CommandApi,
    /// The read API: read models and the public storefront reads.
    QueryApi,
    /// Signed deliveries of events to connected services and merchants' webhooks.
    BridgeRelay,
}

impl Role {
    pub const ALL: &'static [Role] = &[
        Role::Publisher,
        Role::Projector,
        Role::CommandApi,
        Role::QueryApi,
        Role::BridgeRelay,
    ];
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
                    let config = ProjectorConfig::new(self.config.names.clone());
                    let (pool, client) = (self.pool.clone(), self.client.clone());
                    tasks.spawn(run_projector(
                        pool.clone(),
                        client.clone(),
                        config.clone(),
                        StoreActivity,
                        shutdown.clone(),
                    ));
                    tasks.spawn(run_projector(
                        pool.clone(),
                        client.clone(),
                        config.clone(),
                        Stores,
                        shutdown.clone(),
                    ));
                    tasks.spawn(run_projector(
                        pool,
                        client,
                        config,
                        Catalog,
                        shutdown.clone(),
                    ));
                }
                Role::BridgeRelay => {
                    if self.config.platform_webhook_secret_generated {
                        warn!(
                            "PLATFORM_WEBHOOK_SECRET is not set: services cannot verify X-Platform-Signature"
                        );
                    }
                    tasks.spawn(bridge_relay::run_relay(
                        self.pool.clone(),
                        self.client.clone(),
                        RelayConfig::new(
                            self.config.names.clone(),
                            self.config.platform_webhook_secret.expose().to_vec(),
                            self.config.bridge.clone(),
                        ),
                        shutdown.clone(),
                    ));
                }
                Role::CommandApi | Role::QueryApi => {}
            }
        }
        let api = self.api_router(roles, &shutdown).await?;
        info!(address = %listener.local_addr()?, ?roles, "dropship serving");
        let router = http::router(http::HealthState::new(
            self.pool.clone(),
            self.client.clone(),
            self.config.names.clone(),
        ))
        .merge(api);
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
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

    /// The HTTP API of the API roles among `roles`.
    async fn api_router(
        &self,
        roles: &[Role],
        shutdown: &CancellationToken,
    ) -> std::io::Result<axum::Router> {
        if self.config.jwt_secret_generated {
            warn!("JWT_SECRET is not set: using a random one, so tokens die with this process");
        }
        let authenticator = Authenticator::new(
            TokenKeys::new(self.config.jwt_secret.expose()),
            self.pool.clone(),
        );
        let media: Media = Arc::new(LocalMedia::new(&self.config.media_dir));
        let command = roles.contains(&Role::CommandApi).then(|| {
            CommandState::new(
                EventLog::start(self.pool.clone(), GroupCommitConfig::default()),
                authenticator.clone(),
                AttemptLimits::default(),
                media.clone(),
            )
            .with_address_policy(self.config.bridge.addresses.clone())
            .with_trusted_proxies(self.config.trusted_proxies.clone())
        });
        let query = if roles.contains(&Role::QueryApi) {
            let freshness = Freshness::start(
                self.pool.clone(),
                self.config.read_your_writes_wait,
                self.config.public_cache,
                shutdown.clone(),
            )
            .await
            .map_err(std::io::Error::other)?;
            Some(QueryState::new(
                self.pool.clone(),
                authenticator,
                freshness,
                media,
            ))
        } else {
            None
        };
        Ok(api::router(command, query))
    }
}
