//! The bridge relay end to end: real receivers on 127.0.0.1 verify both signatures of
//! what the services are sent, and the delivery log is read back through the API.

use std::{collections::HashSet, time::Instant};

use dropship::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{
        Merchant, PLATFORM_WEBHOOK_SECRET, SERVICES, TestApp, connect, error_code, eventually,
        spawn_app, spawn_app_with,
    },
    receiver::Behaviour,
};

fn product(title: &str) -> Value {
    json!({"title": title, "price": {"amount": 1500, "currency": "USD"}})
}

/// The id of the `product.created` event of `product_id`.
async fn created_event(app: &TestApp, product_id: &str) -> String {
    let id: uuid::Uuid = sqlx::query_scalar(
        "SELECT event_id FROM events WHERE stream_id = $1 AND event_type = 'product.created'",
    )
    .bind(format!("product-{product_id}"))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    id.to_string()
}

async fn activity(app: &TestApp, merchant: &Merchant, path: &str) -> Value {
    let (status, body) = app.read(merchant, path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn store_with(app: &TestApp, name: &str) -> (Merchant, String) {
    let merchant = app.register().await;
    let store = app.create_store(&merchant, name).await;
    (merchant, store.id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_product_reaches_exactly_the_six_mapped_services_once_signed_both_ways() {
    let app = spawn_app().await;
    let receiver = app.services.clone();
    let (merchant, store_id) = store_with(&app, "Bridge Socks").await;
    // A service's address is the platform's: a merchant cannot point it anywhere.
    let redirected = app
        .request(
            Method::POST,
            &format!("/api/v1/stores/{store_id}/integrations"),
        )
        .bearer_auth(&merchant.access)
        .json(&json!({"service": "rankpilot", "endpoint_url": "https://merchant.example/"}))
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(redirected).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["details"]["fields"][0]["field"], "endpoint_url");
    let mut secrets = Vec::new();
    for service in SERVICES {
        let (_, secret, _) = connect(&app, &merchant, &store_id, json!({"service": service})).await;
        secrets.push((service, secret));
    }
    // Each service is first told which store connected it.
    let provisioned = receiver
        .wait_until("8 provisioning calls", |r| {
            r.iter()
                .filter(|r| r.event_type() == "integration.connected")
                .count()
                == 8
        })
        .await;
    for call in provisioned
        .iter()
        .filter(|r| r.event_type() == "integration.connected")
    {
        assert_eq!(
            call.json()["data"]["integration"]["store_id"],
            store_id.as_str()
        );
    }

    let created = app
        .create_product(&merchant, &store_id, product("Sunny Sock"))
        .await;
    let event_id = created_event(&app, &created.id()).await;
    let mapped = [
        "contentforge",
        "rankpilot",
        "trendscout",
        "postpilot",
        "adscale",
        "shopchat",
    ];
    receiver
        .wait_until("six deliveries", |r| {
            r.iter()
                .filter(|r| r.event_type() == "product.created")
                .count()
                >= 6
        })
        .await;
    // Whatever else was coming has had time to arrive.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let deliveries: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| r.event_type() == "product.created")
        .collect();
    let mut paths: Vec<String> = deliveries.iter().map(|r| r.path[1..].to_owned()).collect();
    paths.sort();
    let mut expected: Vec<String> = mapped.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(paths, expected, "exactly the mapped services, once each");
    for delivery in &deliveries {
        let service = &delivery.path[1..];
        let secret = &secrets.iter().find(|(s, _)| *s == service).unwrap().1;
        assert!(
            delivery.signed_by(secret),
            "{service}: Standard Webhooks signature"
        );
        assert!(
            delivery.platform_signed_by(PLATFORM_WEBHOOK_SECRET.as_bytes()),
            "{service}: X-Platform-Signature"
        );
        assert!(
            delivery.platform_v2_signed_by(PLATFORM_WEBHOOK_SECRET.as_bytes(), service),
            "{service}: X-Platform-Signature-V2 bound to the service and a recent time"
        );
        assert_eq!(delivery.header("webhook-id"), event_id);
        assert_eq!(delivery.header("x-platform-event-id"), event_id);
        assert_eq!(delivery.header("content-type"), "application/json");
        let body = delivery.json();
        assert_eq!(body["type"], "product.created");
        assert_eq!(body["data"]["product"]["title"], "Sunny Sock");
        assert_eq!(
            body["resource"],
            json!({"type": "product", "id": created.id()})
        );
    }

    let path = format!("/api/v1/bridge/activity/product/{}", created.id());
    eventually("six logged attempts", || async {
        activity(&app, &merchant, &path).await["total"].as_i64() >= Some(6)
    })
    .await;
    let logged = activity(&app, &merchant, &path).await;
    assert_eq!(logged["total"], 6, "{logged}");
    for attempt in logged["data"].as_array().unwrap() {
        assert_eq!(attempt["success"], true);
        assert_eq!(attempt["status_code"], 200);
        assert_eq!(attempt["attempt"], 1);
        assert_eq!(attempt["trigger"], "scheduled");
        assert_eq!(attempt["response_excerpt"], "thanks");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_failing_three_times_then_recovering_gets_four_attempts_under_one_webhook_id() {
    let app = spawn_app().await;
    let receiver = app.services.clone();
    receiver.answer(
        "rankpilot",
        Behaviour::FailFirst {
            times: 3,
            status: 503,
        },
    );
    let (merchant, store_id) = store_with(&app, "Flaky Socks").await;
    connect(&app, &merchant, &store_id, json!({"service": "rankpilot"})).await;
    let created = app
        .create_product(&merchant, &store_id, product("Retry Sock"))
        .await;
    let event_id = created_event(&app, &created.id()).await;
    let received = receiver
        .wait_until("four attempts", |r| {
            r.iter()
                .filter(|r| r.event_type() == "product.created")
                .count()
                >= 4
        })
        .await;
    let ids: HashSet<String> = received
        .iter()
        .filter(|r| r.event_type() == "product.created")
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids, HashSet::from([event_id]));

    let path = format!("/api/v1/bridge/activity/product/{}", created.id());
    eventually("four logged attempts", || async {
        activity(&app, &merchant, &path).await["total"] == 4
    })
    .await;
    let logged = activity(&app, &merchant, &path).await;
    let mut attempts: Vec<(i64, i64, bool)> = logged["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["attempt"].as_i64().unwrap(),
                a["status_code"].as_i64().unwrap(),
                a["success"].as_bool().unwrap(),
            )
        })
        .collect();
    attempts.sort();
    assert_eq!(
        attempts,
        vec![
            (1, 503, false),
            (2, 503, false),
            (3, 503, false),
            (4, 200, true)
        ]
    );
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        receiver.at("rankpilot", "product.created").len(),
        4,
        "nothing after the success"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_service_does_not_delay_deliveries_to_a_healthy_one() {
    let app = spawn_app().await;
    let receiver = app.services.clone();
    receiver.answer("rankpilot", Behaviour::Hang);
    let (merchant, store_id) = store_with(&app, "Half Alive").await;
    connect(&app, &merchant, &store_id, json!({"service": "rankpilot"})).await;
    connect(
        &app,
        &merchant,
        &store_id,
        json!({"service": "contentforge"}),
    )
    .await;
    let mut created_at = Vec::new();
    for n in 0..20 {
        created_at.push(Instant::now());
        app.create_product(&merchant, &store_id, product(&format!("Sock {n}")))
            .await;
    }
    let received = receiver
        .wait_until("20 healthy deliveries", |r| {
            r.iter()
                .filter(|r| r.path == "/contentforge" && r.event_type() == "product.created")
                .count()
                == 20
        })
        .await;
    // Every healthy delivery arrived while the dead service still held its first
    // attempts open: none of them has an outcome yet (their timeout is 15 s).
    let dead_logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bridge_deliveries WHERE service = 'rankpilot' AND event_type = 'product.created'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        dead_logged, 0,
        "the dead service's attempts are all still hanging"
    );
    assert!(
        !receiver.at("rankpilot", "product.created").is_empty(),
        "the dead service was tried"
    );
    let mut latencies: Vec<u128> = received
        .iter()
        .filter(|r| r.path == "/contentforge" && r.event_type() == "product.created")
        .zip(&created_at)
        .map(|(r, sent)| r.at.saturating_duration_since(*sent).as_millis())
        .collect();
    latencies.sort_unstable();
    println!(
        "healthy delivery latency while a service hangs: p50 {} ms, max {} ms",
        latencies[10], latencies[19]
    );
}

/// A hosting provider going down takes many merchants' webhooks with it: they must not
/// take the relay's delivery slots from everyone else while their attempts time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_hanging_endpoints_do_not_starve_a_healthy_one_of_the_relays_slots() {
    const HANGING: usize = 6;
    const PRODUCTS: usize = 12;
    // Fewer slots than the hanging endpoints' deliveries (6 × 12 = 72), as many as
    // they would hold at twice their concurrency (64 each) if admission did not adapt.
    let app = spawn_app_with(Role::ALL, &[("BRIDGE_MAX_IN_FLIGHT", "48")]).await;
    let receiver = app.services.clone();
    let (merchant, store_id) = store_with(&app, "Crowded Socks").await;
    for n in 0..HANGING {
        let path = format!("down-{n}");
        receiver.answer(&path, Behaviour::Hang);
        app.write(
            &merchant,
            Method::POST,
            &format!("/api/v1/stores/{store_id}/webhooks"),
            json!({"endpoint_url": receiver.url(&path), "event_types": ["product.created"]}),
        )
        .await;
    }
    connect(
        &app,
        &merchant,
        &store_id,
        json!({"service": "contentforge"}),
    )
    .await;
    for n in 0..PRODUCTS {
        app.create_product(&merchant, &store_id, product(&format!("Crowd {n}")))
            .await;
    }
    receiver
        .wait_until("every healthy delivery", |r| {
            r.iter()
                .filter(|r| r.path == "/contentforge" && r.event_type() == "product.created")
                .count()
                == PRODUCTS
        })
        .await;
    // All of them arrived before any hanging attempt timed out (15 s) and freed a slot.
    let hanging_logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bridge_deliveries WHERE service = 'webhook' AND event_type = 'product.created'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(hanging_logged, 0, "no hanging attempt has ended yet");
    let held: Vec<usize> = (0..HANGING)
        .map(|n| receiver.at(&format!("down-{n}"), "product.created").len())
        .collect();
    assert!(
        held.iter().all(|&sent| (1..PRODUCTS).contains(&sent)),
        "each hanging endpoint was tried and holds only a few attempts: {held:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_burst_delivers_every_event_after_restart_and_logs_every_attempt() {
    let roles = [
        Role::Publisher,
        Role::Projector,
        Role::CommandApi,
        Role::QueryApi,
    ];
    let app = spawn_app_with(
        &roles,
        &[
            ("BRIDGE_TIMEOUT_SECS", "2"),
            ("BRIDGE_ENDPOINT_RATE", "10000"),
        ],
    )
    .await;
    let receiver = app.services.clone();
    let (merchant, store_id) = store_with(&app, "Crash Socks").await;
    // Slow answers keep attempts in flight when the relay dies.
    receiver.answer("shopchat", Behaviour::Slow(50));
    let relay = app.start_relay();
    connect(&app, &merchant, &store_id, json!({"service": "shopchat"})).await;
    let writes = (0..120).map(|n| {
        let (app, merchant, store_id) = (&app, &merchant, &store_id);
        async move {
            app.create_product(merchant, store_id, product(&format!("Burst {n}")))
                .await
        }
    });
    let burst = futures::future::join_all(writes);
    let kill_midway = async {
        receiver
            .wait_until("the burst under way", |r| {
                r.iter()
                    .filter(|r| r.event_type() == "product.created")
                    .count()
                    >= 15
            })
            .await;
        relay.kill();
    };
    let (products, ()) = tokio::join!(burst, kill_midway);
    let delivered_before = receiver.at("shopchat", "product.created").len();
    assert!(
        delivered_before < 120,
        "the relay died before the burst was delivered"
    );

    let _restarted = app.start_relay();
    let mut event_ids = HashSet::new();
    for created in &products {
        event_ids.insert(created_event(&app, &created.id()).await);
    }
    receiver
        .wait_until("every event after the restart", |r| {
            let got: HashSet<String> = r
                .iter()
                .filter(|r| r.event_type() == "product.created")
                .map(|r| r.header("webhook-id"))
                .collect();
            event_ids.is_subset(&got)
        })
        .await;
    eventually("every delivery settled", || async {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM bridge_messages WHERE state <> 'succeeded'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        open == 0
    })
    .await;
    let unknown: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bridge_deliveries WHERE error LIKE 'the relay stopped%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    println!(
        "{delivered_before} delivered before the kill; {unknown} attempts logged as cut short"
    );
    // No attempt the receiver saw is missing from the log.
    let received = receiver.at("shopchat", "product.created");
    for event_id in &event_ids {
        let seen = received
            .iter()
            .filter(|r| &r.header("webhook-id") == event_id)
            .count();
        let logged: i64 =
            sqlx::query_scalar("SELECT count(*) FROM bridge_deliveries WHERE event_id = $1::uuid")
                .bind(event_id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert!(
            logged >= seen as i64,
            "event {event_id}: {seen} received, {logged} logged"
        );
        assert!(seen >= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_a_events_never_reach_store_b_endpoints() {
    let app = spawn_app().await;
    let receiver = app.services.clone();
    let (alice, store_a) = store_with(&app, "Alice Socks").await;
    let (bob, store_b) = store_with(&app, "Bob Socks").await;
    connect(&app, &alice, &store_a, json!({"service": "adscale"})).await;
    connect(&app, &bob, &store_b, json!({"service": "adscale"})).await;
    for n in 0..5 {
        app.create_product(&alice, &store_a, product(&format!("A{n}")))
            .await;
    }
    app.create_product(&bob, &store_b, product("B0")).await;
    receiver
        .wait_until("both stores' deliveries", |r| {
            r.iter()
                .filter(|r| r.event_type() == "product.created")
                .count()
                >= 6
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Both stores' adscale connections reach the one AdScale, each delivery naming its
    // store; each store's products reached it under its own store only.
    let created = receiver.at("adscale", "product.created");
    let of_store = |store: &str| {
        created
            .iter()
            .filter(|r| r.json()["store_id"] == store)
            .count()
    };
    assert_eq!((of_store(&store_a), of_store(&store_b)), (5, 1));
    for delivery in &created {
        let title = delivery.json()["data"]["product"]["title"]
            .as_str()
            .unwrap()
            .to_owned();
        let expected = if title.starts_with('A') {
            &store_a
        } else {
            &store_b
        };
        assert_eq!(delivery.json()["store_id"], expected.as_str(), "{title}");
    }
    // Bob's dashboard shows only Bob's attempts, once Alice's are logged too.
    let created_path = "/api/v1/bridge/activity?event_type=product.created";
    eventually("every attempt logged", || async {
        activity(&app, &alice, created_path).await["total"] == 5
            && activity(&app, &bob, created_path).await["total"] == 1
    })
    .await;
    let bobs = activity(&app, &bob, created_path).await;
    assert_eq!(bobs["data"][0]["store_id"], store_b.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_and_private_addresses_are_refused() {
    let app = spawn_app().await;
    let receiver = app.services.clone();
    receiver.answer("trendscout", Behaviour::Redirect(receiver.url("elsewhere")));
    let (merchant, store_id) = store_with(&app, "Redirect Socks").await;
    connect(&app, &merchant, &store_id, json!({"service": "trendscout"})).await;
    for private in [
        "http://10.0.0.8/hook",
        "http://169.254.169.254/latest",
        "http://[::1]:9/x",
        "http://192.168.1.1/",
        "http://[2002:a00:1::1]/",
    ] {
        let response = app
            .request(Method::POST, &format!("/api/v1/stores/{store_id}/webhooks"))
            .bearer_auth(&merchant.access)
            .json(&json!({"endpoint_url": private, "event_types": ["*"]}))
            .send()
            .await
            .unwrap();
        let (status, code, error) = error_code(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{private}"
        );
        assert_eq!(
            error["details"]["fields"][0]["code"], "forbidden_address",
            "{private}"
        );
    }
    let created = app
        .create_product(&merchant, &store_id, product("Moved Sock"))
        .await;
    let path = format!("/api/v1/bridge/activity/product/{}", created.id());
    eventually("the redirect logged", || async {
        activity(&app, &merchant, &path).await["total"].as_i64() >= Some(1)
    })
    .await;
    let first = &activity(&app, &merchant, &path).await["data"][0];
    assert_eq!(first["status_code"], 302);
    assert_eq!(first["success"], false);
    assert!(
        first["error"].as_str().unwrap().contains("not followed"),
        "{first}"
    );
    assert!(
        receiver.at("elsewhere", "product.created").is_empty(),
        "the redirect was not followed"
    );

    // A name resolving only to loopback is refused before connecting when loopback is
    // not allowed: nothing reaches the receiver listening there.
    let by_name = receiver.url("by-name").replace("127.0.0.1", "localhost");
    let trendscout_by_name = format!("trendscout={by_name}");
    let strict = spawn_app_with(
        Role::ALL,
        &[
            ("BRIDGE_ALLOWED_SUBNETS", ""),
            ("BRIDGE_SERVICE_URLS", &trendscout_by_name),
        ],
    )
    .await;
    let (merchant, store_id) = store_with(&strict, "Strict Socks").await;
    connect(
        &strict,
        &merchant,
        &store_id,
        json!({"service": "trendscout"}),
    )
    .await;
    let created = strict
        .create_product(&merchant, &store_id, product("Local Sock"))
        .await;
    let path = format!("/api/v1/bridge/activity/product/{}", created.id());
    eventually("the refusal logged", || async {
        activity(&strict, &merchant, &path).await["total"].as_i64() >= Some(1)
    })
    .await;
    let refused = &activity(&strict, &merchant, &path).await["data"][0];
    assert_eq!(refused["status_code"], 0);
    assert!(
        refused["error"].as_str().unwrap().contains("refused"),
        "{refused}"
    );
    assert!(
        receiver.received().iter().all(|r| r.path != "/by-name"),
        "no packet reached it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_webhook_cannot_reach_a_subnet_allowed_only_for_services() {
    // Loopback is the services' network here; merchants may reach only 127.0.0.2.
    let app = spawn_app_with(
        Role::ALL,
        &[
            ("BRIDGE_ALLOWED_SUBNETS", "127.0.0.0/8"),
            ("WEBHOOK_ALLOWED_SUBNETS", "127.0.0.2/32"),
        ],
    )
    .await;
    let receiver = app.services.clone();
    let (merchant, store_id) = store_with(&app, "Inside Socks").await;
    let literal = app
        .request(Method::POST, &format!("/api/v1/stores/{store_id}/webhooks"))
        .bearer_auth(&merchant.access)
        .json(&json!({"endpoint_url": receiver.url("internal"), "event_types": ["*"]}))
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(literal).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["details"]["fields"][0]["code"], "forbidden_address");

    // By name, it is refused when the name is resolved, before connecting.
    let by_name = receiver.url("internal").replace("127.0.0.1", "localhost");
    app.write(
        &merchant,
        Method::POST,
        &format!("/api/v1/stores/{store_id}/webhooks"),
        json!({"endpoint_url": by_name, "event_types": ["product.created"]}),
    )
    .await;
    connect(&app, &merchant, &store_id, json!({"service": "adscale"})).await;
    let created = app
        .create_product(&merchant, &store_id, product("Probe Sock"))
        .await;
    receiver
        .wait_until("the service's delivery", |r| {
            r.iter()
                .any(|r| r.path == "/adscale" && r.event_type() == "product.created")
        })
        .await;
    let path = format!("/api/v1/bridge/activity/product/{}", created.id());
    eventually("both attempts logged", || async {
        activity(&app, &merchant, &path).await["total"].as_i64() >= Some(2)
    })
    .await;
    let logged = activity(&app, &merchant, &path).await;
    let webhook = logged["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["service"] == "webhook")
        .unwrap()
        .clone();
    assert_eq!(webhook["status_code"], 0);
    assert!(
        webhook["error"].as_str().unwrap().contains("refused"),
        "{webhook}"
    );
    assert!(
        receiver.received().iter().all(|r| r.path != "/internal"),
        "no packet reached the internal address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_keeps_signing_beside_the_new_one() {
    let app = spawn_app().await;
    let receiver = app.services.clone();
    let (merchant, store_id) = store_with(&app, "Rotating Socks").await;
    let (id, old_secret, _) =
        connect(&app, &merchant, &store_id, json!({"service": "shopchat"})).await;
    let rotated = app
        .write(
            &merchant,
            Method::POST,
            &format!("/api/v1/stores/{store_id}/integrations/{id}/rotate-secret"),
            json!({}),
        )
        .await;
    let new_secret = rotated.body["data"]["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    let until = chrono::DateTime::parse_from_rfc3339(
        rotated.body["data"]["previous_secret_valid_until"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let hours = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!(
        (23 * 60..=24 * 60).contains(&hours),
        "{hours} minutes of overlap"
    );
    let (_, listed) = app
        .read(
            &merchant,
            &format!("/api/v1/stores/{store_id}/integrations/{id}"),
            rotated.position,
        )
        .await;
    assert!(
        listed["data"]["secret"].is_null(),
        "secrets are never read back"
    );

    app.create_product(&merchant, &store_id, product("Rotated Sock"))
        .await;
    let delivery = receiver
        .wait_until("a delivery", |r| {
            r.iter().any(|r| r.event_type() == "product.created")
        })
        .await
        .into_iter()
        .find(|r| r.event_type() == "product.created")
        .unwrap();
    assert_eq!(delivery.header("webhook-signature").split(' ').count(), 2);
    assert!(
        delivery.signed_by(&old_secret),
        "the old secret still verifies"
    );
    assert!(delivery.signed_by(&new_secret), "the new secret verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_endpoint_disables_its_integration() {
    let app = spawn_app().await;
    let receiver = app.services.clone();
    receiver.answer("postpilot", Behaviour::Status(410));
    let (merchant, store_id) = store_with(&app, "Gone Socks").await;
    let (id, _, _) = connect(&app, &merchant, &store_id, json!({"service": "postpilot"})).await;
    app.create_product(&merchant, &store_id, product("Gone Sock"))
        .await;
    let stream = format!("integration-{id}");
    eventually("integration.disabled in the log", || async {
        let disabled: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'integration.disabled'",
        )
        .bind(&stream)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        disabled == 1
    })
    .await;
    let position: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (_, read) = app
        .read(
            &merchant,
            &format!("/api/v1/stores/{store_id}/integrations/{id}"),
            Some(position),
        )
        .await;
    assert_eq!(read["data"]["enabled"], false);
    assert_eq!(read["data"]["disabled_reason"], "gone");
    app.create_product(&merchant, &store_id, product("Unsent Sock"))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        receiver.at("postpilot", "product.created").len(),
        1,
        "nothing more after 410"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_delivery_notifies_the_merchant_and_can_be_redelivered() {
    let app = spawn_app_with(Role::ALL, &[("BRIDGE_RETRY_SCHEDULE", "0,0.1")]).await;
    let receiver = app.services.clone();
    receiver.answer("rankpilot", Behaviour::Status(500));
    let (merchant, store_id) = store_with(&app, "Exhausted Socks").await;
    connect(&app, &merchant, &store_id, json!({"service": "rankpilot"})).await;
    app.write(
        &merchant,
        Method::POST,
        &format!("/api/v1/stores/{store_id}/webhooks"),
        json!({"endpoint_url": receiver.url("merchant"), "event_types": ["integration.delivery_exhausted"]}),
    )
    .await;
    let created = app
        .create_product(&merchant, &store_id, product("Doomed Sock"))
        .await;
    let event_id = created_event(&app, &created.id()).await;
    let notified = receiver
        .wait_until("the merchant's notice", |r| {
            r.iter().any(|r| {
                r.path == "/merchant" && r.event_type() == "integration.delivery_exhausted"
            })
        })
        .await
        .into_iter()
        .find(|r| r.path == "/merchant" && r.event_type() == "integration.delivery_exhausted")
        .unwrap();
    let notice = notified.json();
    assert_eq!(notice["data"]["event_id"], event_id.as_str());
    assert_eq!(notice["data"]["target"], "rankpilot");
    assert_eq!(notice["data"]["attempts"], 2);
    assert_eq!(notice["data"]["last_status_code"], 500);
    assert!(
        notified.header("x-platform-signature").is_empty()
            && notified.header("x-platform-signature-v2").is_empty(),
        "merchants get only their own signature"
    );
    assert_eq!(receiver.at("rankpilot", "product.created").len(), 2);

    // The service is back: everything that failed in the last hour goes again.
    receiver.answer("rankpilot", Behaviour::Ok);
    let now = chrono::Utc::now();
    let redelivered = app
        .write(
            &merchant,
            Method::POST,
            "/api/v1/bridge/service/rankpilot/redeliver",
            json!({"from": now - chrono::Duration::hours(1), "to": now + chrono::Duration::minutes(1)}),
        )
        .await;
    assert_eq!(redelivered.status, StatusCode::ACCEPTED);
    assert_eq!(redelivered.body["data"]["queued"], 1);
    let again = receiver
        .wait_until("the redelivery", |r| {
            r.iter()
                .filter(|r| r.path == "/rankpilot" && r.event_type() == "product.created")
                .count()
                == 3
        })
        .await;
    assert!(
        again
            .iter()
            .filter(|r| r.path == "/rankpilot")
            .all(|r| r.header("webhook-id") == event_id || r.event_type() != "product.created")
    );

    let service_path = "/api/v1/bridge/service/rankpilot/activity?event_type=product.created";
    eventually("the manual attempt logged", || async {
        activity(&app, &merchant, service_path).await["total"] == 3
    })
    .await;
    let latest = &activity(&app, &merchant, service_path).await["data"][0];
    assert_eq!(
        (latest["trigger"].as_str(), latest["success"].as_bool()),
        (Some("manual"), Some(true))
    );
    let summary = activity(&app, &merchant, "/api/v1/bridge/summary").await;
    let rankpilot = summary["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "rankpilot")
        .unwrap();
    assert_eq!(
        rankpilot["successes"], 2,
        "the provisioning call and the redelivery: {rankpilot}"
    );
    assert_eq!(rankpilot["failures"], 2);
    assert_eq!(rankpilot["last_error"]["status_code"], 500);
    assert_eq!(
        summary["data"].as_array().unwrap().len(),
        9,
        "eight services and webhooks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchant_webhooks_receive_their_topics_and_manual_dispatch_sends_now() {
    let app = spawn_app().await;
    let receiver = app.services.clone();
    let (merchant, store_id) = store_with(&app, "Hooked Socks").await;
    let hook = app
        .write(
            &merchant,
            Method::POST,
            &format!("/api/v1/stores/{store_id}/webhooks"),
            json!({"url": receiver.url("mine"), "event_types": ["product.*"]}),
        )
        .await;
    let secret = hook.body["data"]["secret"].as_str().unwrap().to_owned();
    let created = app
        .create_product(&merchant, &store_id, product("Hooked Sock"))
        .await;
    app.write(
        &merchant,
        Method::POST,
        &format!(
            "/api/v1/stores/{store_id}/products/{}/publish",
            created.id()
        ),
        json!({}),
    )
    .await;
    app.write(
        &merchant,
        Method::POST,
        &format!("/api/v1/stores/{store_id}/categories"),
        json!({"name": "Not wanted"}),
    )
    .await;
    let received = receiver
        .wait_until("created and published", |r| {
            r.iter().filter(|r| r.path == "/mine").count() >= 3
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Attempts to one endpoint run concurrently: arrival order is not promised
    // (receivers order by `position`), the set of events is.
    let mut types: Vec<String> = receiver
        .received()
        .iter()
        .filter(|r| r.path == "/mine")
        .map(|r| r.event_type())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "integration.connected",
            "product.created",
            "product.published"
        ]
    );
    assert!(received.iter().all(|r| r.signed_by(&secret)));

    let event_id = created_event(&app, &created.id()).await;
    connect(
        &app,
        &merchant,
        &store_id,
        json!({"service": "contentforge"}),
    )
    .await;
    // Dispatch goes to integrations as the relay knows them: once it has provisioned this one.
    receiver
        .wait_until("contentforge provisioned", |r| {
            r.iter().any(|r| r.path == "/contentforge")
        })
        .await;
    let dispatched = app
        .write(
            &merchant,
            Method::POST,
            "/api/v1/bridge/dispatch",
            json!({"event_id": event_id, "service": "contentforge"}),
        )
        .await;
    assert_eq!(dispatched.status, StatusCode::ACCEPTED);
    assert_eq!(dispatched.body["data"][0]["service"], "contentforge");
    receiver
        .wait_until("the dispatched event", |r| {
            r.iter()
                .any(|r| r.path == "/contentforge" && r.event_type() == "product.created")
        })
        .await;
    // Another merchant cannot dispatch it.
    let intruder = app.register().await;
    let response = app
        .request(Method::POST, "/api/v1/bridge/dispatch")
        .bearer_auth(&intruder.access)
        .json(&json!({"event_id": event_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_answering_nul_and_invalid_utf8_cannot_stop_anyone_elses_log() {
    let app = spawn_app().await;
    let receiver = app.services.clone();
    let (alice, store_a) = store_with(&app, "Poison Socks").await;
    let (bob, store_b) = store_with(&app, "Healthy Socks").await;
    receiver.answer("poison", Behaviour::Raw(500, b"a\0b\xff\xfe c"));
    for (merchant, store, path) in [(&alice, &store_a, "poison"), (&bob, &store_b, "healthy")] {
        app.write(
            merchant,
            Method::POST,
            &format!("/api/v1/stores/{store}/webhooks"),
            json!({"endpoint_url": receiver.url(path), "event_types": ["product.created"]}),
        )
        .await;
    }
    for n in 0..5 {
        app.create_product(&alice, &store_a, product(&format!("A{n}")))
            .await;
        app.create_product(&bob, &store_b, product(&format!("B{n}")))
            .await;
    }
    receiver
        .wait_until("the healthy endpoint's deliveries", |r| {
            r.iter()
                .filter(|r| r.path == "/healthy" && r.event_type() == "product.created")
                .count()
                >= 5
        })
        .await;
    let logged = |store: String, success: bool| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM bridge_deliveries \
                 WHERE store_id = $1::uuid AND success = $2 AND event_type = 'product.created'",
            )
            .bind(store)
            .bind(success)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    eventually("every healthy delivery logged", || async {
        logged(store_b.clone(), true).await == 5
    })
    .await;
    eventually("the poisoned attempts logged too", || async {
        logged(store_a.clone(), false).await >= 5
    })
    .await;
    let excerpts: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT response_excerpt FROM bridge_deliveries WHERE store_id = $1::uuid AND NOT success",
    )
    .bind(&store_a)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        excerpts.iter().all(|e| e.as_deref() == Some("ab c")),
        "{excerpts:?}"
    );
}
