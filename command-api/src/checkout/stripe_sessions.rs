//! Stripe Checkout Sessions: with `STRIPE_SECRET_KEY` set, a placed order is paid on a
//! Checkout Session opened through Stripe's API for the order's total. The order is
//! placed first (its stock reserved, its number taken) and the session opened after,
//! under Stripe's `Idempotency-Key` of the order: a retried checkout (a replay of the
//! same `Idempotency-Key`, or a retry after Stripe did not answer) gets the same session,
//! and an order whose session never opened expires like any unpaid one.

use std::{sync::Arc, time::Duration};

use api_core::ApiError;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::warn;
use uuid::Uuid;

/// The `payment_session` a Stripe-paid order records: its session is Stripe's, named by
/// the order id the session carries (`client_reference_id`, `metadata[order_id]`).
pub(crate) const STRIPE_SESSION_PREFIX: &str = "stripe_order_";
/// Stripe accepts session expiries between 30 minutes and 24 hours ahead.
const SHORTEST_EXPIRY: Duration = Duration::from_secs(30 * 60);
const LONGEST_EXPIRY: Duration = Duration::from_secs(24 * 3600);
const API_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn stripe_reference(order_id: Uuid) -> String {
    format!("{STRIPE_SESSION_PREFIX}{}", order_id.simple())
}

/// How to reach Stripe's API, and where the shopper returns after paying.
#[derive(Clone)]
pub struct StripeCheckout {
    api_base: Arc<str>,
    secret_key: Arc<str>,
    return_url: Arc<str>,
    expiry: Duration,
    client: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct OpenedSession {
    id: String,
    url: Option<String>,
}

/// What a session is opened for, read from the checkout's answer.
struct Payable {
    order_id: Uuid,
    number: String,
    amount: i64,
    currency: String,
}

impl Payable {
    fn of(order: &Value) -> Option<Self> {
        Some(Self {
            order_id: Uuid::try_parse(order["id"].as_str()?).ok()?,
            number: order["number"].as_str()?.to_owned(),
            amount: order["totals"]["total"]["amount"].as_i64()?,
            currency: order["totals"]["total"]["currency"]
                .as_str()?
                .to_lowercase(),
        })
    }
}

impl StripeCheckout {
    /// `api_base` is Stripe's (`https://api.stripe.com`) unless a test stands in for it;
    /// `payment_timeout` is how long an unpaid order lives, which the session matches.
    pub fn new(
        api_base: &str,
        secret_key: &str,
        return_url: &str,
        payment_timeout: Duration,
    ) -> Self {
        Self {
            api_base: api_base.trim_end_matches('/').into(),
            secret_key: secret_key.into(),
            return_url: return_url.into(),
            expiry: payment_timeout.clamp(SHORTEST_EXPIRY, LONGEST_EXPIRY),
            client: reqwest::Client::builder()
                .timeout(API_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    /// Puts the order's Checkout Session into a checkout answer's `data.payment`.
    pub(crate) async fn attach_session(
        &self,
        body: &mut Value,
        email: &str,
    ) -> Result<(), ApiError> {
        let payable = Payable::of(&body["data"]["order"])
            .ok_or_else(|| ApiError::internal("a checkout answer without its order"))?;
        let opened = self.open(&payable, email).await?;
        body["data"]["payment"] = json!({
            "session_id": opened.id,
            "provider": "stripe",
            "confirm_url": null,
            "checkout_url": opened.url,
        });
        Ok(())
    }

    async fn open(&self, payable: &Payable, email: &str) -> Result<OpenedSession, ApiError> {
        let order_id = payable.order_id.to_string();
        let separator = if self.return_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let number = payable.number.trim_start_matches('#');
        // Stripe fills in `{CHECKOUT_SESSION_ID}` itself, so it goes unencoded.
        let success_url = format!(
            "{}{separator}order={number}&session_id={{CHECKOUT_SESSION_ID}}",
            self.return_url
        );
        let cancel_url = format!(
            "{}{separator}order={number}&cancelled=true",
            self.return_url
        );
        let expires_at = (Utc::now().timestamp() + self.expiry.as_secs() as i64).to_string();
        let amount = payable.amount.to_string();
        let name = format!("Order {}", payable.number);
        let form = [
            ("mode", "payment"),
            ("client_reference_id", order_id.as_str()),
            ("metadata[order_id]", order_id.as_str()),
            ("payment_intent_data[metadata][order_id]", order_id.as_str()),
            ("customer_email", email),
            ("success_url", success_url.as_str()),
            ("cancel_url", cancel_url.as_str()),
            ("expires_at", expires_at.as_str()),
            ("line_items[0][quantity]", "1"),
            (
                "line_items[0][price_data][currency]",
                payable.currency.as_str(),
            ),
            ("line_items[0][price_data][unit_amount]", amount.as_str()),
            (
                "line_items[0][price_data][product_data][name]",
                name.as_str(),
            ),
        ];
        let response = self
            .client
            .post(format!("{}/v1/checkout/sessions", self.api_base))
            .bearer_auth(&*self.secret_key)
            .header("Idempotency-Key", format!("dropship-checkout-{order_id}"))
            .form(&form)
            .send()
            .await
            .map_err(|error| unavailable(&format!("Stripe did not answer: {error}")))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let detail: String = body.chars().take(300).collect();
            return Err(unavailable(&format!("Stripe answered {status}: {detail}")));
        }
        response
            .json::<OpenedSession>()
            .await
            .map_err(|error| unavailable(&format!("Stripe's answer is not a session: {error}")))
    }
}

/// The order stands, unpaid; retrying with the same `Idempotency-Key` opens its session.
fn unavailable(detail: &str) -> ApiError {
    warn!(detail, "no Stripe Checkout Session");
    ApiError::Unavailable {
        message: "the payment provider is unavailable; retry with the same Idempotency-Key".into(),
        retry_after: Duration::from_secs(5),
    }
}
