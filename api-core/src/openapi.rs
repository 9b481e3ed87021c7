//! Pieces of the OpenAPI document shared by both APIs: the error envelope and the two
//! ways to authenticate.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::{
    Modify, ToSchema,
    openapi::{
        ContentBuilder, OpenApi, Ref, RefOr,
        response::{Response, ResponseBuilder},
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

pub const BEARER: &str = "bearer";
pub const API_KEY: &str = "api_key";
/// A storefront customer's access token (audience `customer`), for their store only.
pub const CUSTOMER_BEARER: &str = "customer_bearer";

/// `{"data": null, "error": {...}}`: every failed response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    #[schema(value_type = Option<Object>)]
    pub data: Option<()>,
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `validation_failed`, `not_found`, `version_conflict`…
    pub code: &'static str,
    pub message: String,
    /// `{"fields": [...]}` for 422, `{"current_version": n}` for 409, else null.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// Declares the security schemes the operations name: merchants' bearer tokens and API
/// keys, customers' bearer tokens.
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            CUSTOMER_BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A storefront customer's access token, for their store",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Documented responses by status, as `IntoResponses` lists them.
type Responses = BTreeMap<String, RefOr<Response>>;

fn error_responses(statuses: &[(u16, &str)]) -> Responses {
    statuses
        .iter()
        .map(|(status, description)| {
            let response = ResponseBuilder::new()
                .description(*description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                        .build(),
                )
                .build();
            (status.to_string(), response.into())
        })
        .collect()
}

/// The failures of an authenticated write to a store's resources.
pub struct WriteErrors;

impl utoipa::IntoResponses for WriteErrors {
    fn responses() -> Responses {
        error_responses(&[
            (400, "Malformed body or header"),
            (401, "No or invalid credentials"),
            (403, "The credentials' scopes do not allow writing"),
            (404, "No such store or resource (or not yours)"),
            (
                409,
                "`If-Match` is stale, or the change conflicts with the current state",
            ),
            (413, "Body too large"),
            (415, "Not JSON"),
            (422, "Invalid fields, listed in `details.fields`"),
        ])
    }
}

/// The failures of an authenticated read of a store's resources.
pub struct ReadErrors;

impl utoipa::IntoResponses for ReadErrors {
    fn responses() -> Responses {
        error_responses(&[
            (400, "Malformed parameter or header"),
            (401, "No or invalid credentials"),
            (403, "The credentials' scopes do not allow reading"),
            (404, "No such store or resource (or not yours)"),
            (422, "Invalid query parameters, listed in `details.fields`"),
            (
                503,
                "`X-Min-Position` not reached in time; retry after `Retry-After`",
            ),
        ])
    }
}

/// The failures of a public storefront read.
pub struct PublicErrors;

impl utoipa::IntoResponses for PublicErrors {
    fn responses() -> Responses {
        error_responses(&[
            (404, "No such active store or product"),
            (422, "Invalid query parameters, listed in `details.fields`"),
            (
                503,
                "`X-Min-Position` not reached in time; retry after `Retry-After`",
            ),
        ])
    }
}
