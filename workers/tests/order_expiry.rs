//! Unpaid orders past their deadline expire once and give their stock back; paid ones
//! are left alone.

#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use eventlog::{AppendRequest, EventLog, ExpectedVersion, GroupCommitConfig, NewEvent, read_after};
use ordering::{OrderFold, ProductFold, SNAPSHOT_EVERY, order_stream, product_stream};
use projections::{Projection, Target};
use schemas::{
    Event,
    order::{OrderCreated, OrderLine, OrderPaid, OrderTotals},
    pii::Sealed,
    product::{InventoryReserved, Money, ProductCreated, ProductData, StockLine, VariantData},
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use workers::order_expiry::{OrderDeadlines, expire_due};

const STOCK: u32 = 10;

async fn stocked_product(log: &EventLog, store_id: Uuid, variant_id: Uuid) -> Uuid {
    let product_id = Uuid::now_v7();
    let product = ProductData {
        store_id,
        title: "Sock".into(),
        slug: "sock".into(),
        description: None,
        price: Money {
            amount: 1000,
            currency: "USD".into(),
        },
        compare_at_price: None,
        cost: None,
        images: vec![],
        status: "active".into(),
        seo_title: None,
        seo_description: None,
        tags: vec![],
        category_ids: vec![],
        variants: vec![VariantData {
            variant_id,
            name: "M".into(),
            sku: None,
            price: None,
            inventory_count: STOCK,
            options: vec![],
        }],
    };
    let request = AppendRequest::new(
        product_stream(product_id),
        ExpectedVersion::NoStream,
        vec![NewEvent::new(Event::ProductCreated(ProductCreated {
            product,
        }))],
    )
    .in_store(store_id);
    log.append(request).await.unwrap();
    product_id
}

/// Two units reserved by an order due at `due`, as a checkout writes them.
async fn place(
    log: &EventLog,
    store_id: Uuid,
    product_id: Uuid,
    variant_id: Uuid,
    version: i32,
    due: chrono::DateTime<Utc>,
) -> Uuid {
    let order_id = Uuid::now_v7();
    let reserved = AppendRequest::new(
        product_stream(product_id),
        ExpectedVersion::Exact(version),
        vec![NewEvent::new(Event::InventoryReserved(InventoryReserved {
            order_id,
            lines: vec![StockLine {
                variant_id,
                quantity: 2,
                inventory_count: STOCK - u32::try_from(version).unwrap() * 2,
            }],
        }))],
    )
    .in_store(store_id);
    let created = AppendRequest::new(
        order_stream(order_id),
        ExpectedVersion::NoStream,
        vec![NewEvent::new(Event::OrderCreated(OrderCreated {
            store_id,
            number: 1001,
            customer_id: Uuid::now_v7(),
            contact: Sealed {
                key_id: Uuid::now_v7(),
                nonce: vec![0; 24],
                ciphertext: vec![1],
            },
            country: "GB".into(),
            region: None,
            lines: vec![OrderLine {
                product_id,
                variant_id,
                title: "Sock".into(),
                variant_name: "M".into(),
                sku: None,
                quantity: 2,
                unit_price: 1000,
                tax: 0,
            }],
            totals: OrderTotals {
                currency: "USD".into(),
                subtotal: 2000,
                shipping: 0,
                tax: 0,
                taxes_included: false,
                total: 2000,
            },
            payment_session: "cs_mock_x".into(),
            payment_due: due,
        }))],
    )
    .in_store(store_id);
    log.append_multi(vec![reserved, created]).await.unwrap();
    order_id
}

async fn catch_up(pool: &PgPool) {
    let events = read_after(pool, 0, 10_000).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    OrderDeadlines
        .apply(&mut tx, Target::Live, &events)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn stock(log: &EventLog, product_id: Uuid) -> u32 {
    let loaded =
        eventlog::load::<ProductFold>(log.pool(), &product_stream(product_id), SNAPSHOT_EVERY)
            .await
            .unwrap();
    loaded.state.existing().unwrap().variants[0].inventory_count
}

async fn order_events(log: &EventLog, order_id: Uuid) -> Vec<String> {
    eventlog::read_stream(log.pool(), &order_stream(order_id), 1)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn an_unpaid_order_past_due_expires_once_and_its_stock_returns(pool: PgPool) {
    let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
    let (store_id, variant_id) = (Uuid::now_v7(), Uuid::now_v7());
    let product_id = stocked_product(&log, store_id, variant_id).await;
    let overdue = place(
        &log,
        store_id,
        product_id,
        variant_id,
        1,
        Utc::now() - Duration::minutes(1),
    )
    .await;
    let paid = place(
        &log,
        store_id,
        product_id,
        variant_id,
        2,
        Utc::now() - Duration::minutes(1),
    )
    .await;
    let later = place(
        &log,
        store_id,
        product_id,
        variant_id,
        3,
        Utc::now() + Duration::hours(1),
    )
    .await;
    let loaded = eventlog::load::<OrderFold>(log.pool(), &order_stream(paid), SNAPSHOT_EVERY)
        .await
        .unwrap();
    log.append(
        AppendRequest::new(
            order_stream(paid),
            ExpectedVersion::Exact(loaded.version),
            vec![NewEvent::new(Event::OrderPaid(OrderPaid {
                amount: 2000,
                provider: "mock".into(),
                reference: "cs_mock_x".into(),
            }))],
        )
        .in_store(store_id),
    )
    .await
    .unwrap();
    catch_up(&pool).await;
    assert_eq!(stock(&log, product_id).await, STOCK - 6);

    let outcome = expire_due(log.clone(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome, "1 unpaid orders expired");
    assert_eq!(
        order_events(&log, overdue).await,
        vec!["order.created", "order.expired"]
    );
    assert_eq!(
        order_events(&log, paid).await,
        vec!["order.created", "order.paid"]
    );
    assert_eq!(order_events(&log, later).await, vec!["order.created"]);
    assert_eq!(
        stock(&log, product_id).await,
        STOCK - 4,
        "the expired order's two units are back"
    );

    // Applied again from the start (a replay) and run again: nothing more happens.
    catch_up(&pool).await;
    let again = expire_due(log.clone(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(again, "0 unpaid orders expired");
    assert_eq!(order_events(&log, overdue).await.len(), 2);
    let deadlines: Vec<Uuid> = sqlx::query_scalar("SELECT order_id FROM order_deadlines")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(deadlines, vec![later]);
}
