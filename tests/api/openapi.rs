use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{ROUTES, spawn_app};

fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_the_mounted_routes_with_their_errors() {
    let app = spawn_app().await;
    let response = app
        .request(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));

    let known: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        documented(&document),
        known,
        "a route is mounted without documentation (or the tests do not know it yet)"
    );

    // Everything documented answers from a handler: not the unknown-route fallback, not 405.
    for (method, path) in documented(&document) {
        let mut concrete = path.replace("{slug}", "no-such-store");
        for id in [
            "{store_id}",
            "{key_id}",
            "{product_id}",
            "{variant_id}",
            "{category_id}",
            "{collection_id}",
        ] {
            concrete = concrete.replace(id, "00000000-0000-7000-8000-000000000000");
        }
        let concrete = concrete
            .replace("{product_slug}", "no-such-product")
            .replace("{file}", "no-such-file.png");
        let response = app
            .request(Method::from_bytes(method.as_bytes()).unwrap(), &concrete)
            .send()
            .await
            .unwrap();
        assert_ne!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(
            body["error"]["code"], "route_not_found",
            "{method} {path} is not mounted"
        );
    }

    // Every operation says what its failures look like.
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if path == "/api/v1/openapi.json" {
                continue;
            }
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|status| status.starts_with('4')),
                "{method} {path} documents no error"
            );
            assert!(
                responses
                    .values()
                    .any(|r| r.to_string().contains("ErrorEnvelope")),
                "{method} {path} documents errors without their schema"
            );
        }
    }
    let created = &document["paths"]["/api/v1/stores"]["post"]["responses"]["201"]["headers"];
    assert!(
        created["ETag"].is_object() && created["X-Position"].is_object(),
        "{created}"
    );
    assert!(document["components"]["schemas"]["ErrorEnvelope"].is_object());
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
}
