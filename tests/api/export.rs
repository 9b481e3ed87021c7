use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_of_ten_thousand_products_streams_line_by_line() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = app.create_store(&merchant, "Big Shop").await.id();
    let products = 10_000usize;
    let path = format!("/api/v1/stores/{store_id}/products");
    let positions: Vec<i64> = futures::stream::iter(0..products)
        .map(|n| {
            let request = app
                .request(Method::POST, &path)
                .bearer_auth(&merchant.access)
                .json(&json!({"title": format!("Product, \"number\" {n}"),
                              "price": {"amount": 100 + n, "currency": "USD"},
                              "variants": [{"name": "One", "sku": format!("SKU-{n}"), "inventory_count": 1}]}));
            async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
                response.headers()["x-position"].to_str().unwrap().parse::<i64>().unwrap()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let last = positions.into_iter().max().unwrap();

    let response = app
        .request(Method::GET, &format!("{path}/export.csv"))
        .bearer_auth(&merchant.access)
        .header("x-min-position", last.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        response.headers().get("content-length").is_none(),
        "a streamed body has no length announced up front"
    );
    // Read chunk by chunk, holding only the current line: the body arrives in many
    // pieces, each a bounded part of the whole.
    let (mut chunks, mut largest, mut lines, mut total) = (0usize, 0usize, 0usize, 0usize);
    let mut body = response.bytes_stream();
    let mut first_line = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        chunks += 1;
        largest = largest.max(chunk.len());
        total += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        if first_line.len() < 200 {
            first_line.extend_from_slice(&chunk[..chunk.len().min(200)]);
        }
    }
    assert_eq!(lines, products + 1, "a header and one line per product");
    assert!(String::from_utf8_lossy(&first_line).starts_with("product_id,title,slug,status"));
    assert!(chunks >= 10, "{chunks} chunks for {total} bytes");
    assert!(largest <= 1024 * 1024, "chunks stay small: {largest} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_exports_that_never_read_hold_no_connection_others_need() {
    use tokio::io::AsyncWriteExt;

    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = app.create_store(&merchant, "Hoarder Shop").await.id();
    // 20 products × 100 variants, each line carrying a 5,000-character description:
    // about 10 MB of CSV, more than the socket buffers and the export's channel hold.
    let variants: Vec<_> = (0..100)
        .map(|v| json!({"name": format!("V{v}"), "inventory_count": 1}))
        .collect();
    let mut last = 0;
    for n in 0..20 {
        let written = app
            .create_product(
                &merchant,
                &store_id,
                json!({"title": format!("Heavy {n}"), "description": "d".repeat(5000),
                       "price": {"amount": 100, "currency": "USD"}, "variants": variants}),
            )
            .await;
        last = written.position.unwrap();
    }
    let (status, _) = app
        .read(
            &merchant,
            &format!("/api/v1/stores/{store_id}/products"),
            Some(last),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(address.parse().unwrap()).await.unwrap();
        let request = format!(
            "GET /api/v1/stores/{store_id}/products/export.csv HTTP/1.1\r\nhost: {address}\r\n\
             authorization: Bearer {}\r\n\r\n",
            merchant.access
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    // Long enough for every export to fill what the sockets and its channel hold.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    // Another merchant writes, the projector applies it, the relay delivers it, and
    // reads answer: nothing waits on the stalled exports.
    let receiver = crate::receiver::Receiver::start().await;
    let other = app.register().await;
    let other_store = app.create_store(&other, "Busy Shop").await.id();
    app.write(
        &other,
        Method::POST,
        &format!("/api/v1/stores/{other_store}/webhooks"),
        json!({"endpoint_url": receiver.url("hook"), "event_types": ["product.created"]}),
    )
    .await;
    let created = app
        .create_product(
            &other,
            &other_store,
            json!({"title": "Fresh", "price": {"amount": 100, "currency": "USD"}}),
        )
        .await;
    let (status, body) = app
        .read(
            &other,
            &format!("/api/v1/stores/{other_store}/products/{}", created.id()),
            created.position,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    receiver
        .wait_until("the delivery", |r| {
            r.iter().any(|r| r.event_type() == "product.created")
        })
        .await;
    let (status, _) = app
        .read(&merchant, &format!("/api/v1/stores/{store_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    drop(stalled);
}

/// More orders than one page of the export: every order once, none skipped at a page's
/// edge, newest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_export_pages_through_every_order_once() {
    use std::collections::HashSet;

    use crate::checkout::{cart, checkout, product, shop};

    let app = spawn_app().await;
    let shop = shop(&app).await;
    let (_, variants) = product(&app, &shop, "active", &[("M", None, 1000)]).await;
    let orders = 450;
    let body = cart(
        json!([{"variant_id": variants[0], "quantity": 1}]),
        "bulk@example.com",
    );
    let positions: Vec<i64> = futures::stream::iter(0..orders)
        .map(|_| async {
            let placed = checkout(&app, &shop.slug, &body).await;
            assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
            placed.position.unwrap()
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let response = app
        .request(
            Method::GET,
            &format!("/api/v1/stores/{}/orders/export.csv", shop.store_id),
        )
        .bearer_auth(&shop.merchant.access)
        .header(
            "x-min-position",
            positions.iter().max().unwrap().to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csv = response.text().await.unwrap();
    let created: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(2).unwrap())
        .collect();
    let numbers: HashSet<&str> = csv
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(created.len(), orders, "one line per order");
    assert_eq!(numbers.len(), orders, "each order once");
    assert!(
        created.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first"
    );
}
