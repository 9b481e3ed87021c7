use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{error_code, fields, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_shown_once_listed_by_prefix_and_dies_when_revoked() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let created = app.create_key(&merchant, &["read", "write"]).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let prefix = created["prefix"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&prefix) && key.len() > prefix.len() + 20);

    let stored: Vec<u8> = sqlx::query_scalar("SELECT key_sha256 FROM api_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32, "only the digest is kept");

    let listed = app
        .request(Method::GET, "/api/v1/api-keys")
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["data"][0]["prefix"], prefix.as_str());
    assert!(
        !listed.to_string().contains(&key),
        "the key is never shown again"
    );

    let revoked = app
        .request(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", created["id"].as_str().unwrap()),
        )
        .bearer_auth(&merchant.access)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let after = app
        .request(Method::GET, "/api/v1/auth/me")
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_works_within_its_scopes_only() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let reader = app.create_key(&merchant, &["read"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let writer = app.create_key(&merchant, &["write"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let create = |key: String| {
        app.request(Method::POST, "/api/v1/stores")
            .header("x-api-key", key)
            .json(&json!({"name": "Keyed Store"}))
            .send()
    };
    let list = |key: String| {
        app.request(Method::GET, "/api/v1/stores")
            .header("x-api-key", key)
            .send()
    };

    let (status, code, _) = error_code(create(reader.clone()).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    assert_eq!(list(reader).await.unwrap().status(), StatusCode::OK);

    assert_eq!(
        create(writer.clone()).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(list(writer).await.unwrap().status(), StatusCode::FORBIDDEN);

    let unknown = list("dsk_not-a-real-key".into()).await.unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    let logout = app
        .request(Method::POST, "/api/v1/auth/logout")
        .header(
            "x-api-key",
            app.create_key(&merchant, &["read", "write"]).await["key"]
                .as_str()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        logout.status(),
        StatusCode::FORBIDDEN,
        "a key has no session to end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_requests_are_validated_field_by_field() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    for (body, expected) in [
        (json!({"name": "", "scopes": ["read"]}), vec!["name"]),
        (json!({"name": "ok", "scopes": []}), vec!["scopes"]),
        (
            json!({"name": "ok", "scopes": ["read", "admin"]}),
            vec!["scopes[1]"],
        ),
    ] {
        let response = app
            .request(Method::POST, "/api/v1/api-keys")
            .bearer_auth(&merchant.access)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, _, error) = error_code(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(fields(&error), expected, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_can_neither_mint_nor_revoke_keys() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let write_only = app.create_key(&merchant, &["write"]).await;
    let full = app.create_key(&merchant, &["read", "write"]).await;
    let key = write_only["key"].as_str().unwrap();

    let minted = app
        .request(Method::POST, "/api/v1/api-keys")
        .header("x-api-key", key)
        .json(&json!({"name": "escalated", "scopes": ["read", "write"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), StatusCode::FORBIDDEN);

    let revoked = app
        .request(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", full["id"].as_str().unwrap()),
        )
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::FORBIDDEN);

    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(keys, 2, "no key was minted or revoked by a key");
}
