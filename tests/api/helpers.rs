//! `spawn_app()`: the whole platform (every role) in this process, on port 0, against a
//! database and a JetStream namespace of its own that are removed when the app drops.

use dropship::{Platform, Role, config::Config};
use eventlog::jetstream::StreamNames;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::{PgPool, postgres::PgPoolOptions};
use testkit::{database_url, isolated_names};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::receiver::Receiver;

/// Known to the tests so they can forge tokens the platform would have signed.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const PASSWORD: &str = "correct horse battery";

pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_stripe-signing-secret-for-tests";
pub const PLATFORM_WEBHOOK_SECRET: &str = "platform-webhook-secret-for-tests-0123456789";

pub struct TestApp {
    pub address: String,
    /// Where the platform's eight services receive deliveries: one path per service
    /// (`/rankpilot`, `/flowsend`, …), as `BRIDGE_SERVICE_URLS` says.
    pub services: Receiver,
    pub client: reqwest::Client,
    pub pool: PgPool,
    database: String,
    names: StreamNames,
    overrides: Vec<(String, String)>,
    shutdown: CancellationToken,
    serving: Option<JoinHandle<std::io::Result<()>>>,
}

/// Every role, with the test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Role::ALL, &[]).await
}

/// `BRIDGE_SERVICE_URLS` for services received by `services`, each at its own path.
pub fn service_urls(services: &Receiver) -> String {
    SERVICES
        .iter()
        .map(|service| format!("{service}={}", services.url(service)))
        .collect::<Vec<_>>()
        .join(",")
}

pub const SERVICES: [&str; 8] = [
    "trendscout",
    "contentforge",
    "rankpilot",
    "flowsend",
    "spydrop",
    "postpilot",
    "adscale",
    "shopchat",
];

/// The settings every test app runs with: its own database, stream and media folder,
/// its services at `services`, deliveries allowed to loopback (where the receivers
/// are), and a compressed retry schedule; `overrides` win.
fn config_for(
    database: &str,
    names: &StreamNames,
    services: &Receiver,
    overrides: &[(String, String)],
) -> Config {
    let service_urls = service_urls(services);
    let url = database_url(database);
    let media_dir = std::env::temp_dir()
        .join(database)
        .to_string_lossy()
        .into_owned();
    Config::from_lookup(|name| {
        if let Some((_, value)) = overrides.iter().find(|(key, _)| key == name) {
            return Some(value.clone());
        }
        match name {
            "DATABASE_URL" => Some(url.clone()),
            "NATS_URL" => Some(testkit::nats_url()),
            "NATS_STREAM" => Some(names.stream.clone()),
            "NATS_SUBJECT_PREFIX" => Some(names.subject_prefix.clone()),
            "JWT_SECRET" => Some(JWT_SECRET.to_owned()),
            "PLATFORM_WEBHOOK_SECRET" => Some(PLATFORM_WEBHOOK_SECRET.to_owned()),
            "STRIPE_WEBHOOK_SECRET" => Some(STRIPE_WEBHOOK_SECRET.to_owned()),
            "READ_YOUR_WRITES_TIMEOUT_MS" => Some("2000".to_owned()),
            // Four apps run at once against one Postgres (100 connections).
            "DATABASE_MAX_CONNECTIONS" => Some("16".to_owned()),
            "MEDIA_DIR" => Some(media_dir.clone()),
            "BRIDGE_ALLOWED_SUBNETS" | "WEBHOOK_ALLOWED_SUBNETS" => Some("127.0.0.0/8".to_owned()),
            "BRIDGE_SERVICE_URLS" => Some(service_urls.clone()),
            "BRIDGE_RETRY_SCHEDULE" => Some("0,0.2,0.2,0.2,0.2".to_owned()),
            "BRIDGE_THROTTLE_WAIT_SECS" => Some("0.2".to_owned()),
            "BRIDGE_CIRCUIT_COOLDOWN_SECS" => Some("0.5".to_owned()),
            _ => None,
        }
    })
    .expect("test configuration is valid")
}

/// The platform with `roles` only, and settings `overrides`.
pub async fn spawn_app_with(roles: &[Role], overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_via(roles, overrides, None).await
}

/// Every role, its Postgres connections going through a proxy on 127.0.0.1:`port`
/// (without TLS, so the proxy can read the statements); the test's own pool does not.
pub async fn spawn_app_through(port: u16) -> TestApp {
    spawn_app_via(Role::ALL, &[], Some(port)).await
}

/// Where `DATABASE_URL` points: the Postgres server the proxies forward to.
pub fn postgres_address() -> std::net::SocketAddr {
    let url = database_url("postgres");
    let authority = url
        .split_once('@')
        .map_or(url.as_str(), |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:5432");
    let with_port = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    };
    with_port
        .replace("localhost", "127.0.0.1")
        .parse()
        .expect("DATABASE_URL names host:port")
}

async fn spawn_app_via(roles: &[Role], overrides: &[(&str, &str)], proxy: Option<u16>) -> TestApp {
    let database = format!("dropship_api_{}", Uuid::new_v4().simple());
    let names = isolated_names();
    let mut overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if let Some(port) = proxy {
        let direct = database_url(&database);
        let upstream = postgres_address().to_string();
        let proxied = direct.replacen(&upstream, &format!("127.0.0.1:{port}"), 1);
        overrides.push(("DATABASE_URL".into(), format!("{proxied}?sslmode=disable")));
    }
    let services = Receiver::start().await;
    let config = config_for(&database, &names, &services, &overrides);
    let platform = Platform::start(config).await.expect("the platform starts");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = format!("http://{}", listener.local_addr().expect("bound"));
    let shutdown = CancellationToken::new();
    let (roles, shutdown_for_serve) = (roles.to_vec(), shutdown.clone());
    let serving =
        tokio::spawn(async move { platform.serve(&roles, listener, shutdown_for_serve).await });
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&database_url(&database))
        .await
        .expect("the test database accepts connections");
    TestApp {
        address,
        services,
        client: reqwest::Client::new(),
        pool,
        database,
        names,
        overrides,
        shutdown,
        serving: Some(serving),
    }
}

/// A bridge relay running on a runtime of its own, so that a test can stop it dead.
pub struct Relay {
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// Drops its runtime at once: every task stops at its next await, nothing is
    /// flushed, recorded or acknowledged (as when the process is killed).
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

impl TestApp {
    /// Starts a `bridge-relay` role against this app's database and stream.
    pub fn start_relay(&self) -> Relay {
        let config = config_for(&self.database, &self.names, &self.services, &self.overrides);
        let (kill, killed) = std::sync::mpsc::channel::<()>();
        let (started, ready) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.spawn(async move {
                let platform = Platform::start(config).await.expect("the relay starts");
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
                let _ = started.send(());
                platform
                    .serve(&[Role::BridgeRelay], listener, CancellationToken::new())
                    .await
            });
            let _ = killed.recv();
            runtime.shutdown_background();
        });
        ready.recv().expect("the relay started");
        Relay {
            kill: Some(kill),
            thread: Some(thread),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(serving) = self.serving.take() {
            serving.abort();
        }
        let database = self.database.clone();
        let names = self.names.clone();
        // Async cleanup from a synchronous drop: on a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Runtime::new() else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = PgPoolOptions::new()
                    .connect(&database_url("postgres"))
                    .await
                {
                    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(&database));
                    let drop = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&admin).await;
                }
                if let Ok(client) = async_nats::connect(testkit::nats_url()).await {
                    testkit::delete_stream(&client, &names).await;
                }
            });
        })
        .join();
    }
}

/// A registered merchant and their tokens.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub email: String,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn register(&self) -> Merchant {
        let email = format!("merchant-{}@example.com", Uuid::new_v4().simple());
        let response = self
            .request(Method::POST, "/api/v1/auth/register")
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("register answers");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        Merchant {
            email,
            access: body["data"]["access_token"]
                .as_str()
                .expect("access")
                .to_owned(),
            refresh: body["data"]["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_owned(),
        }
    }

    pub async fn create_store(&self, merchant: &Merchant, name: &str) -> Written {
        let response = self
            .request(Method::POST, "/api/v1/stores")
            .bearer_auth(&merchant.access)
            .json(&json!({"name": name, "niche": "socks"}))
            .send()
            .await
            .expect("create answers");
        assert_eq!(response.status(), StatusCode::CREATED, "creating {name}");
        Written::from(response).await
    }

    /// A write by `merchant` that must succeed (2xx).
    pub async fn write(
        &self,
        merchant: &Merchant,
        method: Method,
        path: &str,
        body: Value,
    ) -> Written {
        let response = self
            .request(method.clone(), path)
            .bearer_auth(&merchant.access)
            .json(&body)
            .send()
            .await
            .expect("the write answers");
        let written = Written::from(response).await;
        assert!(
            written.status.is_success(),
            "{method} {path}: {:?}",
            written.body
        );
        written
    }

    pub async fn create_product(
        &self,
        merchant: &Merchant,
        store_id: &str,
        body: Value,
    ) -> Written {
        let path = format!("/api/v1/stores/{store_id}/products");
        let written = self.write(merchant, Method::POST, &path, body).await;
        assert_eq!(written.status, StatusCode::CREATED);
        written
    }

    /// A read by `merchant` that waits for `position`, as JSON, with its status.
    pub async fn read(
        &self,
        merchant: &Merchant,
        path: &str,
        position: Option<i64>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .request(Method::GET, path)
            .bearer_auth(&merchant.access);
        if let Some(position) = position {
            request = request.header("x-min-position", position.to_string());
        }
        let response = request.send().await.expect("the read answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A public read that waits for `position`.
    pub async fn public(&self, path: &str, position: Option<i64>) -> (StatusCode, Value) {
        let mut request = self.request(Method::GET, path);
        if let Some(position) = position {
            request = request.header("x-min-position", position.to_string());
        }
        let response = request.send().await.expect("the read answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A new API key of `merchant` with `scopes`: the answer's `data`, raw key included.
    pub async fn create_key(&self, merchant: &Merchant, scopes: &[&str]) -> Value {
        let response = self
            .request(Method::POST, "/api/v1/api-keys")
            .bearer_auth(&merchant.access)
            .json(&json!({"name": "integration", "scopes": scopes}))
            .send()
            .await
            .expect("create answers");
        assert_eq!(response.status(), StatusCode::CREATED);
        json_of(response).await["data"].clone()
    }

    pub async fn events_in(&self, stream_id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1")
            .bind(stream_id)
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }
}

/// The JSON body of a response that has one.
pub async fn json_of(response: Response) -> Value {
    response.json().await.expect("a JSON body")
}

/// What a write answered: its body and its version and position headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub position: Option<i64>,
    pub body: Value,
}

impl Written {
    pub async fn from(response: Response) -> Self {
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header("etag");
        let position = header("x-position").and_then(|p| p.parse().ok());
        let body = response.json().await.expect("a JSON body");
        Self {
            status,
            etag,
            position,
            body,
        }
    }

    pub fn id(&self) -> String {
        self.body["data"]["id"].as_str().expect("an id").to_owned()
    }
}

/// The error code of an enveloped error response, after checking the envelope.
pub async fn error_code(response: Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let body: Value = response.json().await.expect("errors are JSON");
    assert!(body["data"].is_null(), "errors carry no data: {body}");
    let code = body["error"]["code"]
        .as_str()
        .expect("an error code")
        .to_owned();
    (status, code, body["error"].clone())
}

/// The fields a 422 names.
pub fn fields(error: &Value) -> Vec<String> {
    error["details"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every route of the API: method and path template.
/// The tenant-isolation matrix walks the store-scoped ones; the OpenAPI test checks
/// that the document lists exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/api-keys"),
    ("GET", "/api/v1/api-keys"),
    ("DELETE", "/api/v1/api-keys/{key_id}"),
    ("POST", "/api/v1/stores"),
    ("GET", "/api/v1/stores"),
    ("GET", "/api/v1/stores/{store_id}"),
    ("PATCH", "/api/v1/stores/{store_id}"),
    ("DELETE", "/api/v1/stores/{store_id}"),
    ("POST", "/api/v1/stores/{store_id}/pause"),
    ("POST", "/api/v1/stores/{store_id}/activate"),
    ("GET", "/api/v1/stores/{store_id}/events"),
    ("GET", "/api/v1/stores/{store_id}/events/stream"),
    ("GET", "/api/v1/stores/{store_id}/events/ws"),
    ("GET", "/api/v1/public/stores/{slug}"),
    ("GET", "/api/v1/events/schemas"),
    ("POST", "/api/v1/stores/{store_id}/products"),
    ("GET", "/api/v1/stores/{store_id}/products"),
    ("GET", "/api/v1/stores/{store_id}/products/export.csv"),
    ("POST", "/api/v1/stores/{store_id}/products/bulk"),
    ("GET", "/api/v1/stores/{store_id}/products/{product_id}"),
    ("PATCH", "/api/v1/stores/{store_id}/products/{product_id}"),
    ("DELETE", "/api/v1/stores/{store_id}/products/{product_id}"),
    (
        "POST",
        "/api/v1/stores/{store_id}/products/{product_id}/publish",
    ),
    (
        "POST",
        "/api/v1/stores/{store_id}/products/{product_id}/variants",
    ),
    (
        "PATCH",
        "/api/v1/stores/{store_id}/products/{product_id}/variants/{variant_id}",
    ),
    (
        "DELETE",
        "/api/v1/stores/{store_id}/products/{product_id}/variants/{variant_id}",
    ),
    (
        "POST",
        "/api/v1/stores/{store_id}/products/{product_id}/inventory",
    ),
    ("POST", "/api/v1/stores/{store_id}/categories"),
    ("GET", "/api/v1/stores/{store_id}/categories"),
    ("GET", "/api/v1/stores/{store_id}/categories/{category_id}"),
    (
        "PATCH",
        "/api/v1/stores/{store_id}/categories/{category_id}",
    ),
    (
        "DELETE",
        "/api/v1/stores/{store_id}/categories/{category_id}",
    ),
    ("POST", "/api/v1/stores/{store_id}/collections"),
    ("GET", "/api/v1/stores/{store_id}/collections"),
    (
        "GET",
        "/api/v1/stores/{store_id}/collections/{collection_id}",
    ),
    (
        "PATCH",
        "/api/v1/stores/{store_id}/collections/{collection_id}",
    ),
    (
        "DELETE",
        "/api/v1/stores/{store_id}/collections/{collection_id}",
    ),
    ("POST", "/api/v1/stores/{store_id}/media"),
    ("GET", "/api/v1/public/stores/{slug}/products"),
    (
        "GET",
        "/api/v1/public/stores/{slug}/products/{product_slug}",
    ),
    ("GET", "/api/v1/public/stores/{slug}/categories"),
    ("GET", "/api/v1/public/stores/{slug}/collections"),
    ("GET", "/api/v1/public/media/{store_id}/{file}"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/stores/{store_id}/integrations"),
    ("GET", "/api/v1/stores/{store_id}/integrations"),
    (
        "GET",
        "/api/v1/stores/{store_id}/integrations/{integration_id}",
    ),
    (
        "PATCH",
        "/api/v1/stores/{store_id}/integrations/{integration_id}",
    ),
    (
        "DELETE",
        "/api/v1/stores/{store_id}/integrations/{integration_id}",
    ),
    (
        "POST",
        "/api/v1/stores/{store_id}/integrations/{integration_id}/rotate-secret",
    ),
    ("POST", "/api/v1/stores/{store_id}/webhooks"),
    ("GET", "/api/v1/stores/{store_id}/webhooks"),
    ("GET", "/api/v1/stores/{store_id}/webhooks/{webhook_id}"),
    ("PATCH", "/api/v1/stores/{store_id}/webhooks/{webhook_id}"),
    ("DELETE", "/api/v1/stores/{store_id}/webhooks/{webhook_id}"),
    (
        "POST",
        "/api/v1/stores/{store_id}/webhooks/{webhook_id}/rotate-secret",
    ),
    ("GET", "/api/v1/bridge/activity"),
    (
        "GET",
        "/api/v1/bridge/activity/{resource_type}/{resource_id}",
    ),
    ("GET", "/api/v1/bridge/service/{name}/activity"),
    ("POST", "/api/v1/bridge/service/{name}/redeliver"),
    ("GET", "/api/v1/bridge/summary"),
    ("POST", "/api/v1/bridge/dispatch"),
    ("POST", "/api/v1/public/stores/{slug}/checkout"),
    ("POST", "/api/v1/public/payments/{session}/confirm"),
    ("POST", "/api/v1/webhooks/stripe"),
    ("GET", "/api/v1/stores/{store_id}/orders"),
    ("GET", "/api/v1/stores/{store_id}/orders/{order_id}"),
    ("GET", "/api/v1/stores/{store_id}/orders/export.csv"),
    ("GET", "/api/v1/stores/{store_id}/customers"),
    ("GET", "/api/v1/stores/{store_id}/customers/{customer_id}"),
    ("GET", "/api/v1/stores/{store_id}/sales/today"),
    ("GET", "/api/v1/public/stores/{slug}/orders/{number}"),
    (
        "POST",
        "/api/v1/stores/{store_id}/orders/{order_id}/fulfillments",
    ),
    (
        "POST",
        "/api/v1/stores/{store_id}/orders/{order_id}/deliver",
    ),
    ("POST", "/api/v1/stores/{store_id}/orders/{order_id}/cancel"),
    (
        "POST",
        "/api/v1/stores/{store_id}/orders/{order_id}/refunds",
    ),
    ("POST", "/api/v1/stores/{store_id}/orders/{order_id}/notes"),
];

/// The storefront customer's routes, which a customer's token opens (for its store) and
/// nothing else does.
pub const CUSTOMER_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/public/stores/{slug}/customers/logout"),
    ("GET", "/api/v1/public/stores/{slug}/customers/me"),
    ("PATCH", "/api/v1/public/stores/{slug}/customers/me"),
    (
        "POST",
        "/api/v1/public/stores/{slug}/customers/me/addresses",
    ),
    (
        "PUT",
        "/api/v1/public/stores/{slug}/customers/me/addresses/{address_id}",
    ),
    (
        "DELETE",
        "/api/v1/public/stores/{slug}/customers/me/addresses/{address_id}",
    ),
    (
        "POST",
        "/api/v1/public/stores/{slug}/customers/me/addresses/{address_id}/default",
    ),
    (
        "PUT",
        "/api/v1/public/stores/{slug}/customers/me/wishlist/{product_id}",
    ),
    (
        "DELETE",
        "/api/v1/public/stores/{slug}/customers/me/wishlist/{product_id}",
    ),
    ("GET", "/api/v1/public/stores/{slug}/customers/me/orders"),
];

/// The routes with which a customer obtains tokens: no credential needed.
pub const CUSTOMER_ENTRY_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/public/stores/{slug}/customers/register"),
    ("POST", "/api/v1/public/stores/{slug}/customers/login"),
    ("POST", "/api/v1/public/stores/{slug}/customers/refresh"),
];

/// A service connected to `store_id` at `url`: its id, its secret and the write's position.
pub async fn connect(
    app: &TestApp,
    merchant: &Merchant,
    store_id: &str,
    body: Value,
) -> (String, String, i64) {
    let path = format!("/api/v1/stores/{store_id}/integrations");
    let written = app.write(merchant, Method::POST, &path, body).await;
    assert_eq!(written.status, StatusCode::CREATED);
    let secret = written.body["data"]["secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned();
    (written.id(), secret, written.position.expect("a position"))
}

/// Waits (up to 20 s) until `query` returns true.
pub async fn eventually<F, Fut>(what: &str, query: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !query().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
