use std::{sync::Arc, time::Duration};

use eventlog::{EventLog, GroupCommitConfig};
use pii::Vault;
use projections::{ProjectorConfig, run_projector};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgListener},
};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    address::AddressPolicy,
    config::RelayConfig,
    dispatch::{Clients, Dispatcher},
    guards::{GuardConfig, Guards},
    ingest::{BridgeIngest, READY_CHANNEL},
    record::run_recorder,
    sweeper::run_sweeper,
};

/// Outcomes waiting to be recorded before deliveries wait for the recorder.
const OUTCOME_BUFFER: usize = 16_384;

/// How the relay's own connections are to be opened. Its statements all reach their
/// rows by key, and the queue they read grows from empty to hundreds of thousands of rows
/// between two analyses: a plan cached while it was small scanned the whole table once
/// per claim (docs/decisions.md, "Relay throughput"). With sequential scans ruled out,
/// its plans no longer depend on how stale the statistics are.
pub fn connect_options(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("enable_seqscan", "off")])
}

/// Runs the relay until `shutdown`: the stream consumer, the delivery loop, the
/// recorder and the sweeper. Attempts under way finish and are recorded first.
pub async fn run_relay(
    pool: PgPool,
    nats: async_nats::Client,
    config: RelayConfig,
    shutdown: CancellationToken,
) {
    let clients = match (
        client(&config, &config.delivery.service_addresses),
        client(&config, &config.delivery.webhook_addresses),
    ) {
        (Ok(services), Ok(webhooks)) => Clients { services, webhooks },
        (Err(error), _) | (_, Err(error)) => {
            warn!(%error, "the relay cannot build its HTTP client");
            return;
        }
    };
    let config = Arc::new(config);
    let ingest = tokio::spawn(run_projector(
        pool.clone(),
        nats,
        // A delivery waits for no batch to fill: routing is cheap, latency is the figure.
        ProjectorConfig {
            linger: Duration::ZERO,
            ..ProjectorConfig::new(config.names.clone())
        },
        BridgeIngest {
            first_wait: config
                .delivery
                .retry_schedule
                .first()
                .copied()
                .unwrap_or_default(),
            max_attempts: config.max_attempts(),
            vault: Vault::new(pool.clone()),
        },
        shutdown.clone(),
    ));
    let ready = Arc::new(Notify::new());
    let listening = tokio::spawn(listen(pool.clone(), ready.clone(), shutdown.clone()));
    let sweeping = tokio::spawn(run_sweeper(
        pool.clone(),
        EventLog::start(pool.clone(), GroupCommitConfig::default()),
        config.clone(),
        shutdown.clone(),
    ));
    let (outcomes, recorded) = mpsc::channel(OUTCOME_BUFFER);
    let recording = tokio::spawn(run_recorder(pool.clone(), recorded));
    let guards = Arc::new(Guards::new(GuardConfig {
        concurrency: config.delivery.endpoint_concurrency,
        rate: config.delivery.endpoint_rate,
        failures: config.circuit_failures,
        cooldown: config.delivery.circuit_cooldown,
    }));
    info!("bridge relay delivering");
    Dispatcher {
        pool,
        clients,
        config,
        guards,
        outcomes,
        ready,
    }
    .run(shutdown)
    .await;
    for task in [ingest, listening, sweeping, recording] {
        let _ = task.await;
    }
}

/// A client whose connections reach only what `addresses` permits: names resolve
/// through it, redirects are not followed, and no proxy from the environment is used
/// (a proxy would connect on our behalf to addresses never checked).
fn client(config: &RelayConfig, addresses: &AddressPolicy) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(addresses.resolver())
        .connect_timeout(config.delivery.timeout.min(Duration::from_secs(10)))
        // Endpoints often share a host (the platform's services, a hosting provider's
        // webhooks): kept below what the relay holds at once, connections were closed and
        // opened again all through a busy minute.
        .pool_max_idle_per_host(config.delivery.max_in_flight)
        .user_agent(concat!("Dropship-Bridge/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Wakes the delivery loop when the consumer (of any relay process) or the API queued
/// deliveries.
async fn listen(pool: PgPool, ready: Arc<Notify>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                warn!(%error, "cannot listen for queued deliveries; polling meanwhile");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        if listener.listen(READY_CHANNEL).await.is_err() {
            continue;
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                received = listener.recv() => match received {
                    Ok(_) => ready.notify_one(),
                    Err(_) => break,
                },
            }
        }
    }
}
