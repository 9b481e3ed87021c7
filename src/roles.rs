//! The platform's roles and their lifecycle: start, serve, drain on shutdown.

use eventlog::{
    Publisher, PublisherConfig,
    jetstream::{Connections, ensure_stream},
};
use std::{net::SocketAddr, sync::Arc, time::Duration};

use api_core::{
    auth::Authenticator,
    media::{LocalMedia, Media},
    tokens::REFRESH_TTL,
};
use bridge_relay::RelayConfig;
use command_api::{AttemptLimits, CommandState, Payments, StripeCheckout};
use eventlog::{EventLog, GroupCommitConfig};
use projections::{
    Projection, Projector, ProjectorConfig, catalog::Catalog, orders::Orders, run_projector,
    store_activity::StoreActivity, stores::Stores,
};
use query_api::{Freshness, LogTail, QueryState};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use workers::{WorkersConfig, housekeeping::Retention, scheduler::SchedulerConfig};

use clap::ValueEnum;

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
    /// Process managers and the periodic jobs (one process at a time each).
    Workers,
}

impl Role {
    pub const ALL: &'static [Role] = &[
        Role::Publisher,
        Role::Projector,
        Role::CommandApi,
        Role::QueryApi,
        Role::BridgeRelay,
        Role::Workers,
    ];
}

/// Connections every role needs, made and checked before any role starts.
pub struct Platform {
    /// Start-up, migrations and the health endpoints; each role has a pool of its own.
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
        let pools = RolePools::new(&self.pool, roles, self.config.database_max_connections);
        for role in roles {
            match role {
                Role::Publisher => {
                    let publisher = Publisher::new(
                        pools.of(Role::Publisher),
                        self.client.clone(),
                        self.connections.clone(),
                        PublisherConfig::new(self.config.names.clone()),
                    );
                    tasks.spawn(publisher.run(shutdown.clone()));
                }
                Role::Projector => {
                    tasks.spawn(run_projector(
                        pools.of(Role::Projector),
                        self.client.clone(),
                        ProjectorConfig::new(self.config.names.clone()),
                        read_models(),
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
                        pools.of(Role::BridgeRelay),
                        self.client.clone(),
                        RelayConfig::new(
                            self.config.names.clone(),
                            self.config.platform_webhook_secret.expose().to_vec(),
                            self.config.bridge.clone(),
                        ),
                        shutdown.clone(),
                    ));
                }
                Role::Workers => {
                    tasks.spawn(workers::run_workers(
                        pools.of(Role::Workers),
                        self.client.clone(),
                        self.workers_config(),
                        shutdown.clone(),
                    ));
                }
                Role::CommandApi | Role::QueryApi => {}
            }
        }
        let api = self.api_router(roles, &pools, &shutdown).await?;
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
        pools.close().await;
        self.pool.close().await;
        info!("dropship stopped");
        served
    }

    fn workers_config(&self) -> WorkersConfig {
        let media: Media = Arc::new(LocalMedia::new(&self.config.media_dir));
        WorkersConfig {
            projector: ProjectorConfig::new(self.config.names.clone()),
            scheduler: SchedulerConfig::default(),
            retention: Retention {
                idempotency_ttl: self.config.idempotency_ttl,
                bridge_retention: self.config.bridge_retention,
                session_ttl: REFRESH_TTL,
            },
            remove_store_media: Arc::new(move |store_id| {
                let media = media.clone();
                Box::pin(async move { media.remove_store(store_id).await })
            }),
        }
    }

    /// The HTTP API of the API roles among `roles`.
    async fn api_router(
        &self,
        roles: &[Role],
        pools: &RolePools,
        shutdown: &CancellationToken,
    ) -> std::io::Result<axum::Router> {
        if self.config.jwt_secret_generated {
            warn!("JWT_SECRET is not set: using a random one, so tokens die with this process");
        }
        let authenticator =
            |pool: PgPool| Authenticator::new(self.config.jwt_secret.expose(), pool);
        let media: Media = Arc::new(LocalMedia::new(&self.config.media_dir));
        let command = roles.contains(&Role::CommandApi).then(|| {
            let pool = pools.of(Role::CommandApi);
            CommandState::new(
                EventLog::start(pool.clone(), GroupCommitConfig::default()),
                authenticator(pool),
                AttemptLimits::default(),
                media.clone(),
            )
            .with_payment_timeout(self.config.payment_timeout)
            .with_payments(payments(&self.config))
            .with_webhook_addresses(self.config.bridge.webhook_addresses.clone())
            .with_service_urls(self.config.bridge.service_urls.clone())
            .with_trusted_proxies(self.config.trusted_proxies.clone())
        });
        let query = if roles.contains(&Role::QueryApi) {
            let pool = pools.of(Role::QueryApi);
            let freshness = Freshness::start(
                pool.clone(),
                self.config.read_your_writes_wait,
                self.config.public_cache,
                shutdown.clone(),
            )
            .await
            .map_err(std::io::Error::other)?;
            let tail = LogTail::start(pool.clone(), shutdown.clone());
            Some(QueryState::new(
                pool.clone(),
                authenticator(pool),
                freshness,
                media,
                tail,
            ))
        } else {
            None
        };
        Ok(api::router(command, query))
    }
}

/// The read models the projector role builds, all from one consumer: adding one here
/// adds no stream read. Each had a consumer of its own before.
fn read_models() -> Projector {
    Projector::new("projector")
        .with(StoreActivity)
        .with(Stores)
        .with(Catalog)
        .with(Orders)
        .replacing(&[StoreActivity::NAME, Stores::NAME, Catalog::NAME])
}

/// A role's weight in sharing out the connections, and the least it gets: never less
/// than what it holds at once. The publisher holds a listener, a batch read ahead and
/// its checkpoint write; each projection a batch; the relay a listener, its sweeper's
/// committer, a claim, an outcome batch and an ingest batch; each API a committer or a
/// listener besides its requests; the workers a process manager's batch, the command it
/// issues (a load and its committer) and a job.
fn share(role: Role) -> (u32, u32) {
    match role {
        Role::Publisher => (1, 4),
        Role::Projector => (2, 4),
        Role::BridgeRelay => (4, 8),
        Role::CommandApi | Role::QueryApi => (4, 4),
        Role::Workers => (1, 4),
    }
}

/// A role's connections: the relay opens its own its way.
fn connect_options(role: Role, options: &PgConnectOptions) -> PgConnectOptions {
    // Names each role's sessions in `pg_stat_activity`, so an operator (or a profile)
    // sees which role holds which connection.
    let name = role.to_possible_value().map_or_else(
        || "dropship".to_owned(),
        |value| format!("dropship-{}", value.get_name()),
    );
    let options = PgConnectOptions::clone(options).application_name(&name);
    match role {
        Role::BridgeRelay => bridge_relay::connect_options(options),
        _ => options,
    }
}

/// Each served role's own connections: `DATABASE_MAX_CONNECTIONS` shared out by weight
/// (at least each role's floor), so that readers exhausting the query API's connections (a slow
/// export, a flood of searches) cannot starve the projector, the publisher or the relay.
struct RolePools {
    pools: Vec<(Role, PgPool)>,
    /// For a role asked for that is not served (none is, today).
    base: PgPool,
}

impl RolePools {
    fn new(base: &PgPool, roles: &[Role], total: u32) -> Self {
        let weights: u32 = roles.iter().map(|role| share(*role).0).sum::<u32>().max(1);
        let options = base.connect_options();
        Self {
            base: base.clone(),
            pools: roles
                .iter()
                .map(|role| {
                    let (weight, floor) = share(*role);
                    let size = (total * weight / weights).max(floor);
                    let pool = PgPoolOptions::new()
                        .max_connections(size)
                        .acquire_timeout(Duration::from_secs(5))
                        .connect_lazy_with(connect_options(*role, &options));
                    (*role, pool)
                })
                .collect(),
        }
    }

    fn of(&self, role: Role) -> PgPool {
        self.pools
            .iter()
            .find(|(served, _)| *served == role)
            .map_or_else(|| self.base.clone(), |(_, pool)| pool.clone())
    }

    async fn close(&self) {
        for (_, pool) in &self.pools {
            pool.close().await;
        }
    }
}

/// Stripe Checkout Sessions when a secret key is configured, else mock ones; Stripe's
/// webhook verified when its secret is.
fn payments(config: &Config) -> Payments {
    let mut payments = Payments::default();
    if let Some(stripe) = &config.stripe {
        let key = String::from_utf8_lossy(stripe.secret_key.expose());
        payments = payments.with_stripe(StripeCheckout::new(
            &stripe.api_base,
            &key,
            &stripe.return_url,
            config.payment_timeout,
        ));
    }
    match &config.stripe_webhook_secret {
        Some(secret) => payments.with_webhook_secret(secret.expose()),
        None => payments,
    }
}
