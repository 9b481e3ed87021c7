//! Storefront customer accounts: the token lifecycle, saved addresses and the wishlist,
//! signed-in checkout and the order history, and the audiences that never cross.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    checkout::{Shop, cart, checkout, product, shop},
    helpers::{
        CUSTOMER_ROUTES, PASSWORD, ROUTES, TestApp, Written, error_code, fields, json_of, spawn_app,
    },
};

struct Customer {
    email: String,
    access: String,
    refresh: String,
}

fn customers_path(shop: &Shop, rest: &str) -> String {
    format!("/api/v1/public/stores/{}/customers{rest}", shop.slug)
}

fn tokens(body: &Value, email: &str) -> Customer {
    Customer {
        email: email.to_owned(),
        access: body["data"]["access_token"].as_str().unwrap().to_owned(),
        refresh: body["data"]["refresh_token"].as_str().unwrap().to_owned(),
    }
}

async fn register(app: &TestApp, shop: &Shop, email: &str, name: Option<&str>) -> Customer {
    let response = app
        .request(Method::POST, &customers_path(shop, "/register"))
        .json(&json!({"email": email, "password": PASSWORD, "name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    tokens(&json_of(response).await, email)
}

fn as_customer(app: &TestApp, customer: &Customer, method: Method, path: &str) -> RequestBuilder {
    app.request(method, path).bearer_auth(&customer.access)
}

async fn me(app: &TestApp, shop: &Shop, customer: &Customer) -> (StatusCode, Value) {
    let response = as_customer(app, customer, Method::GET, &customers_path(shop, "/me"))
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

fn address(city: &str) -> Value {
    json!({"name": "Grace Hopper", "line1": "1 Navy Way", "city": city, "country": "US",
           "region": "VA", "postal_code": "22202", "phone": "+1 555 0100"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_registers_logs_in_refreshes_and_logs_out() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let email = format!("shopper-{}@example.com", Uuid::new_v4().simple());
    let customer = register(&app, &shop, &email, Some("Ada")).await;
    let (status, body) = me(&app, &shop, &customer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["email"], email.as_str());
    assert_eq!(body["data"]["name"], "Ada");
    assert_eq!(body["data"]["addresses"], json!([]));

    let again = app
        .request(Method::POST, &customers_path(&shop, "/register"))
        .json(&json!({"email": email.to_uppercase(), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(again).await.1,
        "email_taken",
        "one account per email"
    );
    for (body, field) in [
        (
            json!({"email": "nul\u{0}@example.com", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": "short@example.com", "password": "short"}),
            "password",
        ),
    ] {
        let refused = app
            .request(Method::POST, &customers_path(&shop, "/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, _, error) = error_code(refused).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&error), [field]);
    }

    let login = |password: &'static str| {
        app.request(Method::POST, &customers_path(&shop, "/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    assert_eq!(
        error_code(login("not the password").await.unwrap()).await.1,
        "invalid_credentials"
    );
    let logged_in = login(PASSWORD).await.unwrap();
    assert_eq!(logged_in.status(), StatusCode::OK);
    let second = tokens(&json_of(logged_in).await, &email);

    let refresh = |token: String| {
        app.request(Method::POST, &customers_path(&shop, "/refresh"))
            .json(&json!({"refresh_token": token}))
            .send()
    };
    let rotated = refresh(second.refresh.clone()).await.unwrap();
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated = tokens(&json_of(rotated).await, &email);
    assert_eq!(me(&app, &shop, &rotated).await.0, StatusCode::OK);
    // The used refresh token comes back: it leaked, so its whole session ends.
    let reused = refresh(second.refresh.clone()).await.unwrap();
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &shop, &rotated).await.0, StatusCode::UNAUTHORIZED);

    let logout = as_customer(
        &app,
        &customer,
        Method::POST,
        &customers_path(&shop, "/logout"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert_eq!(me(&app, &shop, &customer).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(customer.refresh.clone()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // The account is created once, and FlowSend's `customer.created` with it.
    let created: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'customer.created' AND store_id = $1::uuid",
    )
    .bind(&shop.store_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(created, 1);
    let hash_in_log: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE encode(payload, 'escape') LIKE '%argon2%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(hash_in_log, 0, "the password hash stays out of the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_keep_one_default_and_the_wishlist_holds_the_stores_products() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let customer = register(&app, &shop, "grace@example.com", None).await;
    let save = |body: Value| {
        as_customer(
            &app,
            &customer,
            Method::POST,
            &customers_path(&shop, "/me/addresses"),
        )
        .json(&body)
        .send()
    };
    let first = Written::from(
        save(json!({"address": address("Arlington")}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let home = first.body["data"]["addresses"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(first.body["data"]["addresses"][0]["default"], true);
    assert_eq!(
        first.body["data"]["addresses"][0]["address"]["city"],
        "Arlington"
    );
    let keyed = || {
        as_customer(
            &app,
            &customer,
            Method::POST,
            &customers_path(&shop, "/me/addresses"),
        )
        .header("idempotency-key", "save-boston")
        .json(&json!({"address": address("Boston"), "default": true}))
        .send()
    };
    let second = Written::from(keyed().await.unwrap()).await;
    let retried = keyed().await.unwrap();
    assert_eq!(
        retried.headers().get("idempotent-replayed").unwrap(),
        "true"
    );
    assert_eq!(
        json_of(retried).await,
        second.body,
        "a retry saves nothing twice"
    );
    let addresses = second.body["data"]["addresses"].as_array().unwrap().clone();
    assert_eq!(addresses.len(), 2);
    assert_eq!(
        addresses[0]["address"]["city"], "Boston",
        "the default first"
    );
    assert_eq!(addresses[0]["default"], true);
    assert_eq!(addresses[1]["default"], false);
    let office = addresses[0]["id"].as_str().unwrap().to_owned();

    let bad =
        save(json!({"address": {"name": "", "line1": "x", "city": "y", "country": "Narnia"}}))
            .await
            .unwrap();
    let (status, _, error) = error_code(bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&error), ["address.name", "address.country"]);

    // A stale `If-Match` changes nothing; the current one does.
    let stale = as_customer(
        &app,
        &customer,
        Method::DELETE,
        &customers_path(&shop, &format!("/me/addresses/{office}")),
    )
    .header("if-match", first.etag.clone().unwrap())
    .send()
    .await
    .unwrap();
    assert_eq!(error_code(stale).await.1, "version_conflict");
    let removed = as_customer(
        &app,
        &customer,
        Method::DELETE,
        &customers_path(&shop, &format!("/me/addresses/{office}")),
    )
    .header("if-match", second.etag.clone().unwrap())
    .send()
    .await
    .unwrap();
    let removed = json_of(removed).await;
    assert_eq!(
        removed["data"]["addresses"],
        json!([{"id": home, "default": true, "address": removed["data"]["addresses"][0]["address"]}]),
        "the remaining address became the default"
    );
    let unknown = as_customer(
        &app,
        &customer,
        Method::POST,
        &customers_path(&shop, &format!("/me/addresses/{}/default", Uuid::now_v7())),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let (on_sale, _) = product(&app, &shop, "active", &[("M", None, 5)]).await;
    let (draft, _) = product(&app, &shop, "draft", &[("M", None, 5)]).await;
    let elsewhere = shop_with_product(&app).await;
    let wish = |product_id: &str, method: Method| {
        as_customer(
            &app,
            &customer,
            method,
            &customers_path(&shop, &format!("/me/wishlist/{product_id}")),
        )
        .send()
    };
    for _ in 0..2 {
        let wished = json_of(wish(&on_sale, Method::PUT).await.unwrap()).await;
        assert_eq!(wished["data"]["wishlist"], json!([on_sale]), "listed once");
    }
    for hidden in [&draft, &elsewhere, &Uuid::now_v7().to_string()] {
        let refused = wish(hidden, Method::PUT).await.unwrap();
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{hidden}");
    }
    let unwished = json_of(wish(&on_sale, Method::DELETE).await.unwrap()).await;
    assert_eq!(unwished["data"]["wishlist"], json!([]));

    // Addresses are personal data: sealed in the log, never in clear.
    let in_clear: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE encode(payload, 'escape') LIKE '%Arlington%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(in_clear, 0);
}

/// An active product of another merchant's store.
async fn shop_with_product(app: &TestApp) -> String {
    let other = shop(app).await;
    product(app, &other, "active", &[("M", None, 5)]).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_checkout_is_in_the_history_and_a_guest_one_with_the_same_email_is_not() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let (_, variants) = product(&app, &shop, "active", &[("M", None, 10)]).await;
    let items = json!([{"variant_id": variants[0], "quantity": 1}]);
    let email = "linus@example.com";
    let guest = checkout(&app, &shop.slug, &cart(items.clone(), email)).await;
    assert_eq!(guest.status, StatusCode::CREATED);
    let guest_customer: String = sqlx::query_scalar(
        "SELECT substr(stream_id, 10) FROM events WHERE event_type = 'customer.created' \
         AND store_id = $1::uuid",
    )
    .bind(&shop.store_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();

    // The guest's email becomes an account: the same customer, created once.
    let customer = register(&app, &shop, email, Some("Linus")).await;
    let (_, account) = me(&app, &shop, &customer).await;
    assert_eq!(account["data"]["id"], guest_customer.as_str());
    assert_eq!(account["data"]["name"], "Linus");
    assert_eq!(
        app.events_in(&format!("customer-{guest_customer}")).await,
        3,
        "created by the checkout, then the account opened and the name given"
    );

    let signed_in = as_customer(
        &app,
        &customer,
        Method::POST,
        &format!("/api/v1/public/stores/{}/checkout", shop.slug),
    )
    .json(&cart(items.clone(), email))
    .send()
    .await
    .unwrap();
    let signed_in = Written::from(signed_in).await;
    assert_eq!(signed_in.status, StatusCode::CREATED, "{}", signed_in.body);

    let history = as_customer(
        &app,
        &customer,
        Method::GET,
        &customers_path(&shop, "/me/orders"),
    )
    .header("x-min-position", signed_in.position.unwrap().to_string())
    .send()
    .await
    .unwrap();
    let history = json_of(history).await;
    assert_eq!(history["total"], 1, "{history}");
    assert_eq!(
        history["data"][0]["id"],
        signed_in.body["data"]["order"]["id"]
    );
    assert_eq!(
        history["data"][0]["customer_id"],
        guest_customer.as_str(),
        "the account's customer placed it"
    );

    // Signed in, the email and the address may be left out: the account's email and
    // its default saved address fill in. A guest must give both.
    let checkout_path = format!("/api/v1/public/stores/{}/checkout", shop.slug);
    let only_items = json!({"items": items});
    let guest = app
        .request(Method::POST, &checkout_path)
        .json(&only_items)
        .send()
        .await
        .unwrap();
    let (status, _, error) = error_code(guest).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&error), ["email", "shipping_address"]);
    let no_address = as_customer(&app, &customer, Method::POST, &checkout_path)
        .json(&only_items)
        .send()
        .await
        .unwrap();
    let (_, _, error) = error_code(no_address).await;
    assert_eq!(fields(&error), ["shipping_address"], "no address saved yet");
    as_customer(
        &app,
        &customer,
        Method::POST,
        &customers_path(&shop, "/me/addresses"),
    )
    .json(&json!({"address": address("Portland")}))
    .send()
    .await
    .unwrap();
    let defaulted = as_customer(&app, &customer, Method::POST, &checkout_path)
        .json(&only_items)
        .send()
        .await
        .unwrap();
    let defaulted = Written::from(defaulted).await;
    assert_eq!(defaulted.status, StatusCode::CREATED, "{}", defaulted.body);
    let detail_path = format!(
        "/api/v1/stores/{}/orders/{}",
        shop.store_id,
        defaulted.body["data"]["order"]["id"].as_str().unwrap()
    );
    let (_, detail) = app
        .read(&shop.merchant, &detail_path, defaulted.position)
        .await;
    assert_eq!(
        detail["data"]["shipping_address"]["city"], "Portland",
        "{detail}"
    );
    assert_eq!(detail["data"]["customer"]["email"], email);

    // A token that is not this store's customer's is refused, not ignored.
    let forged = app
        .request(
            Method::POST,
            &format!("/api/v1/public/stores/{}/checkout", shop.slug),
        )
        .bearer_auth("not-a-token")
        .json(&cart(items, email))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_and_merchant_tokens_never_open_each_others_routes() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let other_shop = self::shop(&app).await;
    let (product_id, _) = product(&app, &shop, "active", &[("M", None, 5)]).await;
    let customer = register(&app, &shop, "mallory@example.com", None).await;
    let foreign = register(&app, &other_shop, "mallory@example.com", None).await;
    let saved = as_customer(
        &app,
        &customer,
        Method::POST,
        &customers_path(&shop, "/me/addresses"),
    )
    .json(&json!({"address": address("Reston")}))
    .send()
    .await
    .unwrap();
    let address_id = json_of(saved).await["data"]["addresses"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let concrete = |template: &str| {
        template
            .replace("{slug}", &shop.slug)
            .replace("{store_id}", &shop.store_id)
            .replace("{address_id}", &address_id)
            .replace("{product_id}", &product_id)
    };
    let body = |method: &str, template: &str| match (method, template) {
        ("PATCH", _) => Some(json!({"name": "Mallory"})),
        (_, t) if t.contains("/addresses") && method != "DELETE" => {
            Some(json!({"address": address("Elsewhere")}))
        }
        _ => None,
    };
    // The merchant's token, another store's customer's token, and no token at all open
    // none of this store's customer routes.
    for (method, template) in CUSTOMER_ROUTES {
        for (who, token) in [
            ("merchant", Some(shop.merchant.access.as_str())),
            ("another store's customer", Some(foreign.access.as_str())),
            ("anonymous", None),
        ] {
            let mut request = app.request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &concrete(template),
            );
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body(method, template) {
                request = request.json(&body);
            }
            let (status, code, _) = error_code(request.send().await.unwrap()).await;
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::UNAUTHORIZED, "unauthenticated"),
                "{method} {template} as {who}"
            );
        }
    }
    // A customer's token opens no merchant route, not even their store's.
    for (method, template) in ROUTES.iter().filter(|(_, path)| {
        !path.starts_with("/api/v1/public/")
            && !path.starts_with("/api/v1/auth/register")
            && !path.starts_with("/api/v1/auth/login")
            && !path.starts_with("/api/v1/auth/refresh")
            && *path != "/api/v1/openapi.json"
            && *path != "/api/v1/events/schemas"
            && *path != "/api/v1/webhooks/stripe"
    }) {
        let path = concrete(template)
            .replace("{key_id}", &Uuid::now_v7().to_string())
            .replace("{order_id}", &Uuid::now_v7().to_string())
            .replace("{customer_id}", &Uuid::now_v7().to_string());
        let response = app
            .request(Method::from_bytes(method.as_bytes()).unwrap(), &path)
            .bearer_auth(&customer.access)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {template} with a customer's token"
        );
    }
    // Nothing any of that tried reached the customer's account.
    let (_, account) = me(&app, &shop, &customer).await;
    assert_eq!(account["data"]["name"], Value::Null);
    assert_eq!(account["data"]["addresses"][0]["address"]["city"], "Reston");
    assert_eq!(account["data"]["wishlist"], json!([]));
    assert_eq!(
        customer.email, foreign.email,
        "one email, two stores, two accounts"
    );
}
