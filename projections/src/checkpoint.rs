use sqlx::{PgConnection, PgExecutor};

/// Creates the projection's checkpoint row at 0 unless it exists: once per start, so
/// that each batch only has to lock it.
pub(crate) async fn ensure_checkpoint(
    db: impl PgExecutor<'_>,
    name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(db)
    .await?;
    Ok(())
}

/// Locks the projection's checkpoint row for the rest of the transaction and returns it.
/// Taking this lock first is what keeps a live batch and a rebuild's swap apart.
///
/// The transaction commits without waiting for its WAL flush: a read model is derived
/// data, so if Postgres loses its last commits in a crash the checkpoint goes back with
/// the rows, and the projector re-applies those positions (read from the log when
/// JetStream does not redeliver them).
pub(crate) async fn lock_checkpoint(
    conn: &mut PgConnection,
    name: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT position FROM projection_checkpoints, set_config('synchronous_commit', 'off', true) \
         WHERE name = $1 FOR UPDATE OF projection_checkpoints",
    )
        .bind(name)
        .fetch_one(conn)
        .await
}

/// Moves the checkpoint. Nothing is announced: a `NOTIFY` takes a lock that every
/// notifying commit of the cluster queues on and wakes every listening backend, and at
/// one per lane per batch it cost create-store about a twentieth of its rate. Readers
/// waiting for a position poll for it instead (`checkpoints`).
pub(crate) async fn advance_checkpoint(
    conn: &mut PgConnection,
    name: &str,
    position: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The log position a projection has applied (0 before its first batch).
pub async fn checkpoint(db: impl PgExecutor<'_>, name: &str) -> Result<i64, sqlx::Error> {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(db)
            .await?;
    Ok(position.unwrap_or(0))
}

/// The log positions `names` have applied, in their order, in one round trip.
pub async fn checkpoints(db: impl PgExecutor<'_>, names: &[&str]) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(c.position, 0) FROM unnest($1::text[]) WITH ORDINALITY AS n(name, i) \
         LEFT JOIN projection_checkpoints c USING (name) ORDER BY n.i",
    )
    .bind(names)
    .fetch_all(db)
    .await
}

/// How many log events a projection has yet to apply: log head − checkpoint.
pub async fn lag(db: impl PgExecutor<'_>, name: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT (SELECT coalesce(max(position), 0) FROM events) \
              - coalesce((SELECT position FROM projection_checkpoints WHERE name = $1), 0)",
    )
    .bind(name)
    .fetch_one(db)
    .await
}
