//! `bench http`: the real HTTP server (every role, as `dropship serve` runs it) driven
//! over loopback by concurrent keep-alive clients in this process.
//! - `create_store`: `POST /api/v1/stores` by many merchants, each request a new store;
//!   with every role and without the projector (see [`run`]).
//! - `public_store`: `GET /api/v1/public/stores/{slug}` over stores already projected,
//!   so it measures the cached read path.
//!
//! The server runs on a runtime of its own threads, so the load generator's tasks do
//! not queue behind its work (they still share the machine's cores, as the targets say).

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use dropship::{Platform, Role, config::Config};
use eventlog::jetstream::StreamNames;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::scratch::{Scratch, settle};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Create-store commands to send with every role, and as many without the projector.
    #[arg(long, default_value_t = 30_000)]
    commands: u64,
    /// Public store reads to send.
    #[arg(long, default_value_t = 300_000)]
    reads: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: u64,
    /// Merchants the commands are spread over (at most 20: registrations per address
    /// are limited).
    #[arg(long, default_value_t = 16)]
    merchants: u64,
    /// Rounds of four create-store phases (with, without, without, with the projector).
    #[arg(long, default_value_t = 2)]
    rounds: u64,
    /// Server worker threads.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
}

/// What the projector costs the write path is measured in this run, with and without
/// it, in rounds of four phases (with, without, without, with) that share the commands
/// alike. Machines of this kind change speed by tens of percent within minutes; in that
/// order a drift weighs on both sides alike instead of on the ratio, and more rounds
/// average out more of it.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let phase = options.commands / (2 * options.rounds.max(1));
    let all_roles = Role::ALL.to_vec();
    let without_projector: Vec<Role> = Role::ALL
        .iter()
        .copied()
        .filter(|role| *role != Role::Projector)
        .collect();
    let server = BenchServer::start(options.server_threads, &[]).await?;
    let result = drive(&options, phase, &server.address, &server.scratch).await;
    server.stop().await?;
    let mut every_role = result?;
    let mut phase_rates = vec![every_role.rate().round()];
    let mut others: Option<Measured> = None;
    for round in 0..options.rounds.max(1) {
        let order = [false, false, true];
        let order = if round == 0 {
            &order[..]
        } else {
            &[true, false, false, true][..]
        };
        for with_projector in order {
            let roles = if *with_projector {
                &all_roles
            } else {
                &without_projector
            };
            let measured = create_stores(&options, phase, roles.clone()).await?;
            phase_rates.push(measured.rate().round());
            if *with_projector {
                every_role.merge(measured);
            } else if let Some(others) = others.as_mut() {
                others.merge(measured);
            } else {
                others = Some(measured);
            }
        }
    }
    let others = others.expect("every round has phases without the projector");
    every_role.report_with(
        "create_store",
        options.clients,
        json!({"roles": "all", "process_peak_rss_mb": peak_rss_mb()}),
    );
    others.report_with(
        "create_store",
        options.clients,
        json!({
            "roles": "all_but_projector",
            "with_projector_ratio": (every_role.rate() / others.rate() * 1000.0).round() / 1000.0,
            "phase_rates": phase_rates,
        }),
    );
    Ok(())
}

/// The platform (every role) on a runtime of its own threads, against a scratch
/// database and a JetStream stream of its own that `stop` removes.
pub(crate) struct BenchServer {
    pub address: String,
    pub scratch: Scratch,
    names: StreamNames,
    nats_url: String,
    shutdown: CancellationToken,
    serving: Serving,
}

impl BenchServer {
    /// `settings` are environment settings that override the platform's defaults.
    pub(crate) async fn start(threads: usize, settings: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_roles(threads, settings, Role::ALL.to_vec()).await
    }

    pub(crate) async fn start_roles(
        threads: usize,
        settings: &[(&str, &str)],
        roles: Vec<Role>,
    ) -> anyhow::Result<Self> {
        let server = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/dropship".into());
        let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        let scratch = Scratch::create(&server).await?;
        let names = StreamNames::new(
            format!("BENCH_{}", Uuid::new_v4().simple()),
            format!("bench_{}", Uuid::new_v4().simple()),
        );
        let (address, shutdown, serving) =
            start_server(&scratch.url, &nats_url, &names, threads, settings, roles).await?;
        Ok(Self {
            address,
            scratch,
            names,
            nats_url,
            shutdown,
            serving,
        })
    }

    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let _ = self.serving.join();
        if let Ok(client) = async_nats::connect(&self.nats_url).await {
            let _ = async_nats::jetstream::new(client)
                .delete_stream(&self.names.stream)
                .await;
        }
        self.scratch.drop().await
    }
}

type Serving = std::thread::JoinHandle<()>;

async fn start_server(
    database_url: &str,
    nats_url: &str,
    names: &StreamNames,
    threads: usize,
    settings: &[(&str, &str)],
    roles: Vec<Role>,
) -> anyhow::Result<(String, CancellationToken, Serving)> {
    let (database_url, nats_url) = (database_url.to_owned(), nats_url.to_owned());
    let names = names.clone();
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = Config::from_lookup(move |name| {
        if let Some((_, value)) = settings.iter().find(|(key, _)| key == name) {
            return Some(value.clone());
        }
        match name {
            "DATABASE_URL" => Some(database_url.clone()),
            "NATS_URL" => Some(nats_url.clone()),
            "NATS_STREAM" => Some(names.stream.clone()),
            "NATS_SUBJECT_PREFIX" => Some(names.subject_prefix.clone()),
            // Any other setting from the environment, so a run can try one out.
            _ => std::env::var(name).ok(),
        }
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("server")
        .enable_all()
        .build()?;
    let shutdown = CancellationToken::new();
    let (bound, started) = tokio::sync::oneshot::channel::<anyhow::Result<SocketAddr>>();
    let stop = shutdown.clone();
    let serving = std::thread::spawn(move || {
        runtime.block_on(async move {
            let started = async {
                let platform = Platform::start(config).await?;
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                Ok::<_, anyhow::Error>((platform, listener))
            }
            .await;
            match started {
                Ok((platform, listener)) => {
                    let address = listener.local_addr();
                    let _ = bound.send(address.map_err(Into::into));
                    let _ = platform.serve(&roles, listener, stop).await;
                }
                Err(error) => {
                    let _ = bound.send(Err(error));
                }
            }
        });
    });
    let address = started.await??;
    Ok((format!("http://{address}"), shutdown, serving))
}

/// `commands` create-store requests, then `public_store_cached` over the stores they
/// made, against every role; returns the former.
async fn drive(
    options: &Options,
    commands: u64,
    address: &str,
    scratch: &Scratch,
) -> anyhow::Result<Measured> {
    let (client, tokens) = merchants_on_settled(options, address, scratch).await?;
    let created = create_stores_as(options, commands, &client, address, &tokens).await?;

    let slugs = public_slugs(&client, address, &tokens[0]).await?;
    let slugs = Arc::new(slugs);
    let measured = load(options.clients, options.reads, {
        let (client, address) = (client.clone(), address.to_owned());
        move |client_index, n| {
            let (client, address) = (client.clone(), address.clone());
            let slug = slugs[((client_index * 7919 + n) as usize) % slugs.len()].clone();
            async move {
                let response = client
                    .get(format!("{address}/api/v1/public/stores/{slug}"))
                    .send()
                    .await?;
                let ok = response.status() == reqwest::StatusCode::OK;
                response.bytes().await?;
                Ok(ok)
            }
        }
    })
    .await?;
    measured.report("public_store_cached", options.clients);
    Ok(created)
}

/// `commands` create-store requests from merchants of their own, on a platform of its
/// own running `roles`.
async fn create_stores(
    options: &Options,
    commands: u64,
    roles: Vec<Role>,
) -> anyhow::Result<Measured> {
    let server = BenchServer::start_roles(options.server_threads, &[], roles).await?;
    let created = async {
        let (client, tokens) =
            merchants_on_settled(options, &server.address, &server.scratch).await?;
        create_stores_as(options, commands, &client, &server.address, &tokens).await
    }
    .await;
    server.stop().await?;
    created
}

/// A client, the merchants' tokens, and the scratch database settled (vacuumed and
/// checkpointed) so that each phase starts from the same state.
async fn merchants_on_settled(
    options: &Options,
    address: &str,
    scratch: &Scratch,
) -> anyhow::Result<(reqwest::Client, Vec<String>)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients as usize)
        .build()?;
    let tokens = register(&client, address, options.merchants).await?;
    let pool = sqlx::PgPool::connect(&scratch.url).await?;
    settle(&pool).await;
    pool.close().await;
    Ok((client, tokens))
}

/// Every client creating stores, each request a new store, as one of `tokens`.
async fn create_stores_as(
    options: &Options,
    commands: u64,
    client: &reqwest::Client,
    address: &str,
    tokens: &[String],
) -> anyhow::Result<Measured> {
    let tokens = Arc::new(tokens.to_vec());
    load(options.clients, commands, {
        let (client, address) = (client.clone(), address.to_owned());
        move |client_index, n| {
            let (client, address) = (client.clone(), address.clone());
            let token = tokens[(client_index as usize) % tokens.len()].clone();
            async move {
                let response = client
                    .post(format!("{address}/api/v1/stores"))
                    .bearer_auth(token)
                    .json(&json!({"name": format!("Bench Store {client_index} {n}"), "niche": "bench"}))
                    .send()
                    .await?;
                Ok(response.status() == reqwest::StatusCode::CREATED)
            }
        }
    })
    .await
}

/// The peak resident memory of this process (the server and the load generator
/// together, so an upper bound for the server's), from `/proc`.
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024)
}

pub(crate) async fn register(
    client: &reqwest::Client,
    address: &str,
    merchants: u64,
) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::new();
    for _ in 0..merchants {
        let body: Value = client
            .post(format!("{address}/api/v1/auth/register"))
            .json(&json!({"email": format!("bench-{}@example.com", Uuid::new_v4().simple()), "password": "bench password"}))
            .send()
            .await?
            .json()
            .await?;
        let token = body["data"]["access_token"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("registration failed: {body}"))?;
        tokens.push(token.to_owned());
    }
    Ok(tokens)
}

/// 100 stores of one merchant, waited for until the read model has them all.
async fn public_slugs(
    client: &reqwest::Client,
    address: &str,
    token: &str,
) -> anyhow::Result<Vec<String>> {
    let mut slugs = Vec::new();
    let mut position = 0;
    for n in 0..100 {
        let response = client
            .post(format!("{address}/api/v1/stores"))
            .bearer_auth(token)
            .json(&json!({"name": format!("Storefront {n} {}", Uuid::new_v4().simple())}))
            .send()
            .await?;
        position = response
            .headers()
            .get("x-position")
            .and_then(|p| p.to_str().ok()?.parse::<i64>().ok())
            .unwrap_or(position);
        let body: Value = response.json().await?;
        slugs.push(body["data"]["slug"].as_str().unwrap_or_default().to_owned());
    }
    let waited = client
        .get(format!("{address}/api/v1/stores?per_page=1"))
        .bearer_auth(token)
        .header("x-min-position", position.to_string())
        .timeout(Duration::from_secs(120))
        .send()
        .await?;
    anyhow::ensure!(
        waited.status().is_success(),
        "the read model did not catch up"
    );
    Ok(slugs)
}

pub(crate) struct Measured {
    requests: u64,
    failures: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl Measured {
    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies_us[index]) / 1000.0
    }

    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Takes in another phase of the same workload: its requests, time and latencies.
    fn merge(&mut self, other: Measured) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.elapsed += other.elapsed;
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
    }

    pub(crate) fn report(&self, workload: &str, clients: u64) {
        self.report_with(workload, clients, json!({}));
    }

    /// `report` with `extra` fields.
    pub(crate) fn report_with(&self, workload: &str, clients: u64, extra: Value) {
        let mut line = json!({
            "workload": workload,
            "clients": clients,
            "requests": self.requests,
            "failures": self.failures,
            "seconds": (self.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "requests_per_s": self.rate().round(),
            "p50_ms": self.percentile_ms(0.50),
            "p99_ms": self.percentile_ms(0.99),
            "max_ms": self.percentile_ms(1.0),
        });
        if let (Some(line), Value::Object(extra)) = (line.as_object_mut(), extra) {
            line.extend(extra);
        }
        crate::results::emit(line);
    }
}

/// Runs `total` requests over `clients` concurrent loops; `send(client, n)` makes one
/// and says whether it succeeded.
pub(crate) async fn load<F, Fut>(clients: u64, total: u64, send: F) -> anyhow::Result<Measured>
where
    F: Fn(u64, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<bool>> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let send = send.clone();
            let count = total / clients;
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(count as usize);
                let mut failures = 0u64;
                for n in 0..count {
                    let sent = Instant::now();
                    if !send(client, n).await? {
                        failures += 1;
                    }
                    latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                }
                Ok::<_, anyhow::Error>((latencies, failures))
            })
        })
        .collect();
    let mut latencies_us = Vec::with_capacity(total as usize);
    let mut failures = 0;
    for task in tasks {
        let (latencies, failed) = task.await??;
        latencies_us.extend(latencies);
        failures += failed;
    }
    let elapsed = started.elapsed();
    latencies_us.sort_unstable();
    Ok(Measured {
        requests: latencies_us.len() as u64,
        failures,
        elapsed,
        latencies_us,
    })
}
