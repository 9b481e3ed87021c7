use std::{sync::Arc, time::Duration};

use api_core::{auth::Authenticator, media::Media};
use axum::extract::FromRef;
use bridge_relay::{AddressPolicy, ServiceUrls};
use eventlog::EventLog;
use pii::Vault;
use sqlx::PgPool;

use crate::{
    StripeCheckout,
    aggregate::StreamLocks,
    auth::{AttemptLimits, TrustedProxies},
    checkout::stock::StockCache,
};

/// Events between snapshots of an aggregate's state.
const SNAPSHOT_EVERY: i32 = 100;
/// How long an order waits for its payment unless configured otherwise.
const DEFAULT_PAYMENT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(Clone)]
pub struct CommandState {
    pub(crate) log: EventLog,
    pub(crate) authenticator: Authenticator,
    pub(crate) attempt_limits: AttemptLimits,
    pub(crate) stream_locks: StreamLocks,
    pub(crate) media: Media,
    pub(crate) addresses: AddressPolicy,
    pub(crate) service_urls: ServiceUrls,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) vault: Vault,
    pub(crate) stock_cache: StockCache,
    payment_timeout: Duration,
    payments: Payments,
}

/// How shoppers pay: mock sessions confirmed through the API (tests and the demo), and
/// Stripe's webhook, verified with its signing secret when one is configured.
#[derive(Clone, Default)]
pub struct Payments {
    webhook_secret: Option<Arc<[u8]>>,
    stripe: Option<StripeCheckout>,
}

impl Payments {
    /// `STRIPE_SECRET_KEY`: checkouts are paid on Stripe Checkout Sessions, not mock ones.
    pub fn with_stripe(mut self, stripe: StripeCheckout) -> Self {
        self.stripe = Some(stripe);
        self
    }

    pub(crate) fn stripe(&self) -> Option<&StripeCheckout> {
        self.stripe.as_ref()
    }

    /// `STRIPE_WEBHOOK_SECRET`: without it the Stripe webhook answers 404.
    pub fn with_webhook_secret(mut self, secret: &[u8]) -> Self {
        self.webhook_secret = Some(secret.into());
        self
    }

    pub(crate) fn webhook_secret(&self) -> Option<&[u8]> {
        self.webhook_secret.as_deref()
    }
}

impl CommandState {
    pub fn new(
        log: EventLog,
        authenticator: Authenticator,
        attempt_limits: AttemptLimits,
        media: Media,
    ) -> Self {
        Self {
            authenticator,
            attempt_limits,
            stream_locks: StreamLocks::default(),
            media,
            addresses: AddressPolicy::default(),
            service_urls: ServiceUrls::default(),
            trusted_proxies: TrustedProxies::default(),
            vault: Vault::new(log.pool().clone()),
            stock_cache: StockCache::default(),
            payment_timeout: DEFAULT_PAYMENT_TIMEOUT,
            payments: Payments::default(),
            log,
        }
    }

    /// How long an order waits for its payment (`ORDER_PAYMENT_TIMEOUT_MINUTES`).
    pub fn with_payment_timeout(mut self, timeout: Duration) -> Self {
        self.payment_timeout = timeout;
        self
    }

    pub fn with_payments(mut self, payments: Payments) -> Self {
        self.payments = payments;
        self
    }

    pub(crate) fn payments(&self) -> &Payments {
        &self.payments
    }

    pub(crate) fn payment_timeout(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.payment_timeout).unwrap_or(chrono::Duration::MAX)
    }

    /// The addresses merchants' webhooks may point at (`WEBHOOK_ALLOWED_SUBNETS`),
    /// checked when a URL names one outright.
    pub fn with_webhook_addresses(mut self, addresses: AddressPolicy) -> Self {
        self.addresses = addresses;
        self
    }

    /// The services the platform can reach (`BRIDGE_SERVICE_URLS`): only those can be
    /// connected.
    pub fn with_service_urls(mut self, urls: ServiceUrls) -> Self {
        self.service_urls = urls;
        self
    }

    pub(crate) fn service_urls(&self) -> &ServiceUrls {
        &self.service_urls
    }

    /// The proxies whose `Forwarded` / `X-Forwarded-For` name the client
    /// (`TRUSTED_PROXIES`).
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    pub(crate) fn addresses(&self) -> &AddressPolicy {
        &self.addresses
    }

    pub(crate) fn pool(&self) -> &PgPool {
        self.log.pool()
    }

    pub(crate) fn snapshot_every(&self) -> i32 {
        SNAPSHOT_EVERY
    }
}

impl FromRef<CommandState> for Authenticator {
    fn from_ref(state: &CommandState) -> Self {
        state.authenticator.clone()
    }
}
