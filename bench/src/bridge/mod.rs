//! `bench bridge`: events appended to the log of one store are routed by the relay and
//! delivered, signed, to receivers on loopback in this process; a delivery counts once
//! its attempt is in `bridge_deliveries`. Latency is event commit (`recorded_at`) to the
//! receiver holding the request.
//! - `burst_1` / `burst_8`: as many events as fast as the log takes them, to one service
//!   or to eight endpoints (the six services `product.created` routes to and two
//!   merchant webhooks): logged deliveries per second.
//! - `paced_1` / `paced_8`: a steady event rate (1,000/s by default): latency under it,
//!   and the queue's backlog (due, unclaimed deliveries) a second after the last event
//!   and at its largest (sampled every second).
//!
//! Each workload also reports the rows it wrote to the relay's tables and the WAL bytes
//! of the whole platform, per delivery. `--prefill-attempts` first fills the tables with
//! that many delivered attempts of another store.

mod prefill;
mod writes;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, routing::post, serve::ListenerExt};
use chrono::{DateTime, Utc};
use dropship::Role;
use eventlog::{AppendRequest, EventLog, ExpectedVersion, GroupCommitConfig, NewEvent};
use schemas::{
    Event,
    product::{Money, ProductCreated, ProductData},
};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use tokio_util::sync::CancellationToken;
use writes::{Counters, backlog, largest_backlog};

use crate::{
    http::BenchServer,
    scratch::{Scratch, settle},
};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Events of each burst.
    #[arg(long, default_value_t = 20_000)]
    burst_events: u64,
    /// Event rate of the paced runs, per second.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Seconds each paced run lasts.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Endpoints per event in each run: 1 (one service) and 8.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8])]
    endpoints: Vec<usize>,
    /// Server worker threads.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Delivered attempts (with their messages and bodies) written before the runs, as
    /// a relay that has kept its history holds them: the rates must not depend on it.
    #[arg(long, default_value_t = 0)]
    prefill_attempts: u64,
    /// The platform's roles to run (default: every role), to tell what each costs the
    /// relay. The publisher, the command API and the relay are needed to deliver at all.
    #[arg(long, value_delimiter = ',', value_enum)]
    roles: Vec<Role>,
}

/// The relay's limits per endpoint are lifted so one endpoint can take the whole load.
const SETTINGS: &[(&str, &str)] = &[
    ("BRIDGE_ALLOWED_SUBNETS", "127.0.0.0/8"),
    ("WEBHOOK_ALLOWED_SUBNETS", "127.0.0.0/8"),
    ("BRIDGE_ENDPOINT_RATE", "1000000"),
    ("BRIDGE_ENDPOINT_CONCURRENCY", "64"),
    (
        "PLATFORM_WEBHOOK_SECRET",
        "bench-platform-webhook-secret-0123456789",
    ),
];

pub async fn run(options: Options) -> anyhow::Result<()> {
    for &endpoints in &options.endpoints {
        let seen = Arc::new(Seen::default());
        let receivers = start_receivers(seen.clone())?;
        let service_urls = SERVICES
            .iter()
            .map(|service| format!("{service}={receivers}/{service}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut settings = SETTINGS.to_vec();
        settings.push(("BRIDGE_SERVICE_URLS", &service_urls));
        let roles = match options.roles.as_slice() {
            [] => Role::ALL.to_vec(),
            chosen => chosen.to_vec(),
        };
        let server = BenchServer::start_roles(options.server_threads, &settings, roles).await?;
        let endpoints = Run {
            endpoints,
            seen,
            receivers,
        };
        let result = drive(&options, &server.address, &server.scratch, endpoints).await;
        server.stop().await?;
        result?;
    }
    Ok(())
}

/// What the receivers saw: one latency per delivery.
#[derive(Default)]
struct Seen {
    latencies_us: Mutex<Vec<u32>>,
}

async fn receive(State(seen): State<Arc<Seen>>, body: Bytes) -> &'static str {
    #[derive(serde::Deserialize)]
    struct Stamp {
        timestamp: DateTime<Utc>,
    }
    if let Ok(stamp) = serde_json::from_slice::<Stamp>(&body) {
        let latency = (Utc::now() - stamp.timestamp)
            .num_microseconds()
            .unwrap_or(0);
        if let Ok(mut latencies) = seen.latencies_us.lock() {
            latencies.push(u32::try_from(latency.max(0)).unwrap_or(u32::MAX));
        }
    }
    "ok"
}

/// Receivers on a thread of their own, as the services run elsewhere.
fn start_receivers(seen: Arc<Seen>) -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let address = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(runtime) = runtime {
            runtime.block_on(async move {
                let app = Router::new().fallback(post(receive)).with_state(seen);
                if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                    let listener = listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    let _ = axum::serve(listener, app).await;
                }
            });
        }
    });
    Ok(address)
}

/// One run's endpoints per event, and the receivers that count their deliveries.
struct Run {
    endpoints: usize,
    seen: Arc<Seen>,
    receivers: String,
}

/// The services connected first, in this order; webhooks make up the rest.
const SERVICES: [&str; 6] = [
    "shopchat",
    "contentforge",
    "rankpilot",
    "trendscout",
    "postpilot",
    "adscale",
];

async fn drive(
    options: &Options,
    address: &str,
    scratch: &Scratch,
    run: Run,
) -> anyhow::Result<()> {
    let Run {
        endpoints,
        seen,
        receivers,
    } = run;
    let client = reqwest::Client::new();
    let token = register(&client, address).await?;
    let store: Value = client
        .post(format!("{address}/api/v1/stores"))
        .bearer_auth(&token)
        .json(&json!({"name": "Bridge Bench", "niche": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let store_id: Uuid = store["data"]["id"].as_str().unwrap_or_default().parse()?;
    for (n, service) in SERVICES.iter().take(endpoints.min(6)).enumerate() {
        let body = json!({"service": service});
        connect(&client, address, &token, store_id, "integrations", body, n).await?;
    }
    for n in 6..endpoints {
        let body =
            json!({"endpoint_url": format!("{receivers}/hook{n}"), "event_types": ["product.*"]});
        connect(&client, address, &token, store_id, "webhooks", body, n).await?;
    }
    let pool = PgPool::connect(&scratch.url).await?;
    wait_for_deliveries(&pool, 0, endpoints as i64).await?;
    if options.prefill_attempts > 0 {
        prefill::prefill(&pool, options.prefill_attempts).await?;
    }
    settle(&pool).await;
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());

    let measurement = Measurement::start(&pool, &seen).await?;
    let appends = (0..64u64).map(|lane| {
        let log = log.clone();
        let count = options.burst_events / 64;
        tokio::spawn(async move {
            for _ in 0..count {
                append_product(&log, store_id, lane).await?;
            }
            Ok::<_, anyhow::Error>(())
        })
    });
    for append in futures::future::join_all(appends).await {
        append??;
    }
    let appended_in = measurement.started.elapsed();
    let deliveries = (options.burst_events / 64 * 64) as i64 * endpoints as i64;
    let (elapsed, mut writes) = measurement.finish(&pool, &seen, deliveries).await?;
    writes["events_appended_in_s"] = json!((appended_in.as_secs_f64() * 1000.0).round() / 1000.0);
    report(
        &format!("burst_{endpoints}"),
        endpoints,
        deliveries,
        elapsed,
        &seen,
        writes,
    );

    settle(&pool).await;
    let measurement = Measurement::start(&pool, &seen).await?;
    let started = measurement.started;
    let sampling = CancellationToken::new();
    let sampler = tokio::spawn(largest_backlog(pool.clone(), sampling.clone()));
    let total = options.rate * options.seconds;
    let interval = Duration::from_secs_f64(1.0 / options.rate as f64);
    let mut appends = Vec::with_capacity(total as usize);
    for n in 0..total {
        tokio::time::sleep_until((started + interval.mul_f64(n as f64)).into()).await;
        let log = log.clone();
        appends.push(tokio::spawn(async move {
            append_product(&log, store_id, n).await
        }));
    }
    for append in appends {
        append.await??;
    }
    sampling.cancel();
    // A relay that keeps up has claimed by then everything due (its p99 is far below a
    // second); one that falls behind still holds thousands.
    let at_end = tokio::spawn({
        let pool = pool.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            backlog(&pool).await
        }
    });
    let deliveries = total as i64 * endpoints as i64;
    let (elapsed, mut writes) = measurement.finish(&pool, &seen, deliveries).await?;
    let backlog_at_end = at_end.await??;
    let backlog_largest = sampler.await?;
    writes["queue_backlog_at_end"] = json!(backlog_at_end);
    writes["queue_backlog_largest"] = json!(backlog_largest);
    report(
        &format!("paced_{endpoints}"),
        endpoints,
        deliveries,
        elapsed,
        &seen,
        writes,
    );
    Ok(())
}

/// One workload, from its first event to its last delivery logged.
struct Measurement {
    before: Counters,
    logged_before: i64,
    started: Instant,
}

impl Measurement {
    async fn start(pool: &PgPool, seen: &Seen) -> anyhow::Result<Self> {
        seen.latencies_us.lock().map(|mut l| l.clear()).ok();
        Ok(Self {
            before: Counters::read(pool).await?,
            logged_before: last_logged(pool).await?,
            started: Instant::now(),
        })
    }

    /// Once `deliveries` were received and logged: how long that took, and what was
    /// written for them.
    async fn finish(
        self,
        pool: &PgPool,
        seen: &Seen,
        deliveries: i64,
    ) -> anyhow::Result<(Duration, Value)> {
        wait_for_receipts(seen, deliveries).await;
        wait_for_deliveries(pool, self.logged_before, deliveries).await?;
        let elapsed = self.started.elapsed();
        let writes = Counters::read(pool)
            .await?
            .per_delivery_since(&self.before, deliveries);
        Ok((elapsed, writes))
    }
}

fn report(
    workload: &str,
    endpoints: usize,
    deliveries: i64,
    elapsed: Duration,
    seen: &Seen,
    writes: Value,
) {
    let mut latencies = seen
        .latencies_us
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        f64::from(latencies[index]) / 1000.0
    };
    let mut line = json!({
        "workload": workload,
        "endpoints": endpoints,
        "deliveries_logged": deliveries,
        "seconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "logged_deliveries_per_s": (deliveries as f64 / elapsed.as_secs_f64()).round(),
        "received": latencies.len(),
        "event_to_delivery_p50_ms": percentile(0.50),
        "event_to_delivery_p99_ms": percentile(0.99),
        "event_to_delivery_max_ms": percentile(1.0),
    });
    if let (Some(line), Value::Object(writes)) = (line.as_object_mut(), writes) {
        line.extend(writes);
    }
    crate::results::emit(line);
}

async fn register(client: &reqwest::Client, address: &str) -> anyhow::Result<String> {
    let body: Value = client
        .post(format!("{address}/api/v1/auth/register"))
        .json(&json!({"email": format!("bench-{}@example.com", Uuid::new_v4().simple()), "password": "bench password 1"}))
        .send()
        .await?
        .json()
        .await?;
    body["data"]["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("registration failed: {body}"))
}

async fn connect(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    store_id: Uuid,
    kind: &str,
    body: Value,
    n: usize,
) -> anyhow::Result<()> {
    let response = client
        .post(format!("{address}/api/v1/stores/{store_id}/{kind}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "connecting endpoint {n}: {}",
        response.text().await?
    );
    Ok(())
}

async fn append_product(log: &EventLog, store_id: Uuid, n: u64) -> anyhow::Result<()> {
    let product = ProductData {
        store_id,
        title: format!("Bench product {n}"),
        slug: format!("bench-product-{}", Uuid::new_v4().simple()),
        description: Some("A product of the bridge benchmark.".into()),
        price: Money {
            amount: 1999,
            currency: "USD".into(),
        },
        compare_at_price: None,
        cost: None,
        images: Vec::new(),
        status: "active".into(),
        seo_title: None,
        seo_description: None,
        tags: vec!["bench".into()],
        category_ids: Vec::new(),
        variants: Vec::new(),
    };
    let request = AppendRequest::new(
        format!("product-{}", Uuid::now_v7()),
        ExpectedVersion::NoStream,
        vec![NewEvent::new(Event::ProductCreated(ProductCreated {
            product,
        }))],
    )
    .in_store(store_id);
    log.append(request).await?;
    Ok(())
}

/// The newest attempt row: a workload's deliveries are the rows after it, counted by
/// key however many rows the log holds.
async fn last_logged(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM bridge_deliveries")
            .fetch_one(pool)
            .await?,
    )
}

async fn logged_after(pool: &PgPool, last_logged: i64) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM bridge_deliveries WHERE id > $1 AND success")
            .bind(last_logged)
            .fetch_one(pool)
            .await?,
    )
}

/// Watches the receivers first: counting the log while it grows would load the
/// database being measured.
async fn wait_for_receipts(seen: &Seen, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let received = seen
            .latencies_us
            .lock()
            .map(|l| l.len())
            .unwrap_or_default();
        if received as i64 >= count || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_for_deliveries(pool: &PgPool, last_logged: i64, count: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while logged_after(pool, last_logged).await? < count {
        if Instant::now() > deadline {
            let failures: Vec<(String, i32, Option<String>, i64)> = sqlx::query_as(
                "SELECT service, status_code, error, count(*) FROM bridge_deliveries \
                 WHERE NOT success GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 10",
            )
            .fetch_all(pool)
            .await?;
            let states: Vec<(String, i64, Option<DateTime<Utc>>)> = sqlx::query_as(
                "SELECT state, count(*), min(next_attempt_at) FROM bridge_messages GROUP BY 1",
            )
            .fetch_all(pool)
            .await?;
            anyhow::bail!(
                "deliveries stalled below {count}; failed attempts: {failures:?}; deliveries: {states:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
