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
