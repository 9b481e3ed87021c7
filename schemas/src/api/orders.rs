//! Checkout, payment and orders over HTTP.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::products::MoneyBody;

/// A line of a checkout. Only the variant and the quantity are read: a price, title or
/// anything else sent with a line is ignored, because the catalog's are charged.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CheckoutItem {
    pub variant_id: Uuid,
    /// 1–999.
    pub quantity: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    /// The recipient.
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    /// A state, province or county, as ISO 3166-2 subdivision code when the store taxes by it.
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 (`DE`, `US`).
    pub country: String,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// 1–100 lines, each variant once.
    pub items: Vec<CheckoutItem>,
    pub email: String,
    pub shipping_address: AddressBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderItemView {
    pub product_id: Uuid,
    pub variant_id: Uuid,
    pub title: String,
    pub variant_name: String,
    pub sku: Option<String>,
    pub quantity: u32,
    pub unit_price: MoneyBody,
    /// Tax on the whole line; part of `unit_price` when `taxes_included`.
    pub tax: MoneyBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TotalsView {
    pub subtotal: MoneyBody,
    pub shipping: MoneyBody,
    pub tax: MoneyBody,
    pub taxes_included: bool,
    pub total: MoneyBody,
}

/// An order as its store and its shopper see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub store_id: Uuid,
    /// `#1001`, unique within the store.
    pub number: String,
    /// `pending`, `paid`, `shipped`, `delivered`, `cancelled` or `refunded`.
    pub status: String,
    /// `pending`, `paid`, `partially_refunded`, `refunded` or `voided`.
    pub payment_status: String,
    /// `unfulfilled`, `partially_fulfilled`, `fulfilled` or `delivered`.
    pub fulfillment_status: String,
    pub cancelled: bool,
    pub items: Vec<OrderItemView>,
    pub totals: TotalsView,
    pub paid: MoneyBody,
    pub refunded: MoneyBody,
    /// An unpaid order expires then, and its stock returns.
    pub payment_due: DateTime<Utc>,
    pub version: i32,
}

/// Where the shopper pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentSessionView {
    pub session_id: String,
    /// `mock` (no payment provider configured) or `stripe`.
    pub provider: String,
    /// In mock mode: POST here to pay.
    pub confirm_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckoutView {
    pub order: OrderView,
    pub payment: PaymentSessionView,
}

/// Units of one variant of the order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemQuantityBody {
    pub variant_id: Uuid,
    pub quantity: i64,
}

/// A shipment of some or all of what is left to ship.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfillmentRequest {
    pub carrier: String,
    pub tracking_number: Option<String>,
    /// An http(s) URL where the shopper follows the shipment.
    pub tracking_url: Option<String>,
    /// What ships; everything left to ship when absent or empty.
    #[serde(default)]
    pub items: Vec<ItemQuantityBody>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: String,
}

/// Money back to the shopper: never more than was paid and not yet refunded.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub amount: MoneyBody,
    pub reason: String,
    /// Units that go back to stock (unshipped ones first, then returned ones).
    #[serde(default)]
    pub restock: Vec<ItemQuantityBody>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// 1–2,000 characters.
    pub note: String,
}

/// What a Stripe webhook did: `paid`, `payment_failed`, `refunded`, or `ignored` (an
/// event type not handled, an order not ours, or a change already recorded; `detail`
/// says which).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StripeReceipt {
    pub event_id: String,
    pub outcome: String,
    pub order_id: Option<Uuid>,
    pub detail: Option<String>,
}
