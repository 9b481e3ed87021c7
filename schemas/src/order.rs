//! Payloads of the Order aggregate's events (DESIGN §6). Amounts are minor units of the
//! order's currency. The shopper's contact details (email, name, phone, address) are
//! [`Sealed`] with the customer's key; what tax, shipping and reports need of the
//! address (country, region) is kept in the clear.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::pii::Sealed;

/// One line of an order as it was bought: what it was called and cost at the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderLine {
    pub product_id: Uuid,
    pub variant_id: Uuid,
    pub title: String,
    pub variant_name: String,
    pub sku: Option<String>,
    pub quantity: u32,
    pub unit_price: i64,
    /// Tax on the whole line; part of `unit_price` when the store's prices include tax.
    pub tax: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderTotals {
    /// ISO 4217 code of the store.
    pub currency: String,
    pub subtotal: i64,
    pub shipping: i64,
    pub tax: i64,
    /// Whether `subtotal` already contains `tax`.
    pub taxes_included: bool,
    pub total: i64,
}

/// Units of one variant of an order: shipped, cancelled or restocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ItemQuantity {
    pub variant_id: Uuid,
    pub quantity: u32,
}

/// `order.created`: a checkout placed the order and reserved its stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCreated {
    pub store_id: Uuid,
    /// Shown as `#1001`; never reused within the store.
    pub number: u64,
    pub customer_id: Uuid,
    pub contact: Sealed,
    /// ISO 3166-1 alpha-2 code of the shipping address.
    pub country: String,
    pub region: Option<String>,
    pub lines: Vec<OrderLine>,
    pub totals: OrderTotals,
    /// The payment session the shopper pays through.
    pub payment_session: String,
    /// When an unpaid order expires and its stock returns.
    pub payment_due: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPaid {
    pub amount: i64,
    /// `mock` or `stripe`.
    pub provider: String,
    /// The provider's payment reference (session or payment intent).
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPaymentFailed {
    pub provider: String,
    pub reference: String,
    pub reason: String,
}

/// `order.shipped`: one fulfilment, with what the shopper needs to follow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderShipped {
    pub fulfillment_id: Uuid,
    pub number: u64,
    pub contact: Sealed,
    pub carrier: String,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub items: Vec<ItemQuantity>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderDelivered {}

/// `order.cancelled`: what was paid and not yet refunded is refunded, and what had not
/// shipped goes back to stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelled {
    pub reason: String,
    pub refunded: i64,
    pub restocked: Vec<ItemQuantity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderRefunded {
    pub refund_id: Uuid,
    pub amount: i64,
    pub reason: String,
    pub restocked: Vec<ItemQuantity>,
}

/// `order.expired`: unpaid past its due time; its stock went back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderExpired {
    pub restocked: Vec<ItemQuantity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderNoteAdded {
    pub note: String,
}
