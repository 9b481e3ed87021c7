//! The store's events for integrators who poll: log order, every event once across
//! pages, only the caller's store, sealed personal data, no cost prices, and keys need
//! the `events:read` scope.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Merchant, TestApp, Written, error_code, fields, json_of, spawn_app};

async fn page(
    app: &TestApp,
    credential: Credential<'_>,
    store_id: &str,
    query: &str,
) -> (StatusCode, Value) {
    let request = app.request(
        Method::GET,
        &format!("/api/v1/stores/{store_id}/events{query}"),
    );
    let request = match credential {
        Credential::Bearer(merchant) => request.bearer_auth(&merchant.access),
        Credential::Key(key) => request.header("x-api-key", key),
    };
    let response = request.send().await.unwrap();
    (response.status(), json_of(response).await)
}

#[derive(Clone, Copy)]
enum Credential<'a> {
    Bearer(&'a Merchant),
    Key(&'a str),
}

fn positions(page: &Value) -> Vec<i64> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["position"].as_i64().unwrap())
        .collect()
}

/// Every page from `after` on, `limit` at a time: the events and where polling goes on.
async fn drain(
    app: &TestApp,
    merchant: &Merchant,
    store_id: &str,
    after: i64,
    limit: u32,
) -> (Vec<Value>, i64) {
    let mut events = Vec::new();
    let mut after = after;
    loop {
        let (status, body) = page(
            app,
            Credential::Bearer(merchant),
            store_id,
            &format!("?after={after}&limit={limit}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        events.extend(body["data"].as_array().unwrap().iter().cloned());
        after = body["next_after"].as_i64().unwrap();
        if !body["has_more"].as_bool().unwrap() {
            return (events, after);
        }
    }
}

/// A new store of `merchant`, once the stores read model (which scopes every read) has it.
async fn projected_store(app: &TestApp, merchant: &Merchant, name: &str) -> Written {
    let store = app.create_store(merchant, name).await;
    let (seen, _) = app
        .read(
            merchant,
            &format!("/api/v1/stores/{}", store.id()),
            store.position,
        )
        .await;
    assert_eq!(seen, StatusCode::OK);
    store
}

#[tokio::test]
async fn a_store_s_events_page_by_page_each_once_in_log_order_and_only_its_own() {
    let app = spawn_app().await;
    let owner = app.register().await;
    let store = projected_store(&app, &owner, "Lamps").await;
    let store_id = store.id();
    let sibling = app.create_store(&owner, "Socks").await;
    let stranger = app.register().await;
    let foreign = app.create_store(&stranger, "Elsewhere").await;
    let product = app
        .create_product(
            &owner,
            &store_id,
            json!({"title": "Desk Lamp", "status": "active", "price": {"amount": 4000, "currency": "USD"},
                   "cost": {"amount": 1200, "currency": "USD"},
                   "variants": [{"name": "One", "sku": "LAMP-1", "inventory_count": 5}]}),
        )
        .await;
    app.write(
        &owner,
        Method::PATCH,
        &format!("/api/v1/stores/{store_id}"),
        json!({"description": "Bright ideas"}),
    )
    .await;
    let variant_id = product.body["data"]["variants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let slug = store.body["data"]["slug"].as_str().unwrap().to_owned();
    // Checkout prices from the catalog read model.
    let (seen, _) = app
        .read(
            &owner,
            &format!("/api/v1/stores/{store_id}/products/{}", product.id()),
            product.position,
        )
        .await;
    assert_eq!(seen, StatusCode::OK);
    let checkout = app
        .request(Method::POST, &format!("/api/v1/public/stores/{slug}/checkout"))
        .json(&json!({"items": [{"variant_id": variant_id, "quantity": 1}],
                      "email": "shopper@example.com",
                      "shipping_address": {"name": "Ada", "line1": "1 Road", "city": "Leeds", "country": "GB"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(checkout.status(), StatusCode::CREATED);

    let (events, next_after) = drain(&app, &owner, &store_id, 0, 2).await;
    let all: Vec<i64> = events
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(
        all.windows(2).all(|pair| pair[0] < pair[1]),
        "log order, each once: {all:?}"
    );
    assert!(
        events
            .iter()
            .all(|event| event["store_id"] == store_id.as_str())
    );
    let types: Vec<&str> = events
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    for expected in [
        "store.created",
        "product.created",
        "store.updated",
        "customer.created",
        "order.created",
    ] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    let truth: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM events WHERE store_id = $1::uuid ORDER BY position",
    )
    .bind(&store_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(all, truth, "exactly the store's events");
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(next_after >= *truth.last().unwrap() && next_after <= head);

    let created = events
        .iter()
        .find(|e| e["type"] == "product.created")
        .unwrap();
    assert_eq!(created["data"]["product"]["title"], "Desk Lamp");
    assert!(
        created["data"]["product"].get("cost").is_none(),
        "no cost prices"
    );
    let customer = events
        .iter()
        .find(|e| e["type"] == "customer.created")
        .unwrap();
    assert_eq!(customer["data"]["contact"], json!({"sealed": true}));
    assert!(
        !events
            .iter()
            .any(|e| e.to_string().contains("shopper@example.com"))
    );
    let first = &events[0];
    assert_eq!(first["stream_id"], format!("store-{store_id}"));
    assert_eq!(first["stream_version"], 1);
    assert!(
        first["actor"].as_str().unwrap().starts_with("merchant:"),
        "{first}"
    );
    assert!(
        events.iter().all(|event| event["request_id"].is_string()),
        "every write names the request that made it"
    );

    // Polling on from where the last page left off sees exactly what was written since.
    let response = app
        .request(Method::PATCH, &format!("/api/v1/stores/{store_id}"))
        .bearer_auth(&owner.access)
        .header("x-request-id", "merchant-trace-42")
        .json(&json!({"name": "Lamps & Co"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "merchant-trace-42");
    let renamed = Written::from(response).await;
    assert_eq!(renamed.status, StatusCode::OK);
    app.write(
        &owner,
        Method::PATCH,
        &format!("/api/v1/stores/{}", sibling.id()),
        json!({"name": "Socks & Co"}),
    )
    .await;
    let (later, _) = drain(&app, &owner, &store_id, next_after, 100).await;
    assert_eq!(
        later
            .iter()
            .map(|e| e["position"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [renamed.position.unwrap()]
    );
    assert_eq!(later[0]["request_id"], "merchant-trace-42");

    let (status, only) = page(
        &app,
        Credential::Bearer(&owner),
        &store_id,
        "?types=store.created,store.updated",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(positions(&only).len(), 3);
    assert!(
        only["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"].as_str().unwrap().starts_with("store."))
    );

    let (status, _) = page(&app, Credential::Bearer(&stranger), &store_id, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another merchant's store");
    let (status, _) = page(&app, Credential::Bearer(&owner), &foreign.id(), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn keys_need_the_events_scope_and_bad_parameters_are_named() {
    let app = spawn_app().await;
    let owner = app.register().await;
    let store = projected_store(&app, &owner, "Lamps").await;
    let store_id = store.id();
    let reader = app.create_key(&owner, &["read", "write"]).await;
    let integrator = app.create_key(&owner, &["events:read"]).await;

    let (status, body) = page(
        &app,
        Credential::Key(reader["key"].as_str().unwrap()),
        &store_id,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = page(
        &app,
        Credential::Key(integrator["key"].as_str().unwrap()),
        &store_id,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["type"], "store.created");
    assert_eq!(integrator["scopes"], json!(["events:read"]));

    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?after=-1", "after"),
        ("?types=store.created,store.exploded", "types"),
        ("?after=abc", "after"),
    ] {
        let response = app
            .request(
                Method::GET,
                &format!("/api/v1/stores/{store_id}/events{query}"),
            )
            .bearer_auth(&owner.access)
            .send()
            .await
            .unwrap();
        let (status, code, error) = error_code(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{query}"
        );
        assert_eq!(fields(&error), [field], "{query}");
    }
}

/// A Server-Sent Events reader over a response body.
struct EventStream {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

#[derive(Debug)]
struct Frame {
    id: Option<i64>,
    event: String,
    data: Value,
}

impl EventStream {
    async fn open(
        app: &TestApp,
        merchant: &Merchant,
        store_id: &str,
        query: &str,
        last_event_id: Option<i64>,
    ) -> Self {
        let mut request = app
            .request(
                Method::GET,
                &format!("/api/v1/stores/{store_id}/events/stream{query}"),
            )
            .bearer_auth(&merchant.access);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event frame (heartbeat comments skipped); a guard against a hang, not a
    /// timing assertion.
    async fn next(&mut self) -> Frame {
        use futures::StreamExt;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        id = value.trim().parse().ok();
                    } else if let Some(value) = line.strip_prefix("event:") {
                        event = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                if !event.is_empty() {
                    return Frame {
                        id,
                        event,
                        data: serde_json::from_str(&data).unwrap(),
                    };
                }
                continue;
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), self.body.next())
                .await
                .expect("an event within the guard's time")
                .expect("the stream is open")
                .unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn the_event_stream_catches_up_follows_and_resumes_after_a_disconnect_each_event_once() {
    let app = spawn_app().await;
    let owner = app.register().await;
    let store = projected_store(&app, &owner, "Lamps").await;
    let store_id = store.id();
    let sibling = app.create_store(&owner, "Socks").await;
    let rename = |name: &'static str, store: String| {
        let (app, owner) = (&app, &owner);
        async move {
            app.write(
                owner,
                Method::PATCH,
                &format!("/api/v1/stores/{store}"),
                json!({ "name": name }),
            )
            .await
            .position
            .unwrap()
        }
    };

    let mut stream = EventStream::open(&app, &owner, &store_id, "?after=0", None).await;
    let first = stream.next().await;
    assert_eq!(first.event, "store.created");
    assert_eq!(first.id, store.position);
    assert_eq!(first.data["store_id"], store_id.as_str());

    rename("Socks & Co", sibling.id()).await;
    let live = rename("Lamps & Co", store_id.clone()).await;
    let followed = stream.next().await;
    assert_eq!(
        (followed.id, followed.event.as_str()),
        (Some(live), "store.updated"),
        "the sibling store's event never arrives"
    );
    drop(stream);

    // Written while the client was away: it gets them on resuming, once, in order.
    let away = [
        rename("Lamps Two", store_id.clone()).await,
        rename("Lamps Three", store_id.clone()).await,
    ];
    let mut resumed = EventStream::open(&app, &owner, &store_id, "", Some(live)).await;
    assert_eq!(resumed.next().await.id, Some(away[0]));
    assert_eq!(resumed.next().await.id, Some(away[1]));
    let after = rename("Lamps Four", store_id.clone()).await;
    let next = resumed.next().await;
    assert_eq!(next.id, Some(after), "nothing twice, nothing skipped");
    assert_eq!(next.data["data"]["name"], "Lamps Four");

    let mut typed = EventStream::open(
        &app,
        &owner,
        &store_id,
        "?after=0&types=store.created",
        None,
    )
    .await;
    assert_eq!(typed.next().await.event, "store.created");
    let response = app
        .request(
            Method::GET,
            &format!("/api/v1/stores/{}/events/stream", sibling.id()),
        )
        .bearer_auth(&app.register().await.access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "only the caller's stores"
    );
}

#[tokio::test]
async fn every_event_type_s_schema_is_served_as_checked_in() {
    let app = spawn_app().await;
    let response = app
        .request(Method::GET, "/api/v1/events/schemas")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_of(response).await;
    let served = body["data"].as_array().unwrap();
    assert_eq!(served.len(), schemas::public::event_schemas().len());
    for schema in served {
        let name = format!(
            "{}.v{}.json",
            schema["type"].as_str().unwrap(),
            schema["schema_version"]
        );
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas/json")
            .join(&name);
        let checked_in: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(schema["schema"], checked_in, "{name}");
    }
    let created = served
        .iter()
        .find(|s| s["type"] == "order.created")
        .unwrap();
    assert_eq!(
        created["schema"]["properties"]["type"]["const"],
        "order.created"
    );
}

/// A WebSocket subscription of `merchant` to a store's events.
async fn websocket(
    app: &TestApp,
    merchant: &Merchant,
    store_id: &str,
    query: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "{}/api/v1/stores/{store_id}/events/ws{query}",
        app.address.replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", merchant.access).parse().unwrap(),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// The next event a WebSocket brings (pings skipped); a guard against a hang, not a
/// timing assertion.
async fn next_message(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(30), socket.next())
            .await
            .expect("a message within the guard's time")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn the_websocket_stream_catches_up_follows_resumes_and_answers_a_plain_request_426() {
    let app = spawn_app().await;
    let owner = app.register().await;
    let store = projected_store(&app, &owner, "Lamps").await;
    let store_id = store.id();
    let sibling = app.create_store(&owner, "Socks").await;
    let rename = |name: &'static str, store: String| {
        let (app, owner) = (&app, &owner);
        async move {
            app.write(
                owner,
                Method::PATCH,
                &format!("/api/v1/stores/{store}"),
                json!({ "name": name }),
            )
            .await
            .position
            .unwrap()
        }
    };

    let mut socket = websocket(&app, &owner, &store_id, "?after=0")
        .await
        .unwrap();
    let first = next_message(&mut socket).await;
    assert_eq!(first["type"], "store.created");
    assert_eq!(first["position"].as_i64(), store.position);
    rename("Socks & Co", sibling.id()).await;
    let live = rename("Lamps & Co", store_id.clone()).await;
    let followed = next_message(&mut socket).await;
    assert_eq!(
        (followed["position"].as_i64(), followed["type"].as_str()),
        (Some(live), Some("store.updated")),
        "the sibling store's event never arrives"
    );
    socket.close(None).await.unwrap();

    let away = rename("Lamps Two", store_id.clone()).await;
    let mut resumed = websocket(&app, &owner, &store_id, &format!("?after={live}"))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut resumed).await["position"].as_i64(),
        Some(away)
    );
    let after = rename("Lamps Three", store_id.clone()).await;
    assert_eq!(
        next_message(&mut resumed).await["position"].as_i64(),
        Some(after),
        "nothing twice, nothing skipped"
    );

    let stranger = app.register().await;
    match websocket(&app, &stranger, &store_id, "").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(
                response.status(),
                StatusCode::NOT_FOUND,
                "only the caller's stores"
            );
        }
        other => panic!("a stranger subscribed: {:?}", other.map(|_| ())),
    }
    let response = app
        .request(Method::GET, &format!("/api/v1/stores/{store_id}/events/ws"))
        .bearer_auth(&owner.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["upgrade"], "websocket");
    let (status, code, _) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UPGRADE_REQUIRED, "upgrade_required")
    );
}
