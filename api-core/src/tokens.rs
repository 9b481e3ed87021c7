//! JWTs (DESIGN §7): HS256, access tokens for 15 minutes and refresh tokens for 7 days.
//! Both name their session (`sid`), the refresh-token family that logout and reuse
//! detection revoke. Merchants' tokens have the audience `merchant`; storefront
//! customers' the audience `customer`, the store they belong to (`store`) and a key of
//! their own derived from the secret, so that neither kind ever verifies as the other.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;

pub const MERCHANT_AUDIENCE: &str = "merchant";
pub const CUSTOMER_AUDIENCE: &str = "customer";
const ISSUER: &str = "dropship";
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
pub const REFRESH_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    pub sid: Uuid,
    pub typ: TokenKind,
    /// The store a customer's token belongs to; absent from merchants' tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<Uuid>,
}

/// What register, login and refresh answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// Who a session belongs to: a merchant, or a customer of one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    pub id: Uuid,
    pub store: Option<Uuid>,
}

#[derive(Clone)]
pub struct TokenKeys {
    audience: &'static str,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    /// Merchants' tokens.
    pub fn new(secret: &[u8]) -> Self {
        Self::with_audience(MERCHANT_AUDIENCE, secret)
    }

    /// Storefront customers' tokens, under a key derived from `secret`.
    pub fn customers(secret: &[u8]) -> Self {
        let derived = Sha256::new()
            .chain_update(b"dropship customer tokens\0")
            .chain_update(secret)
            .finalize();
        Self::with_audience(CUSTOMER_AUDIENCE, &derived)
    }

    fn with_audience(audience: &'static str, secret: &[u8]) -> Self {
        // Only HS256 is accepted, so `alg: none` and algorithm swaps fail verification.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 0;
        Self {
            audience,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A merchant's pair.
    pub fn issue_pair(
        &self,
        merchant_id: Uuid,
        session_id: Uuid,
        refresh_jti: Uuid,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, ApiError> {
        let subject = Subject {
            id: merchant_id,
            store: None,
        };
        self.issue_pair_for(subject, session_id, refresh_jti, now)
    }

    pub fn issue_pair_for(
        &self,
        subject: Subject,
        session_id: Uuid,
        refresh_jti: Uuid,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, ApiError> {
        Ok(TokenPair {
            access_token: self.issue(
                subject,
                session_id,
                Uuid::now_v7(),
                TokenKind::Access,
                now,
            )?,
            refresh_token: self.issue(subject, session_id, refresh_jti, TokenKind::Refresh, now)?,
            token_type: "Bearer",
            expires_in: ACCESS_TTL.as_secs(),
        })
    }

    fn issue(
        &self,
        subject: Subject,
        session_id: Uuid,
        jti: Uuid,
        kind: TokenKind,
        now: DateTime<Utc>,
    ) -> Result<String, ApiError> {
        let ttl = match kind {
            TokenKind::Access => ACCESS_TTL,
            TokenKind::Refresh => REFRESH_TTL,
        };
        let claims = Claims {
            sub: subject.id,
            aud: self.audience.to_owned(),
            iss: ISSUER.to_owned(),
            iat: now.timestamp(),
            exp: now.timestamp() + ttl.as_secs() as i64,
            jti,
            sid: session_id,
            typ: kind,
            store: subject.store,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// The claims of a valid, unexpired token of `kind`; anything else is a 401.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, ApiError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ApiError::Unauthenticated)?
            .claims;
        // A customer's token is only ever for one store; a merchant's for none.
        let store_fits = claims.store.is_some() == (self.audience == CUSTOMER_AUDIENCE);
        if claims.typ == kind && store_fits {
            Ok(claims)
        } else {
            Err(ApiError::Unauthenticated)
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(b"a test secret of reasonable length")
    }

    #[test]
    fn a_pair_verifies_by_kind_only() {
        let merchant = Uuid::now_v7();
        let pair = keys()
            .issue_pair(merchant, Uuid::now_v7(), Uuid::now_v7(), Utc::now())
            .expect("issues");
        let access = keys()
            .verify(&pair.access_token, TokenKind::Access)
            .expect("valid");
        assert_eq!(access.sub, merchant);
        assert!(
            keys()
                .verify(&pair.access_token, TokenKind::Refresh)
                .is_err()
        );
        assert!(
            keys()
                .verify(&pair.refresh_token, TokenKind::Access)
                .is_err()
        );
    }

    #[test]
    fn merchant_and_customer_tokens_never_verify_as_each_other() {
        let secret = b"a test secret of reasonable length";
        let (merchants, customers) = (TokenKeys::new(secret), TokenKeys::customers(secret));
        let subject = Subject {
            id: Uuid::now_v7(),
            store: Some(Uuid::now_v7()),
        };
        let customer = customers
            .issue_pair_for(subject, Uuid::now_v7(), Uuid::now_v7(), Utc::now())
            .expect("issues");
        let claims = customers
            .verify(&customer.access_token, TokenKind::Access)
            .expect("valid");
        assert_eq!(claims.store, subject.store);
        assert!(
            merchants
                .verify(&customer.access_token, TokenKind::Access)
                .is_err()
        );
        assert!(
            merchants
                .verify(&customer.refresh_token, TokenKind::Refresh)
                .is_err()
        );
        let merchant = merchants
            .issue_pair(Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Utc::now())
            .expect("issues");
        assert!(
            customers
                .verify(&merchant.access_token, TokenKind::Access)
                .is_err()
        );
        assert!(
            customers
                .verify(&merchant.refresh_token, TokenKind::Refresh)
                .is_err()
        );
    }

    #[test]
    fn expired_tampered_foreign_and_unsigned_tokens_are_refused() {
        let pair = keys()
            .issue_pair(
                Uuid::now_v7(),
                Uuid::now_v7(),
                Uuid::now_v7(),
                Utc::now() - chrono::Duration::minutes(16),
            )
            .expect("issues");
        assert!(
            keys()
                .verify(&pair.access_token, TokenKind::Access)
                .is_err()
        );

        let fresh = keys()
            .issue_pair(Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Utc::now())
            .expect("issues");
        let other = TokenKeys::new(b"another secret entirely, also long");
        assert!(
            other
                .verify(&fresh.access_token, TokenKind::Access)
                .is_err()
        );

        let mut parts: Vec<&str> = fresh.access_token.split('.').collect();
        let unsigned_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        parts[0] = &unsigned_header;
        let unsigned = format!("{}.{}.", parts[0], parts[1]);
        assert!(keys().verify(&unsigned, TokenKind::Access).is_err());
    }
}
