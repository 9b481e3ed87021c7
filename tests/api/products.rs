use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Merchant, TestApp, Written, error_code, fields, spawn_app};

fn usd(amount: i64) -> Value {
    json!({"amount": amount, "currency": "USD"})
}

async fn store_of(app: &TestApp, merchant: &Merchant) -> String {
    app.create_store(merchant, "Sock Shop").await.id()
}

fn sock(title: &str, sku: &str, stock: i64) -> Value {
    json!({
        "title": title,
        "description": "Warm wool socks for winter",
        "price": usd(1999),
        "cost": usd(700),
        "images": ["https://cdn.example.com/sock.png"],
        "tags": ["Wool", "winter"],
        "variants": [
            {"name": "Small", "sku": sku, "inventory_count": stock, "options": [{"name": "size", "value": "S"}]},
        ],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_is_created_read_back_renamed_published_and_archived() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = store_of(&app, &merchant).await;
    let created = app
        .create_product(&merchant, &store_id, sock("Wool Sock", "WS-1", 5))
        .await;
    assert_eq!(created.etag.as_deref(), Some("\"1\""));
    let product = &created.body["data"];
    assert_eq!(product["slug"], "wool-sock");
    assert_eq!(product["status"], "draft");
    assert_eq!(product["price"], usd(1999));
    assert_eq!(product["tags"], json!(["wool", "winter"]));
    assert_eq!(product["inventory_total"], 5);

    let path = format!("/api/v1/stores/{store_id}/products/{}", created.id());
    let (status, read) = app.read(&merchant, &path, created.position).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["data"]["title"], "Wool Sock");
    assert_eq!(read["data"]["variants"][0]["sku"], "WS-1");
    assert_eq!(read["data"]["cost"], usd(700));

    // Another product with the same title gets the next slug; a rename moves it on.
    let twin = app
        .create_product(&merchant, &store_id, sock("Wool Sock", "WS-2", 1))
        .await;
    assert_eq!(twin.body["data"]["slug"], "wool-sock-2");
    let renamed = app
        .write(
            &merchant,
            Method::PATCH,
            &path,
            json!({"title": "Merino Sock", "description": null}),
        )
        .await;
    assert_eq!(renamed.body["data"]["slug"], "merino-sock");
    assert_eq!(renamed.body["data"]["description"], Value::Null);
    assert_eq!(renamed.etag.as_deref(), Some("\"2\""));
    let third = app
        .create_product(&merchant, &store_id, sock("Wool Sock", "WS-3", 1))
        .await;
    assert_eq!(
        third.body["data"]["slug"], "wool-sock",
        "the rename freed the slug"
    );

    let published = app
        .write(
            &merchant,
            Method::POST,
            &format!("{path}/publish"),
            json!({}),
        )
        .await;
    assert_eq!(published.body["data"]["status"], "active");
    let again = app
        .request(Method::POST, &format!("{path}/publish"))
        .bearer_auth(&merchant.access)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(again).await.1, "already_published");
    let archived = app
        .request(Method::DELETE, &path)
        .bearer_auth(&merchant.access)
        .send()
        .await
        .unwrap();
    let archived = Written::from(archived).await;
    assert_eq!(archived.body["data"]["status"], "archived");
    let (_, read) = app.read(&merchant, &path, archived.position).await;
    assert_eq!(read["data"]["status"], "archived");
    assert_eq!(app.events_in(&format!("product-{}", created.id())).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skus_are_unique_within_a_store_and_free_across_stores() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = store_of(&app, &merchant).await;
    app.create_product(&merchant, &store_id, sock("Sock", "DUP-1", 1))
        .await;
    let clash = app
        .request(Method::POST, &format!("/api/v1/stores/{store_id}/products"))
        .bearer_auth(&merchant.access)
        .json(&sock("Other Sock", "dup-1", 1))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(clash).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "sku_taken"));

    let elsewhere = app.create_store(&merchant, "Second Shop").await.id();
    app.create_product(&merchant, &elsewhere, sock("Sock", "DUP-1", 1))
        .await;

    let twice = app
        .request(Method::POST, &format!("/api/v1/stores/{store_id}/products"))
        .bearer_auth(&merchant.access)
        .json(&json!({"title": "Pair", "price": usd(1), "variants": [
            {"name": "A", "sku": "P-1"}, {"name": "B", "sku": "p-1"}]}))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(twice).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_products_name_every_field_at_fault() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = store_of(&app, &merchant).await;
    let response = app
        .request(Method::POST, &format!("/api/v1/stores/{store_id}/products"))
        .bearer_auth(&merchant.access)
        .json(&json!({
            "title": " ",
            "price": {"amount": -5, "currency": "EUR"},
            "images": ["ftp://example.com/x.png"],
            "status": "archived",
            "tags": ["ok", ""],
            "category_ids": ["00000000-0000-7000-8000-000000000001"],
            "variants": [{"name": "V", "sku": "has space", "inventory_count": -1,
                          "options": [{"name": "", "value": "M"}]}],
        }))
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut named = fields(&error);
    named.sort();
    assert_eq!(
        named,
        vec![
            "images[0]",
            "price.amount",
            "price.currency",
            "status",
            "tags[1]",
            "title",
            "variants[0].inventory_count",
            "variants[0].options[0].name",
            "variants[0].sku",
        ]
    );
    // Category ids are checked once the fields are valid: another store's is unknown.
    let response = app
        .request(Method::POST, &format!("/api/v1/stores/{store_id}/products"))
        .bearer_auth(&merchant.access)
        .json(&json!({"title": "Sock", "price": usd(1),
                      "category_ids": ["00000000-0000-7000-8000-000000000001"]}))
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&error), vec!["category_ids[0]"]);
    let unknown = app
        .request(
            Method::PATCH,
            &format!("/api/v1/stores/{store_id}/products/00000000-0000-7000-8000-000000000001"),
        )
        .bearer_auth(&merchant.access)
        .json(&json!({"title": "Ghost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(unknown).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variants_are_added_changed_and_removed_and_stock_moves_with_reasons() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = store_of(&app, &merchant).await;
    let product = app
        .create_product(&merchant, &store_id, sock("Sock", "V-1", 2))
        .await;
    let path = format!("/api/v1/stores/{store_id}/products/{}", product.id());
    let added = app
        .write(
            &merchant,
            Method::POST,
            &format!("{path}/variants"),
            json!({"name": "Large", "sku": "V-2", "price": usd(2499), "inventory_count": 10}),
        )
        .await;
    let large = added.body["data"]["variants"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let changed = app
        .write(
            &merchant,
            Method::PATCH,
            &format!("{path}/variants/{large}"),
            json!({"sku": "V-2L", "price": null}),
        )
        .await;
    assert_eq!(changed.body["data"]["variants"][1]["sku"], "V-2L");
    assert_eq!(changed.body["data"]["variants"][1]["price"], Value::Null);

    let adjust = |delta: i64| json!({"variant_id": large, "delta": delta, "reason": "sale"});
    let sold = app
        .write(
            &merchant,
            Method::POST,
            &format!("{path}/inventory"),
            adjust(-4),
        )
        .await;
    assert_eq!(sold.body["data"]["variants"][1]["inventory_count"], 6);
    let oversold = app
        .request(Method::POST, &format!("{path}/inventory"))
        .bearer_auth(&merchant.access)
        .json(&adjust(-7))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(oversold).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "insufficient_stock")
    );
    let zero = app
        .request(Method::POST, &format!("{path}/inventory"))
        .bearer_auth(&merchant.access)
        .json(&json!({"variant_id": large, "delta": 0, "reason": ""}))
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(zero).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&error), vec!["delta", "reason"]);

    let removed = app
        .request(Method::DELETE, &format!("{path}/variants/{large}"))
        .bearer_auth(&merchant.access)
        .send()
        .await
        .unwrap();
    let removed = Written::from(removed).await;
    assert_eq!(
        removed.body["data"]["variants"].as_array().unwrap().len(),
        1
    );
    // Its SKU is free again for another product.
    app.create_product(&merchant, &store_id, sock("Other", "V-2L", 1))
        .await;
    let (_, read) = app.read(&merchant, &path, removed.position).await;
    assert_eq!(read["data"]["inventory_total"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_stock_is_signalled_once_per_crossing_of_the_stores_threshold() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = store_of(&app, &merchant).await;
    let threshold = app
        .write(
            &merchant,
            Method::PATCH,
            &format!("/api/v1/stores/{store_id}"),
            json!({"low_stock_threshold": 3}),
        )
        .await;
    assert_eq!(threshold.body["data"]["low_stock_threshold"], 3);
    let product = app
        .create_product(&merchant, &store_id, sock("Sock", "LS-1", 6))
        .await;
    let variant = product.body["data"]["variants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!(
        "/api/v1/stores/{store_id}/products/{}/inventory",
        product.id()
    );
    for delta in [-2, -1, -1, 4, -4] {
        app.write(
            &merchant,
            Method::POST,
            &path,
            json!({"variant_id": variant, "delta": delta, "reason": "count"}),
        )
        .await;
    }
    // 6 → 4 → 3 (crossed) → 2 → 6 → 2 (crossed again).
    let signals: Vec<i64> = sqlx::query_scalar(
        "SELECT version::bigint FROM events WHERE stream_id = $1 AND event_type = 'inventory.low_stock' ORDER BY version",
    )
    .bind(format!("product-{}", product.id()))
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(signals.len(), 2, "one signal per crossing: {signals:?}");
    let bad = app
        .request(Method::PATCH, &format!("/api/v1/stores/{store_id}"))
        .bearer_auth(&merchant.access)
        .json(&json!({"low_stock_threshold": -1}))
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&error), vec!["low_stock_threshold"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decrements_never_oversell() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = store_of(&app, &merchant).await;
    let (attempts, stock) = (24usize, 17i64);
    let product = app
        .create_product(&merchant, &store_id, sock("Hot Sock", "HOT-1", stock))
        .await;
    let variant = product.body["data"]["variants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!(
        "/api/v1/stores/{store_id}/products/{}/inventory",
        product.id()
    );
    let requests = (0..attempts).map(|_| {
        app.request(Method::POST, &path)
            .bearer_auth(&merchant.access)
            .json(&json!({"variant_id": variant, "delta": -1, "reason": "order"}))
            .send()
    });
    let responses = futures::future::join_all(requests).await;
    let mut statuses = Vec::new();
    for response in responses {
        let response = response.unwrap();
        let status = response.status();
        if status != StatusCode::OK {
            let (_, code, _) = error_code(response).await;
            assert_eq!(code, "insufficient_stock");
        }
        statuses.push(status);
    }
    let sold = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(
        sold, stock as usize,
        "exactly the stock is sold: {statuses:?}"
    );
    let decrements: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'inventory.adjusted'",
    )
    .bind(format!("product-{}", product.id()))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(decrements, stock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_operations_answer_per_product_and_replay_with_their_key() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = store_of(&app, &merchant).await;
    let mut ids = Vec::new();
    for (n, price) in [1000, 2000, 2999].into_iter().enumerate() {
        let mut body = sock(&format!("Sock {n}"), &format!("B-{n}"), 1);
        body["price"] = usd(price);
        ids.push(app.create_product(&merchant, &store_id, body).await.id());
    }
    let stranger = app.register().await;
    let foreign_store = store_of(&app, &stranger).await;
    let foreign = app
        .create_product(&stranger, &foreign_store, sock("Theirs", "T-1", 1))
        .await
        .id();
    let path = format!("/api/v1/stores/{store_id}/products/bulk");
    let bulk = |action: Value, key: &str| {
        let mut all = ids.clone();
        all.push(foreign.clone());
        app.request(Method::POST, &path)
            .bearer_auth(&merchant.access)
            .header("idempotency-key", key)
            .json(&json!({"product_ids": all, "action": action}))
            .send()
    };
    let answer: Value = bulk(json!({"type": "adjust_price", "percent": -10}), "sale-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["succeeded"], 3);
    assert_eq!(answer["data"]["failed"], 1);
    let results = answer["data"]["results"].as_array().unwrap();
    assert_eq!(
        results[3]["status"], 404,
        "another merchant's product is not found"
    );
    assert_eq!(results[3]["product_id"], foreign.as_str());

    let replay: Value = bulk(json!({"type": "adjust_price", "percent": -10}), "sale-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        replay["data"]["results"], answer["data"]["results"],
        "a retry replays"
    );
    let position = replay["data"]["position"].as_i64().unwrap();
    let (_, listed) = app
        .read(
            &merchant,
            &format!("/api/v1/stores/{store_id}/products?sort=price_asc"),
            Some(position),
        )
        .await;
    let prices: Vec<i64> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["price"]["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(
        prices,
        vec![900, 1800, 2699],
        "10 % off once, rounded to the cent"
    );

    let tagged: Value = bulk(json!({"type": "add_tags", "tags": ["Sale"]}), "tag-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let activated: Value = bulk(json!({"type": "set_status", "status": "active"}), "live-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tagged["data"]["succeeded"], 3);
    assert_eq!(activated["data"]["succeeded"], 3);
    let position = activated["data"]["position"].as_i64().unwrap();
    let (_, listed) = app
        .read(
            &merchant,
            &format!("/api/v1/stores/{store_id}/products?tag=sale&status=active"),
            Some(position),
        )
        .await;
    assert_eq!(listed["total"], 3);

    let invalid = app
        .request(Method::POST, &path)
        .bearer_auth(&merchant.access)
        .json(&json!({"product_ids": [ids[0], ids[0]], "action": {"type": "adjust_price", "percent": 5, "amount": 3}}))
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(invalid).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&error), vec!["product_ids[1]"]);
    // The foreign product is untouched.
    assert_eq!(app.events_in(&format!("product-{foreign}")).await, 1);
}
