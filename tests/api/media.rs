use reqwest::{Method, StatusCode, multipart};

use crate::helpers::{error_code, spawn_app};

/// The smallest valid PNG: one transparent pixel.
const PIXEL: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

fn upload(bytes: Vec<u8>, declared: &str) -> multipart::Form {
    let part = multipart::Part::bytes(bytes)
        .file_name("picture.png")
        .mime_str(declared)
        .unwrap();
    multipart::Form::new().part("file", part)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_checked_by_their_bytes_stored_and_served_for_caching() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = app.create_store(&merchant, "Pictures").await.id();
    let path = format!("/api/v1/stores/{store_id}/media");
    let send = |form: multipart::Form| {
        app.request(Method::POST, &path)
            .bearer_auth(&merchant.access)
            .multipart(form)
            .send()
    };
    let stored = send(upload(PIXEL.to_vec(), "image/png")).await.unwrap();
    assert_eq!(stored.status(), StatusCode::CREATED);
    let body: serde_json::Value = stored.json().await.unwrap();
    assert_eq!(body["data"]["content_type"], "image/png");
    assert_eq!(body["data"]["size"], PIXEL.len());
    let url = body["data"]["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("/api/v1/public/media/{store_id}/")),
        "{url}"
    );

    let served = app.request(Method::GET, &url).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    let headers = served.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(served.bytes().await.unwrap().as_ref(), PIXEL);
    let revalidated = app
        .request(Method::GET, &url)
        .header("if-none-match", headers["etag"].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);

    // The image URL is accepted in a product.
    app.create_product(
        &merchant,
        &store_id,
        serde_json::json!({"title": "Pixel", "images": [url],
        "price": {"amount": 1, "currency": "USD"}}),
    )
    .await;

    // A script that claims to be a PNG is refused by what it is.
    let (status, code, _) = error_code(
        send(upload(b"<script>alert(1)</script>".to_vec(), "image/png"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    // Over 10 MB is 413, whether the part or the whole body is over.
    let mut large = PIXEL.to_vec();
    large.resize(10 * 1024 * 1024 + 1, 0);
    let (status, code, _) = error_code(send(upload(large, "image/png")).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let mut huge = PIXEL.to_vec();
    huge.resize(12 * 1024 * 1024, 0);
    let (status, _, _) = error_code(send(upload(huge, "image/png")).await.unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A fresh connection: the server may close the one that carried the refused 12 MB.
    let not_multipart = reqwest::Client::new()
        .post(app.url(&path))
        .bearer_auth(&merchant.access)
        .json(&serde_json::json!({"file": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(not_multipart).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    for missing in [
        format!("/api/v1/public/media/{store_id}/{}.png", "0".repeat(64)),
        format!("/api/v1/public/media/{store_id}/..%2F..%2Fetc%2Fpasswd"),
    ] {
        let response = app.request(Method::GET, &missing).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
    }
}
