use std::time::Duration;

use axum::{
    Json,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Value, json};
use thiserror::Error;
use utoipa::ToSchema;

use crate::openapi::{ErrorBody, ErrorEnvelope};

/// One field a request got wrong: `field` is its JSON path (`name`, `variants[0].sku`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Every way a request can fail, each with its status (DESIGN §7). Bad input is never a
/// 5xx; 5xx details are logged here and never sent.
#[derive(Debug, Error)]
pub enum ApiError {
    /// 400: the body or a parameter is not even well-formed.
    #[error("{0}")]
    Malformed(String),
    /// 401: no credentials, or credentials that are invalid, expired or revoked.
    #[error("missing or invalid credentials")]
    Unauthenticated,
    /// 401 for a failed login, worded so it never tells whether the email exists.
    #[error("email or password is incorrect")]
    BadLogin,
    /// 403: the credentials are valid but their scopes do not cover this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: missing, or belonging to someone else — the two are indistinguishable.
    #[error("not found")]
    NotFound,
    /// 404 for a path no route serves.
    #[error("no route for this path")]
    RouteNotFound,
    /// 405: the path exists, the method does not.
    #[error("method not allowed for this path")]
    MethodNotAllowed,
    /// 409: the `If-Match` version is not the current one.
    #[error("the resource is at version {current_version}")]
    VersionConflict { current_version: i32 },
    /// 409: the request conflicts with the resource's state or another resource.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 414: the URI is longer than any the API serves.
    #[error("the request URI is longer than {limit} bytes")]
    UriTooLong { limit: usize },
    /// 431: the headers together are larger than the API accepts.
    #[error("the request headers are larger than {limit} bytes")]
    HeadersTooLarge { limit: usize },
    /// 415, naming the type the endpoint takes.
    #[error("expected a body of type {expected}")]
    UnsupportedMediaType { expected: &'static str },
    /// 422 with one entry per field at fault.
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    /// 422: an `Idempotency-Key` reused with a different request.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// 426 with `Upgrade: websocket`: a plain request to a WebSocket endpoint.
    #[error("this endpoint speaks WebSocket: send an upgrade request")]
    WebSocketRequired,
    /// 429 with `Retry-After`.
    #[error("too many attempts; retry later")]
    RateLimited { retry_after: Duration },
    /// 503 with `Retry-After`: e.g. a read-your-writes wait that ran out.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Duration,
    },
    /// 500: logged with its cause, answered without it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated | Self::BadLogin => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::VersionConflict { .. } | Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::WebSocketRequired => StatusCode::UPGRADE_REQUIRED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_request",
            Self::Unauthenticated => "unauthenticated",
            Self::BadLogin => "invalid_credentials",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound => "not_found",
            Self::RouteNotFound => "route_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::VersionConflict { .. } => "version_conflict",
            Self::Conflict { code, .. } => code,
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UriTooLong { .. } => "uri_too_long",
            Self::HeadersTooLarge { .. } => "headers_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::WebSocketRequired => "upgrade_required",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Validation(fields) => json!({ "fields": fields }),
            Self::VersionConflict { current_version } => {
                json!({ "current_version": current_version })
            }
            Self::RateLimited { retry_after } | Self::Unavailable { retry_after, .. } => {
                json!({ "retry_after_seconds": retry_after_seconds(*retry_after) })
            }
            _ => Value::Null,
        }
    }
}

fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                "something went wrong on our side".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorEnvelope {
            data: None,
            error: ErrorBody {
                code: self.code(),
                message,
                details: self.details(),
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Self::RateLimited { retry_after } | Self::Unavailable { retry_after, .. } = &self
            && let Ok(value) = HeaderValue::from_str(&retry_after_seconds(*retry_after).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if let Self::WebSocketRequired = self {
            response
                .headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        }
        response
    }
}

/// The answer for a path no route serves.
pub async fn api_fallback() -> ApiError {
    ApiError::RouteNotFound
}

/// axum answers some requests before any handler runs or from its own extractors (a
/// method a path does not serve, a body over the limit, a path segment that is not
/// UTF-8): re-dress every such bare client error in the envelope.
pub async fn normalise_rejections(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let enveloped = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if enveloped || !response.status().is_client_error() {
        return response;
    }
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed.into_response(),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
            limit: crate::extract::BODY_LIMIT,
        }
        .into_response(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType {
            expected: "application/json",
        }
        .into_response(),
        StatusCode::BAD_REQUEST => {
            // axum's rejections explain themselves in a short plain-text body.
            let explanation = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            ApiError::Malformed(explanation).into_response()
        }
        _ => response,
    }
}
