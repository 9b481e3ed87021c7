//! Stripe's webhook: signatures exactly as Stripe documents them, and each event
//! changing an order at most once however often it is delivered.

use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{
    checkout::{cart, checkout, product, shop},
    helpers::{STRIPE_WEBHOOK_SECRET, TestApp, error_code, json_of, spawn_app},
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
