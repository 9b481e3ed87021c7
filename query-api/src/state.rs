use api_core::auth::Authenticator;
use axum::extract::FromRef;
use sqlx::PgPool;

use crate::freshness::Freshness;

#[derive(Clone)]
pub struct QueryState {
    pub(crate) pool: PgPool,
    pub(crate) authenticator: Authenticator,
    pub(crate) freshness: Freshness,
}

impl QueryState {
    pub fn new(pool: PgPool, authenticator: Authenticator, freshness: Freshness) -> Self {
        Self {
            pool,
            authenticator,
            freshness,
        }
    }
}

impl FromRef<QueryState> for Authenticator {
    fn from_ref(state: &QueryState) -> Self {
        state.authenticator.clone()
    }
}
