use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn titles(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storefront_shows_active_products_of_active_stores_without_cost() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store = app.create_store(&merchant, "Open Shop").await;
    let store_id = store.id();
    let slug = store.body["data"]["slug"].as_str().unwrap().to_owned();
    let product = |title: &str, status: &str| {
        json!({"title": title, "status": status, "price": {"amount": 1000, "currency": "USD"},
               "cost": {"amount": 400, "currency": "USD"},
               "variants": [{"name": "One", "price": {"amount": 1200, "currency": "USD"}, "inventory_count": 0}]})
    };
    let live = app
        .create_product(&merchant, &store_id, product("Live Sock", "active"))
        .await;
    app.create_product(&merchant, &store_id, product("Draft Sock", "draft"))
        .await;
    let archived = app
        .create_product(&merchant, &store_id, product("Old Sock", "active"))
        .await;
    let gone = app
        .request(
            Method::DELETE,
            &format!("/api/v1/stores/{store_id}/products/{}", archived.id()),
        )
        .bearer_auth(&merchant.access)
        .send()
        .await
        .unwrap();
    let position: i64 = gone.headers()["x-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();

    let list_path = format!("/api/v1/public/stores/{slug}/products");
    let (status, list) = app.public(&list_path, Some(position)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(titles(&list), vec!["Live Sock"]);
    let text = list.to_string();
    assert!(
        !text.contains("cost") && !text.contains("inventory_count"),
        "{text}"
    );
    assert_eq!(list["data"][0]["variants"][0]["price"]["amount"], 1200);
    assert_eq!(list["data"][0]["available"], false);
    let (status, detail) = app.public(&format!("{list_path}/live-sock"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["data"]["id"], live.id().as_str());
    for hidden in ["draft-sock", "old-sock", "no-such-sock"] {
        let (status, _) = app.public(&format!("{list_path}/{hidden}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{hidden}");
    }
    let (status, _) = app.public(&format!("{list_path}?status=draft"), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A paused store's catalog goes dark, and comes back.
    let paused = app
        .write(
            &merchant,
            Method::POST,
            &format!("/api/v1/stores/{store_id}/pause"),
            json!({}),
        )
        .await;
    let (status, _) = app.public(&list_path, paused.position).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.public(&format!("{list_path}/live-sock"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let active = app
        .write(
            &merchant,
            Method::POST,
            &format!("/api/v1/stores/{store_id}/activate"),
            json!({}),
        )
        .await;
    let (status, list) = app.public(&list_path, active.position).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(titles(&list), vec!["Live Sock"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storefront_cache_follows_the_catalog() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store = app.create_store(&merchant, "Cached Shop").await;
    let store_id = store.id();
    let slug = store.body["data"]["slug"].as_str().unwrap().to_owned();
    let first = app
        .create_product(
            &merchant,
            &store_id,
            json!({"title": "First", "status": "active",
                                                     "price": {"amount": 100, "currency": "USD"}}),
        )
        .await;
    let list_path = format!("/api/v1/public/stores/{slug}/products");
    let (_, list) = app.public(&list_path, first.position).await;
    assert_eq!(titles(&list), vec!["First"]);
    // Cached now; served from the cache until the projection announces a change.
    let (_, list) = app.public(&list_path, None).await;
    assert_eq!(titles(&list), vec!["First"]);
    let categories_path = format!("/api/v1/public/stores/{slug}/categories");
    let (_, categories) = app.public(&categories_path, None).await;
    assert_eq!(categories["total"], 0);
    app.write(
        &merchant,
        Method::POST,
        &format!("/api/v1/stores/{store_id}/categories"),
        json!({"name": "Tops"}),
    )
    .await;
    let second = app
        .create_product(
            &merchant,
            &store_id,
            json!({"title": "Second", "status": "active",
                                                     "price": {"amount": 50, "currency": "USD"}}),
        )
        .await;
    let renamed = app
        .write(
            &merchant,
            Method::PATCH,
            &format!("/api/v1/stores/{store_id}/products/{}", first.id()),
            json!({"title": "First Renamed"}),
        )
        .await;
    assert!(renamed.position > second.position);
    // Pages cached before the changes are not served after them.
    let refreshed = testkit::eventually(Duration::from_secs(10), || async {
        let (_, list) = app.public(&list_path, None).await;
        titles(&list) == ["Second", "First Renamed"]
    })
    .await;
    assert!(refreshed, "the cached list follows the projection");
    let refreshed = testkit::eventually(Duration::from_secs(10), || async {
        let (_, categories) = app.public(&categories_path, None).await;
        categories["total"] == 1
    })
    .await;
    assert!(refreshed, "categories follow too");
}

/// The process's resident memory, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kilobytes: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|number| number.trim().parse().ok())
        .unwrap();
    kilobytes * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_with_huge_or_unknown_keys_do_not_grow_memory() {
    use futures::StreamExt;

    let app = spawn_app().await;
    let merchant = app.register().await;
    let store = app.create_store(&merchant, "Memory Shop").await;
    let slug = store.body["data"]["slug"].as_str().unwrap().to_owned();
    let send = |path: String| {
        let request = app.request(Method::GET, &path).send();
        async move { request.await.unwrap().status() }
    };
    let huge = |n: usize| format!("{n}{}", "s".repeat(60 * 1024));
    // Warm up the allocator, the connection pool and the caches' own structures.
    let warm: Vec<StatusCode> = futures::stream::iter(0..200)
        .map(|n| send(format!("/api/v1/public/stores/{}/products", huge(n))))
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(
        warm.iter().all(|s| *s == StatusCode::URI_TOO_LONG),
        "{warm:?}"
    );
    let before = resident_bytes();

    let statuses: Vec<StatusCode> = futures::stream::iter(0..4000)
        .map(|n| send(format!("/api/v1/public/stores/{}/products", huge(n))))
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == StatusCode::URI_TOO_LONG));
    let unknown: Vec<StatusCode> = futures::stream::iter(0..1000)
        .map(|n| {
            send(format!(
                "/api/v1/public/stores/no-such-store-{n:0>50}/products"
            ))
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(unknown.iter().all(|s| *s == StatusCode::NOT_FOUND));
    let tags: Vec<StatusCode> = futures::stream::iter(0..1000)
        .map(|n| {
            send(format!(
                "/api/v1/public/stores/{slug}/products?tag={n}{}",
                "t".repeat(4000)
            ))
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(tags.iter().all(|s| *s == StatusCode::UNPROCESSABLE_ENTITY));

    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 20 << 20,
        "resident memory grew by {} MB",
        grown >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_and_control_characters_in_paths_and_queries_are_refused_without_a_500() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store = app.create_store(&merchant, "Nul Shop").await;
    let slug = store.body["data"]["slug"].as_str().unwrap().to_owned();
    for (path, expected) in [
        (
            "/api/v1/public/stores/%00".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/api/v1/public/stores/{slug}/products/%00"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/api/v1/public/stores/{slug}/products?q=%00"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("/api/v1/public/stores/{slug}/products?tag=%00"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("/api/v1/public/stores/{slug}/products?q=a%07b"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/public/stores/Not%20A%20Slug".to_owned(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let response = app.request(Method::GET, &path).send().await.unwrap();
        assert_eq!(response.status(), expected, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    let nul_body = app
        .request(Method::POST, "/api/v1/stores")
        .bearer_auth(&merchant.access)
        .json(&json!({"name": "a\u{0}b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(nul_body.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = nul_body.json().await.unwrap();
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "name");
}
