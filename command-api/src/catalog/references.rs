//! Checks that ids a request names belong to live aggregates of the same store, asked of
//! the log itself so that a product created a moment ago already counts.

use std::collections::HashSet;

use api_core::{ApiError, FieldError};
use sqlx::PgPool;
use uuid::Uuid;

/// Answers 422 naming each of `ids` (at `field[i]`) that is not a live `<prefix><id>`
/// stream of `store_id`. Another store's id is reported exactly like a missing one.
pub async fn require_live(
    pool: &PgPool,
    store_id: Uuid,
    prefix: &str,
    field: &str,
    ids: &[Uuid],
) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    let streams: Vec<String> = ids.iter().map(|id| format!("{prefix}{id}")).collect();
    let live: HashSet<String> = sqlx::query_scalar(
        "SELECT stream_id FROM events WHERE stream_id = ANY($1) AND store_id = $2 \
         GROUP BY stream_id HAVING bool_and(event_type NOT LIKE '%.deleted')",
    )
    .bind(&streams)
    .bind(store_id)
    .fetch_all(pool)
    .await
    .map_err(ApiError::internal)?
    .into_iter()
    .collect();
    let missing: Vec<FieldError> = streams
        .iter()
        .enumerate()
        .filter(|(_, stream)| !live.contains(*stream))
        .map(|(i, _)| {
            FieldError::new(
                format!("{field}[{i}]"),
                "not_found",
                "no such id in this store",
            )
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(missing))
    }
}
