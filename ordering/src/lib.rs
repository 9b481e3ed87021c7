//! The order write flows the command API and the workers share: an order command, and
//! the stock it gives back to its products, appended together (one multi-stream append)
//! or not at all.

mod change;
mod view;

pub use change::{OrderChange, OrderOutcome, OrderWriteError, change_order};
use domain::{
    order::{self, Order},
    product::{self, Product},
};
use eventlog::Fold;
use schemas::Event;
use uuid::Uuid;
pub use view::{money, order_view};

pub struct OrderFold;

impl Fold for OrderFold {
    type State = Order;
    const STATE_VERSION: u16 = 1;

    fn apply(state: Order, event: &Event) -> Order {
        order::evolve(state, event)
    }
}

pub struct ProductFold;

impl Fold for ProductFold {
    type State = Product;
    const STATE_VERSION: u16 = 1;

    fn apply(state: Product, event: &Event) -> Product {
        product::evolve(state, event)
    }
}

pub const ORDER_STREAM_PREFIX: &str = "order-";
pub const PRODUCT_STREAM_PREFIX: &str = "product-";

pub fn order_stream(order_id: Uuid) -> String {
    format!("{ORDER_STREAM_PREFIX}{order_id}")
}

pub fn product_stream(product_id: Uuid) -> String {
    format!("{PRODUCT_STREAM_PREFIX}{product_id}")
}

/// Events between snapshots, as everywhere else.
pub const SNAPSHOT_EVERY: i32 = 100;
