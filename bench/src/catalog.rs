//! `bench catalog`: the catalog over the real HTTP server (every role in-process, as in
//! `bench http`).
//! - `product_create`: `POST .../products` with 3 variants each, spread over stores.
//! - `public_product_list` / `public_product_detail`: storefront reads of a store whose
//!   products were created through the API, cached (plain reads, after a warm-up) and
//!   uncached. A list read is made uncached by a `max_price` no other request uses (it
//!   admits every product); `X-Min-Position` no longer bypasses the cache, so the
//!   uncached detail reads are cached after their first read of each product.
//! - `search_100k`: merchant searches (partial title words, description words, exact
//!   SKUs) in a store of 100,000 products. Those products are written straight into the
//!   read model with `generate_series` (the API would take minutes to create them, and
//!   this workload measures the query, not the writes).

use std::sync::Arc;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    http::{BenchServer, load, register},
    scratch::{Scratch, settle},
};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Product-create commands to send.
    #[arg(long, default_value_t = 20_000)]
    commands: u64,
    /// Storefront reads per read workload.
    #[arg(long, default_value_t = 200_000)]
    reads: u64,
    /// Uncached reads and searches per workload.
    #[arg(long, default_value_t = 20_000)]
    uncached_reads: u64,
    /// Products in the searched store.
    #[arg(long, default_value_t = 100_000)]
    catalog: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: u64,
    /// Concurrent clients of the search workload (a latency target: on 2 cores, more
    /// concurrent uncached searches only queue behind each other).
    #[arg(long, default_value_t = 4)]
    search_clients: u64,
    /// Stores the created products are spread over.
    #[arg(long, default_value_t = 16)]
    stores: u64,
    /// Server worker threads.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let server = BenchServer::start(options.server_threads, &[]).await?;
    let result = drive(&options, &server.address, &server.scratch).await;
    server.stop().await?;
    result
}

struct Store {
    id: String,
    slug: String,
}

async fn create_stores(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    count: u64,
) -> anyhow::Result<Vec<Store>> {
    let mut stores = Vec::new();
    for n in 0..count {
        let body: Value = client
            .post(format!("{address}/api/v1/stores"))
            .bearer_auth(token)
            .json(&json!({"name": format!("Catalog Bench {n} {}", Uuid::new_v4().simple())}))
            .send()
            .await?
            .json()
            .await?;
        stores.push(Store {
            id: body["data"]["id"].as_str().unwrap_or_default().to_owned(),
            slug: body["data"]["slug"].as_str().unwrap_or_default().to_owned(),
        });
    }
    Ok(stores)
}

fn product_body(client: u64, n: u64) -> Value {
    let sku = |size: &str| format!("B{client}-{n}-{size}");
    json!({
        "title": format!("Bench Sock {client} {n}"),
        "description": "A warm wool sock for cold winter mornings",
        "price": {"amount": 1000 + (n % 5000), "currency": "USD"},
        "cost": {"amount": 400, "currency": "USD"},
        "status": "active",
        "images": ["https://cdn.example.com/sock.png"],
        "tags": ["wool", "winter"],
        "variants": [
            {"name": "Small", "sku": sku("S"), "inventory_count": 10, "options": [{"name": "size", "value": "S"}]},
            {"name": "Medium", "sku": sku("M"), "inventory_count": 10, "options": [{"name": "size", "value": "M"}]},
            {"name": "Large", "sku": sku("L"), "inventory_count": 10, "options": [{"name": "size", "value": "L"}]},
        ],
    })
}

async fn drive(options: &Options, address: &str, scratch: &Scratch) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients as usize)
        .build()?;
    let token = register(&client, address, 1).await?.remove(0);
    let stores = Arc::new(create_stores(&client, address, &token, options.stores).await?);
    let pool = sqlx::PgPool::connect(&scratch.url).await?;
    settle(&pool).await;

    let measured = load(options.clients, options.commands, {
        let (client, address, token, stores) = (
            client.clone(),
            address.to_owned(),
            token.clone(),
            stores.clone(),
        );
        move |client_index, n| {
            let (client, address, token) = (client.clone(), address.clone(), token.clone());
            let store = stores[(client_index % stores.len() as u64) as usize]
                .id
                .clone();
            async move {
                let response = client
                    .post(format!("{address}/api/v1/stores/{store}/products"))
                    .bearer_auth(token)
                    .json(&product_body(client_index, n))
                    .send()
                    .await?;
                Ok(response.status() == reqwest::StatusCode::CREATED)
            }
        }
    })
    .await?;
    measured.report("product_create_3_variants", options.clients);
    wait_for_projection(&pool).await?;
    settle(&pool).await;

    let store = &stores[0];
    let (product_slugs, pages) = storefront_shape(&client, address, &store.slug).await?;
    for (workload, fresh, total) in [
        ("public_product_list_cached", false, options.reads),
        ("public_product_list_uncached", true, options.uncached_reads),
    ] {
        let measured = load(options.clients, total, {
            let (client, address, slug) = (client.clone(), address.to_owned(), store.slug.clone());
            move |client_index, n| {
                let page = (client_index + n) % pages + 1;
                let mut url = format!("{address}/api/v1/public/stores/{slug}/products?page={page}");
                if fresh {
                    // A key of its own: never found in the cache.
                    let ceiling = 999_999_999_999 - client_index * 1_000_000_000 - n;
                    url.push_str(&format!("&max_price={ceiling}"));
                }
                read(client.get(url), fresh)
            }
        })
        .await?;
        measured.report(workload, options.clients);
    }
    let product_slugs = Arc::new(product_slugs);
    for (workload, fresh, total) in [
        ("public_product_detail_cached", false, options.reads),
        (
            "public_product_detail_uncached",
            true,
            options.uncached_reads,
        ),
    ] {
        let measured = load(options.clients, total, {
            let (client, address, slug) = (client.clone(), address.to_owned(), store.slug.clone());
            let product_slugs = product_slugs.clone();
            move |client_index, n| {
                let product =
                    &product_slugs[((client_index * 7919 + n) as usize) % product_slugs.len()];
                let request = client.get(format!(
                    "{address}/api/v1/public/stores/{slug}/products/{product}"
                ));
                read(request, fresh)
            }
        })
        .await?;
        measured.report(workload, options.clients);
    }

    let search_store = create_stores(&client, address, &token, 1).await?.remove(0);
    seed_catalog(&pool, &search_store.id, options.catalog).await?;
    settle(&pool).await;
    for clients in [options.search_clients, options.clients] {
        let measured = load(clients, options.uncached_reads, {
            let (client, address, token, store) = (
                client.clone(),
                address.to_owned(),
                token.clone(),
                search_store.id.clone(),
            );
            let total = options.catalog;
            move |client_index, n| {
                let k = ((client_index * 7919 + n) % total) as usize;
                let query = match n % 3 {
                    // Part of a title word, as typed into a search box.
                    0 => ITEMS[k % ITEMS.len()].chars().take(4).collect(),
                    // Words from titles and descriptions.
                    1 => format!(
                        "{} {}",
                        MATERIALS[k % MATERIALS.len()],
                        ITEMS[(k / 7) % ITEMS.len()]
                    ),
                    _ => format!("sku-{k}"),
                };
                let request = client
                    .get(format!("{address}/api/v1/stores/{store}/products"))
                    .query(&[("q", query.as_str())])
                    .bearer_auth(&token);
                read(request, false)
            }
        })
        .await?;
        measured.report("search_100k_uncached", clients);
    }
    pool.close().await;
    Ok(())
}

async fn read(request: reqwest::RequestBuilder, fresh: bool) -> anyhow::Result<bool> {
    let request = if fresh {
        request.header("x-min-position", "1")
    } else {
        request
    };
    let response = request.send().await?;
    let ok = response.status() == reqwest::StatusCode::OK;
    response.bytes().await?;
    Ok(ok)
}

/// Waits until the catalog projection has applied everything written so far.
async fn wait_for_projection(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    for _ in 0..600 {
        if projections::lag(pool, "catalog").await? == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    anyhow::bail!("the catalog projection did not catch up")
}

/// The storefront's product slugs (first pages) and how many list pages it has.
async fn storefront_shape(
    client: &reqwest::Client,
    address: &str,
    slug: &str,
) -> anyhow::Result<(Vec<String>, u64)> {
    let body: Value = client
        .get(format!(
            "{address}/api/v1/public/stores/{slug}/products?per_page=100"
        ))
        .send()
        .await?
        .json()
        .await?;
    let slugs: Vec<String> = body["data"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|p| p["slug"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    anyhow::ensure!(!slugs.is_empty(), "the storefront has no products: {body}");
    let total = body["total"].as_u64().unwrap_or(1);
    Ok((slugs, total.div_ceil(20).min(50)))
}

const ADJECTIVES: [&str; 40] = [
    "cozy",
    "classic",
    "vintage",
    "modern",
    "rustic",
    "elegant",
    "sporty",
    "minimal",
    "bold",
    "breezy",
    "chunky",
    "slim",
    "oversized",
    "tailored",
    "relaxed",
    "everyday",
    "premium",
    "travel",
    "urban",
    "coastal",
    "alpine",
    "desert",
    "tropical",
    "nordic",
    "retro",
    "heritage",
    "studio",
    "festival",
    "weekend",
    "evening",
    "summer",
    "winter",
    "autumn",
    "spring",
    "sunny",
    "misty",
    "golden",
    "silver",
    "crimson",
    "emerald",
];
const MATERIALS: [&str; 40] = [
    "merino",
    "velvet",
    "canvas",
    "leather",
    "bamboo",
    "cashmere",
    "denim",
    "linen",
    "suede",
    "flannel",
    "cotton",
    "silk",
    "wool",
    "fleece",
    "corduroy",
    "tweed",
    "satin",
    "chiffon",
    "nylon",
    "mesh",
    "jersey",
    "twill",
    "poplin",
    "oxford",
    "chambray",
    "seersucker",
    "crepe",
    "organza",
    "tulle",
    "lace",
    "knit",
    "quilted",
    "waxed",
    "recycled",
    "organic",
    "hemp",
    "alpaca",
    "mohair",
    "angora",
    "cork",
];
const ITEMS: [&str; 60] = [
    "beanie",
    "scarf",
    "gloves",
    "mittens",
    "socks",
    "sneakers",
    "loafers",
    "sandals",
    "boots",
    "slippers",
    "jacket",
    "parka",
    "blazer",
    "cardigan",
    "sweater",
    "hoodie",
    "tshirt",
    "polo",
    "shirt",
    "blouse",
    "tunic",
    "dress",
    "skirt",
    "shorts",
    "trousers",
    "chinos",
    "jeans",
    "leggings",
    "joggers",
    "overalls",
    "vest",
    "poncho",
    "kimono",
    "robe",
    "pajamas",
    "apron",
    "backpack",
    "tote",
    "wallet",
    "belt",
    "cap",
    "fedora",
    "visor",
    "headband",
    "bandana",
    "umbrella",
    "duffel",
    "satchel",
    "clutch",
    "pouch",
    "keychain",
    "lanyard",
    "bracelet",
    "necklace",
    "earrings",
    "ring",
    "brooch",
    "watch",
    "sunglasses",
    "blanket",
];

/// `count` active products in one store, titles and descriptions drawn from 140 words
/// (so a word is in 1–3 % of the products, as in a varied catalog), one SKU each.
async fn seed_catalog(pool: &sqlx::PgPool, store_id: &str, count: u64) -> anyhow::Result<()> {
    let store_id: Uuid = store_id.parse()?;
    sqlx::query(
        "INSERT INTO catalog_products (id, store_id, title, slug, description, price_amount, \
         currency, images, status, tags, category_ids, variants, skus, inventory_total, in_stock, \
         version, last_position, created_at, updated_at) \
         SELECT gen_random_uuid(), $1, \
           initcap(a[1 + n % 40]) || ' ' || initcap(m[1 + (n / 40) % 40]) || ' ' \
             || initcap(i[1 + (n / 7) % 60]) || ' ' || n, \
           'product-' || n, \
           'A ' || a[1 + (n / 3) % 40] || ' ' || i[1 + (n / 7) % 60] || ' made of ' \
             || m[1 + (n / 40) % 40] || ' and ' || m[1 + (n / 13) % 40] || '.', \
           100 + n % 10000, 'USD', '[]'::jsonb, 'active', ARRAY[a[1 + n % 40]], '{}', \
           jsonb_build_array(jsonb_build_object('variant_id', gen_random_uuid(), 'name', 'One', \
             'sku', 'SKU-' || n, 'price', null, 'inventory_count', n % 5, 'options', '[]'::jsonb)), \
           ARRAY['SKU-' || n], n % 5, n % 5 > 0, 1, 0, now() - n * interval '1 second', now() \
         FROM generate_series(0, $2 - 1) AS n, \
           (SELECT $3::text[] AS a, $4::text[] AS m, $5::text[] AS i) AS words",
    )
    .bind(store_id)
    .bind(i64::try_from(count)?)
    .bind(ADJECTIVES.to_vec())
    .bind(MATERIALS.to_vec())
    .bind(ITEMS.to_vec())
    .execute(pool)
    .await?;
    Ok(())
}
