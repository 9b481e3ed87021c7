//! The headers that make writes safe to retry and to race: `Idempotency-Key` and
//! `If-Match`, and the `ETag`/`X-Position` every write answers with.

use api_core::ApiError;
use axum::{
    extract::FromRequestParts,
    http::{HeaderName, request::Parts},
};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const X_POSITION: HeaderName = HeaderName::from_static("x-position");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// `If-Match: "3"` (or `3`, or `W/"3"`): the stream version the client last saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct IfMatch(pub Option<i32>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(axum::http::header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let text = value.to_str().unwrap_or_default().trim();
        let unquoted = text.trim_start_matches("W/").trim_matches('"');
        unquoted
            .parse::<i32>()
            .ok()
            .filter(|version| *version >= 1)
            .map(|version| Self(Some(version)))
            .ok_or_else(|| {
                ApiError::Malformed("If-Match must be a version this API returned in ETag".into())
            })
    }
}

/// `Idempotency-Key`: 1–255 visible ASCII characters, chosen by the client.
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) else {
            return Ok(Self(None));
        };
        value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|key| {
                !key.is_empty()
                    && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
                    && key.bytes().all(|b| b.is_ascii_graphic())
            })
            .map(|key| Self(Some(key.to_owned())))
            .ok_or_else(|| {
                ApiError::Malformed(format!(
                    "Idempotency-Key must be 1–{MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
                ))
            })
    }
}

pub fn etag(version: i32) -> String {
    format!("\"{version}\"")
}
