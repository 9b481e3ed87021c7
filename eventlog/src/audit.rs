//! The auditor's walk over the whole log: every stream's hash chain and the gapless
//! positions, streamed from Postgres so that the log's size costs time, not memory.

use futures::TryStreamExt;
use serde::Serialize;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::{hash::Chain, read::recorded_event};

/// What `verify_log` found.
#[derive(Debug, Default, Serialize)]
pub struct LogVerification {
    pub events_checked: u64,
    pub streams_checked: u64,
    /// Position holes (whole-log walks only) and the first break of each broken stream,
    /// in position order.
    pub breaks: Vec<LogBreak>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogBreak {
    /// Positions `first..=last` hold no event: deleted, since positions are gapless.
    Hole { first: i64, last: i64 },
    /// The stream's chain breaks at the event at `position`.
    Chain {
        stream_id: String,
        position: i64,
        #[serde(rename = "break")]
        broken: String,
    },
}

impl LogBreak {
    fn position(&self) -> i64 {
        match self {
            Self::Hole { first, .. } => *first,
            Self::Chain { position, .. } => *position,
        }
    }
}

/// Walks every stream's hash chain, of `store`'s streams only when given, and (for the
/// whole log) the positions from 1 to the head, which must have no hole.
pub async fn verify_log(
    pool: &PgPool,
    store: Option<Uuid>,
) -> Result<LogVerification, sqlx::Error> {
    let mut report = LogVerification::default();
    let mut rows = sqlx::query(
        "SELECT position, stream_id, version, event_id, event_type, schema_version, store_id, \
         metadata, recorded_at, payload, hash FROM events \
         WHERE $1::uuid IS NULL \
            OR stream_id IN (SELECT stream_id FROM events WHERE store_id = $1) \
         ORDER BY stream_id, version",
    )
    .bind(store)
    .fetch(pool);
    let mut current: Option<(String, Chain, bool)> = None;
    while let Some(row) = rows.try_next().await? {
        let event = recorded_event(&row)?;
        let stored: Vec<u8> = row.try_get("hash")?;
        report.events_checked += 1;
        if current
            .as_ref()
            .is_none_or(|(stream, ..)| *stream != event.stream_id)
        {
            report.streams_checked += 1;
            current = Some((event.stream_id.clone(), Chain::default(), false));
        }
        let Some((_, chain, broken)) = current.as_mut() else {
            continue;
        };
        if *broken {
            continue;
        }
        if let Err(chain_break) = chain.link(&event, stored) {
            *broken = true;
            report.breaks.push(LogBreak::Chain {
                stream_id: event.stream_id.clone(),
                position: event.position,
                broken: chain_break.to_string(),
            });
        }
    }
    drop(rows);
    if store.is_none() {
        report.breaks.extend(holes(pool).await?);
    }
    report.breaks.sort_by_key(LogBreak::position);
    Ok(report)
}

/// The runs of positions from 1 to the head that hold no event.
async fn holes(pool: &PgPool) -> Result<Vec<LogBreak>, sqlx::Error> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT previous + 1, position - 1 FROM \
           (SELECT position, lag(position, 1, 0::bigint) OVER (ORDER BY position) AS previous \
            FROM events) AS walk \
         WHERE position > previous + 1",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(first, last)| LogBreak::Hole { first, last })
        .collect())
}
