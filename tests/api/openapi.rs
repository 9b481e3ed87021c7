use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{CUSTOMER_ENTRY_ROUTES, CUSTOMER_ROUTES, ROUTES, TestApp, connect, spawn_app};

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

async fn document(app: &TestApp) -> Value {
    let response = app
        .request(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_the_mounted_routes_with_their_errors() {
    let app = spawn_app().await;
    let document = document(&app).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));

    let known: BTreeSet<(String, String)> = ROUTES
        .iter()
        .chain(CUSTOMER_ROUTES)
        .chain(CUSTOMER_ENTRY_ROUTES)
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
            "{order_id}",
            "{customer_id}",
            "{address_id}",
            "{category_id}",
            "{collection_id}",
        ] {
            concrete = concrete.replace(id, "00000000-0000-7000-8000-000000000000");
        }
        let concrete = concrete
            .replace("{product_slug}", "no-such-product")
            .replace("{file}", "no-such-file.png")
            .replace("{number}", "1001");
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

/// The string properties of an operation's JSON body, as the document describes it.
fn string_fields(document: &Value, operation: &Value) -> Vec<String> {
    let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    let schema = match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            &document["components"]["schemas"][name]
        }
        None => schema,
    };
    schema["properties"]
        .as_object()
        .map(|properties| {
            properties
                .iter()
                .filter(|(_, property)| property.to_string().contains("\"string\""))
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_every_documented_parameter_and_string_field_are_refused_without_a_500()
 {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store = app.create_store(&merchant, "Control Shop").await;
    let store_id = store.id();
    let product = app
        .create_product(
            &merchant,
            &store_id,
            json!({"title": "Control Sock", "price": {"amount": 900, "currency": "USD"},
                   "variants": [{"name": "One", "sku": "CTRL-1", "inventory_count": 3}]}),
        )
        .await;
    let key = app.create_key(&merchant, &["read"]).await;
    let webhook = app
        .write(
            &merchant,
            Method::POST,
            &format!("/api/v1/stores/{store_id}/webhooks"),
            json!({"endpoint_url": app.services.url("hook"), "event_types": ["*"]}),
        )
        .await;
    let (integration_id, _, _) =
        connect(&app, &merchant, &store_id, json!({"service": "rankpilot"})).await;
    let values = [
        ("{store_id}", store_id.clone()),
        (
            "{slug}",
            store.body["data"]["slug"].as_str().unwrap().to_owned(),
        ),
        ("{product_id}", product.id()),
        (
            "{product_slug}",
            product.body["data"]["slug"].as_str().unwrap().to_owned(),
        ),
        (
            "{variant_id}",
            product.body["data"]["variants"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
        ("{key_id}", key["id"].as_str().unwrap().to_owned()),
        ("{integration_id}", integration_id),
        ("{webhook_id}", webhook.id()),
        (
            "{category_id}",
            "00000000-0000-7000-8000-000000000001".to_owned(),
        ),
        (
            "{collection_id}",
            "00000000-0000-7000-8000-000000000002".to_owned(),
        ),
        ("{resource_type}", "product".to_owned()),
        ("{resource_id}", product.id()),
        ("{name}", "rankpilot".to_owned()),
        ("{file}", "none.png".to_owned()),
        (
            "{order_id}",
            "00000000-0000-7000-8000-000000000004".to_owned(),
        ),
        (
            "{customer_id}",
            "00000000-0000-7000-8000-000000000005".to_owned(),
        ),
        (
            "{address_id}",
            "00000000-0000-7000-8000-000000000006".to_owned(),
        ),
        ("{number}", "1001".to_owned()),
        (
            "{session}",
            "cs_mock_00000000000070008000000000000003".to_owned(),
        ),
    ];
    let document = document(&app).await;
    let concrete = |template: &str, poisoned: Option<&str>| {
        values
            .iter()
            .fold(template.to_owned(), |path, (name, value)| {
                let value = if poisoned == Some(*name) {
                    "a%00b"
                } else {
                    value
                };
                path.replace(name, value)
            })
    };
    let mut probes = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut requests = Vec::new();
            for parameter in &parameters {
                let name = parameter["name"].as_str().unwrap();
                match parameter["in"].as_str() {
                    Some("path") => {
                        let placeholder = format!("{{{name}}}");
                        assert!(
                            values.iter().any(|(known, _)| *known == placeholder),
                            "no value for {placeholder} of {path}"
                        );
                        requests.push((concrete(path, Some(&placeholder)), None));
                    }
                    Some("query") => {
                        for character in ["%00", "%01", "%1B", "%7F"] {
                            let url = format!("{}?{name}=a{character}b", concrete(path, None));
                            requests.push((url, None));
                        }
                    }
                    _ => {}
                }
            }
            for field in string_fields(&document, operation) {
                requests.push((concrete(path, None), Some(json!({ field: "a\u{0}b" }))));
            }
            for (url, body) in requests {
                let mut request = app
                    .request(method.clone(), &url)
                    .bearer_auth(&merchant.access);
                if let Some(body) = &body {
                    request = request.json(body);
                }
                let response = request.send().await.unwrap();
                let status = response.status();
                assert!(
                    status.is_client_error(),
                    "{method} {url} {body:?} answered {status}"
                );
                let answer: Value = response.json().await.unwrap_or(Value::Null);
                assert!(
                    answer["error"]["code"].is_string(),
                    "{method} {url}: {answer}"
                );
                probes += 1;
            }
        }
    }
    assert!(
        probes > 100,
        "only {probes} probes: the document lost its parameters?"
    );
    // Nothing poisoned reached the log.
    let poisoned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE position > $1 AND event_type NOT LIKE 'integration.%'",
    )
    .bind(webhook.position.unwrap())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(poisoned, 0);
}
