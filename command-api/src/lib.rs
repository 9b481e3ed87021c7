//! The write side over HTTP (DESIGN §1): accounts and credentials, and the commands of
//! each aggregate — authenticate, parse into value objects, load, decide, append.

mod aggregate;
mod api_keys;
mod auth;
mod catalog;
mod checkout;
mod customers;
mod fields;
mod integrations;
mod orders;
mod preconditions;
mod state;
mod stores;
mod write;

pub use auth::{AttemptLimits, TrustedProxies};
pub use checkout::stripe_sessions::StripeCheckout;
pub use state::{CommandState, Payments};
use utoipa_axum::router::OpenApiRouter;

/// Every command route, each documented where it is mounted; the caller supplies the
/// state (none is needed to read the documentation).
pub fn routes() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(api_keys::router())
        .merge(stores::router())
        .merge(catalog::router())
        .merge(integrations::router())
        .merge(checkout::router())
        .merge(customers::router())
        .merge(orders::router())
}
