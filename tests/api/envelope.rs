use reqwest::{Method, StatusCode};

use crate::helpers::{error_code, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_request_is_answered_in_the_envelope() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let post = |body: Vec<u8>, content_type: &'static str| {
        app.request(Method::POST, "/api/v1/stores")
            .bearer_auth(&merchant.access)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases = [
        (
            post(b"{\"name\": ".to_vec(), "application/json").await,
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            post(b"name=x".to_vec(), "application/x-www-form-urlencoded").await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            post(
                format!("{{\"name\": \"{}\"}}", "x".repeat(300 * 1024)).into_bytes(),
                "application/json",
            )
            .await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            app.request(Method::GET, "/api/v1/nowhere").send().await,
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
        (
            app.request(Method::PUT, "/api/v1/stores")
                .bearer_auth(&merchant.access)
                .send()
                .await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            app.request(Method::GET, "/api/v1/stores").send().await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            app.request(Method::GET, "/api/v1/stores?per_page=1000")
                .bearer_auth(&merchant.access)
                .send()
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            app.request(Method::GET, "/api/v1/stores?page=abc")
                .bearer_auth(&merchant.access)
                .send()
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            app.request(Method::GET, "/api/v1/stores/not-a-uuid")
                .bearer_auth(&merchant.access)
                .send()
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            app.request(Method::GET, "/api/v1/public/stores/%FF")
                .send()
                .await,
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
    ];
    for (response, status, code) in cases {
        let (actual_status, actual_code, _) = error_code(response.unwrap()).await;
        assert_eq!((actual_status, actual_code.as_str()), (status, code));
    }
}
