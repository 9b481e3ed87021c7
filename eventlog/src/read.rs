use schemas::{EventMetadata, RecordedEvent};
use sqlx::{PgExecutor, Row, postgres::PgRow, types::Json};

/// `SELECT <every envelope column> FROM events <tail>`, as a `'static` string.
macro_rules! select_events {
    ($tail:literal) => {
        concat!(
            "SELECT position, stream_id, version, event_id, event_type, schema_version, ",
            "store_id, metadata, recorded_at, payload FROM events ",
            $tail
        )
    };
}

pub(crate) fn recorded_event(row: &PgRow) -> Result<RecordedEvent, sqlx::Error> {
    let schema_version: i16 = row.try_get("schema_version")?;
    let metadata: Json<EventMetadata> = row.try_get("metadata")?;
    Ok(RecordedEvent {
        position: row.try_get("position")?,
        stream_id: row.try_get("stream_id")?,
        version: row.try_get("version")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: u16::try_from(schema_version).map_err(|e| sqlx::Error::ColumnDecode {
            index: "schema_version".into(),
            source: Box::new(e),
        })?,
        store_id: row.try_get("store_id")?,
        metadata: metadata.0,
        recorded_at: row.try_get("recorded_at")?,
        payload: row.try_get("payload")?,
    })
}

/// The events of one stream from `from_version` (inclusive), in version order.
pub async fn read_stream(
    db: impl PgExecutor<'_>,
    stream_id: &str,
    from_version: i32,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    const SQL: &str = select_events!("WHERE stream_id = $1 AND version >= $2 ORDER BY version");
    // Planned for each read: a plan cached on a connection while `events` was still
    // small is a sequential scan, and it stayed one for every load until the next
    // autoanalyze (product creates loading their store scanned the whole log).
    let rows = sqlx::query(SQL)
        .persistent(false)
        .bind(stream_id)
        .bind(from_version)
        .fetch_all(db)
        .await?;
    rows.iter().map(recorded_event).collect()
}

/// The tailer: up to `limit` events after `position`, in commit order. Appends draw
/// positions under one lock per transaction, so a position is only ever visible after
/// every smaller one is: reading in position order can never skip an event.
pub async fn read_after(
    db: impl PgExecutor<'_>,
    position: i64,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    const SQL: &str = select_events!("WHERE position > $1 ORDER BY position LIMIT $2");
    // Planned for each read, as stream reads are: cached while `events` was small, the
    // plan was a scan and sort of the whole log, and the publisher's tail read took
    // 1.5 ms for 20 events once the log held 30,000.
    let rows = sqlx::query(SQL)
        .persistent(false)
        .bind(position)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(recorded_event).collect()
}

/// The position of a stream's newest event, 0 for a stream without events: what a
/// write that changed nothing answers for `X-Min-Position`.
pub async fn stream_position(db: impl PgExecutor<'_>, stream_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(position), 0)::bigint FROM events WHERE stream_id = $1")
        .bind(stream_id)
        .fetch_one(db)
        .await
}

/// The position of the newest committed event, 0 for an empty log.
pub async fn head_position(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(position), 0)::bigint FROM events")
        .fetch_one(db)
        .await
}

/// One event by its id, wherever it is in the log.
pub async fn read_event(
    db: impl PgExecutor<'_>,
    event_id: uuid::Uuid,
) -> Result<Option<RecordedEvent>, sqlx::Error> {
    const SQL: &str = select_events!("WHERE event_id = $1");
    let row = sqlx::query(SQL).bind(event_id).fetch_optional(db).await?;
    row.as_ref().map(recorded_event).transpose()
}

/// Which events of the log a reader wants: of one store, of some types, in a position
/// or time range. Empty selects everything.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub store_id: Option<uuid::Uuid>,
    pub to_position: Option<i64>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub types: Vec<String>,
    /// Who caused the events, as their metadata names them (`merchant:<id>`, …).
    pub actor: Option<String>,
}

/// Up to `limit` events after `position` that `filter` selects, in log order: a page of
/// an export or of a subscriber's catch-up; the next page starts after its last event.
pub async fn read_filtered(
    db: impl PgExecutor<'_>,
    position: i64,
    filter: &LogFilter,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    const SQL: &str = select_events!(
        "WHERE position > $1 AND ($2::uuid IS NULL OR store_id = $2) \
         AND ($3::bigint IS NULL OR position <= $3) \
         AND ($4::timestamptz IS NULL OR recorded_at >= $4) \
         AND ($5::timestamptz IS NULL OR recorded_at < $5) \
         AND (cardinality($6::text[]) = 0 OR event_type = ANY($6)) \
         AND ($8::text IS NULL OR metadata->>'actor' = $8) \
         ORDER BY position LIMIT $7"
    );
    // Planned with the filter's values: a plan generic over which of them are set
    // would be the worst of each.
    let rows = sqlx::query(SQL)
        .persistent(false)
        .bind(position)
        .bind(filter.store_id)
        .bind(filter.to_position)
        .bind(filter.since)
        .bind(filter.until)
        .bind(&filter.types)
        .bind(limit)
        .bind(&filter.actor)
        .fetch_all(db)
        .await?;
    rows.iter().map(recorded_event).collect()
}
