use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{JWT_SECRET, PASSWORD, error_code, fields, json_of, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_normalises_the_email_and_me_knows_the_merchant() {
    let app = spawn_app().await;
    let response = app
        .request(Method::POST, "/api/v1/auth/register")
        .json(&json!({"email": "  Ada.Lovelace@Example.COM ", "password": PASSWORD, "name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], Value::Null);
    assert_eq!(body["data"]["token_type"], "Bearer");
    assert_eq!(body["data"]["expires_in"], 900);
    let access = body["data"]["access_token"].as_str().unwrap();

    let me: Value = json_of(
        app.request(Method::GET, "/api/v1/auth/me")
            .bearer_auth(access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(me["data"]["email"], "ada.lovelace@example.com");
    assert_eq!(me["data"]["name"], "Ada");

    let again = app
        .request(Method::POST, "/api/v1/auth/register")
        .json(&json!({"email": "ADA.LOVELACE@example.com", "password": "another password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(again).await.0, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_registration_rule_names_its_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "n".repeat(101)}),
            "name",
        ),
        (json!({"password": PASSWORD}), "email"),
        (
            json!({"email": "a@example.com", "password": 12345678}),
            "password",
        ),
    ];
    for (body, field) in cases {
        let response = app
            .request(Method::POST, "/api/v1/auth/register")
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, code, error) = error_code(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(code, "validation_failed");
        assert_eq!(fields(&error), vec![field.to_owned()], "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_do_not_say_whether_the_email_exists_and_are_rate_limited() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let login = |email: String, password: &'static str| {
        app.request(Method::POST, "/api/v1/auth/login")
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    let good = login(merchant.email.to_uppercase(), PASSWORD)
        .await
        .unwrap();
    assert_eq!(good.status(), StatusCode::OK);

    let wrong_password = error_code(
        login(merchant.email.clone(), "wrong password")
            .await
            .unwrap(),
    )
    .await;
    let unknown_email = error_code(
        login("nobody@example.com".into(), "wrong password")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(wrong_password.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_password, unknown_email,
        "the two failures are indistinguishable"
    );

    for _ in 0..4 {
        let failed = login(merchant.email.clone(), "wrong password")
            .await
            .unwrap();
        assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = login(merchant.email.clone(), PASSWORD).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    assert_eq!(error_code(limited).await.1, "rate_limited");
}

async fn refresh(app: &crate::helpers::TestApp, token: &str) -> reqwest::Response {
    app.request(Method::POST, "/api/v1/auth/refresh")
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_refresh_token_revokes_its_whole_family() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let first = refresh(&app, &merchant.refresh).await;
    assert_eq!(first.status(), StatusCode::OK);
    let rotated: Value = first.json().await.unwrap();
    let second_refresh = rotated["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second_access = rotated["data"]["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, merchant.refresh);

    let me = |token: String| {
        app.request(Method::GET, "/api/v1/auth/me")
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        me(second_access.clone()).await.unwrap().status(),
        StatusCode::OK
    );

    let reused = refresh(&app, &merchant.refresh).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    // The thief's copy and the owner's current token both die with the family.
    assert_eq!(
        refresh(&app, &second_refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me(second_access).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me(merchant.access.clone()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_and_its_tokens() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let logout = app
        .request(Method::POST, "/api/v1/auth/logout")
        .bearer_auth(&merchant.access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    let me = app
        .request(Method::GET, "/api/v1/auth/me")
        .bearer_auth(&merchant.access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&app, &merchant.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

fn forge(claims: Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tampered_foreign_audience_and_unsigned_tokens_are_refused() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let me = |token: String| {
        app.request(Method::GET, "/api/v1/auth/me")
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        me(merchant.access.clone()).await.unwrap().status(),
        StatusCode::OK
    );

    let payload = merchant.access.split('.').nth(1).unwrap().to_owned();
    let claims: Value = serde_json::from_slice(&base64_url_decode(&payload)).unwrap();
    let with = |key: &str, value: Value| {
        let mut changed = claims.clone();
        changed[key] = value;
        changed
    };
    let now = Utc::now().timestamp();
    let expired = forge(with("exp", json!(now - 60)), JWT_SECRET.as_bytes());
    let customer = forge(with("aud", json!("customer")), JWT_SECRET.as_bytes());
    let foreign = forge(claims.clone(), b"some other platform's secret, long enough");
    let mut parts: Vec<String> = merchant.access.split('.').map(str::to_owned).collect();
    parts[1] = base64_url_encode(&serde_json::to_vec(&with("sub", json!(Uuid::new_v4()))).unwrap());
    let tampered = parts.join(".");
    let unsigned = format!(
        "{}.{}.",
        base64_url_encode(br#"{"alg":"none","typ":"JWT"}"#),
        payload
    );
    for (label, token) in [
        ("expired", expired),
        ("customer audience", customer),
        ("foreign key", foreign),
        ("tampered", tampered),
        ("alg none", unsigned),
        ("garbage", "not.a.token".to_owned()),
        ("refresh as access", merchant.refresh.clone()),
    ] {
        let response = me(token).await.unwrap();
        let (status, code, _) = error_code(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{label}");
        assert_eq!(code, "unauthenticated", "{label}");
    }
}

fn base64_url_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn base64_url_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_parallel_guesses_for_one_email_reach_the_password_check_at_most_five_times() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let guesses = futures::future::join_all((0..2000).map(|i| {
        app.request(Method::POST, "/api/v1/auth/login")
            .json(&json!({"email": merchant.email, "password": format!("guess number {i}")}))
            .send()
    }))
    .await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for guess in guesses {
        *statuses
            .entry(guess.unwrap().status().as_u16())
            .or_default() += 1;
    }
    let checked = statuses.get(&401).copied().unwrap_or(0);
    assert!(checked <= 5, "{statuses:?}");
    assert_eq!(
        checked + statuses.get(&429).copied().unwrap_or(0),
        2000,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_name_the_client_only_behind_a_trusted_proxy() {
    let register = |app: &crate::helpers::TestApp, i: usize| {
        app.request(Method::POST, "/api/v1/auth/register")
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .json(
                &json!({"email": format!("m{i}-{}@example.com", Uuid::new_v4().simple()),
                          "password": PASSWORD}),
            )
            .send()
    };
    let direct = spawn_app().await;
    let mut statuses = Vec::new();
    for i in 0..21 {
        statuses.push(register(&direct, i).await.unwrap().status());
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "a spoofed header does not escape the per-address limit: {statuses:?}"
    );

    let proxied =
        crate::helpers::spawn_app_with(dropship::Role::ALL, &[("TRUSTED_PROXIES", "127.0.0.0/8")])
            .await;
    for i in 0..21 {
        let status = register(&proxied, i).await.unwrap().status();
        assert_eq!(status, StatusCode::CREATED, "client {i} behind the proxy");
    }
}
