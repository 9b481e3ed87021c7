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

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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

impl From<crate::pii::PostalAddress> for AddressBody {
    fn from(address: crate::pii::PostalAddress) -> Self {
        Self {
            name: address.name,
            line1: address.line1,
            line2: address.line2,
            city: address.city,
            region: address.region,
            postal_code: address.postal_code,
            country: address.country,
            phone: address.phone,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// 1–100 lines, each variant once.
    pub items: Vec<CheckoutItem>,
    /// Required of guests; a signed-in customer's account email when left out.
    pub email: Option<String>,
    /// Required of guests; a signed-in customer's default saved address when left out.
    pub shipping_address: Option<AddressBody>,
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
    /// With Stripe: the Checkout Session's page, where the shopper pays.
    #[serde(default)]
    pub checkout_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckoutView {
    pub order: OrderView,
    pub payment: PaymentSessionView,
}

/// Units of one variant of the order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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

/// A shopper's contact details, opened for display; absent once the customer is erased.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContactView {
    pub email: String,
    pub name: Option<String>,
}

/// An order in a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderSummary {
    pub id: Uuid,
    pub number: String,
    pub status: String,
    pub payment_status: String,
    pub fulfillment_status: String,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub customer_id: Uuid,
    pub customer: Option<ContactView>,
    pub total: MoneyBody,
    pub paid: MoneyBody,
    pub refunded: MoneyBody,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FulfillmentView {
    pub fulfillment_id: Uuid,
    pub carrier: String,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub items: Vec<ItemQuantityBody>,
    pub shipped_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    pub refund_id: Uuid,
    pub amount: MoneyBody,
    pub reason: String,
    pub restocked: Vec<ItemQuantityBody>,
    pub refunded_at: DateTime<Utc>,
}

/// One event of the order's own stream, personal data left out.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntry {
    pub position: i64,
    pub version: i32,
    #[serde(rename = "type")]
    pub event_type: String,
    pub at: DateTime<Utc>,
    pub actor: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// An order with its customer, shipments, refunds and timeline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderDetail {
    pub order: OrderView,
    pub customer_id: Uuid,
    pub customer: Option<ContactView>,
    pub shipping_address: Option<AddressBody>,
    pub fulfillments: Vec<FulfillmentView>,
    pub refunds: Vec<RefundView>,
    pub created_at: DateTime<Utc>,
    pub timeline: Vec<TimelineEntry>,
}

/// A customer of the store.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerRecord {
    pub id: Uuid,
    pub customer: Option<ContactView>,
    pub orders: i32,
    /// Paid, net of refunds.
    pub lifetime_value: MoneyBody,
    pub last_order_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A store's sales on one UTC day.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SalesDay {
    pub day: chrono::NaiveDate,
    /// Orders paid that day.
    pub orders: i32,
    /// Payments taken that day.
    pub revenue: MoneyBody,
    pub refunds: MoneyBody,
    /// `revenue` / `orders`, rounded down.
    pub average_order_value: MoneyBody,
}

/// What a shopper sees of their order: its state, lines and totals, and each shipment
/// with its tracking.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShopperOrderView {
    pub order: OrderView,
    pub fulfillments: Vec<FulfillmentView>,
}
