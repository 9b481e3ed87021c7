//! How an order reads over HTTP, the same on the write side's answers and the reads.

use domain::order::PlacedOrder;
use schemas::api::{
    orders::{OrderItemView, OrderView, TotalsView},
    products::MoneyBody,
};
use uuid::Uuid;

pub fn money(amount: i64, currency: &str) -> MoneyBody {
    MoneyBody {
        amount,
        currency: currency.to_owned(),
    }
}

pub fn order_view(id: Uuid, order: &PlacedOrder, version: i32) -> OrderView {
    let currency = order.totals.currency.as_str();
    OrderView {
        id,
        store_id: order.store_id,
        number: format!("#{}", order.number),
        status: order.status().as_str().to_owned(),
        payment_status: order.payment.as_str().to_owned(),
        fulfillment_status: order.fulfillment().as_str().to_owned(),
        cancelled: order.is_closed(),
        items: order
            .lines
            .iter()
            .map(|line| OrderItemView {
                product_id: line.product_id,
                variant_id: line.variant_id,
                title: line.title.clone(),
                variant_name: line.variant_name.clone(),
                sku: line.sku.clone(),
                quantity: line.quantity,
                unit_price: money(line.unit_price, currency),
                tax: money(line.tax, currency),
            })
            .collect(),
        totals: TotalsView {
            subtotal: money(order.totals.subtotal, currency),
            shipping: money(order.totals.shipping, currency),
            tax: money(order.totals.tax, currency),
            taxes_included: order.totals.taxes_included,
            total: money(order.totals.total, currency),
        },
        paid: money(order.paid, currency),
        refunded: money(order.refunded, currency),
        payment_due: order.payment_due,
        version,
    }
}
