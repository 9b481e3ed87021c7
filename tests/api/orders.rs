use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    checkout::{Shop, cart, checkout, product, shop, stock_of},
    helpers::{TestApp, Written, error_code, fields, spawn_app},
};

/// A placed order of `quantity` units of the shop's variant, paid when `pay`.
async fn order(app: &TestApp, shop: &Shop, variant: &str, quantity: i64, pay: bool) -> String {
    let placed = checkout(
        app,
        &shop.slug,
        &cart(
            json!([{"variant_id": variant, "quantity": quantity}]),
            "shopper@example.com",
        ),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    if pay {
        let url = placed.body["data"]["payment"]["confirm_url"]
            .as_str()
            .unwrap();
        let paid = app.request(Method::POST, url).send().await.unwrap();
        assert_eq!(paid.status(), StatusCode::OK);
    }
    placed.body["data"]["order"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn command(
    app: &TestApp,
    shop: &Shop,
    order_id: &str,
    action: &str,
    body: Option<Value>,
) -> Written {
    let mut request = app
        .request(
            Method::POST,
            &format!(
                "/api/v1/stores/{}/orders/{order_id}/{action}",
                shop.store_id
            ),
        )
        .bearer_auth(&shop.merchant.access);
    if let Some(body) = body {
        request = request.json(&body);
    }
    Written::from(request.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_ships_in_parts_is_delivered_and_partly_refunded() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let (product_id, variants) = product(&app, &shop, "active", &[("M", None, 5)]).await;
    let unpaid = order(&app, &shop, &variants[0], 1, false).await;
    let shipped_unpaid = command(
        &app,
        &shop,
        &unpaid,
        "fulfillments",
        Some(json!({"carrier": "DHL"})),
    )
    .await;
    assert_eq!(shipped_unpaid.status, StatusCode::CONFLICT);
    assert!(
        shipped_unpaid.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pending")
    );

    let order_id = order(&app, &shop, &variants[0], 3, true).await;
    let first = command(
        &app,
        &shop,
        &order_id,
        "fulfillments",
        Some(json!({"carrier": "DHL", "tracking_number": "JD0146",
                    "tracking_url": "https://track.example/JD0146",
                    "items": [{"variant_id": variants[0], "quantity": 2}]})),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(
        first.body["data"]["fulfillment_status"],
        "partially_fulfilled"
    );
    let too_many = command(
        &app,
        &shop,
        &order_id,
        "fulfillments",
        Some(json!({"carrier": "DHL", "items": [{"variant_id": variants[0], "quantity": 2}]})),
    )
    .await;
    assert_eq!(too_many.status, StatusCode::UNPROCESSABLE_ENTITY);
    let rest = command(
        &app,
        &shop,
        &order_id,
        "fulfillments",
        Some(json!({"carrier": "DHL"})),
    )
    .await;
    assert_eq!(rest.body["data"]["status"], "shipped");
    let delivered = command(&app, &shop, &order_id, "deliver", None).await;
    assert_eq!(delivered.body["data"]["status"], "delivered");
    let cancel_delivered = command(
        &app,
        &shop,
        &order_id,
        "cancel",
        Some(json!({"reason": "late"})),
    )
    .await;
    assert_eq!(cancel_delivered.status, StatusCode::CONFLICT);

    // Paid 3 × 1999 = 5997: a refund beyond it is refused, a partial one recorded.
    let too_much = command(
        &app,
        &shop,
        &order_id,
        "refunds",
        Some(json!({"amount": {"amount": 5998, "currency": "USD"}, "reason": "damaged"})),
    )
    .await;
    assert_eq!(too_much.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        too_much.body["error"]["details"]["fields"][0]["field"],
        "amount"
    );
    let refund = || {
        app.request(
            Method::POST,
            &format!("/api/v1/stores/{}/orders/{order_id}/refunds", shop.store_id),
        )
        .bearer_auth(&shop.merchant.access)
        .header("idempotency-key", "refund-1")
        .json(
            &json!({"amount": {"amount": 1000, "currency": "USD"}, "reason": "damaged",
                      "restock": [{"variant_id": variants[0], "quantity": 1}]}),
        )
        .send()
    };
    let refunded = Written::from(refund().await.unwrap()).await;
    assert_eq!(refunded.status, StatusCode::CREATED, "{}", refunded.body);
    assert_eq!(
        refunded.body["data"]["payment_status"],
        "partially_refunded"
    );
    assert_eq!(refunded.body["data"]["refunded"]["amount"], 1000);
    let replayed = refund().await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(Written::from(replayed).await.body, refunded.body);
    // 5 − 1 (unpaid order, still held) − 3 (sold) + 1 (returned).
    let (_, read) = app
        .read(
            &shop.merchant,
            &format!("/api/v1/stores/{}/products/{product_id}", shop.store_id),
            refunded.position,
        )
        .await;
    assert_eq!(read["data"]["variants"][0]["inventory_count"], 2);

    let stale = app
        .request(
            Method::POST,
            &format!("/api/v1/stores/{}/orders/{order_id}/notes", shop.store_id),
        )
        .bearer_auth(&shop.merchant.access)
        .header("if-match", "\"2\"")
        .json(&json!({"note": "called the shopper"}))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(stale).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "version_conflict")
    );
    let noted = command(
        &app,
        &shop,
        &order_id,
        "notes",
        Some(json!({"note": "called the shopper"})),
    )
    .await;
    assert_eq!(noted.status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_restocks_what_did_not_ship_and_refunds_what_was_paid() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let (product_id, variants) = product(&app, &shop, "active", &[("M", None, 4)]).await;
    let paid = order(&app, &shop, &variants[0], 3, true).await;
    let shipped = command(
        &app,
        &shop,
        &paid,
        "fulfillments",
        Some(json!({"carrier": "UPS", "items": [{"variant_id": variants[0], "quantity": 1}]})),
    )
    .await;
    assert_eq!(shipped.status, StatusCode::CREATED);
    let cancelled = command(
        &app,
        &shop,
        &paid,
        "cancel",
        Some(json!({"reason": "out of time"})),
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["data"]["status"], "cancelled");
    assert_eq!(cancelled.body["data"]["payment_status"], "refunded");
    assert_eq!(cancelled.body["data"]["refunded"]["amount"], 3 * 1999);
    let again = command(
        &app,
        &shop,
        &paid,
        "cancel",
        Some(json!({"reason": "again"})),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // 4 − 3 + 2 unshipped back.
    let (_, read) = app
        .read(
            &shop.merchant,
            &format!("/api/v1/stores/{}/products/{product_id}", shop.store_id),
            cancelled.position,
        )
        .await;
    assert_eq!(read["data"]["variants"][0]["inventory_count"], 3);
    assert_eq!(stock_of(&app, &product_id).await, vec![3]);
    let bad = command(&app, &shop, &paid, "notes", Some(json!({"note": ""}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&bad.body["error"]), vec!["note"]);
}
