//! The bridge as the dashboard reads it: a store's integrations and webhooks, and the
//! delivery log (BridgeDelivery) of the caller's stores with its per-service summary.

mod activity;
mod integrations;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::QueryState;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(integrations::list_integrations))
        .routes(routes!(integrations::get_integration))
        .routes(routes!(integrations::list_webhooks))
        .routes(routes!(integrations::get_webhook))
        .routes(routes!(activity::activity))
        .routes(routes!(activity::resource_activity))
        .routes(routes!(activity::service_activity))
        .routes(routes!(activity::summary))
}
