//! `orders`, `customers` and `daily_sales`: the money path's read models. An order row
//! keeps the order as the domain folds its events (`state`), so lists filter on exactly
//! the statuses the write side decides with; customers count their orders and what they
//! paid net of refunds; each store's day totals its payments and refunds (UTC days).
//! Personal data stays sealed here as in the log, opened only when shown.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use domain::order::{self, Order, PlacedOrder};
use schemas::{Event, RecordedEvent};
use serde_json::{Value, json};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::projection::{Projection, Target};

pub struct Orders;

struct Tables {
    orders_by_id: &'static str,
    save_order: &'static str,
    insert_customer: &'static str,
    update_customer: &'static str,
    add_customer_totals: &'static str,
    add_day: &'static str,
}

/// Orders move only forward in log position (`fold` skips what a row has seen), and the
/// totals grow only with the order events that moved a row, so replays are harmless.
macro_rules! statements_for {
    ($suffix:literal) => {
        Tables {
            orders_by_id: concat!(
                "SELECT id, state, fulfillments, refunds, cancelled_at, created_at, version, ",
                "last_position, updated_at, by_account FROM orders", $suffix, " WHERE id = ANY($1)"
            ),
            save_order: concat!(
                "INSERT INTO orders", $suffix, " (id, store_id, number, customer_id, status, ",
                "payment_status, fulfillment_status, cancelled_at, currency, total, paid, refunded, ",
                "state, fulfillments, refunds, version, last_position, created_at, updated_at, ",
                "by_account) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, ",
                "$15, $16, $17, $18, $19, $20) ON CONFLICT (id) DO UPDATE SET status = $5, payment_status = $6, ",
                "fulfillment_status = $7, cancelled_at = $8, paid = $11, refunded = $12, state = $13, ",
                "fulfillments = $14, refunds = $15, version = $16, last_position = $17, updated_at = $19"
            ),
            insert_customer: concat!(
                "INSERT INTO customers", $suffix, " (id, store_id, email_digest, contact, ",
                "last_position, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ",
                "ON CONFLICT (id) DO NOTHING"
            ),
            update_customer: concat!(
                "UPDATE customers", $suffix, " SET contact = $2, ",
                "email_digest = coalesce($3, email_digest), last_position = $4, updated_at = $5 ",
                "WHERE id = $1 AND last_position < $4"
            ),
            add_customer_totals: concat!(
                "UPDATE customers", $suffix, " SET orders = orders + $2, ",
                "lifetime_value = lifetime_value + $3, ",
                "last_order_at = greatest(last_order_at, $4) WHERE id = $1"
            ),
            add_day: concat!(
                "INSERT INTO daily_sales", $suffix, " AS t (store_id, day, orders, gross, refunds) ",
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (store_id, day) DO UPDATE SET ",
                "orders = t.orders + $3, gross = t.gross + $4, refunds = t.refunds + $5"
            ),
        }
    };
}

const LIVE: Tables = statements_for!("");
const SHADOW: Tables = statements_for!("_shadow");

/// One order as this batch leaves it.
struct OrderRow {
    state: PlacedOrder,
    fulfillments: Vec<Value>,
    refunds: Vec<Value>,
    cancelled_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    version: i32,
    last_position: i64,
    updated_at: DateTime<Utc>,
    /// Placed by a signed-in customer (its events' actor names their session).
    by_account: bool,
}

/// What one batch adds to a store's day.
#[derive(Default)]
struct DayTotals {
    orders: i32,
    gross: i64,
    refunds: i64,
}

fn is_order_event(event_type: &str) -> bool {
    event_type.starts_with("order.")
        || matches!(event_type, "customer.created" | "customer.updated")
}

impl Projection for Orders {
    const NAME: &'static str = "orders";
    const TABLES: &'static [&'static str] = &["orders", "customers", "daily_sales"];

    fn reads(&self, event: &RecordedEvent) -> bool {
        is_order_event(&event.event_type)
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        let tables = match target {
            Target::Live => &LIVE,
            Target::Shadow => &SHADOW,
        };
        let relevant: Vec<(&RecordedEvent, Event)> = events
            .iter()
            .filter(|e| is_order_event(&e.event_type))
            .filter_map(|e| e.decode().ok().map(|decoded| (e, decoded)))
            .collect();
        if relevant.is_empty() {
            return Ok(());
        }
        let order_ids: Vec<Uuid> = relevant
            .iter()
            .filter_map(|(e, _)| stream_uuid(e, "order-"))
            .collect();
        let mut rows = load_orders(conn, tables, &order_ids).await?;
        let mut days: HashMap<(Uuid, NaiveDate), DayTotals> = HashMap::new();
        let mut customers: HashMap<Uuid, (i32, i64, Option<DateTime<Utc>>)> = HashMap::new();
        for (recorded, event) in &relevant {
            if let Some(customer_id) = stream_uuid(recorded, "customer-") {
                apply_customer(conn, tables, customer_id, recorded, event).await?;
                continue;
            }
            let Some(order_id) = stream_uuid(recorded, "order-") else {
                continue;
            };
            let Some(row) = fold(&mut rows, order_id, recorded, event) else {
                continue;
            };
            let store_id = row.state.store_id;
            let customer = customers.entry(row.state.customer_id).or_default();
            let day = days
                .entry((store_id, recorded.recorded_at.date_naive()))
                .or_default();
            match event {
                Event::OrderCreated(_) => {
                    customer.0 += 1;
                    customer.2 = Some(recorded.recorded_at);
                }
                Event::OrderPaid(paid) => {
                    customer.1 += paid.amount;
                    day.orders += 1;
                    day.gross += paid.amount;
                }
                Event::OrderRefunded(refunded) => {
                    customer.1 -= refunded.amount;
                    day.refunds += refunded.amount;
                }
                Event::OrderCancelled(cancelled) => {
                    customer.1 -= cancelled.refunded;
                    day.refunds += cancelled.refunded;
                }
                _ => {}
            }
        }
        save_orders(conn, tables, rows.into_iter()).await?;
        save_customer_totals(conn, tables, customers).await?;
        save_days(conn, tables, days).await
    }
}

fn stream_uuid(event: &RecordedEvent, prefix: &str) -> Option<Uuid> {
    event
        .stream_id
        .strip_prefix(prefix)
        .and_then(|id| Uuid::try_parse(id).ok())
}

/// Folds `event` into its order's row; `None` for an event already applied (the row is
/// past it) or one before the order exists.
fn fold<'a>(
    rows: &'a mut HashMap<Uuid, OrderRow>,
    order_id: Uuid,
    recorded: &RecordedEvent,
    event: &Event,
) -> Option<&'a mut OrderRow> {
    let at = recorded.recorded_at;
    if let Event::OrderCreated(_) = event
        && !rows.contains_key(&order_id)
    {
        let Order::Placed(state) = order::evolve(Order::Unplaced, event) else {
            return None;
        };
        rows.insert(
            order_id,
            OrderRow {
                state: *state,
                fulfillments: Vec::new(),
                refunds: Vec::new(),
                cancelled_at: None,
                created_at: at,
                version: recorded.version,
                last_position: recorded.position,
                updated_at: at,
                by_account: recorded
                    .metadata
                    .actor
                    .as_deref()
                    .is_some_and(|actor| actor.contains("/session:")),
            },
        );
        return rows.get_mut(&order_id);
    }
    let row = rows.get_mut(&order_id)?;
    if recorded.position <= row.last_position {
        return None;
    }
    if let Order::Placed(state) = order::evolve(Order::Placed(Box::new(row.state.clone())), event) {
        row.state = *state;
    }
    match event {
        Event::OrderShipped(shipped) => row.fulfillments.push(json!({
            "fulfillment_id": shipped.fulfillment_id,
            "carrier": shipped.carrier,
            "tracking_number": shipped.tracking_number,
            "tracking_url": shipped.tracking_url,
            "items": shipped.items,
            "shipped_at": at,
        })),
        Event::OrderRefunded(refunded) => row.refunds.push(json!({
            "refund_id": refunded.refund_id,
            "amount": refunded.amount,
            "reason": refunded.reason,
            "restocked": refunded.restocked,
            "refunded_at": at,
        })),
        Event::OrderCancelled(_) | Event::OrderExpired(_) => row.cancelled_at = Some(at),
        _ => {}
    }
    row.version = recorded.version;
    row.last_position = recorded.position;
    row.updated_at = at;
    Some(row)
}

async fn load_orders(
    conn: &mut PgConnection,
    tables: &Tables,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, OrderRow>, sqlx::Error> {
    let found = sqlx::query(tables.orders_by_id)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    let mut rows = HashMap::with_capacity(found.len());
    for row in found {
        let state: Value = row.try_get("state")?;
        let Ok(state) = serde_json::from_value::<PlacedOrder>(state) else {
            continue;
        };
        let list = |name: &str| -> Result<Vec<Value>, sqlx::Error> {
            let value: Value = row.try_get(name)?;
            Ok(value.as_array().cloned().unwrap_or_default())
        };
        rows.insert(
            row.try_get("id")?,
            OrderRow {
                state,
                fulfillments: list("fulfillments")?,
                refunds: list("refunds")?,
                cancelled_at: row.try_get("cancelled_at")?,
                created_at: row.try_get("created_at")?,
                version: row.try_get("version")?,
                last_position: row.try_get("last_position")?,
                updated_at: row.try_get("updated_at")?,
                by_account: row.try_get("by_account")?,
            },
        );
    }
    Ok(rows)
}

async fn save_orders(
    conn: &mut PgConnection,
    tables: &Tables,
    rows: impl Iterator<Item = (Uuid, OrderRow)>,
) -> Result<(), sqlx::Error> {
    for (order_id, row) in rows {
        let state = &row.state;
        sqlx::query(tables.save_order)
            .bind(order_id)
            .bind(state.store_id)
            .bind(i64::try_from(state.number).unwrap_or(i64::MAX))
            .bind(state.customer_id)
            .bind(state.status().as_str())
            .bind(state.payment.as_str())
            .bind(state.fulfillment().as_str())
            .bind(row.cancelled_at)
            .bind(&state.totals.currency)
            .bind(state.totals.total)
            .bind(state.paid)
            .bind(state.refunded)
            .bind(serde_json::to_value(state).unwrap_or(Value::Null))
            .bind(Value::Array(row.fulfillments.clone()))
            .bind(Value::Array(row.refunds.clone()))
            .bind(row.version)
            .bind(row.last_position)
            .bind(row.created_at)
            .bind(row.updated_at)
            .bind(row.by_account)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn apply_customer(
    conn: &mut PgConnection,
    tables: &Tables,
    customer_id: Uuid,
    recorded: &RecordedEvent,
    event: &Event,
) -> Result<(), sqlx::Error> {
    let at = recorded.recorded_at;
    match event {
        Event::CustomerCreated(created) => {
            sqlx::query(tables.insert_customer)
                .bind(customer_id)
                .bind(created.store_id)
                .bind(&created.email_digest)
                .bind(json!(created.contact))
                .bind(recorded.position)
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        Event::CustomerUpdated(updated) => {
            sqlx::query(tables.update_customer)
                .bind(customer_id)
                .bind(json!(updated.contact))
                .bind(&updated.email_digest)
                .bind(recorded.position)
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Orders placed and value paid (net of refunds) per customer in this batch.
async fn save_customer_totals(
    conn: &mut PgConnection,
    tables: &Tables,
    totals: HashMap<Uuid, (i32, i64, Option<DateTime<Utc>>)>,
) -> Result<(), sqlx::Error> {
    for (customer_id, (orders, value, last_order_at)) in totals {
        sqlx::query(tables.add_customer_totals)
            .bind(customer_id)
            .bind(orders)
            .bind(value)
            .bind(last_order_at)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn save_days(
    conn: &mut PgConnection,
    tables: &Tables,
    days: HashMap<(Uuid, NaiveDate), DayTotals>,
) -> Result<(), sqlx::Error> {
    for ((store_id, day), totals) in days {
        if totals.orders == 0 && totals.gross == 0 && totals.refunds == 0 {
            continue;
        }
        sqlx::query(tables.add_day)
            .bind(store_id)
            .bind(day)
            .bind(totals.orders)
            .bind(totals.gross)
            .bind(totals.refunds)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
