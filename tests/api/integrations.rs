//! Integrations and webhooks as resources: connect, read back, change, rotate,
//! disconnect; every invalid field named.

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Merchant, TestApp, connect, error_code, fields, spawn_app, spawn_app_with};

async fn refused(
    app: &TestApp,
    merchant: &Merchant,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, String, Value) {
    let response = app
        .request(method, path)
        .bearer_auth(&merchant.access)
        .json(&body)
        .send()
        .await
        .unwrap();
    error_code(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_service_shows_its_secret_once_and_is_listed_without_it() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = app.create_store(&merchant, "Connected Socks").await.id();
    let path = format!("/api/v1/stores/{store_id}/integrations");
    let (id, secret, position) = connect(
        &app,
        &merchant,
        &store_id,
        json!({"service": "rankpilot", "description": "SEO"}),
    )
    .await;
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap();
    assert_eq!(key.len(), 32);

    let (status, listed) = app.read(&merchant, &path, Some(position)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["total"], 1);
    let shown = &listed["data"][0];
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["service"], "rankpilot");
    assert!(
        shown["endpoint_url"].is_null(),
        "the platform's to know: {shown}"
    );
    assert_eq!(shown["enabled"], true);
    assert_eq!(
        shown["receives"],
        json!(["product.created", "product.updated"])
    );
    assert!(shown.get("secret").is_none(), "never read back: {shown}");

    let (status, code, _) = refused(
        &app,
        &merchant,
        Method::POST,
        &path,
        json!({"service": "rankpilot"}),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "already_connected")
    );

    let item = format!("{path}/{id}");
    let disabled = app
        .write(
            &merchant,
            Method::PATCH,
            &item,
            json!({"enabled": false, "event_types": ["product.created"]}),
        )
        .await;
    assert_eq!(disabled.body["data"]["enabled"], false);
    assert_eq!(disabled.body["data"]["disabled_reason"], "merchant");
    assert_eq!(
        disabled.body["data"]["receives"],
        json!(["product.created"])
    );
    let (_, read) = app.read(&merchant, &item, disabled.position).await;
    assert_eq!(read["data"]["enabled"], false);
    assert_eq!(read["data"]["version"], 3, "connected, updated, disabled");
    let enabled = app
        .write(&merchant, Method::PATCH, &item, json!({"enabled": true}))
        .await;
    assert_eq!(enabled.body["data"]["enabled"], true);

    let gone = app.write(&merchant, Method::DELETE, &item, json!({})).await;
    let (_, listed) = app.read(&merchant, &path, gone.position).await;
    assert_eq!(listed["total"], 0);
    let (status, _) = app.read(&merchant, &item, gone.position).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The service is free to connect again.
    connect(&app, &merchant, &store_id, json!({"service": "rankpilot"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_integration_field_is_named() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = app.create_store(&merchant, "Strict Socks").await.id();
    let integrations = format!("/api/v1/stores/{store_id}/integrations");
    let webhooks = format!("/api/v1/stores/{store_id}/webhooks");
    let cases = [
        (&integrations, json!({"service": "myspace"}), "service"),
        (
            &integrations,
            json!({"service": "adscale", "endpoint_url": "https://x.example/"}),
            "endpoint_url",
        ),
        (
            &webhooks,
            json!({"endpoint_url": "ftp://x.example/", "event_types": ["*"]}),
            "endpoint_url",
        ),
        (
            &webhooks,
            json!({"endpoint_url": "https://u:p@x.example/", "event_types": ["*"]}),
            "endpoint_url",
        ),
        (
            &webhooks,
            json!({"endpoint_url": "http://10.1.2.3/", "event_types": ["*"]}),
            "endpoint_url",
        ),
        (
            &integrations,
            json!({"service": "rankpilot", "event_types": ["order.created"]}),
            "event_types",
        ),
        (
            &integrations,
            json!({"service": "rankpilot", "event_types": ["product.created", "Bad Type"]}),
            "event_types[1]",
        ),
        (
            &webhooks,
            json!({"endpoint_url": "http://127.0.0.1:9/", "event_types": []}),
            "event_types",
        ),
        (
            &webhooks,
            json!({"endpoint_url": "http://127.0.0.1:9/", "event_types": ["*", "*"]}),
            "event_types[1]",
        ),
        (
            &webhooks,
            json!({"endpoint_url": "http://127.0.0.1:9/", "event_types": ["*"], "description": ""}),
            "description",
        ),
    ];
    for (path, body, field) in cases {
        let (status, code, error) =
            refused(&app, &merchant, Method::POST, path, body.clone()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{body}"
        );
        assert_eq!(fields(&error), [field], "{body}");
    }
    let (status, _, _) = refused(
        &app,
        &merchant,
        Method::POST,
        &webhooks,
        json!({"endpoint_url": "http://127.0.0.1:9/", "event_types": ["*"], "secret": "mine"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type LIKE 'integration.%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(events, 0, "nothing was connected");
    let (status, code, _) = refused(
        &app,
        &merchant,
        Method::POST,
        "/api/v1/bridge/service/rankpilot/redeliver",
        json!({"from": "2026-11-22T10:00:00Z", "to": "2026-11-22T09:00:00Z"}),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let (status, _) = app
        .read(&merchant, "/api/v1/bridge/service/myspace/activity", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_services_the_platform_has_an_address_for_can_be_connected() {
    let app = spawn_app_with(
        dropship::Role::ALL,
        &[("BRIDGE_SERVICE_URLS", "rankpilot=http://127.0.0.1:9/in")],
    )
    .await;
    let merchant = app.register().await;
    let store_id = app.create_store(&merchant, "Partial Socks").await.id();
    let path = format!("/api/v1/stores/{store_id}/integrations");
    let (status, _, error) = refused(
        &app,
        &merchant,
        Method::POST,
        &path,
        json!({"service": "adscale"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&error), ["service"]);
    assert_eq!(error["details"]["fields"][0]["code"], "not_available");
    let (id, _, _) = connect(&app, &merchant, &store_id, json!({"service": "rankpilot"})).await;
    let (status, _, error) = refused(
        &app,
        &merchant,
        Method::PATCH,
        &format!("{path}/{id}"),
        json!({"endpoint_url": "https://merchant.example/"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&error), ["endpoint_url"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_store_disconnects_its_integrations_and_says_why() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = app.create_store(&merchant, "Closing Socks").await.id();
    let (service, _, _) = connect(&app, &merchant, &store_id, json!({"service": "flowsend"})).await;
    let webhook = app
        .write(
            &merchant,
            Method::POST,
            &format!("/api/v1/stores/{store_id}/webhooks"),
            json!({"endpoint_url": app.services.url("/merchant-hook"), "event_types": ["*"]}),
        )
        .await
        .id();
    let deleted = app
        .write(
            &merchant,
            Method::DELETE,
            &format!("/api/v1/stores/{store_id}"),
            json!({}),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);

    let deletion: (String, String) = sqlx::query_as(
        "SELECT event_id::text, coalesce(metadata->>'correlation_id', event_id::text) FROM events \
         WHERE stream_id = $1 AND event_type = 'store.deleted'",
    )
    .bind(format!("store-{store_id}"))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    for id in [&service, &webhook] {
        let stream = format!("integration-{id}");
        let disconnected = || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM events WHERE stream_id = $1 \
                 AND event_type = 'integration.disconnected'",
            )
            .bind(&stream)
            .fetch_one(&app.pool)
            .await
            .unwrap()
                == 1
        };
        crate::helpers::eventually("the integration's disconnection", disconnected).await;
        let (actor, causation, correlation): (String, String, String) = sqlx::query_as(
            "SELECT metadata->>'actor', metadata->>'causation_id', metadata->>'correlation_id' \
             FROM events WHERE stream_id = $1 AND event_type = 'integration.disconnected'",
        )
        .bind(&stream)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(actor, "process:store_deletion");
        assert_eq!(causation, deletion.0);
        assert_eq!(correlation, deletion.1);
    }
    // The relay routes nothing more to them.
    let relay_forgot = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM bridge_endpoints WHERE store_id = $1")
            .bind(uuid::Uuid::parse_str(&store_id).unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap()
            == 0
    };
    crate::helpers::eventually("the relay forgetting the endpoints", relay_forgot).await;
}
