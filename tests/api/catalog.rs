use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{error_code, fields, spawn_app};

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn categories_nest_once_and_membership_shows_from_both_sides() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = app.create_store(&merchant, "Shop").await.id();
    let base = format!("/api/v1/stores/{store_id}");
    let clothing = app
        .write(
            &merchant,
            Method::POST,
            &format!("{base}/categories"),
            json!({"name": "Clothing"}),
        )
        .await;
    assert_eq!(clothing.status, StatusCode::CREATED);
    let socks = app
        .write(
            &merchant,
            Method::POST,
            &format!("{base}/categories"),
            json!({"name": "Socks", "parent_id": clothing.id()}),
        )
        .await;
    assert_eq!(socks.body["data"]["parent_id"], clothing.id().as_str());
    let too_deep = app
        .request(Method::POST, &format!("{base}/categories"))
        .bearer_auth(&merchant.access)
        .json(&json!({"name": "Ankle", "parent_id": socks.id()}))
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(too_deep).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&error), vec!["parent_id"]);
    let twin = app
        .write(
            &merchant,
            Method::POST,
            &format!("{base}/categories"),
            json!({"name": "socks"}),
        )
        .await;
    assert_eq!(twin.body["data"]["slug"], "socks-2");

    let sock = app
        .create_product(
            &merchant,
            &store_id,
            json!({"title": "Sock", "price": {"amount": 500, "currency": "USD"},
                                                     "category_ids": [socks.id()]}),
        )
        .await;
    let hat = app
        .create_product(
            &merchant,
            &store_id,
            json!({"title": "Hat", "price": {"amount": 900, "currency": "USD"},
                                                     "category_ids": [clothing.id()]}),
        )
        .await;
    let summer = app
        .write(
            &merchant,
            Method::POST,
            &format!("{base}/collections"),
            json!({"name": "Summer", "product_ids": [hat.id(), sock.id()]}),
        )
        .await;
    let position = summer.position;

    // From the category's side: its products, a parent's including its children's.
    let (_, in_socks) = app
        .read(
            &merchant,
            &format!("{base}/products?category={}", socks.id()),
            position,
        )
        .await;
    assert_eq!(ids(&in_socks), vec![sock.id()]);
    let (_, in_clothing) = app
        .read(
            &merchant,
            &format!("{base}/products?category={}", clothing.id()),
            position,
        )
        .await;
    assert_eq!(in_clothing["total"], 2);
    let (_, category) = app
        .read(
            &merchant,
            &format!("{base}/categories/{}", socks.id()),
            position,
        )
        .await;
    assert_eq!(category["data"]["product_count"], 1);
    // From the collection's side, in its order; and from the product's side.
    let (_, in_summer) = app
        .read(
            &merchant,
            &format!("{base}/products?collection={}", summer.id()),
            position,
        )
        .await;
    assert_eq!(ids(&in_summer), vec![hat.id(), sock.id()]);
    let (_, product) = app
        .read(
            &merchant,
            &format!("{base}/products/{}", sock.id()),
            position,
        )
        .await;
    assert_eq!(product["data"]["category_ids"], json!([socks.id()]));
    assert_eq!(product["data"]["collection_ids"], json!([summer.id()]));

    let reordered = app
        .write(
            &merchant,
            Method::PATCH,
            &format!("{base}/collections/{}", summer.id()),
            json!({"product_ids": [sock.id(), hat.id()]}),
        )
        .await;
    let (_, in_summer) = app
        .read(
            &merchant,
            &format!("{base}/products?collection={}", summer.id()),
            reordered.position,
        )
        .await;
    assert_eq!(ids(&in_summer), vec![sock.id(), hat.id()]);

    // Deleting the parent leaves its child top-level and its products out of it.
    let deleted = app
        .request(
            Method::DELETE,
            &format!("{base}/categories/{}", clothing.id()),
        )
        .bearer_auth(&merchant.access)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let position: i64 = deleted.headers()["x-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (_, categories) = app
        .read(&merchant, &format!("{base}/categories"), Some(position))
        .await;
    assert_eq!(categories["total"], 2);
    assert!(
        categories["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["parent_id"].is_null())
    );
    let (_, product) = app
        .read(
            &merchant,
            &format!("{base}/products/{}", hat.id()),
            Some(position),
        )
        .await;
    assert_eq!(product["data"]["category_ids"], json!([]));
    let gone = app
        .request(Method::GET, &format!("{base}/categories/{}", clothing.id()))
        .bearer_auth(&merchant.access)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    // A collection takes only this store's products.
    let stranger = app.register().await;
    let elsewhere = app.create_store(&stranger, "Other").await.id();
    let theirs = app
        .create_product(
            &stranger,
            &elsewhere,
            json!({"title": "Theirs", "price": {"amount": 1, "currency": "USD"}}),
        )
        .await;
    let foreign = app
        .request(
            Method::PATCH,
            &format!("{base}/collections/{}", summer.id()),
        )
        .bearer_auth(&merchant.access)
        .json(&json!({"product_ids": [sock.id(), theirs.id()]}))
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(foreign).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&error), vec!["product_ids[1]"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_partial_titles_exact_skus_and_description_words() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store_id = app.create_store(&merchant, "Shop").await.id();
    let product = |title: &str,
                   description: &str,
                   sku: &str,
                   price: i64,
                   stock: i64,
                   tags: Value| {
        json!({"title": title, "description": description, "price": {"amount": price, "currency": "USD"},
               "tags": tags, "variants": [{"name": "One", "sku": sku, "inventory_count": stock}]})
    };
    let sunny = app
        .create_product(
            &merchant,
            &store_id,
            product(
                "Sunny Yellow Sock",
                "Bright cotton for summer days",
                "SUN-001",
                1500,
                4,
                json!(["summer"]),
            ),
        )
        .await;
    let moon = app
        .create_product(
            &merchant,
            &store_id,
            product(
                "Moon Boot",
                "Padded boots for walking on snow",
                "MOON-77",
                8900,
                0,
                json!(["winter"]),
            ),
        )
        .await;
    let scarf = app
        .create_product(
            &merchant,
            &store_id,
            product(
                "Silk Scarf",
                "Light and elegant",
                "SCF-9",
                4500,
                2,
                json!(["summer"]),
            ),
        )
        .await;
    let position = scarf.position;
    let search = |query: &str| {
        let path = format!("/api/v1/stores/{store_id}/products?{query}");
        let app = &app;
        let merchant = &merchant;
        async move { app.read(merchant, &path, position).await.1 }
    };
    assert_eq!(
        ids(&search("q=sunn").await),
        vec![sunny.id()],
        "part of a title word"
    );
    assert_eq!(
        ids(&search("q=moon-77").await),
        vec![moon.id()],
        "an exact SKU, any case"
    );
    assert_eq!(
        ids(&search("q=walking%20snow").await),
        vec![moon.id()],
        "description words, stemmed"
    );
    assert_eq!(ids(&search("q=zebra").await), Vec::<String>::new());
    assert_eq!(
        ids(&search("in_stock=true&sort=price_desc").await),
        vec![scarf.id(), sunny.id()]
    );
    assert_eq!(
        ids(&search("tag=summer&min_price=2000").await),
        vec![scarf.id()]
    );
    assert_eq!(
        ids(&search("max_price=4500&sort=title").await),
        vec![scarf.id(), sunny.id()]
    );
    assert_eq!(
        ids(&search("per_page=1&page=2&sort=price_asc").await),
        vec![scarf.id()]
    );
    assert_eq!(search("per_page=1").await["total"], 3);
    assert_eq!(search("status=active").await["total"], 0);

    let invalid = app
        .request(
            Method::GET,
            &format!("/api/v1/stores/{store_id}/products?sort=cheapest&min_price=-1&status=gone"),
        )
        .bearer_auth(&merchant.access)
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(invalid).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut named = fields(&error);
    named.sort();
    assert_eq!(named, vec!["min_price", "sort", "status"]);
}
