use api_core::{auth::Authenticator, media::Media};
use axum::extract::FromRef;
use pii::Vault;
use sqlx::PgPool;

use crate::{events::LogTail, freshness::Freshness};

#[derive(Clone)]
pub struct QueryState {
    pub(crate) pool: PgPool,
    pub(crate) authenticator: Authenticator,
    pub(crate) freshness: Freshness,
    pub(crate) media: Media,
    /// Opens the contact details order and customer reads show.
    pub(crate) vault: Vault,
    /// The log as it is written, for event stream subscribers.
    pub(crate) tail: LogTail,
}

impl QueryState {
    pub fn new(
        pool: PgPool,
        authenticator: Authenticator,
        freshness: Freshness,
        media: Media,
        tail: LogTail,
    ) -> Self {
        Self {
            vault: Vault::new(pool.clone()),
            tail,
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
