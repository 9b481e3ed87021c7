//! The bridge relay (DESIGN §5): routes each event of the stream to the integrations
//! of its store, signs and delivers it, retries on a schedule from a durable queue in
//! Postgres, protects each endpoint (concurrency, rate, circuit breaker), and logs every
//! attempt as a BridgeDelivery.

mod address;
mod attempt;
mod body;
mod config;
mod dispatch;
mod guards;
mod ingest;
mod integration;
pub mod queue;
mod record;
mod routing;
mod run;
mod schedule;
mod signing;
mod sweeper;

pub use address::AddressPolicy;
pub use config::{DeliverySettings, RelayConfig, ServiceUrls, parse_schedule};
pub use integration::IntegrationFold;
pub use run::{connect_options, run_relay};
pub use signing::{
    bound_platform_signature, new_secret, platform_signature, secret_key, standard_signature,
};

/// The relay's checkpoint and durable consumer name.
pub const NAME: &str = "bridge";
