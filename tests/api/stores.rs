use std::{sync::Arc, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Written, error_code, fields, json_of, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_store_reads_back_in_one_round_trip_with_x_min_position() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let created = app.create_store(&merchant, "Sunny Socks").await;
    assert_eq!(created.etag.as_deref(), Some("\"1\""));
    let position = created.position.expect("X-Position");
    assert_eq!(created.body["data"]["slug"], "sunny-socks");
    assert_eq!(created.body["data"]["status"], "active");
    assert_eq!(created.body["data"]["currency"], "USD");

    let read = app
        .request(Method::GET, &format!("/api/v1/stores/{}", created.id()))
        .bearer_auth(&merchant.access)
        .header("x-min-position", position.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["data"]["name"], "Sunny Socks");
    assert_eq!(read["data"]["niche"], "socks");
    assert_eq!(read["data"]["version"], 1);

    let public = app
        .request(Method::GET, "/api/v1/public/stores/sunny-socks")
        .header("x-min-position", position.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::OK);
    let public: Value = public.json().await.unwrap();
    assert_eq!(public["data"]["name"], "Sunny Socks");
    assert!(
        public["data"].get("owner_id").is_none(),
        "no owner data in public: {public}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_the_read_model_does_not_reach_in_time_is_a_503_not_stale_data() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let response = app
        .request(Method::GET, "/api/v1/stores")
        .bearer_auth(&merchant.access)
        .header("x-min-position", "999999999")
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    let (status, code, _) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_names_get_suffixed_slugs_and_a_rename_frees_the_old_one() {
    let app = spawn_app().await;
    let (ada, bob) = (app.register().await, app.register().await);
    let first = app.create_store(&ada, "Moon Socks").await;
    let second = app.create_store(&bob, "Moon socks!").await;
    let third = app.create_store(&ada, "MOON SOCKS").await;
    let slugs: Vec<&Value> = [&first, &second, &third]
        .iter()
        .map(|w| &w.body["data"]["slug"])
        .collect();
    assert_eq!(slugs, vec!["moon-socks", "moon-socks-2", "moon-socks-3"]);

    let renamed = Written::from(
        app.request(Method::PATCH, &format!("/api/v1/stores/{}", first.id()))
            .bearer_auth(&ada.access)
            .json(&json!({"name": "Star Socks"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK);
    assert_eq!(renamed.body["data"]["slug"], "star-socks");
    assert_eq!(renamed.etag.as_deref(), Some("\"2\""));

    let fourth = app.create_store(&bob, "Moon Socks").await;
    assert_eq!(
        fourth.body["data"]["slug"], "moon-socks",
        "the released slug is free again"
    );
    let renamed_public = app
        .request(Method::GET, "/api/v1/public/stores/star-socks")
        .header("x-min-position", fourth.position.unwrap().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(renamed_public.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_returns_the_identical_answer_and_appends_nothing() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let send = |body: Value| {
        app.request(Method::POST, "/api/v1/stores")
            .bearer_auth(&merchant.access)
            .header("idempotency-key", "create-once")
            .json(&body)
            .send()
    };
    let first = Written::from(send(json!({"name": "Once"})).await.unwrap()).await;
    let retry = send(json!({"name": "Once"})).await.unwrap();
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry = Written::from(retry).await;
    assert_eq!(first, retry);
    let store_count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'store.created'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(store_count, 1);

    let other_body = send(json!({"name": "Twice"})).await.unwrap();
    let (status, code, _) = error_code(other_body).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );

    // A retried pause answers as the first one did, not with "already paused".
    let pause = || {
        app.request(
            Method::POST,
            &format!("/api/v1/stores/{}/pause", first.id()),
        )
        .bearer_auth(&merchant.access)
        .header("idempotency-key", "pause-once")
        .send()
    };
    let paused = Written::from(pause().await.unwrap()).await;
    assert_eq!(paused.status, StatusCode::OK);
    assert_eq!(Written::from(pause().await.unwrap()).await, paused);
    assert_eq!(app.events_in(&format!("store-{}", first.id())).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_with_the_same_if_match_have_exactly_one_winner() {
    let app = Arc::new(spawn_app().await);
    let merchant = app.register().await;
    let store = app.create_store(&merchant, "Contended").await;
    let path = format!("/api/v1/stores/{}", store.id());
    let mut attempts = Vec::new();
    for n in 0..8 {
        let (app, path, token) = (app.clone(), path.clone(), merchant.access.clone());
        attempts.push(tokio::spawn(async move {
            app.request(Method::PATCH, &path)
                .bearer_auth(token)
                .header("if-match", "\"1\"")
                .json(&json!({"description": format!("attempt {n}")}))
                .send()
                .await
                .unwrap()
        }));
    }
    let mut statuses = Vec::new();
    for attempt in attempts {
        let response = attempt.await.unwrap();
        let status = response.status();
        if status == StatusCode::CONFLICT {
            let (_, code, error) = error_code(response).await;
            assert_eq!(code, "version_conflict");
            assert_eq!(error["details"]["current_version"], 2);
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        7
    );
    assert_eq!(app.events_in(&format!("store-{}", store.id())).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_activate_and_delete_move_the_store_and_its_public_page() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store = app.create_store(&merchant, "Lifecycle").await;
    let path = format!("/api/v1/stores/{}", store.id());
    let act = |method: Method, suffix: &'static str| {
        app.request(method, &format!("{path}{suffix}"))
            .bearer_auth(&merchant.access)
            .send()
    };
    let public = |position: i64| {
        app.request(Method::GET, "/api/v1/public/stores/lifecycle")
            .header("x-min-position", position.to_string())
            .send()
    };
    let list = |position: i64, status: &'static str| {
        app.request(Method::GET, &format!("/api/v1/stores?status={status}"))
            .bearer_auth(&merchant.access)
            .header("x-min-position", position.to_string())
            .send()
    };
    assert_eq!(
        public(store.position.unwrap()).await.unwrap().status(),
        StatusCode::OK
    );

    let paused = Written::from(act(Method::POST, "/pause").await.unwrap()).await;
    assert_eq!(paused.body["data"]["status"], "paused");
    let at = paused.position.unwrap();
    assert_eq!(
        public(at).await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "paused stores are not public"
    );
    let listed: Value = list(at, "paused").await.unwrap().json().await.unwrap();
    assert_eq!(listed["total"], 1);
    let listed: Value = list(at, "active").await.unwrap().json().await.unwrap();
    assert_eq!(listed["total"], 0);
    let (status, code, _) = error_code(act(Method::POST, "/pause").await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "already_paused")
    );

    let active = Written::from(act(Method::POST, "/activate").await.unwrap()).await;
    assert_eq!(
        public(active.position.unwrap()).await.unwrap().status(),
        StatusCode::OK
    );

    let deleted = Written::from(act(Method::DELETE, "").await.unwrap()).await;
    assert_eq!(deleted.body["data"]["status"], "deleted");
    let at = deleted.position.unwrap();
    assert_eq!(public(at).await.unwrap().status(), StatusCode::NOT_FOUND);
    let all: Value = json_of(
        app.request(Method::GET, "/api/v1/stores")
            .bearer_auth(&merchant.access)
            .header("x-min-position", at.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(all["total"], 0, "deleted stores are not listed");
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::DELETE, ""),
        (Method::POST, "/activate"),
    ] {
        assert_eq!(
            act(method, suffix).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_paginated_newest_first() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let mut last = 0;
    for n in 0..5 {
        last = app
            .create_store(&merchant, &format!("Paged {n}"))
            .await
            .position
            .unwrap();
    }
    let page: Value = json_of(
        app.request(Method::GET, "/api/v1/stores?page=2&per_page=2")
            .bearer_auth(&merchant.access)
            .header("x-min-position", last.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (
            page["total"].clone(),
            page["page"].clone(),
            page["per_page"].clone()
        ),
        (json!(5), json!(2), json!(2))
    );
    let names: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Paged 2", "Paged 1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_store_rule_names_its_field() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let store = app.create_store(&merchant, "Valid").await;
    let creates = [
        (json!({"name": ""}), vec!["name"]),
        (json!({"name": "n".repeat(101)}), vec!["name"]),
        (
            json!({"name": "ok", "niche": "n".repeat(101)}),
            vec!["niche"],
        ),
        (
            json!({"name": "ok", "description": "d".repeat(5001)}),
            vec!["description"],
        ),
        (json!({"name": "ok", "currency": "EURO"}), vec!["currency"]),
        (
            json!({"name": "", "currency": "XXX"}),
            vec!["name", "currency"],
        ),
        (json!({"niche": "no name"}), vec!["name"]),
        (json!({"name": 42}), vec!["name"]),
    ];
    for (body, expected) in creates {
        let response = app
            .request(Method::POST, "/api/v1/stores")
            .bearer_auth(&merchant.access)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, _, error) = error_code(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(fields(&error), expected, "{body}");
    }
    for (body, expected) in [
        (json!({"name": null}), vec!["name"]),
        (json!({"name": "   "}), vec!["name"]),
        (
            json!({"description": "d".repeat(5001)}),
            vec!["description"],
        ),
    ] {
        let response = app
            .request(Method::PATCH, &format!("/api/v1/stores/{}", store.id()))
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
async fn the_cached_public_page_follows_the_projection() {
    let app = spawn_app().await;
    let merchant = app.register().await;
    let status_of = |slug: &'static str| {
        let request = app.request(Method::GET, &format!("/api/v1/public/stores/{slug}"));
        async move { request.send().await.unwrap().status() }
    };
    let eventually_status = |slug: &'static str, expected: StatusCode| async move {
        testkit::eventually(Duration::from_secs(10), || async {
            status_of(slug).await == expected
        })
        .await
    };
    // A miss is cached too, and must not hide the store once the projection has it.
    assert_eq!(status_of("cached-socks").await, StatusCode::NOT_FOUND);
    let store = app.create_store(&merchant, "Cached Socks").await;
    assert!(
        eventually_status("cached-socks", StatusCode::OK).await,
        "the cached miss was never dropped"
    );
    let seen = app
        .request(Method::GET, "/api/v1/public/stores/cached-socks")
        .send()
        .await
        .unwrap();
    assert!(
        seen.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );

    let changed = Written::from(
        app.request(Method::PATCH, &format!("/api/v1/stores/{}", store.id()))
            .bearer_auth(&merchant.access)
            .json(&json!({"name": "Fresh Socks", "niche": null}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Reading one's own write is exact at once; everyone else's cached copy follows.
    let fresh: Value = json_of(
        app.request(Method::GET, "/api/v1/public/stores/fresh-socks")
            .header("x-min-position", changed.position.unwrap().to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(fresh["data"]["name"], "Fresh Socks");
    assert_eq!(fresh["data"]["niche"], Value::Null);
    assert!(
        eventually_status("cached-socks", StatusCode::NOT_FOUND).await,
        "the cached page was never dropped"
    );
}
