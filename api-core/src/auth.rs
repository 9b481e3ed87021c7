//! Who is calling: a merchant's bearer access token, or one of their API keys with its
//! scopes, or a storefront customer's bearer token. Extractors prove it before a
//! handler runs: [`Reader`] for reads, [`Writer`] for writes, [`SessionPrincipal`] for
//! what only a logged-in session may do, [`CustomerPrincipal`] for a customer's own
//! routes. A customer's token opens no merchant route and a merchant's no customer's.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{FromRef, FromRequestParts},
    http::request::Parts,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use moka::future::Cache;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    ApiError,
    tokens::{TokenKeys, TokenKind},
};

pub const API_KEY_HEADER: &str = "x-api-key";
const API_KEY_PREFIX: &str = "dsk_";
/// How much of a key is shown in lists: enough to tell keys apart, useless to an attacker.
const SHOWN_PREFIX_CHARS: usize = 12;

/// How long this process trusts what it learnt about a session or a key. A logout or
/// revocation through this process takes effect at once; through another one (split
/// deployments) within this long.
const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    /// The store's event stream (`/stores/{id}/events`): integrators' keys need it
    /// explicitly, since events carry more than the read models show.
    EventsRead,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::EventsRead => "events:read",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "events:read" => Some(Self::EventsRead),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Session { session_id: Uuid },
    ApiKey { key_id: Uuid, scopes: Arc<[Scope]> },
}

/// An authenticated merchant and how they proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub merchant_id: Uuid,
    pub credential: Credential,
}

impl Principal {
    pub fn allows(&self, scope: Scope) -> bool {
        match &self.credential {
            Credential::Session { .. } => true,
            Credential::ApiKey { scopes, .. } => scopes.contains(&scope),
        }
    }

    /// Who to record as the actor of the events this request appends.
    pub fn actor(&self) -> String {
        match &self.credential {
            Credential::Session { .. } => format!("merchant:{}", self.merchant_id),
            Credential::ApiKey { key_id, .. } => {
                format!("merchant:{}/api-key:{key_id}", self.merchant_id)
            }
        }
    }
}

#[derive(Debug, Clone)]
struct ApiKeyGrant {
    key_id: Uuid,
    merchant_id: Uuid,
    scopes: Arc<[Scope]>,
}

/// Why a key found no grant. Neither is cached: caching misses would let anyone fill
/// the cache with made-up keys.
enum KeyLookupFailed {
    Unknown,
    Database(String),
}

/// A freshly generated API key: `raw` is shown once, `sha256` is what is stored.
pub struct GeneratedApiKey {
    pub raw: String,
    pub prefix: String,
    pub sha256: Vec<u8>,
}

pub fn generate_api_key() -> GeneratedApiKey {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let raw = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    GeneratedApiKey {
        prefix: raw.chars().take(SHOWN_PREFIX_CHARS).collect(),
        sha256: Sha256::digest(raw.as_bytes()).to_vec(),
        raw,
    }
}

/// Verifies credentials; shared by both APIs through `FromRef`, so cloned per request:
/// everything sits behind one `Arc`.
#[derive(Clone)]
pub struct Authenticator(Arc<Verifier>);

struct Verifier {
    keys: TokenKeys,
    customer_keys: TokenKeys,
    pool: PgPool,
    live_sessions: Cache<Uuid, bool>,
    live_customer_sessions: Cache<Uuid, bool>,
    api_keys: Cache<Vec<u8>, ApiKeyGrant>,
}

/// A storefront customer with a live session, in the store their token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerPrincipal {
    pub customer_id: Uuid,
    pub store_id: Uuid,
    pub session_id: Uuid,
}

impl CustomerPrincipal {
    /// Who to record as the actor of the events this request appends.
    pub fn actor(&self) -> String {
        format!("customer:{}/session:{}", self.customer_id, self.session_id)
    }
}

/// The token of an `Authorization: Bearer …` header; none without the header, 401 for
/// another scheme.
fn bearer_token(headers: &axum::http::HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(header) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| Some(token.trim()))
        .ok_or(ApiError::Unauthenticated)
}

/// Passes when the session is live: known to `sessions` (for a few seconds) or found by
/// `lookup` (`None`: no such session).
async fn live(
    sessions: &Cache<Uuid, bool>,
    session_id: Uuid,
    lookup: impl Future<Output = Result<Option<bool>, sqlx::Error>>,
) -> Result<(), ApiError> {
    let live = sessions
        .try_get_with(session_id, async move {
            lookup.await.map(|live| live.unwrap_or(false))
        })
        .await
        .map_err(ApiError::internal)?;
    if live {
        Ok(())
    } else {
        Err(ApiError::Unauthenticated)
    }
}

fn session_cache() -> Cache<Uuid, bool> {
    Cache::builder()
        .max_capacity(100_000)
        .time_to_live(CREDENTIAL_CACHE_TTL)
        .build()
}

impl Authenticator {
    /// Verifies merchants' and customers' tokens signed with keys from `secret`.
    pub fn new(secret: &[u8], pool: PgPool) -> Self {
        Self(Arc::new(Verifier {
            keys: TokenKeys::new(secret),
            customer_keys: TokenKeys::customers(secret),
            pool,
            live_sessions: session_cache(),
            live_customer_sessions: session_cache(),
            api_keys: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CREDENTIAL_CACHE_TTL)
                .build(),
        }))
    }

    pub fn keys(&self) -> &TokenKeys {
        &self.0.keys
    }

    pub fn customer_keys(&self) -> &TokenKeys {
        &self.0.customer_keys
    }

    /// Forgets what this process cached about a session it has just revoked.
    pub async fn forget_session(&self, session_id: Uuid) {
        self.0.live_sessions.invalidate(&session_id).await;
    }

    /// Forgets what this process cached about a customer's session it has just revoked.
    pub async fn forget_customer_session(&self, session_id: Uuid) {
        self.0.live_customer_sessions.invalidate(&session_id).await;
    }

    /// The customer whose live session's access token `headers` carry as a bearer.
    pub async fn authenticate_customer(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<CustomerPrincipal, ApiError> {
        let token = bearer_token(headers)?.ok_or(ApiError::Unauthenticated)?;
        let claims = self.0.customer_keys.verify(token, TokenKind::Access)?;
        let store_id = claims.store.ok_or(ApiError::Unauthenticated)?;
        let pool = self.0.pool.clone();
        let lookup = async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT revoked_at IS NULL FROM customer_sessions \
                 WHERE id = $1 AND customer_id = $2 AND store_id = $3",
            )
            .bind(claims.sid)
            .bind(claims.sub)
            .bind(store_id)
            .fetch_optional(&pool)
            .await
        };
        live(&self.0.live_customer_sessions, claims.sid, lookup).await?;
        Ok(CustomerPrincipal {
            customer_id: claims.sub,
            store_id,
            session_id: claims.sid,
        })
    }

    /// Forgets what this process cached about keys it has just revoked.
    pub fn forget_api_keys(&self) {
        self.0.api_keys.invalidate_all();
    }

    pub async fn authenticate(&self, parts: &Parts) -> Result<Principal, ApiError> {
        if let Some(token) = bearer_token(&parts.headers)? {
            return self.bearer(token).await;
        }
        if let Some(header) = parts.headers.get(API_KEY_HEADER) {
            let raw = header.to_str().map_err(|_| ApiError::Unauthenticated)?;
            return self.api_key(raw.trim()).await;
        }
        Err(ApiError::Unauthenticated)
    }

    async fn bearer(&self, token: &str) -> Result<Principal, ApiError> {
        let claims = self.0.keys.verify(token, TokenKind::Access)?;
        let pool = self.0.pool.clone();
        let lookup = async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT revoked_at IS NULL FROM auth_sessions WHERE id = $1",
            )
            .bind(claims.sid)
            .fetch_optional(&pool)
            .await
        };
        live(&self.0.live_sessions, claims.sid, lookup).await?;
        Ok(Principal {
            merchant_id: claims.sub,
            credential: Credential::Session {
                session_id: claims.sid,
            },
        })
    }

    async fn api_key(&self, raw: &str) -> Result<Principal, ApiError> {
        if !raw.starts_with(API_KEY_PREFIX) {
            return Err(ApiError::Unauthenticated);
        }
        let digest = Sha256::digest(raw.as_bytes()).to_vec();
        let pool = self.0.pool.clone();
        let lookup = digest.clone();
        let grant = self
            .0
            .api_keys
            .try_get_with(digest, async move {
                let row: Option<(Uuid, Uuid, Vec<String>)> = sqlx::query_as(
                    "SELECT id, merchant_id, scopes FROM api_keys \
                     WHERE key_sha256 = $1 AND revoked_at IS NULL",
                )
                .bind(lookup)
                .fetch_optional(&pool)
                .await
                .map_err(|error| KeyLookupFailed::Database(error.to_string()))?;
                let (key_id, merchant_id, scopes) = row.ok_or(KeyLookupFailed::Unknown)?;
                Ok(ApiKeyGrant {
                    key_id,
                    merchant_id,
                    scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                })
            })
            .await
            .map_err(|failure: Arc<KeyLookupFailed>| match failure.as_ref() {
                KeyLookupFailed::Unknown => ApiError::Unauthenticated,
                KeyLookupFailed::Database(error) => ApiError::Internal(error.clone()),
            })?;
        Ok(Principal {
            merchant_id: grant.merchant_id,
            credential: Credential::ApiKey {
                key_id: grant.key_id,
                scopes: grant.scopes,
            },
        })
    }
}

/// A caller allowed to read (any session, or a key with the `read` scope).
#[derive(Debug, Clone)]
pub struct Reader(pub Principal);

/// A caller allowed to write (any session, or a key with the `write` scope).
#[derive(Debug, Clone)]
pub struct Writer(pub Principal);

/// A caller allowed to read a store's events (any session, or a key with the
/// `events:read` scope).
#[derive(Debug, Clone)]
pub struct EventReader(pub Principal);

/// A caller with a logged-in session; what only a session may do (logout) needs it.
#[derive(Debug, Clone)]
pub struct SessionPrincipal {
    pub merchant_id: Uuid,
    pub session_id: Uuid,
}

async fn scoped<S>(parts: &Parts, state: &S, scope: Scope) -> Result<Principal, ApiError>
where
    Authenticator: FromRef<S>,
{
    let principal = Authenticator::from_ref(state).authenticate(parts).await?;
    if principal.allows(scope) {
        Ok(principal)
    } else {
        Err(ApiError::Forbidden(format!(
            "this API key lacks the `{}` scope",
            scope.as_str()
        )))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Reader
where
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        scoped(parts, state, Scope::Read).await.map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Writer
where
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        scoped(parts, state, Scope::Write).await.map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for EventReader
where
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        scoped(parts, state, Scope::EventsRead).await.map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SessionPrincipal
where
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = Authenticator::from_ref(state).authenticate(parts).await?;
        match principal.credential {
            Credential::Session { session_id } => Ok(Self {
                merchant_id: principal.merchant_id,
                session_id,
            }),
            Credential::ApiKey { .. } => Err(ApiError::Forbidden(
                "this needs a logged-in session, not an API key".to_owned(),
            )),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CustomerPrincipal
where
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Authenticator::from_ref(state)
            .authenticate_customer(&parts.headers)
            .await
    }
}
