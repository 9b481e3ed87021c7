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
