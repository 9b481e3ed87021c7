//! The `catalog` read model: products with variant and stock changes, categories and
//! collections projected, each change announced per store, and a rebuild that
//! reproduces the tables exactly.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use eventlog::{
    AppendRequest, EventLog, ExpectedVersion, GroupCommitConfig, NewEvent, Publisher,
    PublisherConfig, jetstream,
};
use projections::{
    ProjectorConfig,
    catalog::{CATALOG_CHANGED_CHANNEL, Catalog},
    lag, rebuild, run_projector,
};
use schemas::{
    Event,
    catalog::{CategoryCreated, CategoryData, CategoryDeleted, CollectionCreated, CollectionData},
    product::{
        InventoryAdjusted, InventoryReleased, InventoryReserved, Money, ProductCreated,
        ProductData, ProductPublished, ProductUpdated, StockLine, VariantAdded, VariantData,
        VariantRemoved,
    },
};
use sqlx::{PgPool, postgres::PgListener};
use testkit::{delete_stream, eventually, isolated_names};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

fn variant(id: Uuid, sku: &str, stock: u32) -> VariantData {
    VariantData {
        variant_id: id,
        name: sku.into(),
        sku: Some(sku.into()),
        price: None,
        inventory_count: stock,
        options: vec![],
    }
}

fn product(store: Uuid, category: Uuid, first: Uuid) -> ProductData {
    ProductData {
        store_id: store,
        title: "Wool Sock".into(),
        slug: "wool-sock".into(),
        description: Some("warm".into()),
        price: Money {
            amount: 1999,
            currency: "EUR".into(),
        },
        compare_at_price: None,
        cost: Some(Money {
            amount: 500,
            currency: "EUR".into(),
        }),
        images: vec!["https://cdn.example.com/a.png".into()],
        status: "draft".into(),
        seo_title: None,
        seo_description: None,
        tags: vec!["wool".into()],
        category_ids: vec![category],
        variants: vec![variant(first, "ws-1", 3)],
    }
}

async fn append(log: &EventLog, stream: String, store: Uuid, events: Vec<Event>) {
    let request = AppendRequest::new(
        stream,
        ExpectedVersion::Any,
        events.into_iter().map(NewEvent::new).collect(),
    )
    .in_store(store);
    log.append(request).await.unwrap();
}

/// Every row of the catalog tables, as text, in a stable order.
async fn contents(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM (SELECT id, store_id, title, slug, description, price_amount, \
         compare_at_amount, cost_amount, currency, images, status, tags, category_ids, variants, skus, \
         inventory_total, in_stock, version, last_position FROM catalog_products) t \
         UNION ALL SELECT row_to_json(c)::text FROM catalog_categories c \
         UNION ALL SELECT row_to_json(c)::text FROM catalog_collections c ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn a_catalog_is_projected_announced_and_rebuilt_alike(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let store = Uuid::new_v4();
    let (product_id, category_id, gone_category, collection_id) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen(CATALOG_CHANGED_CHANNEL).await.unwrap();

    let category = |name: &str| CategoryData {
        store_id: store,
        name: name.into(),
        slug: name.to_lowercase(),
        description: None,
        parent_id: None,
    };
    append(
        &log,
        format!("category-{category_id}"),
        store,
        vec![Event::CategoryCreated(CategoryCreated {
            category: category("Socks"),
        })],
    )
    .await;
    append(
        &log,
        format!("category-{gone_category}"),
        store,
        vec![
            Event::CategoryCreated(CategoryCreated {
                category: category("Old"),
            }),
            Event::CategoryDeleted(CategoryDeleted {}),
        ],
    )
    .await;
    let mut renamed = product(store, category_id, first);
    renamed.title = "Merino Sock".into();
    renamed.slug = "merino-sock".into();
    append(
        &log,
        format!("product-{product_id}"),
        store,
        vec![
            Event::ProductCreated(ProductCreated {
                product: product(store, category_id, first),
            }),
            Event::ProductUpdated(ProductUpdated {
                product: renamed,
                changed: vec!["title".into(), "slug".into()],
            }),
            Event::VariantAdded(VariantAdded {
                variant: variant(second, "ws-2", 5),
            }),
            Event::InventoryAdjusted(InventoryAdjusted {
                variant_id: first,
                delta: -3,
                reason: "sale".into(),
                inventory_count: 0,
            }),
            Event::ProductPublished(ProductPublished {}),
            Event::InventoryReserved(InventoryReserved {
                order_id: Uuid::now_v7(),
                lines: vec![StockLine {
                    variant_id: second,
                    quantity: 2,
                    inventory_count: 3,
                }],
            }),
            Event::InventoryReleased(InventoryReleased {
                order_id: Uuid::now_v7(),
                reason: "expired".into(),
                lines: vec![StockLine {
                    variant_id: second,
                    quantity: 1,
                    inventory_count: 4,
                }],
            }),
        ],
    )
    .await;
    append(
        &log,
        format!("collection-{collection_id}"),
        store,
        vec![Event::CollectionCreated(CollectionCreated {
            collection: CollectionData {
                store_id: store,
                name: "Winter".into(),
                slug: "winter".into(),
                description: None,
                product_ids: vec![product_id],
            },
        })],
    )
    .await;

    let (client, connections) = jetstream::connect(&testkit::nats_url()).await.unwrap();
    let names = isolated_names();
    let shutdown = CancellationToken::new();
    let publisher = Publisher::new(
        pool.clone(),
        client.clone(),
        connections,
        PublisherConfig::new(names.clone()),
    );
    let publishing = tokio::spawn(publisher.run(shutdown.clone()));
    let projecting = tokio::spawn(run_projector(
        pool.clone(),
        client.clone(),
        ProjectorConfig::new(names.clone()),
        Catalog,
        shutdown.clone(),
    ));
    assert!(
        eventually(PATIENCE, || async {
            lag(&pool, "catalog").await.unwrap() == 0
        })
        .await
    );

    let (title, status, skus, total, in_stock): (String, String, Vec<String>, i64, bool) = sqlx::query_as(
        "SELECT title, status, skus, inventory_total, in_stock FROM catalog_products WHERE id = $1",
    )
    .bind(product_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (title.as_str(), status.as_str(), skus, total, in_stock),
        (
            "Merino Sock",
            "active",
            vec!["WS-1".to_owned(), "WS-2".to_owned()],
            4,
            true
        )
    );
    let deleted: bool = sqlx::query_scalar("SELECT deleted FROM catalog_categories WHERE id = $1")
        .bind(gone_category)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(deleted);
    let notification = tokio::time::timeout(PATIENCE, listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notification.payload(), store.to_string());

    // Removing the variant with stock leaves a product with no stock at all.
    append(
        &log,
        format!("product-{product_id}"),
        store,
        vec![Event::VariantRemoved(VariantRemoved { variant_id: second })],
    )
    .await;
    assert!(
        eventually(PATIENCE, || async {
            let in_stock: bool =
                sqlx::query_scalar("SELECT in_stock FROM catalog_products WHERE id = $1")
                    .bind(product_id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            !in_stock
        })
        .await
    );
    assert!(
        eventually(PATIENCE, || async {
            lag(&pool, "catalog").await.unwrap() == 0
        })
        .await
    );

    let before = contents(&pool).await;
    sqlx::query("UPDATE catalog_products SET title = 'damaged', variants = '[]'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM catalog_collections")
        .execute(&pool)
        .await
        .unwrap();
    rebuild(&pool, &Catalog).await.unwrap();
    assert_eq!(contents(&pool).await, before);

    shutdown.cancel();
    let _ = tokio::join!(publishing, projecting);
    delete_stream(&client, &names).await;
}
