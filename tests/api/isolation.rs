use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ROUTES, error_code, json_of, spawn_app};

/// A body each route accepts, so that only ownership can fail the request.
fn valid_body(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("PATCH", "/api/v1/stores/{store_id}") => Some(json!({"name": "Hijacked"})),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_merchants_store_and_keys_are_404_on_every_route() {
    let app = spawn_app().await;
    let (owner, intruder) = (app.register().await, app.register().await);
    let store = app.create_store(&owner, "Private Store").await;
    let key = app.create_key(&owner, &["read"]).await;
    let key_id = key["id"].as_str().unwrap().to_owned();
    let intruder_key = app.create_key(&intruder, &["read", "write"]).await;
    let intruder_key = intruder_key["key"].as_str().unwrap().to_owned();

    let scoped: Vec<_> = ROUTES
        .iter()
        .filter(|(_, path)| path.contains("{store_id}") || path.contains("{key_id}"))
        .collect();
    assert!(scoped.len() >= 6, "the matrix covers every resource route");
    for (method, template) in scoped {
        let path = template
            .replace("{store_id}", &store.id())
            .replace("{key_id}", &key_id);
        for credential in ["bearer", "api key"] {
            let mut request = app.request(Method::from_bytes(method.as_bytes()).unwrap(), &path);
            request = match credential {
                "bearer" => request.bearer_auth(&intruder.access),
                _ => request.header("x-api-key", &intruder_key),
            };
            if let Some(body) = valid_body(method, template) {
                request = request.json(&body);
            }
            let response = request
                .header("x-min-position", store.position.unwrap().to_string())
                .send()
                .await
                .unwrap();
            let (status, code, _) = error_code(response).await;
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::NOT_FOUND, "not_found"),
                "{method} {template} with the intruder's {credential}"
            );
        }
    }

    let listed: Value = json_of(
        app.request(Method::GET, "/api/v1/stores")
            .bearer_auth(&intruder.access)
            .header("x-min-position", store.position.unwrap().to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["total"], 0);

    // Nothing the intruder did reached the owner's store or key.
    assert_eq!(app.events_in(&format!("store-{}", store.id())).await, 1);
    let mine: Value = json_of(
        app.request(Method::GET, &format!("/api/v1/stores/{}", store.id()))
            .bearer_auth(&owner.access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(mine["data"]["name"], "Private Store");
    assert_eq!(mine["data"]["status"], "active");
    let key_alive = app
        .request(Method::GET, "/api/v1/auth/me")
        .header("x-api-key", key["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(key_alive.status(), StatusCode::OK);
}
