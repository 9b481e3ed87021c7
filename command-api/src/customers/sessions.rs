//! Customers' login sessions: as merchants', each a family of refresh tokens of which
//! only the newest works, and bound to the store the customer belongs to.

use api_core::{
    ApiError,
    tokens::{Claims, Subject, TokenPair},
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::state::CommandState;

pub async fn open(
    state: &CommandState,
    customer_id: Uuid,
    store_id: Uuid,
) -> Result<TokenPair, ApiError> {
    let session_id = Uuid::now_v7();
    let jti = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO customer_sessions (id, customer_id, store_id, current_jti) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(session_id)
    .bind(customer_id)
    .bind(store_id)
    .bind(jti)
    .execute(state.pool())
    .await
    .map_err(ApiError::internal)?;
    let subject = Subject {
        id: customer_id,
        store: Some(store_id),
    };
    state
        .authenticator
        .customer_keys()
        .issue_pair_for(subject, session_id, jti, Utc::now())
}

/// Replaces the session's refresh token with a new one, if `claims` names the current
/// one of a live session of `store_id`. An older token of a live session means it was
/// copied: the session ends.
pub async fn rotate(
    state: &CommandState,
    claims: &Claims,
    store_id: Uuid,
) -> Result<TokenPair, ApiError> {
    if claims.store != Some(store_id) {
        return Err(ApiError::Unauthenticated);
    }
    let next_jti = Uuid::now_v7();
    let rotated: Option<Uuid> = sqlx::query_scalar(
        "UPDATE customer_sessions SET current_jti = $5, rotated_at = now() \
         WHERE id = $1 AND customer_id = $2 AND store_id = $3 AND current_jti = $4 \
         AND revoked_at IS NULL RETURNING id",
    )
    .bind(claims.sid)
    .bind(claims.sub)
    .bind(store_id)
    .bind(claims.jti)
    .bind(next_jti)
    .fetch_optional(state.pool())
    .await
    .map_err(ApiError::internal)?;
    if rotated.is_none() {
        revoke(state, claims.sid, "refresh_token_reused").await?;
        return Err(ApiError::Unauthenticated);
    }
    let subject = Subject {
        id: claims.sub,
        store: Some(store_id),
    };
    state
        .authenticator
        .customer_keys()
        .issue_pair_for(subject, claims.sid, next_jti, Utc::now())
}

/// Ends a session (if it was live) and returns when it ended.
pub async fn revoke(
    state: &CommandState,
    session_id: Uuid,
    reason: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let revoked_at = sqlx::query_scalar(
        "UPDATE customer_sessions SET revoked_at = now(), revoked_reason = $2 \
         WHERE id = $1 AND revoked_at IS NULL RETURNING revoked_at",
    )
    .bind(session_id)
    .bind(reason)
    .fetch_optional(state.pool())
    .await
    .map_err(ApiError::internal)?;
    state
        .authenticator
        .forget_customer_session(session_id)
        .await;
    Ok(revoked_at)
}
