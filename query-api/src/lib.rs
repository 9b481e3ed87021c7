//! The read side over HTTP (DESIGN §1): read models with pagination and filters, the
//! public storefront reads behind a cache that the projection invalidates, and
//! read-your-writes through `X-Min-Position`.

mod bridge;
mod catalog;
mod csv_stream;
mod events;
mod freshness;
mod orders;
mod state;
mod stores;

pub use events::LogTail;
pub use freshness::{CacheBudget, Freshness};
pub use state::QueryState;
use utoipa_axum::router::OpenApiRouter;

/// Every query route, each documented where it is mounted; the caller supplies the
/// state (none is needed to read the documentation).
pub fn routes() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .merge(stores::router())
        .merge(catalog::router())
        .merge(bridge::router())
        .merge(orders::router())
        .merge(events::router())
}
