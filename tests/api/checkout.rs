use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Merchant, TestApp, Written, error_code, fields, spawn_app};

pub struct Shop {
    pub merchant: Merchant,
    pub store_id: String,
    pub slug: String,
}

pub async fn shop(app: &TestApp) -> Shop {
    let merchant = app.register().await;
    let store = app.create_store(&merchant, "Sock Shop").await;
    Shop {
        store_id: store.id(),
        slug: store.body["data"]["slug"].as_str().unwrap().to_owned(),
        merchant,
    }
}

/// An active product with variants of `(name, price override, stock)`, once the catalog
/// shows it (checkouts find variants there).
pub async fn product(
    app: &TestApp,
    shop: &Shop,
    status: &str,
    variants: &[(&str, Option<i64>, i64)],
) -> (String, Vec<String>) {
    let variants: Vec<Value> = variants
        .iter()
        .map(|(name, price, stock)| {
            let mut variant = json!({"name": name, "inventory_count": stock});
            if let Some(amount) = price {
                variant["price"] = json!({"amount": amount, "currency": "USD"});
            }
            variant
        })
        .collect();
    let created = app
        .create_product(
            &shop.merchant,
            &shop.store_id,
            json!({"title": "Wool Sock", "status": status,
                   "price": {"amount": 1999, "currency": "USD"}, "variants": variants}),
        )
        .await;
    let id = created.id();
    let path = format!("/api/v1/stores/{}/products/{id}", shop.store_id);
    let (status, _) = app.read(&shop.merchant, &path, created.position).await;
    assert_eq!(status, StatusCode::OK);
    let variant_ids = created.body["data"]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    (id, variant_ids)
}

fn address() -> Value {
    json!({"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
           "postal_code": "SW1Y 4JH", "country": "gb"})
}

pub fn cart(items: Value, email: &str) -> Value {
    json!({"items": items, "email": email, "shipping_address": address()})
}

pub async fn checkout(app: &TestApp, slug: &str, body: &Value) -> Written {
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/public/stores/{slug}/checkout"),
        )
        .json(body)
        .send()
        .await
        .unwrap();
    Written::from(response).await
}

pub async fn stock_of(app: &TestApp, product_id: &str) -> Vec<i64> {
    let stream = format!("product-{product_id}");
    let counts: Vec<i64> = sqlx::query_scalar(
        "SELECT (e.value->>'inventory_count')::bigint FROM catalog_products p, \
         jsonb_array_elements(p.variants) e WHERE p.id = $1::uuid",
    )
    .bind(product_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(app.events_in(&stream).await > 0);
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_checks_out_at_the_catalogs_prices_and_pays() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let (product_id, variants) = product(
        &app,
        &shop,
        "active",
        &[("M", None, 5), ("L", Some(2499), 3)],
    )
    .await;
    // A shopper who sends their own prices is charged the catalog's.
    let placed = checkout(
        &app,
        &shop.slug,
        &cart(
            json!([{"variant_id": variants[0], "quantity": 2, "price": 1},
                   {"variant_id": variants[1], "quantity": 1, "unit_price": {"amount": 1, "currency": "USD"}}]),
            "Shopper@Example.com",
        ),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order = &placed.body["data"]["order"];
    assert_eq!(order["number"], "#1001");
    assert_eq!(
        (order["status"].as_str(), order["payment_status"].as_str()),
        (Some("pending"), Some("pending"))
    );
    assert_eq!(
        order["totals"]["subtotal"],
        json!({"amount": 2 * 1999 + 2499, "currency": "USD"})
    );
    assert_eq!(order["totals"]["total"]["amount"], 2 * 1999 + 2499);
    assert_eq!(order["items"][1]["unit_price"]["amount"], 2499);
    assert_eq!(order["items"][0]["title"], "Wool Sock");
    let order_id = order["id"].as_str().unwrap().to_owned();

    // The stock left the product in the same append as the order.
    let product_events: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM events WHERE stream_id = $1 ORDER BY version")
            .bind(format!("product-{product_id}"))
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(product_events.last().unwrap(), "inventory.reserved");
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT tx_id) FROM events WHERE stream_id IN ($1, $2) \
         AND event_type IN ('order.created', 'inventory.reserved')",
    )
    .bind(format!("order-{order_id}"))
    .bind(format!("product-{product_id}"))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(transactions, 1);

    // The shopper's email never reaches the log in clear.
    let in_clear: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE position(convert_to('shopper@example.com', 'UTF8') in payload) > 0",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(in_clear, 0);

    // A second order by the same shopper: the next number, the same customer.
    let again = checkout(
        &app,
        &shop.slug,
        &cart(
            json!([{"variant_id": variants[0], "quantity": 1}]),
            "shopper@example.com",
        ),
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body["data"]["order"]["number"], "#1002");
    let customers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'customer.created' AND store_id = $1::uuid",
    )
    .bind(&shop.store_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(customers, 1);

    // Paying through the mock session; paying again changes nothing.
    let confirm_url = placed.body["data"]["payment"]["confirm_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(placed.body["data"]["payment"]["provider"], "mock");
    for _ in 0..2 {
        let paid = Written::from(
            app.request(Method::POST, &confirm_url)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
        assert_eq!(paid.body["data"]["status"], "paid");
        assert_eq!(paid.body["data"]["paid"]["amount"], 2 * 1999 + 2499);
    }
    assert_eq!(app.events_in(&format!("order-{order_id}")).await, 2);
    let unknown = app
        .request(
            Method::POST,
            "/api/v1/public/payments/cs_mock_nothing/confirm",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_that_cannot_be_bought_is_named_and_nothing_is_written() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let (_, draft) = product(&app, &shop, "draft", &[("M", None, 5)]).await;
    let (on_sale_id, on_sale) = product(&app, &shop, "active", &[("M", None, 1)]).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/public/stores/{}/checkout", shop.slug),
        )
        .json(&cart(
            json!([{"variant_id": on_sale[0], "quantity": 1},
                   {"variant_id": draft[0], "quantity": 1},
                   {"variant_id": "00000000-0000-7000-8000-000000000000", "quantity": 1}]),
            "a@example.com",
        ))
        .send()
        .await
        .unwrap();
    let (status, code, error) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    assert_eq!(fields(&error), vec!["items[1]", "items[2]"]);
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/public/stores/{}/checkout", shop.slug),
        )
        .json(&cart(
            json!([{"variant_id": on_sale[0], "quantity": 2}]),
            "a@example.com",
        ))
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&error), vec!["items[0]"]);
    assert_eq!(error["details"]["fields"][0]["code"], "out_of_stock");
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(stock_of(&app, &on_sale_id).await, vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_carts_name_their_fields_and_unknown_stores_are_404() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let (_, variants) = product(&app, &shop, "active", &[("M", None, 5)]).await;
    let body = json!({"items": [{"variant_id": variants[0], "quantity": 0},
                                {"variant_id": variants[0], "quantity": 1}],
                      "email": "not an email",
                      "shipping_address": {"name": "", "line1": "x", "city": "y", "country": "Narnia"}});
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/public/stores/{}/checkout", shop.slug),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        fields(&error),
        vec![
            "items[0].quantity",
            "items[1]",
            "email",
            "shipping_address.name",
            "shipping_address.country"
        ]
    );
    let nowhere = app
        .request(Method::POST, "/api/v1/public/stores/no-such-shop/checkout")
        .json(&cart(
            json!([{"variant_id": variants[0], "quantity": 1}]),
            "a@example.com",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    app.write(
        &shop.merchant,
        Method::POST,
        &format!("/api/v1/stores/{}/pause", shop.store_id),
        json!({}),
    )
    .await;
    let paused = checkout(
        &app,
        &shop.slug,
        &cart(
            json!([{"variant_id": variants[0], "quantity": 1}]),
            "a@example.com",
        ),
    )
    .await;
    assert_eq!(paused.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_shoppers_racing_for_the_last_unit_get_exactly_one_order() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let (product_id, variants) = product(&app, &shop, "active", &[("M", None, 1)]).await;
    let carts: Vec<Value> = (0..32)
        .map(|i| {
            cart(
                json!([{"variant_id": variants[0], "quantity": 1}]),
                &format!("racer-{i}@example.com"),
            )
        })
        .collect();
    let outcomes = join_all(carts.iter().map(|body| checkout(&app, &shop.slug, body))).await;
    let placed = outcomes
        .iter()
        .filter(|o| o.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        placed,
        1,
        "{:?}",
        outcomes.iter().map(|o| o.status).collect::<Vec<_>>()
    );
    assert!(
        outcomes
            .iter()
            .filter(|o| o.status != StatusCode::CREATED)
            .all(|o| o.status == StatusCode::UNPROCESSABLE_ENTITY
                && o.body["error"]["details"]["fields"][0]["code"] == "out_of_stock"),
        "{outcomes:?}"
    );
    let orders: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'order.created'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(orders, 1);
    let reserved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'inventory.reserved'",
    )
    .bind(format!("product-{product_id}"))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(reserved, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_retried_with_its_key_places_one_order() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let (_, variants) = product(&app, &shop, "active", &[("M", None, 5)]).await;
    let body = cart(
        json!([{"variant_id": variants[0], "quantity": 2}]),
        "a@example.com",
    );
    let send = || {
        app.request(
            Method::POST,
            &format!("/api/v1/public/stores/{}/checkout", shop.slug),
        )
        .header("idempotency-key", "cart-7")
        .json(&body)
        .send()
    };
    let first = Written::from(send().await.unwrap()).await;
    let second = send().await.unwrap();
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second = Written::from(second).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.body, second.body);
    let orders: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'order.created'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(orders, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_charges_the_stores_shipping_and_tax_settings() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let store_path = format!("/api/v1/stores/{}", shop.store_id);
    let wrong_currency = app
        .request(Method::PATCH, &store_path)
        .bearer_auth(&shop.merchant.access)
        .json(&json!({"shipping": {"flat_rate": {"amount": 495, "currency": "EUR"}}}))
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(wrong_currency).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&error), vec!["shipping.flat_rate.currency"]);
    let duplicate_rate = app
        .request(Method::PATCH, &store_path)
        .bearer_auth(&shop.merchant.access)
        .json(&json!({"taxes": {"prices_include_tax": false, "rates": [
            {"country": "GB", "basis_points": 2000}, {"country": "gb", "basis_points": 500},
            {"country": "US", "region": "CA", "basis_points": 10001}]}}))
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(duplicate_rate).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        fields(&error),
        vec!["taxes.rates[1]", "taxes.rates[2].basis_points"]
    );
    let settings = json!({
        "shipping": {"flat_rate": {"amount": 495, "currency": "USD"},
                     "free_above": {"amount": 10000, "currency": "USD"}},
        "taxes": {"prices_include_tax": false, "rates": [{"country": "GB", "basis_points": 2000}]},
    });
    let changed = app
        .write(&shop.merchant, Method::PATCH, &store_path, settings.clone())
        .await;
    assert_eq!(changed.body["data"]["shipping"], settings["shipping"]);
    let (_, read) = app
        .read(&shop.merchant, &store_path, changed.position)
        .await;
    assert_eq!(read["data"]["taxes"]["rates"][0]["basis_points"], 2000);
    assert_eq!(read["data"]["shipping"]["flat_rate"]["amount"], 495);

    let (_, variants) = product(&app, &shop, "active", &[("M", None, 10)]).await;
    // 2 × 1999 = 3998, tax 20 % = 799.6 → 800, shipping 495.
    let placed = checkout(
        &app,
        &shop.slug,
        &cart(
            json!([{"variant_id": variants[0], "quantity": 2}]),
            "a@example.com",
        ),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let totals = &placed.body["data"]["order"]["totals"];
    assert_eq!(
        (
            totals["subtotal"]["amount"].as_i64(),
            totals["shipping"]["amount"].as_i64(),
            totals["tax"]["amount"].as_i64(),
            totals["total"]["amount"].as_i64()
        ),
        (Some(3998), Some(495), Some(800), Some(5293))
    );
    // Above the threshold shipping is free.
    let big = checkout(
        &app,
        &shop.slug,
        &cart(
            json!([{"variant_id": variants[0], "quantity": 6}]),
            "b@example.com",
        ),
    )
    .await;
    assert_eq!(big.body["data"]["order"]["totals"]["shipping"]["amount"], 0);
}

/// Checkout keeps the products it reserved on; a merchant's change since is what the next
/// checkout decides on, whether the kept state refuses the cart or would price it wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_decides_on_the_merchants_latest_change_not_on_what_it_kept() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let (product_id, variants) = product(&app, &shop, "active", &[("M", None, 1)]).await;
    let path = format!("/api/v1/stores/{}/products/{product_id}", shop.store_id);
    let buy = |quantity: u32| {
        cart(
            json!([{"variant_id": variants[0], "quantity": quantity}]),
            "kept@example.com",
        )
    };
    let unit_price =
        |placed: &Written| placed.body["data"]["order"]["items"][0]["unit_price"]["amount"].clone();

    let first = checkout(&app, &shop.slug, &buy(1)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);

    // Sold out as far as the last checkout knows; the merchant restocks and reprices.
    app.write(
        &shop.merchant,
        Method::PATCH,
        &path,
        json!({"price": {"amount": 2599, "currency": "USD"}}),
    )
    .await;
    app.write(
        &shop.merchant,
        Method::POST,
        &format!("{path}/inventory"),
        json!({"variant_id": variants[0], "delta": 3, "reason": "restock"}),
    )
    .await;
    let restocked = checkout(&app, &shop.slug, &buy(2)).await;
    assert_eq!(restocked.status, StatusCode::CREATED, "{}", restocked.body);
    assert_eq!(unit_price(&restocked), 2599);

    // In stock as far as the last checkout knows, at a price that is no longer the price.
    app.write(
        &shop.merchant,
        Method::PATCH,
        &path,
        json!({"price": {"amount": 2999, "currency": "USD"}}),
    )
    .await;
    let repriced = checkout(&app, &shop.slug, &buy(1)).await;
    assert_eq!(repriced.status, StatusCode::CREATED, "{}", repriced.body);
    assert_eq!(unit_price(&repriced), 2999);

    // The last unit is gone, and the next shopper is told so.
    let sold_out = checkout(&app, &shop.slug, &buy(1)).await;
    assert_eq!(
        sold_out.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        sold_out.body
    );
    assert_eq!(fields(&sold_out.body["error"]), ["items[0]"]);
}
