//! A write whose commit outcome is unknown (the connection dropped after the append's
//! statement, before its answer) is retried without being applied twice.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{
    cutting_proxy::CuttingProxy,
    helpers::{postgres_address, spawn_app_through},
};

/// The append's statement: the only one that inserts into the log.
const APPEND: &[u8] = b"INSERT INTO events";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_cut_off_after_its_commit_is_answered_from_that_commit_not_applied_twice() {
    let proxy = CuttingProxy::start(postgres_address(), APPEND).await;
    let app = spawn_app_through(proxy.port).await;
    let merchant = app.register().await;
    let store_id = app.create_store(&merchant, "Cut Socks").await.id();
    let product = app
        .create_product(
            &merchant,
            &store_id,
            json!({"title": "Cut Sock", "price": {"amount": 900, "currency": "USD"},
                   "variants": [{"name": "One", "sku": "CUT-1", "inventory_count": 10}]}),
        )
        .await;
    let variant_id = product.body["data"]["variants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    proxy.cut_next();
    let sold = app
        .write(
            &merchant,
            Method::POST,
            &format!(
                "/api/v1/stores/{store_id}/products/{}/inventory",
                product.id()
            ),
            json!({"variant_id": variant_id, "delta": -1, "reason": "sale"}),
        )
        .await;
    assert_eq!(proxy.cuts(), 1, "the append's answer was cut off");
    assert_eq!(sold.body["data"]["variants"][0]["inventory_count"], 9);
    let adjustments: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'inventory.adjusted'",
    )
    .bind(format!("product-{}", product.id()))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(adjustments, 1, "the delta was applied once");

    proxy.cut_next();
    let created = app
        .request(Method::POST, &format!("/api/v1/stores/{store_id}/products"))
        .bearer_auth(&merchant.access)
        .json(&json!({"title": "Second Sock", "price": {"amount": 900, "currency": "USD"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.cuts(), 2);
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "not a 409 for its own commit"
    );
    let body: serde_json::Value = created.json().await.unwrap();
    let id = body["data"]["id"].as_str().unwrap();
    assert_eq!(app.events_in(&format!("product-{id}")).await, 1);
}
