use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{ROUTES, connect, error_code, json_of, spawn_app},
    receiver::Receiver,
};

/// A body each route accepts, so that only ownership can fail the request.
fn valid_body(method: &str, path: &str, product_id: &str) -> Option<Value> {
    let products = "/api/v1/stores/{store_id}/products";
    match (method, path.strip_prefix(products)) {
        ("POST", Some("")) => {
            Some(json!({"title": "Stolen", "price": {"amount": 1, "currency": "USD"}}))
        }
        ("PATCH", Some("/{product_id}")) => Some(json!({"title": "Hijacked"})),
        ("POST", Some("/bulk")) => Some(
            json!({"product_ids": [product_id], "action": {"type": "set_status", "status": "archived"}}),
        ),
        ("POST", Some("/{product_id}/variants")) => Some(json!({"name": "Extra"})),
        ("PATCH", Some("/{product_id}/variants/{variant_id}")) => Some(json!({"name": "Hijacked"})),
        ("POST", Some("/{product_id}/inventory")) => Some(
            json!({"variant_id": "00000000-0000-7000-8000-000000000000", "delta": -1, "reason": "theft"}),
        ),
        ("PATCH", None) if path == "/api/v1/stores/{store_id}" => Some(json!({"name": "Hijacked"})),
        ("POST", None) if path.ends_with("/integrations") => Some(json!({"service": "shopchat"})),
        ("POST", None) if path.ends_with("/webhooks") => {
            Some(json!({"endpoint_url": "http://127.0.0.1:9/stolen", "event_types": ["*"]}))
        }
        ("PATCH", None) if path.contains("/integrations/") || path.contains("/webhooks/") => {
            Some(json!({"description": "Hijacked"}))
        }
        ("POST", None) if path.ends_with("/fulfillments") => Some(json!({"carrier": "DHL"})),
        ("POST", None) if path.ends_with("/cancel") => Some(json!({"reason": "stolen"})),
        ("POST", None) if path.ends_with("/refunds") => {
            Some(json!({"amount": {"amount": 1, "currency": "USD"}, "reason": "stolen"}))
        }
        ("POST", None) if path.ends_with("/notes") => Some(json!({"note": "stolen"})),
        ("POST" | "PATCH", None)
            if path.contains("/categories") || path.contains("/collections") =>
        {
            Some(json!({"name": "Hijacked"}))
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_merchants_store_and_keys_are_404_on_every_route() {
    let app = spawn_app().await;
    let (owner, intruder) = (app.register().await, app.register().await);
    let store = app.create_store(&owner, "Private Store").await;
    let key = app.create_key(&owner, &["read"]).await;
    let key_id = key["id"].as_str().unwrap().to_owned();
    let intruder_key = app
        .create_key(&intruder, &["read", "write", "events:read"])
        .await;
    let intruder_key = intruder_key["key"].as_str().unwrap().to_owned();

    let store_id = store.id();
    let product = app
        .create_product(
            &owner,
            &store_id,
            json!({"title": "Secret Sock", "status": "active", "price": {"amount": 900, "currency": "USD"},
                   "variants": [{"name": "One", "sku": "SECRET-1", "inventory_count": 3}]}),
        )
        .await;
    let variant_id = product.body["data"]["variants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (seen, _) = app
        .read(
            &owner,
            &format!("/api/v1/stores/{store_id}/products/{}", product.id()),
            product.position,
        )
        .await;
    assert_eq!(seen, StatusCode::OK);
    let slug = store.body["data"]["slug"].as_str().unwrap();
    let order = json_of(
        app.request(Method::POST, &format!("/api/v1/public/stores/{slug}/checkout"))
            .json(&json!({"items": [{"variant_id": variant_id, "quantity": 1}],
                          "email": "shopper@example.com",
                          "shipping_address": {"name": "Ada", "line1": "1 Road", "city": "Leeds", "country": "GB"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let order_id = order["data"]["order"]["id"].as_str().unwrap().to_owned();
    let customer_stream: String = sqlx::query_scalar(
        "SELECT stream_id FROM events WHERE event_type = 'customer.created' AND store_id = $1::uuid",
    )
    .bind(&store_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let customer_id = customer_stream.trim_start_matches("customer-").to_owned();
    let category = app
        .write(
            &owner,
            Method::POST,
            &format!("/api/v1/stores/{store_id}/categories"),
            json!({"name": "Secret"}),
        )
        .await;
    let collection = app
        .write(
            &owner,
            Method::POST,
            &format!("/api/v1/stores/{store_id}/collections"),
            json!({"name": "Secret"}),
        )
        .await;
    let receiver = Receiver::start().await;
    let (integration_id, _, _) =
        connect(&app, &owner, &store_id, json!({"service": "rankpilot"})).await;
    let webhook = app
        .write(
            &owner,
            Method::POST,
            &format!("/api/v1/stores/{store_id}/webhooks"),
            json!({"endpoint_url": receiver.url("hook"), "event_types": ["product.*"]}),
        )
        .await;
    let last_position = webhook.position.unwrap();
    let scoped: Vec<_> = ROUTES
        .iter()
        .filter(|(_, path)| {
            !path.starts_with("/api/v1/public/")
                && (path.contains("{store_id}") || path.contains("{key_id}"))
        })
        .collect();
    assert!(scoped.len() >= 28, "the matrix covers every resource route");
    for (method, template) in scoped {
        let path = template
            .replace("{store_id}", &store_id)
            .replace("{key_id}", &key_id)
            .replace("{product_id}", &product.id())
            .replace("{variant_id}", &variant_id)
            .replace("{category_id}", &category.id())
            .replace("{collection_id}", &collection.id())
            .replace("{integration_id}", &integration_id)
            .replace("{webhook_id}", &webhook.id())
            .replace("{order_id}", &order_id)
            .replace("{customer_id}", &customer_id);
        for credential in ["bearer", "api key"] {
            let mut request = app.request(Method::from_bytes(method.as_bytes()).unwrap(), &path);
            request = match credential {
                "bearer" => request.bearer_auth(&intruder.access),
                _ => request.header("x-api-key", &intruder_key),
            };
            if let Some(body) = valid_body(method, template, &product.id()) {
                request = request.json(&body);
            }
            let response = request
                .header("x-min-position", last_position.to_string())
                .send()
                .await
                .unwrap();
            let (status, code, _) = error_code(response).await;
            // Keys are managed by sessions only: a key is refused before any lookup.
            let expected = if template.contains("{key_id}") && credential == "api key" {
                (StatusCode::FORBIDDEN, "forbidden")
            } else {
                (StatusCode::NOT_FOUND, "not_found")
            };
            assert_eq!(
                (status, code.as_str()),
                expected,
                "{method} {template} with the intruder's {credential}"
            );
        }
    }

    let listed: Value = json_of(
        app.request(Method::GET, "/api/v1/stores")
            .bearer_auth(&intruder.access)
            .header("x-min-position", store.position.unwrap().to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["total"], 0);

    // Nothing the intruder did reached the owner's store, catalog or key.
    assert_eq!(app.events_in(&format!("store-{}", store.id())).await, 1);
    assert_eq!(
        app.events_in(&format!("product-{}", product.id())).await,
        2,
        "created, and one unit reserved by the owner's order"
    );
    assert_eq!(app.events_in(&format!("order-{order_id}")).await, 1);
    assert_eq!(
        app.events_in(&format!("category-{}", category.id())).await,
        1
    );
    assert_eq!(
        app.events_in(&format!("collection-{}", collection.id()))
            .await,
        1
    );
    assert_eq!(
        app.events_in(&format!("integration-{integration_id}"))
            .await,
        1
    );
    assert_eq!(
        app.events_in(&format!("integration-{}", webhook.id()))
            .await,
        1
    );
    let integrations: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'integration.connected'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(integrations, 2, "the intruder connected nothing anywhere");
    let products: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'product.created'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(products, 1, "the intruder created no product anywhere");
    let mine: Value = json_of(
        app.request(Method::GET, &format!("/api/v1/stores/{}", store.id()))
            .bearer_auth(&owner.access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(mine["data"]["name"], "Private Store");
    assert_eq!(mine["data"]["status"], "active");
    let key_alive = app
        .request(Method::GET, "/api/v1/auth/me")
        .header("x-api-key", key["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(key_alive.status(), StatusCode::OK);
}
