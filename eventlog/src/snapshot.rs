//! Loading an aggregate's state: the latest snapshot plus the events after it, with a
//! new snapshot written once enough events have accumulated since the last one.

use schemas::{DecodeError, Event};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::{PgPool, Row};
use thiserror::Error;

use crate::read::read_stream;

/// How a stream's events fold into a state. `STATE_VERSION` must change whenever the
/// state's shape does, which makes older snapshots be ignored (and rebuilt).
pub trait Fold {
    type State: Default + Serialize + DeserializeOwned;
    const STATE_VERSION: u16;
    fn apply(state: Self::State, event: &Event) -> Self::State;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<S> {
    pub state: S,
    /// The stream version the state reflects: the `Exact` expectation for the next append.
    pub version: i32,
}

#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("event at version {version} of {stream_id}: {source}")]
    Decode {
        stream_id: String,
        version: i32,
        source: DecodeError,
    },
}

pub async fn load<F: Fold>(
    pool: &PgPool,
    stream_id: &str,
    snapshot_every: i32,
) -> Result<Loaded<F::State>, LoadError> {
    let (mut state, snapshot_version) = match latest_snapshot::<F>(pool, stream_id).await? {
        Some(loaded) => (loaded.state, loaded.version),
        None => (F::State::default(), 0),
    };
    let mut version = snapshot_version;
    for recorded in read_stream(pool, stream_id, snapshot_version + 1).await? {
        let event = recorded.decode().map_err(|source| LoadError::Decode {
            stream_id: stream_id.to_owned(),
            version: recorded.version,
            source,
        })?;
        state = F::apply(state, &event);
        version = recorded.version;
    }
    if version - snapshot_version >= snapshot_every {
        save_snapshot::<F>(pool, stream_id, version, &state).await?;
    }
    Ok(Loaded { state, version })
}

async fn latest_snapshot<F: Fold>(
    pool: &PgPool,
    stream_id: &str,
) -> Result<Option<Loaded<F::State>>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT version, state FROM snapshots WHERE stream_id = $1 AND state_version = $2",
    )
    .bind(stream_id)
    .bind(F::STATE_VERSION as i16)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let version: i32 = row.try_get("version")?;
    let bytes: Vec<u8> = row.try_get("state")?;
    // An undecodable snapshot is only a lost shortcut: fold from the first event instead.
    Ok(postcard::from_bytes(&bytes)
        .ok()
        .map(|state| Loaded { state, version }))
}

async fn save_snapshot<F: Fold>(
    pool: &PgPool,
    stream_id: &str,
    version: i32,
    state: &F::State,
) -> Result<(), sqlx::Error> {
    let Ok(bytes) = postcard::to_allocvec(state) else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO snapshots (stream_id, version, state_version, state) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, \
             state_version = EXCLUDED.state_version, state = EXCLUDED.state, taken_at = now() \
         WHERE snapshots.version < EXCLUDED.version OR snapshots.state_version <> EXCLUDED.state_version",
    )
    .bind(stream_id)
    .bind(version)
    .bind(F::STATE_VERSION as i16)
    .bind(bytes)
    .execute(pool)
    .await?;
    Ok(())
}
