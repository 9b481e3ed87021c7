//! Stripe's webhook: signatures exactly as Stripe documents them, and each event
//! changing an order at most once however often it is delivered.

use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use dropship::Role;

use crate::{
    checkout::{cart, checkout, product, shop},
    helpers::{STRIPE_WEBHOOK_SECRET, TestApp, error_code, json_of, spawn_app, spawn_app_with},
    receiver::{Behaviour, Receiver},
};

const WEBHOOK: &str = "/api/v1/webhooks/stripe";

/// The `Stripe-Signature` Stripe sends: `t=`, then `v1=` hex HMAC-SHA256 of `t.body`.
fn stripe_signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

async fn deliver(app: &TestApp, signature: &str, body: &str) -> reqwest::Response {
    app.request(Method::POST, WEBHOOK)
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn order_events(app: &TestApp, order_id: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT event_type FROM events WHERE stream_id = $1 ORDER BY version")
        .bind(format!("order-{order_id}"))
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

fn session_completed(event_id: &str, order: &Value, session: &str) -> String {
    json!({
        "id": event_id, "object": "event", "type": "checkout.session.completed",
        "data": {"object": {
            "id": session, "object": "checkout.session",
            "client_reference_id": order["id"], "payment_status": "paid",
            "amount_total": order["totals"]["total"]["amount"], "currency": "usd",
            "payment_intent": "pi_test_1"
        }}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_stripe_event_pays_once_and_a_bad_signature_changes_nothing() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let (_, variants) = product(&app, &shop, "active", &[("M", None, 5)]).await;
    let placed = checkout(
        &app,
        &shop.slug,
        &cart(
            json!([{"variant_id": variants[0], "quantity": 2}]),
            "payer@example.com",
        ),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order = placed.body["data"]["order"].clone();
    let order_id = order["id"].as_str().unwrap().to_owned();
    let session = placed.body["data"]["payment"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = session_completed("evt_paid_1", &order, &session);
    let now = Utc::now().timestamp();

    // Forged, stale, missing or signed over another body: 400, and the order stays unpaid.
    let forged = stripe_signature("whsec_someone_else", now, &body);
    let stale = stripe_signature(STRIPE_WEBHOOK_SECRET, now - 301, &body);
    let other_body = stripe_signature(STRIPE_WEBHOOK_SECRET, now, "{}");
    for signature in [
        forged.as_str(),
        stale.as_str(),
        other_body.as_str(),
        "",
        "t=,v1=",
    ] {
        let (status, code, _) = error_code(deliver(&app, signature, &body).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "malformed_request"),
            "{signature}"
        );
    }
    assert_eq!(order_events(&app, &order_id).await, ["order.created"]);

    // One good v1 among several is enough; the event pays the order.
    let good = stripe_signature(STRIPE_WEBHOOK_SECRET, now, &body);
    let rolled = format!("{},v1={}", good, "0".repeat(64));
    let paid = deliver(&app, &rolled, &body).await;
    assert_eq!(paid.status(), StatusCode::OK);
    let receipt = json_of(paid).await;
    assert_eq!(receipt["data"]["outcome"], "paid", "{receipt}");
    assert_eq!(receipt["data"]["order_id"], order_id.as_str());

    // Redelivered (as Stripe does, with a fresh timestamp): the first answer, no second payment.
    let again = deliver(
        &app,
        &stripe_signature(STRIPE_WEBHOOK_SECRET, now + 1, &body),
        &body,
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(json_of(again).await["data"], receipt["data"]);
    // The same payment under another event id finds the order paid already.
    let duplicate = session_completed("evt_paid_2", &order, &session);
    let ignored = json_of(
        deliver(
            &app,
            &stripe_signature(STRIPE_WEBHOOK_SECRET, now, &duplicate),
            &duplicate,
        )
        .await,
    )
    .await;
    assert_eq!(ignored["data"]["outcome"], "ignored", "{ignored}");
    assert_eq!(
        order_events(&app, &order_id).await,
        ["order.created", "order.paid"]
    );

    // A partial refund in Stripe, delivered twice under two ids: recorded once.
    let total = order["totals"]["total"]["amount"].as_i64().unwrap();
    for event_id in ["evt_refund_1", "evt_refund_2"] {
        let refund = json!({
            "id": event_id, "type": "charge.refunded",
            "data": {"object": {"id": "ch_1", "object": "charge", "payment_intent": "pi_test_1",
                                 "amount_refunded": 500, "currency": "usd"}}
        })
        .to_string();
        let answer = deliver(
            &app,
            &stripe_signature(STRIPE_WEBHOOK_SECRET, now, &refund),
            &refund,
        )
        .await;
        assert_eq!(answer.status(), StatusCode::OK);
    }
    assert_eq!(
        order_events(&app, &order_id).await,
        ["order.created", "order.paid", "order.refunded"]
    );
    let noted = app
        .write(
            &shop.merchant,
            Method::POST,
            &format!("/api/v1/stores/{}/orders/{order_id}/notes", shop.store_id),
            json!({"note": "refunded 5.00 in Stripe"}),
        )
        .await;
    assert_eq!(noted.body["data"]["refunded"]["amount"], 500);
    assert_eq!(noted.body["data"]["paid"]["amount"], total);
    assert_eq!(noted.body["data"]["payment_status"], "partially_refunded");

    // Events the platform does not handle, or about no order of ours, are acknowledged.
    let unknown =
        json!({"id": "evt_other", "type": "customer.created", "data": {"object": {}}}).to_string();
    let answer = deliver(
        &app,
        &stripe_signature(STRIPE_WEBHOOK_SECRET, now, &unknown),
        &unknown,
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(json_of(answer).await["data"]["outcome"], "ignored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_stripe_key_a_checkout_opens_a_checkout_session_for_the_orders_total() {
    let stripe = Receiver::start().await;
    stripe.answer(
        "v1/checkout/sessions",
        Behaviour::Raw(
            200,
            br#"{"id":"cs_test_a1","object":"checkout.session","url":"https://checkout.stripe.com/c/pay/cs_test_a1"}"#,
        ),
    );
    let app = spawn_app_with(
        Role::ALL,
        &[
            ("STRIPE_SECRET_KEY", "sk_test_dropship"),
            ("STRIPE_RETURN_URL", "https://shop.example/return"),
            ("STRIPE_API_BASE", &stripe.address),
        ],
    )
    .await;
    let shop = shop(&app).await;
    let (_, variants) = product(&app, &shop, "active", &[("M", Some(1250), 5)]).await;
    let body = cart(
        json!([{"variant_id": variants[0], "quantity": 2}]),
        "card@example.com",
    );
    let place = || {
        app.request(
            Method::POST,
            &format!("/api/v1/public/stores/{}/checkout", shop.slug),
        )
        .header("idempotency-key", "stripe-checkout-1")
        .json(&body)
        .send()
    };
    let placed = json_of(place().await.unwrap()).await;
    let payment = &placed["data"]["payment"];
    assert_eq!(payment["provider"], "stripe", "{placed}");
    assert_eq!(payment["session_id"], "cs_test_a1");
    assert_eq!(
        payment["checkout_url"],
        "https://checkout.stripe.com/c/pay/cs_test_a1"
    );
    assert_eq!(payment["confirm_url"], Value::Null, "no mock payment");
    let order = placed["data"]["order"].clone();
    let order_id = order["id"].as_str().unwrap().to_owned();

    let opened = stripe.received();
    assert_eq!(opened.len(), 1);
    let request = &opened[0];
    assert_eq!(request.header("authorization"), "Bearer sk_test_dropship");
    assert_eq!(
        request.header("idempotency-key"),
        format!("dropship-checkout-{order_id}")
    );
    let form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    assert_eq!(field("mode"), "payment");
    assert_eq!(field("client_reference_id"), order_id);
    assert_eq!(field("metadata[order_id]"), order_id);
    assert_eq!(
        field("line_items[0][price_data][unit_amount]"),
        order["totals"]["total"]["amount"].to_string(),
        "the order's total, computed by the platform"
    );
    assert_eq!(field("line_items[0][price_data][currency]"), "usd");
    assert_eq!(field("customer_email"), "card@example.com");
    assert!(field("success_url").starts_with("https://shop.example/return?order="));
    assert!(field("success_url").ends_with("session_id={CHECKOUT_SESSION_ID}"));

    // A retry replays the order and asks Stripe again under the same key: one session.
    let replayed = place().await.unwrap();
    assert_eq!(
        replayed.headers().get("idempotent-replayed").unwrap(),
        "true"
    );
    assert_eq!(json_of(replayed).await["data"], placed["data"]);
    let keys: Vec<String> = stripe
        .received()
        .iter()
        .map(|r| r.header("idempotency-key"))
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);

    // Stripe's signed `checkout.session.completed` for that session pays the order.
    let mut completed: Value =
        serde_json::from_str(&session_completed("evt_stripe_paid", &order, "cs_test_a1")).unwrap();
    completed["data"]["object"]["metadata"] = json!({"order_id": order_id});
    let completed = completed.to_string();
    let signature = stripe_signature(STRIPE_WEBHOOK_SECRET, Utc::now().timestamp(), &completed);
    let paid = json_of(deliver(&app, &signature, &completed).await).await;
    assert_eq!(paid["data"]["outcome"], "paid", "{paid}");
    assert_eq!(
        order_events(&app, &order_id).await,
        ["order.created", "order.paid"]
    );

    // Stripe down: the order stands unpaid and the answer says to retry with the key;
    // the retry, once Stripe answers, gets the order and its session.
    stripe.answer("v1/checkout/sessions", Behaviour::Status(500));
    let retry = || {
        app.request(
            Method::POST,
            &format!("/api/v1/public/stores/{}/checkout", shop.slug),
        )
        .header("idempotency-key", "stripe-checkout-2")
        .json(&body)
        .send()
    };
    let (status, code, _) = error_code(retry().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    stripe.answer(
        "v1/checkout/sessions",
        Behaviour::Raw(
            200,
            br#"{"id":"cs_test_b2","url":"https://checkout.stripe.com/b2"}"#,
        ),
    );
    let recovered = retry().await.unwrap();
    assert_eq!(
        recovered.headers().get("idempotent-replayed").unwrap(),
        "true"
    );
    let recovered = json_of(recovered).await;
    assert_eq!(recovered["data"]["payment"]["session_id"], "cs_test_b2");
    assert_ne!(recovered["data"]["order"]["id"], order["id"]);
}
