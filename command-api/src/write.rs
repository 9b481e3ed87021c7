//! What every write shares: its answer recorded in the form it is stored under an
//! `Idempotency-Key` (so a replay is the first answer, byte for byte), the replay
//! lookup, and the mapping of log errors to HTTP.

use std::sync::Arc;

use api_core::{
    ApiError,
    auth::{Principal, Writer},
};
use axum::{
    Json,
    extract::FromRequestParts,
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use eventlog::{AppendError, Appended, IdempotencyClaim};
use schemas::EventMetadata;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::preconditions::{IDEMPOTENT_REPLAYED, IdempotencyKey, IfMatch, X_POSITION, etag};

/// A write's answer: status, the version and position headers, and the body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedResponse {
    pub status: u16,
    pub version: i32,
    pub position: i64,
    pub location: Option<String>,
    pub body: Value,
}

impl RecordedResponse {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn into_http(self, replayed: bool) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut response = (status, Json(self.body)).into_response();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&etag(self.version)) {
            headers.insert(header::ETAG, value);
        }
        headers.insert(X_POSITION, HeaderValue::from(self.position));
        if let Some(value) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, value);
        }
        if replayed {
            headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
        }
        response
    }
}

/// A request that carried an `Idempotency-Key`: the key, scoped to the caller, and a
/// digest of the request so that the key cannot be reused for a different one.
#[derive(Debug, Clone)]
pub struct Idempotency {
    scope: String,
    key: String,
    fingerprint: Vec<u8>,
}

impl Idempotency {
    pub fn new(
        principal: &Principal,
        key: Option<String>,
        method: &Method,
        path: &str,
        body: &[u8],
    ) -> Option<Self> {
        Self::scoped(
            format!("merchant:{}", principal.merchant_id),
            key,
            method,
            path,
            body,
        )
    }

    /// A key in `scope`: keys of different scopes never meet.
    pub fn scoped(
        scope: String,
        key: Option<String>,
        method: &Method,
        path: &str,
        body: &[u8],
    ) -> Option<Self> {
        let key = key?;
        let mut digest = Sha256::new();
        digest.update(method.as_str().as_bytes());
        digest.update(b" ");
        digest.update(path.as_bytes());
        digest.update(b"\n");
        digest.update(body);
        Some(Self {
            scope,
            key,
            fingerprint: digest.finalize().to_vec(),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The answer already given to this request's key, if it has one and it was used.
    /// Checked before deciding, because the retried command may no longer be valid (a
    /// second `pause` is a conflict) while its first answer still is the answer.
    pub async fn previous(
        idempotency: Option<&Self>,
        pool: &PgPool,
    ) -> Result<Option<RecordedResponse>, ApiError> {
        let Some(this) = idempotency else {
            return Ok(None);
        };
        let row: Option<(Vec<u8>, Value)> = sqlx::query_as(
            "SELECT request_fingerprint, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(&this.scope)
        .bind(&this.key)
        .fetch_optional(pool)
        .await
        .map_err(ApiError::internal)?;
        match row {
            None => Ok(None),
            Some((fingerprint, _)) if fingerprint != this.fingerprint => {
                Err(ApiError::IdempotencyKeyReused)
            }
            Some((_, response)) => recorded(response).map(Some),
        }
    }

    pub fn claim(
        &self,
        respond: impl Fn(&Appended) -> RecordedResponse + Send + Sync + 'static,
    ) -> IdempotencyClaim {
        IdempotencyClaim {
            scope: self.scope.clone(),
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
            respond: Arc::new(move |appended| respond(appended).to_value()),
        }
    }
}

pub fn replay(stored: Value) -> Result<Response, ApiError> {
    recorded(stored).map(|recorded| recorded.into_http(true))
}

/// An answer as it was stored for an `Idempotency-Key`.
pub fn recorded(stored: Value) -> Result<RecordedResponse, ApiError> {
    serde_json::from_value(stored).map_err(ApiError::internal)
}

pub fn metadata(principal: &Principal, idempotency: Option<&Idempotency>) -> EventMetadata {
    EventMetadata {
        actor: Some(principal.actor()),
        idempotency_key: idempotency.map(|i| i.key().to_owned()),
        request_id: api_core::current_request_id(),
        ..EventMetadata::default()
    }
}

/// Log errors that no caller turns into something more specific.
pub fn append_failed(error: AppendError) -> ApiError {
    match error {
        AppendError::VersionConflict { actual, .. } => ApiError::VersionConflict {
            current_version: actual,
        },
        AppendError::IdempotencyKeyReused { .. } => ApiError::IdempotencyKeyReused,
        AppendError::ShuttingDown => ApiError::Unavailable {
            message: "the platform is restarting".into(),
            retry_after: std::time::Duration::from_secs(1),
        },
        other => ApiError::internal(other),
    }
}

/// The parts of a write request every command reads: who (allowed to write), which
/// conditions, and what to fingerprint for `Idempotency-Key`.
pub struct WriteContext {
    pub principal: Principal,
    pub if_match: IfMatch,
    key: IdempotencyKey,
    method: Method,
    path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for WriteContext
where
    api_core::auth::Authenticator: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Writer(principal) = Writer::from_request_parts(parts, state).await?;
        Ok(Self {
            principal,
            if_match: IfMatch::from_request_parts(parts, state).await?,
            key: IdempotencyKey::from_request_parts(parts, state).await?,
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
        })
    }
}

impl WriteContext {
    /// The request's `Idempotency-Key` with the fingerprint of this body, if it has one.
    pub fn idempotency(&self, body: &[u8]) -> Option<Idempotency> {
        Idempotency::new(
            &self.principal,
            self.key.0.clone(),
            &self.method,
            &self.path,
            body,
        )
    }

    /// The key of one item of a bulk request: each item's answer is recorded on its own,
    /// so a retried bulk request replays the items that were done and does the rest.
    pub fn item_idempotency(&self, body: &[u8], item: &str) -> Option<Idempotency> {
        Idempotency::new(
            &self.principal,
            self.key.0.as_ref().map(|key| format!("{key}#{item}")),
            &self.method,
            &format!("{}#{item}", self.path),
            body,
        )
    }
}
