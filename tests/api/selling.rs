//! The money path end to end, as a shopper, a merchant and the connected services see
//! it: browse, check out, pay, ship with tracking, follow the order, refund part of it;
//! FlowSend and SpyDrop receive what the bridge routes them, once each.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    checkout::{cart, checkout, product, shop},
    helpers::{connect, spawn_app},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_buys_the_merchant_ships_and_refunds_and_the_services_hear_of_it() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    for service in ["flowsend", "spydrop"] {
        connect(
            &app,
            &shop.merchant,
            &shop.store_id,
            json!({"service": service}),
        )
        .await;
    }
    let (_, variants) = product(&app, &shop, "active", &[("M", None, 5)]).await;

    // Browse, then check out and pay.
    let (status, listing) = app
        .public(
            &format!("/api/v1/public/stores/{}/products", shop.slug),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listing["data"][0]["title"], "Wool Sock");
    let placed = checkout(
        &app,
        &shop.slug,
        &cart(
            json!([{"variant_id": variants[0], "quantity": 2}]),
            "grace@example.com",
        ),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order_id = placed.body["data"]["order"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let confirm = placed.body["data"]["payment"]["confirm_url"]
        .as_str()
        .unwrap();
    let paid = app.request(Method::POST, confirm).send().await.unwrap();
    let paid_at = paid.headers()["x-position"]
        .to_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    assert_eq!(paid.status(), StatusCode::OK);

    // The merchant finds it by the shopper's email, paid, with who bought it.
    let orders_path = format!("/api/v1/stores/{}/orders", shop.store_id);
    let (status, list) = app
        .read(
            &shop.merchant,
            &format!("{orders_path}?email=GRACE@example.com&status=paid"),
            Some(paid_at),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 1, "{list}");
    let listed = &list["data"][0];
    assert_eq!(listed["number"], "#1001");
    assert_eq!(listed["customer"]["email"], "grace@example.com");
    assert_eq!(listed["total"]["amount"], 2 * 1999);
    let (_, none) = app
        .read(
            &shop.merchant,
            &format!("{orders_path}?status=shipped"),
            None,
        )
        .await;
    assert_eq!(none["total"], 0);

    // Shipped with tracking.
    let shipped = app
        .write(
            &shop.merchant,
            Method::POST,
            &format!("{orders_path}/{order_id}/fulfillments"),
            json!({"carrier": "DHL", "tracking_number": "JD0146000000",
                   "tracking_url": "https://track.example/JD0146000000",
                   "items": [{"variant_id": variants[0], "quantity": 2}]}),
        )
        .await;
    assert_eq!(
        shipped.body["data"]["status"], "shipped",
        "{}",
        shipped.body
    );

    // The shopper follows it by number and email, and sees the tracking.
    let (status, page) = app
        .public(
            &format!(
                "/api/v1/public/stores/{}/orders/1001?email=grace@example.com",
                shop.slug
            ),
            shipped.position,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"]["order"]["status"], "shipped");
    assert_eq!(
        page["data"]["fulfillments"][0]["tracking_number"],
        "JD0146000000"
    );
    let (status, _) = app
        .public(
            &format!(
                "/api/v1/public/stores/{}/orders/1001?email=someone@example.com",
                shop.slug
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A partial refund; the detail tells the whole story from the order's own events.
    let refunded = app
        .write(
            &shop.merchant,
            Method::POST,
            &format!("{orders_path}/{order_id}/refunds"),
            json!({"amount": {"amount": 500, "currency": "USD"}, "reason": "late delivery"}),
        )
        .await;
    let (status, detail) = app
        .read(
            &shop.merchant,
            &format!("{orders_path}/{order_id}"),
            refunded.position,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let detail = &detail["data"];
    assert_eq!(detail["order"]["payment_status"], "partially_refunded");
    assert_eq!(detail["refunds"][0]["amount"]["amount"], 500);
    assert_eq!(detail["shipping_address"]["city"], "London");
    let timeline: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        timeline,
        [
            "order.created",
            "order.paid",
            "order.shipped",
            "order.refunded"
        ]
    );
    assert!(detail["timeline"][0]["data"].get("contact").is_none());

    // The orders as CSV: one line per item, the shopper named, the refund counted.
    let export = |query: &'static str| {
        let request = app
            .request(Method::GET, &format!("{orders_path}/export.csv{query}"))
            .bearer_auth(&shop.merchant.access)
            .header("x-min-position", refunded.position.unwrap().to_string());
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await.unwrap()
        }
    };
    let csv = export("?email=grace@example.com").await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[0].starts_with("order_id,number,created_at,status"),
        "{csv}"
    );
    let line: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(
        (line[1], line[12], line[13], line[15], line[23]),
        ("#1001", "3998", "500", "grace@example.com", "2"),
        "{csv}"
    );
    assert_eq!(export("?status=pending").await.lines().count(), 1);

    // The customer and today's sales.
    let (_, customers) = app
        .read(
            &shop.merchant,
            &format!("/api/v1/stores/{}/customers", shop.store_id),
            refunded.position,
        )
        .await;
    assert_eq!(customers["data"][0]["orders"], 1, "{customers}");
    assert_eq!(
        customers["data"][0]["lifetime_value"]["amount"],
        2 * 1999 - 500
    );
    let (_, sales) = app
        .read(
            &shop.merchant,
            &format!("/api/v1/stores/{}/sales/today", shop.store_id),
            refunded.position,
        )
        .await;
    assert_eq!(sales["data"]["orders"], 1, "{sales}");
    assert_eq!(sales["data"]["revenue"]["amount"], 2 * 1999);
    assert_eq!(sales["data"]["refunds"]["amount"], 500);

    // FlowSend: order.created, order.shipped and customer.created; SpyDrop: order.created.
    let services = &app.services;
    let expected = [
        ("flowsend", "order.created"),
        ("flowsend", "order.shipped"),
        ("flowsend", "customer.created"),
        ("spydrop", "order.created"),
    ];
    services
        .wait_until("the four deliveries", |_| {
            expected
                .iter()
                .all(|(path, kind)| !services.at(path, kind).is_empty())
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for (path, kind) in expected {
        let received = services.at(path, kind);
        assert_eq!(received.len(), 1, "{path} {kind}");
        let body: Value = received[0].json();
        let serialised = body.to_string();
        assert!(!serialised.contains("card"), "{serialised}");
        assert!(!serialised.contains("ciphertext"), "{serialised}");
        if kind != "customer.created" {
            assert_eq!(body["data"]["number"], 1001);
        }
        assert_eq!(
            body["data"]["contact"]["email"], "grace@example.com",
            "{kind}"
        );
    }
    let created = services.at("flowsend", "order.created")[0].json();
    assert_eq!(created["data"]["lines"][0]["quantity"], 2);
    assert_eq!(created["data"]["totals"]["total"], 2 * 1999);
    let shipped = services.at("flowsend", "order.shipped")[0].json();
    assert_eq!(shipped["data"]["tracking_number"], "JD0146000000");
    for (path, kind) in [
        ("spydrop", "order.shipped"),
        ("spydrop", "customer.created"),
    ] {
        assert!(services.at(path, kind).is_empty(), "{path} {kind}");
    }

    // The read models rebuild from the log to exactly what the projector built.
    let before = order_read_models(&app.pool).await;
    sqlx::raw_sql("UPDATE orders SET status = 'damaged'; DELETE FROM daily_sales")
        .execute(&app.pool)
        .await
        .unwrap();
    projections::rebuild(&app.pool, &projections::orders::Orders)
        .await
        .unwrap();
    assert_eq!(order_read_models(&app.pool).await, before);
}

/// Every row of the order read models, as text, in a stable order.
async fn order_read_models(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT row_to_json(o)::text FROM orders o \
         UNION ALL SELECT row_to_json(c)::text FROM customers c \
         UNION ALL SELECT row_to_json(d)::text FROM daily_sales d ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}
