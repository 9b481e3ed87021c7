//! `bench orders`: the money path over the real HTTP server (every role in-process).
//! - `checkout`: `POST /public/stores/{slug}/checkout` of one to three lines drawn from a
//!   catalog of 1,000 products, by 16 shoppers (a few emails each, so customers are both
//!   created and found again).
//! - `checkout_paid`: a checkout and its mock payment confirmed, timed together.
//! - `last_unit_race`: while `checkout_paid` runs, rounds of 32 shoppers race for a
//!   product's last unit; `winners` must equal `rounds` and no stock goes negative.

use std::sync::Arc;

use futures::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    http::{BenchServer, load, register},
    scratch::settle,
};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Checkouts per workload.
    #[arg(long, default_value_t = 20_000)]
    checkouts: u64,
    /// Products in the catalog.
    #[arg(long, default_value_t = 1_000)]
    products: u64,
    /// Concurrent shoppers.
    #[arg(long, default_value_t = 16)]
    shoppers: u64,
    /// Rounds of the last-unit race.
    #[arg(long, default_value_t = 20)]
    rounds: u64,
    /// Server worker threads.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let server = BenchServer::start(options.server_threads, &[]).await?;
    let result = drive(&options, &server).await;
    server.stop().await?;
    result
}

struct Shop {
    slug: String,
    variants: Vec<String>,
}

async fn open_shop(
    client: &reqwest::Client,
    address: &str,
    pool: &sqlx::PgPool,
    products: u64,
) -> anyhow::Result<(String, String, Shop)> {
    let token = register(client, address, 1).await?.remove(0);
    let store: Value = client
        .post(format!("{address}/api/v1/stores"))
        .bearer_auth(&token)
        .json(&json!({"name": format!("Orders Bench {}", Uuid::new_v4().simple())}))
        .send()
        .await?
        .json()
        .await?;
    let store_id = store["data"]["id"].as_str().unwrap_or_default().to_owned();
    let slug = store["data"]["slug"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut variants = Vec::new();
    for n in 0..products {
        variants.push(create_product(client, address, &token, &store_id, n, 1_000_000).await?);
    }
    wait_for_catalog(pool, &store_id, products).await?;
    Ok((token, store_id, Shop { slug, variants }))
}

/// A product of one variant with `stock` units: its variant id.
async fn create_product(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    store_id: &str,
    n: u64,
    stock: u64,
) -> anyhow::Result<String> {
    let created: Value = client
        .post(format!("{address}/api/v1/stores/{store_id}/products"))
        .bearer_auth(token)
        .json(&json!({
            "title": format!("Bench Sock {n} {}", Uuid::new_v4().simple()),
            "price": {"amount": 1000 + (n % 5000), "currency": "USD"},
            "status": "active",
            "variants": [{"name": "One size", "inventory_count": stock}],
        }))
        .send()
        .await?
        .json()
        .await?;
    created["data"]["variants"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("product not created: {created}"))
}

async fn wait_for_catalog(pool: &sqlx::PgPool, store_id: &str, count: u64) -> anyhow::Result<()> {
    for _ in 0..600 {
        let seen: i64 =
            sqlx::query_scalar("SELECT count(*) FROM catalog_products WHERE store_id = $1::uuid")
                .bind(store_id)
                .fetch_one(pool)
                .await?;
        if seen as u64 >= count {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("the catalog did not show the products")
}

async fn wait_for_variant(pool: &sqlx::PgPool, variant: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        let seen: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM catalog_products WHERE variant_ids ? $1)",
        )
        .bind(variant)
        .fetch_one(pool)
        .await?;
        if seen {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    anyhow::bail!("the catalog did not show variant {variant}")
}

fn cart(variants: &[String], shopper: u64, n: u64) -> Value {
    let lines = 1 + (n % 3) as usize;
    let first = (shopper * 7919 + n * 104_729) as usize;
    let items: Vec<Value> = (0..lines)
        .map(|line| {
            let variant = &variants[(first + line * 331) % variants.len()];
            json!({"variant_id": variant, "quantity": 1 + line})
        })
        .collect();
    json!({
        "items": items,
        "email": format!("shopper-{shopper}-{}@example.com", n % 4),
        "shipping_address": {"name": "Bench Shopper", "line1": "1 Test Street",
                             "city": "Leeds", "postal_code": "LS1 1AA", "country": "GB"},
    })
}

/// One checkout; with `pay`, its mock payment too. Whether both succeeded.
async fn buy(
    client: &reqwest::Client,
    address: &str,
    slug: &str,
    body: &Value,
    pay: bool,
) -> anyhow::Result<bool> {
    let response = client
        .post(format!("{address}/api/v1/public/stores/{slug}/checkout"))
        .json(body)
        .send()
        .await?;
    if response.status() != reqwest::StatusCode::CREATED {
        return Ok(false);
    }
    if !pay {
        return Ok(true);
    }
    let placed: Value = response.json().await?;
    let Some(confirm) = placed["data"]["payment"]["confirm_url"].as_str() else {
        return Ok(false);
    };
    let paid = client.post(format!("{address}{confirm}")).send().await?;
    Ok(paid.status() == reqwest::StatusCode::OK)
}

async fn drive(options: &Options, server: &BenchServer) -> anyhow::Result<()> {
    let address = server.address.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let pool = sqlx::PgPool::connect(&server.scratch.url).await?;
    let (token, store_id, shop) = open_shop(&client, &address, &pool, options.products).await?;
    let shop = Arc::new(shop);
    settle(&pool).await;

    for (workload, pay) in [("checkout", false), ("checkout_paid", true)] {
        let racing = (workload == "checkout_paid").then(|| {
            let (client, address, token, store_id, slug) = (
                client.clone(),
                address.clone(),
                token.clone(),
                store_id.clone(),
                shop.slug.clone(),
            );
            let (pool, rounds) = (pool.clone(), options.rounds);
            tokio::spawn(async move {
                race(&client, &address, &token, &store_id, &slug, &pool, rounds).await
            })
        });
        let measured = load(options.shoppers, options.checkouts, {
            let (client, address, shop) = (client.clone(), address.clone(), shop.clone());
            move |shopper, n| {
                let (client, address, shop) = (client.clone(), address.clone(), shop.clone());
                async move {
                    let body = cart(&shop.variants, shopper, n);
                    buy(&client, &address, &shop.slug, &body, pay).await
                }
            }
        })
        .await?;
        measured.report_with(
            workload,
            options.shoppers,
            json!({"products": options.products}),
        );
        if let Some(racing) = racing {
            let (winners, lowest_stock) = racing.await??;
            crate::results::emit(json!({
                "workload": "last_unit_race",
                "clients": 32,
                "rounds": options.rounds,
                "winners": winners,
                "lowest_stock": lowest_stock,
            }));
        }
    }
    Ok(())
}

/// Rounds of 32 shoppers buying the single unit of a fresh product: how many got one
/// over all rounds, and the lowest stock any of those products ended with.
async fn race(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    store_id: &str,
    slug: &str,
    pool: &sqlx::PgPool,
    rounds: u64,
) -> anyhow::Result<(u64, i64)> {
    let mut winners = 0;
    let mut lowest = i64::MAX;
    for round in 0..rounds {
        let variant = create_product(client, address, token, store_id, 900_000 + round, 1).await?;
        wait_for_variant(pool, &variant).await?;
        let shoppers = (0..32).map(|shopper| {
            let body = json!({
                "items": [{"variant_id": variant, "quantity": 1}],
                "email": format!("racer-{shopper}@example.com"),
                "shipping_address": {"name": "Racer", "line1": "1 Track", "city": "Leeds", "country": "GB"},
            });
            async move { buy(client, address, slug, &body, false).await }
        });
        winners += join_all(shoppers)
            .await
            .into_iter()
            .filter(|won| matches!(won, Ok(true)))
            .count() as u64;
        let stock: Option<i64> = sqlx::query_scalar(
            "SELECT min((v->>'inventory_count')::bigint) FROM catalog_products p, \
             jsonb_array_elements(p.variants) v WHERE p.variant_ids ? $1",
        )
        .bind(&variant)
        .fetch_one(pool)
        .await?;
        lowest = lowest.min(stock.unwrap_or(0));
    }
    Ok((winners, lowest))
}
