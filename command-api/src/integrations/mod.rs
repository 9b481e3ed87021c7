//! Integrations under `/api/v1/stores/{store_id}/...`: the platform's services a store
//! connects (`integrations`) and the merchant's own endpoints (`webhooks`), one
//! aggregate with two faces; and the bridge's manual deliveries (`/api/v1/bridge/...`).

mod aggregate;
mod commands;
mod deliveries;
mod parse;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::CommandState;

pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(commands::connect_integration))
        .routes(routes!(
            commands::update_integration,
            commands::disconnect_integration
        ))
        .routes(routes!(commands::rotate_integration_secret))
        .routes(routes!(commands::create_webhook))
        .routes(routes!(commands::update_webhook, commands::delete_webhook))
        .routes(routes!(commands::rotate_webhook_secret))
        .routes(routes!(deliveries::dispatch))
        .routes(routes!(deliveries::redeliver))
}
