//! The Order aggregate (DESIGN §6): payment and fulfilment are separate axes, with
//! cancellation beside them, and the familiar single status derived from them. Stock
//! is the products' business: an order records which of its units shipped and which
//! went back to stock, and the caller moves the products' stock in the same append.

mod decide;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemas::{
    Event,
    order::{ItemQuantity, OrderCreated, OrderLine, OrderTotals},
    pii::Sealed,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::{Carrier, Note, Reason, TrackingNumber, TrackingUrl};

pub use decide::decide;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    Pending,
    Paid,
    PartiallyRefunded,
    Refunded,
    /// Never paid, and never will be: cancelled or expired first.
    Voided,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::Voided => "voided",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FulfillmentStatus {
    Unfulfilled,
    PartiallyFulfilled,
    Fulfilled,
    Delivered,
}

impl FulfillmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unfulfilled => "unfulfilled",
            Self::PartiallyFulfilled => "partially_fulfilled",
            Self::Fulfilled => "fulfilled",
            Self::Delivered => "delivered",
        }
    }
}

/// The single status lists and filters show, derived from the axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    Pending,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
    Refunded,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }
}

/// What the log says about one order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    #[default]
    Unplaced,
    Placed(Box<PlacedOrder>),
}

impl Order {
    pub fn placed(&self) -> Option<&PlacedOrder> {
        match self {
            Self::Placed(order) => Some(order),
            Self::Unplaced => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedOrder {
    pub store_id: Uuid,
    pub number: u64,
    pub customer_id: Uuid,
    pub contact: Sealed,
    pub lines: Vec<OrderLine>,
    pub totals: OrderTotals,
    pub payment_session: String,
    pub payment_due: DateTime<Utc>,
    pub payment: PaymentStatus,
    pub paid: i64,
    pub refunded: i64,
    /// Units shipped, by variant.
    pub shipped: BTreeMap<Uuid, u32>,
    /// Units that went back to stock without shipping (cancelled, expired, or restocked
    /// by a refund before they shipped), by variant.
    pub released: BTreeMap<Uuid, u32>,
    /// Shipped units a refund put back in stock (returns), by variant.
    pub returned: BTreeMap<Uuid, u32>,
    pub delivered: bool,
    pub cancelled: bool,
    pub expired: bool,
}

impl PlacedOrder {
    fn new(created: &OrderCreated) -> Self {
        Self {
            store_id: created.store_id,
            number: created.number,
            customer_id: created.customer_id,
            contact: created.contact.clone(),
            lines: created.lines.clone(),
            totals: created.totals.clone(),
            payment_session: created.payment_session.clone(),
            payment_due: created.payment_due,
            payment: PaymentStatus::Pending,
            paid: 0,
            refunded: 0,
            shipped: BTreeMap::new(),
            released: BTreeMap::new(),
            returned: BTreeMap::new(),
            delivered: false,
            cancelled: false,
            expired: false,
        }
    }

    /// Units bought, by variant (a variant may appear on one line only).
    pub fn ordered(&self) -> BTreeMap<Uuid, u32> {
        let mut ordered = BTreeMap::new();
        for line in &self.lines {
            *ordered.entry(line.variant_id).or_default() += line.quantity;
        }
        ordered
    }

    /// Units neither shipped nor back in stock, by variant: what the order still holds
    /// of its products' stock (reserved while unpaid, sold once paid).
    pub fn held(&self) -> BTreeMap<Uuid, u32> {
        self.ordered()
            .into_iter()
            .map(|(variant, quantity)| {
                let gone = units(&self.shipped, variant) + units(&self.released, variant);
                (variant, quantity.saturating_sub(gone))
            })
            .filter(|(_, quantity)| *quantity > 0)
            .collect()
    }

    /// Shipped units not returned, for one variant.
    pub fn kept(&self, variant: Uuid) -> u32 {
        units(&self.shipped, variant).saturating_sub(units(&self.returned, variant))
    }

    pub fn fulfillment(&self) -> FulfillmentStatus {
        let shipped: u32 = self.shipped.values().sum();
        let released: u32 = self.released.values().sum();
        let to_ship = self
            .ordered()
            .values()
            .sum::<u32>()
            .saturating_sub(released);
        match () {
            _ if self.delivered => FulfillmentStatus::Delivered,
            _ if shipped == 0 => FulfillmentStatus::Unfulfilled,
            _ if shipped < to_ship => FulfillmentStatus::PartiallyFulfilled,
            _ => FulfillmentStatus::Fulfilled,
        }
    }

    /// A partly shipped order is still `paid`: it needs the merchant's work.
    pub fn status(&self) -> OrderStatus {
        if self.cancelled || self.expired {
            return OrderStatus::Cancelled;
        }
        if self.payment == PaymentStatus::Refunded {
            return OrderStatus::Refunded;
        }
        match (self.payment, self.fulfillment()) {
            (_, FulfillmentStatus::Delivered) => OrderStatus::Delivered,
            (_, FulfillmentStatus::Fulfilled) => OrderStatus::Shipped,
            (PaymentStatus::Pending, _) => OrderStatus::Pending,
            _ => OrderStatus::Paid,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.cancelled || self.expired
    }

    /// Paid and not yet refunded.
    pub fn refundable(&self) -> i64 {
        self.paid - self.refunded
    }
}

/// Everything a checkout decided, for the order to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    pub store_id: Uuid,
    pub number: u64,
    pub customer_id: Uuid,
    pub contact: Sealed,
    pub country: String,
    pub region: Option<String>,
    pub lines: Vec<OrderLine>,
    pub totals: OrderTotals,
    pub payment_session: String,
    pub payment_due: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulfil {
    pub fulfillment_id: Uuid,
    pub carrier: Carrier,
    pub tracking_number: Option<TrackingNumber>,
    pub tracking_url: Option<TrackingUrl>,
    /// Units to ship, by variant; empty ships everything not yet shipped.
    pub items: Vec<ItemQuantity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub refund_id: Uuid,
    pub amount: i64,
    pub reason: Reason,
    /// Units to give back to stock, by variant.
    pub restock: Vec<ItemQuantity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    Place(Box<PlaceOrder>),
    Pay {
        amount: i64,
        provider: String,
        reference: String,
    },
    FailPayment {
        provider: String,
        reference: String,
        reason: String,
    },
    Fulfil(Box<Fulfil>),
    MarkDelivered,
    Cancel {
        reason: Reason,
    },
    Refund(Box<Refund>),
    /// The payment deadline passed (`now` is the caller's clock).
    Expire {
        now: DateTime<Utc>,
    },
    AddNote(Note),
}

/// Why a command was refused. Transitions the state does not allow name the state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrderError {
    #[error("the order already exists")]
    AlreadyPlaced,
    #[error("no such order")]
    NotFound,
    #[error("an order needs at least one line, each variant on one line")]
    InvalidLines,
    #[error("the order is {status}, which does not allow this")]
    InvalidTransition { status: &'static str },
    #[error("the payment of {paid} does not match the total of {total}")]
    AmountMismatch { paid: i64, total: i64 },
    #[error("variant {variant_id} has {remaining} unit(s) left for this")]
    TooManyUnits { variant_id: Uuid, remaining: u32 },
    #[error("the variant {0} is not on this order")]
    NotOnOrder(Uuid),
    #[error("nothing is left to ship")]
    NothingToShip,
    #[error("a refund must be between 1 and {refundable}")]
    RefundOutOfRange { refundable: i64 },
    #[error("the payment is not due until {due}")]
    NotYetDue { due: DateTime<Utc> },
}

pub fn evolve(state: Order, event: &Event) -> Order {
    match (state, event) {
        (Order::Unplaced, Event::OrderCreated(created)) => {
            Order::Placed(Box::new(PlacedOrder::new(created)))
        }
        (Order::Placed(mut order), event) => {
            apply(&mut order, event);
            Order::Placed(order)
        }
        (state, _) => state,
    }
}

fn apply(order: &mut PlacedOrder, event: &Event) {
    match event {
        Event::OrderPaid(paid) => {
            order.paid += paid.amount;
            order.payment = PaymentStatus::Paid;
        }
        Event::OrderShipped(shipped) => add_units(&mut order.shipped, &shipped.items),
        Event::OrderDelivered(_) => order.delivered = true,
        Event::OrderCancelled(cancelled) => {
            order.cancelled = true;
            order.refunded += cancelled.refunded;
            restock(order, &cancelled.restocked);
            order.payment = payment_after_refund(order);
        }
        Event::OrderRefunded(refunded) => {
            order.refunded += refunded.amount;
            restock(order, &refunded.restocked);
            order.payment = payment_after_refund(order);
        }
        Event::OrderExpired(expired) => {
            order.expired = true;
            restock(order, &expired.restocked);
            order.payment = PaymentStatus::Voided;
        }
        _ => {}
    }
}

fn payment_after_refund(order: &PlacedOrder) -> PaymentStatus {
    match () {
        _ if order.paid == 0 => PaymentStatus::Voided,
        _ if order.refunded == 0 => PaymentStatus::Paid,
        _ if order.refunded < order.paid => PaymentStatus::PartiallyRefunded,
        _ => PaymentStatus::Refunded,
    }
}

fn units(units: &BTreeMap<Uuid, u32>, variant: Uuid) -> u32 {
    units.get(&variant).copied().unwrap_or(0)
}

fn add_units(units: &mut BTreeMap<Uuid, u32>, items: &[ItemQuantity]) {
    for item in items {
        *units.entry(item.variant_id).or_default() += item.quantity;
    }
}

/// Units back in stock come from what the order still holds first, then from what it
/// shipped (returns).
fn restock(order: &mut PlacedOrder, items: &[ItemQuantity]) {
    for item in items {
        let held = order.held().get(&item.variant_id).copied().unwrap_or(0);
        let from_held = item.quantity.min(held);
        *order.released.entry(item.variant_id).or_default() += from_held;
        *order.returned.entry(item.variant_id).or_default() += item.quantity - from_held;
    }
}

#[cfg(test)]
mod tests;
