//! Merchant JWTs (DESIGN §7): HS256, audience `merchant`, access tokens for 15 minutes
//! and refresh tokens for 7 days. Both name their session (`sid`), the refresh-token
//! family that logout and reuse detection revoke.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;

pub const MERCHANT_AUDIENCE: &str = "merchant";
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

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        // Only HS256 is accepted, so `alg: none` and algorithm swaps fail verification.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[MERCHANT_AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn issue_pair(
        &self,
        merchant_id: Uuid,
        session_id: Uuid,
        refresh_jti: Uuid,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, ApiError> {
        Ok(TokenPair {
            access_token: self.issue(
                merchant_id,
                session_id,
                Uuid::now_v7(),
                TokenKind::Access,
                now,
            )?,
            refresh_token: self.issue(
                merchant_id,
                session_id,
                refresh_jti,
                TokenKind::Refresh,
                now,
            )?,
            token_type: "Bearer",
            expires_in: ACCESS_TTL.as_secs(),
        })
    }

    fn issue(
        &self,
        merchant_id: Uuid,
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
            sub: merchant_id,
            aud: MERCHANT_AUDIENCE.to_owned(),
            iss: ISSUER.to_owned(),
            iat: now.timestamp(),
            exp: now.timestamp() + ttl.as_secs() as i64,
            jti,
            sid: session_id,
            typ: kind,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// The claims of a valid, unexpired token of `kind`; anything else is a 401.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, ApiError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ApiError::Unauthenticated)?
            .claims;
        if claims.typ == kind {
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
