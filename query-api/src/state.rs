use api_core::{auth::Authenticator, media::Media};
use axum::extract::FromRef;
use sqlx::PgPool;

use crate::freshness::Freshness;

#[derive(Clone)]
pub struct QueryState {
    pub(crate) pool: PgPool,
    pub(crate) authenticator: Authenticator,
    pub(crate) freshness: Freshness,
    pub(crate) media: Media,
}

impl QueryState {
    pub fn new(
        pool: PgPool,
        authenticator: Authenticator,
        freshness: Freshness,
        media: Media,
    ) -> Self {
        Self {
            pool,
            authenticator,
            freshness,
            media,
        }
    }
}

impl FromRef<QueryState> for Authenticator {
    fn from_ref(state: &QueryState) -> Self {
        state.authenticator.clone()
    }
}
