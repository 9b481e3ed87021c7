//! Login sessions: each is a family of refresh tokens of which only the newest works.

use api_core::{
    ApiError,
    tokens::{Claims, TokenPair},
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::state::CommandState;

pub async fn open(state: &CommandState, merchant_id: Uuid) -> Result<TokenPair, ApiError> {
    let session_id = Uuid::now_v7();
    let jti = Uuid::now_v7();
    sqlx::query("INSERT INTO auth_sessions (id, merchant_id, current_jti) VALUES ($1, $2, $3)")
        .bind(session_id)
        .bind(merchant_id)
        .bind(jti)
        .execute(state.pool())
        .await
        .map_err(ApiError::internal)?;
    state
        .authenticator
        .keys()
        .issue_pair(merchant_id, session_id, jti, Utc::now())
}

/// Replaces the session's refresh token with a new one, if `claims` names the current
/// one. An older token of a live session means it was copied: the session ends.
pub async fn rotate(state: &CommandState, claims: &Claims) -> Result<TokenPair, ApiError> {
    let next_jti = Uuid::now_v7();
    let rotated: Option<Uuid> = sqlx::query_scalar(
        "UPDATE auth_sessions SET current_jti = $4, rotated_at = now() \
         WHERE id = $1 AND merchant_id = $2 AND current_jti = $3 AND revoked_at IS NULL \
         RETURNING id",
    )
    .bind(claims.sid)
    .bind(claims.sub)
    .bind(claims.jti)
    .bind(next_jti)
    .fetch_optional(state.pool())
    .await
    .map_err(ApiError::internal)?;
    if rotated.is_none() {
        revoke(state, claims.sid, "refresh_token_reused").await?;
        return Err(ApiError::Unauthenticated);
    }
    state
        .authenticator
        .keys()
        .issue_pair(claims.sub, claims.sid, next_jti, Utc::now())
}

/// Ends a session (if it was live) and returns when it ended.
pub async fn revoke(
    state: &CommandState,
    session_id: Uuid,
    reason: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let revoked_at = sqlx::query_scalar(
        "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = $2 \
         WHERE id = $1 AND revoked_at IS NULL RETURNING revoked_at",
    )
    .bind(session_id)
    .bind(reason)
    .fetch_optional(state.pool())
    .await
    .map_err(ApiError::internal)?;
    state.authenticator.forget_session(session_id).await;
    Ok(revoked_at)
}
