//! Pieces of the OpenAPI document shared by both APIs: the error envelope and the two
//! ways to authenticate.

use serde::Serialize;
use serde_json::Value;
use utoipa::{
    Modify, ToSchema,
    openapi::{
        OpenApi,
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

pub const BEARER: &str = "bearer";
pub const API_KEY: &str = "api_key";

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

/// Declares the bearer-token and API-key security schemes the operations name.
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
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}
