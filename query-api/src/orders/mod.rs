//! The money path's reads: the merchant's orders (filters, detail with its timeline),
//! customers with their order count and lifetime value, and today's sales. Contact
//! details are stored sealed and opened here, per response; an erased customer shows
//! as `null`.

mod customers;
mod detail;
mod export;
mod history;
mod list;
mod sales;
mod status_page;

use api_core::ApiError;
use pii::Vault;
use schemas::{
    api::orders::ContactView,
    pii::{ContactDetails, Sealed},
};
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{freshness::ReadModel, state::QueryState};

/// What order reads wait for with `X-Min-Position`: the store and its orders.
const ORDER_MODELS: &[ReadModel] = &[ReadModel::Stores, ReadModel::Orders];

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(list::list_orders))
        .routes(routes!(detail::get_order))
        .routes(routes!(export::export_orders))
        .routes(routes!(customers::list_customers))
        .routes(routes!(customers::get_customer))
        .routes(routes!(sales::sales_today))
        .routes(routes!(status_page::order_status))
        .routes(routes!(history::order_history))
}

/// The contact sealed in `stored` (a [`Sealed`] as JSON), or `None` when erased.
async fn open_contact(vault: &Vault, stored: &Value) -> Result<Option<ContactDetails>, ApiError> {
    let Ok(sealed) = serde_json::from_value::<Sealed>(stored.clone()) else {
        return Ok(None);
    };
    vault.open(&sealed).await.map_err(ApiError::internal)
}

fn contact_view(contact: &ContactDetails) -> ContactView {
    ContactView {
        email: contact.email.clone(),
        name: contact.name.clone(),
    }
}
