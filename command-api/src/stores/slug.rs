//! Finding a free slug for a store name among the platform-wide reservations.

use std::collections::HashSet;

use domain::{Slug, SlugSource, StoreName};
use eventlog::UniqueKey;
use sqlx::PgPool;

pub const SLUG_SCOPE: &str = "store.slug";

pub fn reservation(slug: &Slug) -> UniqueKey {
    UniqueKey::new(SLUG_SCOPE, slug.as_str())
}

/// The first candidate for a store name that no store holds right now.
pub async fn first_free(pool: &PgPool, name: &StoreName) -> Result<Slug, sqlx::Error> {
    first_free_in(pool, SLUG_SCOPE, name).await
}

/// The first candidate for `name` that nobody holds in `scope` right now. Another writer
/// may take it before our append does; the append's reservation then fails and we ask
/// again.
pub async fn first_free_in(
    pool: &PgPool,
    scope: &str,
    name: &impl SlugSource,
) -> Result<Slug, sqlx::Error> {
    let base = Slug::base_for(name);
    let taken: HashSet<String> = sqlx::query_scalar(
        "SELECT value FROM unique_keys WHERE scope = $1 AND (value = $2 OR value LIKE $2 || '-%')",
    )
    .bind(scope)
    .bind(base.as_str())
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let free = (1..)
        .map(|n| Slug::candidate(name, n))
        .find(|candidate| !taken.contains(candidate.as_str()))
        .unwrap_or(base);
    Ok(free)
}
