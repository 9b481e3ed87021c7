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

/// Known to the tests so they can forge tokens the platform would have signed.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    database: String,
    names: StreamNames,
    shutdown: CancellationToken,
    serving: Option<JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    let database = format!("dropship_api_{}", Uuid::new_v4().simple());
    let names = isolated_names();
    let url = database_url(&database);
    let (stream, prefix) = (names.stream.clone(), names.subject_prefix.clone());
    let media_dir = std::env::temp_dir()
        .join(&database)
        .to_string_lossy()
        .into_owned();
    let config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "NATS_URL" => Some(testkit::nats_url()),
        "NATS_STREAM" => Some(stream.clone()),
        "NATS_SUBJECT_PREFIX" => Some(prefix.clone()),
        "JWT_SECRET" => Some(JWT_SECRET.to_owned()),
        "READ_YOUR_WRITES_TIMEOUT_MS" => Some("2000".to_owned()),
        "MEDIA_DIR" => Some(media_dir.clone()),
        _ => None,
    })
    .expect("test configuration is valid");
    let platform = Platform::start(config).await.expect("the platform starts");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = format!("http://{}", listener.local_addr().expect("bound"));
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(platform.serve(Role::ALL, listener, shutdown.clone()));
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&database_url(&database))
        .await
        .expect("the test database accepts connections");
    TestApp {
        address,
        client: reqwest::Client::new(),
        pool,
        database,
        names,
        shutdown,
        serving: Some(serving),
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
    ("GET", "/api/v1/public/stores/{slug}"),
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
];
