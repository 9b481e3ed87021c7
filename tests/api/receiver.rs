//! A real HTTP receiver on 127.0.0.1 standing in for the connected services and the
//! merchants' endpoints: it records every request and answers as each path is told to.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// How a path answers deliveries (provisioning calls, `integration.connected`, always get 200).
#[derive(Debug, Clone)]
pub enum Behaviour {
    Ok,
    /// This status the first `times` times, 200 afterwards.
    FailFirst {
        times: usize,
        status: u16,
    },
    Status(u16),
    /// This status with exactly these body bytes.
    Raw(u16, &'static [u8]),
    Redirect(String),
    /// Answers 200 after this many milliseconds.
    Slow(u64),
    /// Accepts the request and never answers.
    Hang,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("deliveries are JSON")
    }

    pub fn event_type(&self) -> String {
        self.header("x-platform-event")
    }

    /// Whether one of the Standard Webhooks signatures verifies with `secret` (`whsec_…`).
    pub fn signed_by(&self, secret: &str) -> bool {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
            .expect("base64");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(
            format!(
                "{}.{}.",
                self.header("webhook-id"),
                self.header("webhook-timestamp")
            )
            .as_bytes(),
        );
        mac.update(&self.body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        self.header("webhook-signature")
            .split(' ')
            .any(|signature| signature == expected)
    }

    /// Whether `X-Platform-Signature-V2` verifies under `secret`, names `service` and was
    /// made within the last five minutes.
    pub fn platform_v2_signed_by(&self, secret: &[u8], service: &str) -> bool {
        let header = self.header("x-platform-signature-v2");
        let field = |name: &str| {
            header
                .split(',')
                .find_map(|part| part.strip_prefix(&format!("{name}=")))
                .unwrap_or_default()
                .to_owned()
        };
        let timestamp: i64 = field("t").parse().unwrap_or_default();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(format!("{timestamp}.{service}.").as_bytes());
        mac.update(&self.body);
        let recent = (chrono::Utc::now().timestamp() - timestamp).abs() < 300;
        field("service") == service
            && recent
            && field("v1") == hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `X-Platform-Signature` is the hex HMAC of the body under `secret`.
    pub fn platform_signed_by(&self, secret: &[u8]) -> bool {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(&self.body);
        self.header("x-platform-signature") == hex::encode(mac.finalize().into_bytes())
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    behaviours: HashMap<String, Behaviour>,
    failures: HashMap<String, usize>,
}

#[derive(Clone)]
pub struct Receiver {
    pub address: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            // Not an API: every path is a receiving endpoint.
            .fallback(post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = format!("http://{}", listener.local_addr().expect("bound"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { address, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.address)
    }

    pub fn answer(&self, path: &str, behaviour: Behaviour) {
        let mut inner = self.inner.lock().unwrap();
        inner.behaviours.insert(format!("/{path}"), behaviour);
        inner.failures.remove(&format!("/{path}"));
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Requests to `path` carrying events of `event_type`.
    pub fn at(&self, path: &str, event_type: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == format!("/{path}") && r.event_type() == event_type)
            .collect()
    }

    /// Waits (up to 20 s) until `done` holds for what was received.
    pub async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; received {}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let provisioning = headers
        .get("x-platform-event")
        .is_some_and(|v| v == "integration.connected");
    let behaviour = {
        let mut inner = inner.lock().unwrap();
        inner.received.push(Received {
            path: path.clone(),
            headers,
            body: body.to_vec(),
            at: Instant::now(),
        });
        let behaviour = inner
            .behaviours
            .get(&path)
            .cloned()
            .unwrap_or(Behaviour::Ok);
        match behaviour {
            _ if provisioning => Behaviour::Ok,
            Behaviour::FailFirst { times, status } => {
                let failed = inner.failures.entry(path).or_default();
                *failed += 1;
                if *failed <= times {
                    Behaviour::Status(status)
                } else {
                    Behaviour::Ok
                }
            }
            other => other,
        }
    };
    match behaviour {
        Behaviour::Ok | Behaviour::FailFirst { .. } => (StatusCode::OK, "thanks").into_response(),
        Behaviour::Status(status) => (
            StatusCode::from_u16(status).unwrap(),
            format!("scripted {status}"),
        )
            .into_response(),
        Behaviour::Raw(status, body) => {
            (StatusCode::from_u16(status).unwrap(), body).into_response()
        }
        Behaviour::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        Behaviour::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            (StatusCode::OK, "thanks").into_response()
        }
        Behaviour::Hang => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
    }
}
