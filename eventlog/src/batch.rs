//! One group-commit batch: many appends, each with its own checks and result.
//!
//! Every batch writes under one transaction-scoped advisory lock, so batches commit one
//! at a time: positions are `max + 1`, gapless and in commit order. The checks (stream
//! versions, reservations, idempotency keys) are planned from what was read, and the
//! write re-checks what could have gone stale: a head position guard, and the unique
//! constraints on positions, stream versions, reservations and idempotency keys. So a
//! batch can be written optimistically in one autocommit statement (reads before the
//! lock), or inside a transaction that took the lock before reading ([`BEGIN_APPEND`]),
//! where nothing can be stale. One request's conflict is left out of the batch instead
//! of failing the others. A request may append to several streams: its parts are
//! admitted together or not at all.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use chrono::{DateTime, SubsecRound, Utc};
use schemas::RecordedEvent;
use sqlx::{PgConnection, Row};

use crate::{
    APPENDED_CHANNEL,
    append::{AppendError, AppendRequest, Appended, MultiAppendOutcome, UniqueKey},
    hash::chain_hash,
};

/// Opens an append transaction and takes the log's append lock in the same round trip.
/// The key spells "dropship" in ASCII.
pub const BEGIN_APPEND: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; \
                                  SELECT pg_advisory_xact_lock(7237960475384457584)";

/// The result of one request in a batch; `None` when it must wait for the next batch
/// (it reuses an idempotency key an earlier request of the batch claims, or claims a
/// value an earlier request releases).
pub type BatchOutcome = Option<Result<MultiAppendOutcome, AppendError>>;

/// One request of a batch: the parts it appends together, one stream each.
pub type Parts<'a> = &'a [AppendRequest];

fn all_parts<'a>(requests: &'a [Parts<'a>]) -> impl Iterator<Item = &'a AppendRequest> {
    requests.iter().flat_map(|parts| parts.iter())
}

/// Streams known to hold more entries than this are forgotten wholesale.
const KNOWN_STREAMS_LIMIT: usize = 100_000;

/// What a committer knows of the log from its own commits: the head position and the
/// latest version and hash of the streams it wrote. A batch whose streams are all known
/// skips reading them; the insert still checks that the head position is the remembered
/// one, so another process's append turns into an error, after which this is cleared.
#[derive(Debug, Default)]
pub struct KnownHeads {
    position: Option<i64>,
    streams: HashMap<String, StreamHead>,
}

impl KnownHeads {
    fn covers(&self, requests: &[Parts<'_>]) -> Option<i64> {
        let position = self.position?;
        all_parts(requests)
            .all(|r| self.streams.contains_key(&r.stream_id))
            .then_some(position)
    }

    /// Takes in what a committed batch wrote.
    pub(crate) fn learn(&mut self, written: Written) {
        if self.streams.len() + written.heads.len() > KNOWN_STREAMS_LIMIT {
            self.streams.clear();
        }
        self.position = Some(written.head_position);
        self.streams.extend(written.heads);
    }

    pub(crate) fn forget(&mut self) {
        *self = Self::default();
    }
}

/// A batch written but not yet committed: each request's outcome, and what the log's
/// heads will be once it commits.
#[derive(Debug)]
pub struct Written {
    pub outcomes: Vec<BatchOutcome>,
    head_position: i64,
    heads: HashMap<String, StreamHead>,
}

#[derive(Default)]
struct Rows {
    position: Vec<i64>,
    stream_id: Vec<String>,
    version: Vec<i32>,
    event_id: Vec<uuid::Uuid>,
    event_type: Vec<String>,
    schema_version: Vec<i16>,
    store_id: Vec<Option<uuid::Uuid>>,
    payload: Vec<Vec<u8>>,
    metadata: Vec<String>,
    recorded_at: Vec<DateTime<Utc>>,
    hash: Vec<Vec<u8>>,
    remembered: Vec<(String, String, Vec<u8>, String)>,
}

#[derive(Debug, Clone)]
struct StreamHead {
    version: i32,
    hash: Vec<u8>,
}

/// What the batch sees: the log as read (or remembered), plus the effects of the
/// requests of this batch planned so far.
struct Plan {
    now: DateTime<Utc>,
    /// The head position the log had when the batch was planned, checked on insert.
    head_position: i64,
    next_position: i64,
    heads: HashMap<String, StreamHead>,
    /// Reservations as stored when read.
    stored_owners: HashMap<UniqueKey, String>,
    /// Reservations as they stand after the requests planned so far.
    owners: HashMap<UniqueKey, Option<String>>,
    stored_responses: HashMap<(String, String), (Vec<u8>, serde_json::Value)>,
    claimed_keys: HashSet<(String, String)>,
    /// Appends of this batch that an earlier attempt already committed, by their first
    /// event id.
    committed: HashMap<uuid::Uuid, Appended>,
    rows: Rows,
}

/// Whether what a batch reads can be stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Inside a transaction begun with [`BEGIN_APPEND`]: nothing can change meanwhile.
    UnderLock,
    /// Before the lock (autocommit): the write re-checks what it relied on, but a
    /// refusal (a version conflict, a taken value) may rest on stale data and is not
    /// given; the batch is then left unwritten, to be retried under the lock.
    Optimistic,
}

/// Plans and writes `requests` on `conn`. Optimistic writes commit at once (and fail
/// whole if anything they read went stale); under the lock the outcomes hold once the
/// transaction commits. Only then may `known` learn from the result. `None`: an
/// optimistic batch that would refuse a request, unwritten.
pub async fn write_batch(
    conn: &mut PgConnection,
    requests: &[Parts<'_>],
    known: &KnownHeads,
    reads: Reads,
) -> Result<Option<Written>, sqlx::Error> {
    let mut plan = match known.covers(requests) {
        Some(head_position) => Plan::from_known(known, requests, head_position),
        None => Plan::read(conn, requests).await?,
    };
    plan.load_reservations(conn, requests).await?;
    plan.load_idempotency(conn, requests).await?;
    // Under the lock is where a batch goes after a failed attempt, which may have
    // committed all the same (the answer lost with the connection).
    if reads == Reads::UnderLock {
        plan.load_committed(conn, requests).await?;
    }
    let outcomes: Vec<BatchOutcome> = requests.iter().map(|parts| plan.admit(parts)).collect();
    if reads == Reads::Optimistic && outcomes.iter().any(may_rest_on_stale_reads) {
        return Ok(None);
    }
    let head_position = plan.next_position - 1;
    let streams_written: HashSet<&str> = plan.rows.stream_id.iter().map(String::as_str).collect();
    let heads = plan
        .heads
        .iter()
        .filter(|(stream_id, _)| streams_written.contains(stream_id.as_str()))
        .map(|(stream_id, head)| (stream_id.clone(), head.clone()))
        .collect();
    plan.write(conn).await?;
    Ok(Some(Written {
        outcomes,
        head_position,
        heads,
    }))
}

/// Stored idempotency responses are never removed, so a replay is never stale; versions
/// and reservations may have moved since they were read.
fn may_rest_on_stale_reads(outcome: &BatchOutcome) -> bool {
    matches!(
        outcome,
        Some(Err(
            AppendError::VersionConflict { .. } | AppendError::UniqueKeyTaken { .. }
        ))
    )
}

impl Plan {
    fn new(head_position: i64) -> Self {
        Self {
            // Postgres keeps microseconds: the hashed time must be the stored one.
            now: Utc::now().trunc_subsecs(6),
            head_position,
            next_position: head_position + 1,
            heads: HashMap::new(),
            stored_owners: HashMap::new(),
            owners: HashMap::new(),
            stored_responses: HashMap::new(),
            claimed_keys: HashSet::new(),
            committed: HashMap::new(),
            rows: Rows::default(),
        }
    }

    fn from_known(known: &KnownHeads, requests: &[Parts<'_>], head_position: i64) -> Self {
        let mut plan = Self::new(head_position);
        for request in all_parts(requests) {
            if let Some(head) = known.streams.get(&request.stream_id) {
                plan.heads.insert(request.stream_id.clone(), head.clone());
            }
        }
        plan
    }

    async fn read(conn: &mut PgConnection, requests: &[Parts<'_>]) -> Result<Self, sqlx::Error> {
        let streams: Vec<&str> = all_parts(requests).map(|r| r.stream_id.as_str()).collect();
        let rows = sqlx::query(
            "SELECT s.stream_id, h.version, h.hash, \
                    (SELECT coalesce(max(position), 0) FROM events)::bigint AS head \
             FROM unnest($1::text[]) AS s(stream_id) \
             LEFT JOIN LATERAL (SELECT version, hash FROM events e WHERE e.stream_id = s.stream_id \
                                ORDER BY version DESC LIMIT 1) h ON true",
        )
        .bind(&streams)
        .fetch_all(&mut *conn)
        .await?;
        let head_position = match rows.first() {
            Some(row) => row.try_get::<i64, _>("head")?,
            None => 0,
        };
        let mut plan = Self::new(head_position);
        for row in &rows {
            if let Some(version) = row.try_get::<Option<i32>, _>("version")? {
                let stream_id: String = row.try_get("stream_id")?;
                let hash: Vec<u8> = row.try_get("hash")?;
                plan.heads.insert(stream_id, StreamHead { version, hash });
            }
        }
        Ok(plan)
    }

    async fn load_reservations(
        &mut self,
        conn: &mut PgConnection,
        requests: &[Parts<'_>],
    ) -> Result<(), sqlx::Error> {
        let keys: Vec<&UniqueKey> = all_parts(requests)
            .flat_map(|r| r.reserve.iter().chain(&r.release))
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let scopes: Vec<&str> = keys.iter().map(|k| k.scope.as_str()).collect();
        let values: Vec<&str> = keys.iter().map(|k| k.value.as_str()).collect();
        // One index probe per key, whatever the table's size when the plan was cached:
        // `LIMIT 1` (the key is the primary key) keeps the planner from flattening the
        // probe into a hash join over the whole table, and the committer's connection
        // plans no sequential scans (see `committer::prepare`).
        let rows = sqlx::query(
            "SELECT u.scope, u.value, u.stream_id FROM unnest($1::text[], $2::text[]) AS k(scope, value) \
             CROSS JOIN LATERAL (SELECT scope, value, stream_id FROM unique_keys x \
                                 WHERE x.scope = k.scope AND x.value = k.value LIMIT 1) u",
        )
        .bind(&scopes)
        .bind(&values)
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            let key = UniqueKey::new(
                row.try_get::<String, _>("scope")?,
                row.try_get::<String, _>("value")?,
            );
            let owner: String = row.try_get("stream_id")?;
            self.owners.insert(key.clone(), Some(owner.clone()));
            self.stored_owners.insert(key, owner);
        }
        Ok(())
    }

    async fn load_idempotency(
        &mut self,
        conn: &mut PgConnection,
        requests: &[Parts<'_>],
    ) -> Result<(), sqlx::Error> {
        let claims: Vec<_> = all_parts(requests)
            .filter_map(|r| r.idempotency.as_ref())
            .collect();
        if claims.is_empty() {
            return Ok(());
        }
        let scopes: Vec<&str> = claims.iter().map(|c| c.scope.as_str()).collect();
        let keys: Vec<&str> = claims.iter().map(|c| c.key.as_str()).collect();
        let rows = sqlx::query(
            "SELECT i.scope, i.key, i.request_fingerprint, i.response \
             FROM unnest($1::text[], $2::text[]) AS k(scope, key) \
             CROSS JOIN LATERAL (SELECT scope, key, request_fingerprint, response FROM idempotency_keys x \
                                 WHERE x.scope = k.scope AND x.key = k.key LIMIT 1) i",
        )
        .bind(&scopes)
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            self.stored_responses.insert(
                (row.try_get("scope")?, row.try_get("key")?),
                (
                    row.try_get("request_fingerprint")?,
                    row.try_get("response")?,
                ),
            );
        }
        Ok(())
    }

    async fn load_committed(
        &mut self,
        conn: &mut PgConnection,
        requests: &[Parts<'_>],
    ) -> Result<(), sqlx::Error> {
        let ids: Vec<uuid::Uuid> = all_parts(requests)
            .filter_map(|r| r.first_event_id())
            .collect();
        let rows = sqlx::query(
            "SELECT event_id, stream_id, version, position FROM events WHERE event_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            let first: uuid::Uuid = row.try_get("event_id")?;
            let Some(request) = all_parts(requests).find(|r| r.first_event_id() == Some(first))
            else {
                continue;
            };
            // A request's events got consecutive positions and versions.
            let (version, position): (i32, i64) =
                (row.try_get("version")?, row.try_get("position")?);
            let count = request.events.len();
            self.committed.insert(
                first,
                Appended {
                    stream_id: row.try_get("stream_id")?,
                    version: version + i32::try_from(count).unwrap_or(i32::MAX) - 1,
                    positions: (position..).take(count).collect(),
                },
            );
        }
        Ok(())
    }

    fn admit(&mut self, parts: Parts<'_>) -> BatchOutcome {
        if let Err(error) = check_shape(parts) {
            return Some(Err(error));
        }
        for claim in parts.iter().filter_map(|part| part.idempotency.as_ref()) {
            let key = (claim.scope.clone(), claim.key.clone());
            if let Some((fingerprint, response)) = self.stored_responses.get(&key) {
                return Some(if *fingerprint == claim.fingerprint {
                    Ok(MultiAppendOutcome::Replayed(response.clone()))
                } else {
                    Err(AppendError::IdempotencyKeyReused {
                        key: claim.key.clone(),
                    })
                });
            }
            if !self.claimed_keys.insert(key) {
                return None;
            }
        }
        if let Some(appended) = self.committed_earlier(parts) {
            return Some(Ok(MultiAppendOutcome::Appended(appended)));
        }
        // A value released earlier in this batch is claimed in the next one, so that
        // one statement never both deletes and inserts the same reservation.
        if parts
            .iter()
            .flat_map(|part| &part.reserve)
            .any(|key| self.is_released_in_batch(key))
        {
            return None;
        }
        // A lone part fails before it changes the plan; a later part's failure undoes
        // the parts before it.
        let savepoint = (parts.len() > 1).then(|| self.savepoint(parts));
        let mut appended = Vec::with_capacity(parts.len());
        for part in parts {
            match self.append(part) {
                Ok(part_appended) => appended.push(part_appended),
                Err(error) => {
                    if let Some(savepoint) = savepoint {
                        self.roll_back(savepoint);
                    }
                    return Some(Err(error));
                }
            }
        }
        Some(Ok(MultiAppendOutcome::Appended(appended)))
    }

    /// Every part of a request an earlier attempt committed (parts commit together).
    fn committed_earlier(&self, parts: Parts<'_>) -> Option<Vec<Appended>> {
        parts
            .iter()
            .map(|part| {
                let first = part.first_event_id()?;
                self.committed.get(&first).cloned()
            })
            .collect()
    }

    fn savepoint(&self, parts: Parts<'_>) -> Savepoint {
        Savepoint {
            next_position: self.next_position,
            events: self.rows.position.len(),
            remembered: self.rows.remembered.len(),
            heads: parts
                .iter()
                .map(|part| {
                    let head = self.heads.get(&part.stream_id).cloned();
                    (part.stream_id.clone(), head)
                })
                .collect(),
            owners: parts
                .iter()
                .flat_map(|part| part.reserve.iter().chain(&part.release))
                .map(|key| (key.clone(), self.owners.get(key).cloned()))
                .collect(),
        }
    }

    fn roll_back(&mut self, savepoint: Savepoint) {
        self.next_position = savepoint.next_position;
        self.rows.truncate(savepoint.events, savepoint.remembered);
        for (stream_id, head) in savepoint.heads {
            match head {
                Some(head) => self.heads.insert(stream_id, head),
                None => self.heads.remove(&stream_id),
            };
        }
        for (key, owner) in savepoint.owners {
            match owner {
                Some(owner) => self.owners.insert(key, owner),
                None => self.owners.remove(&key),
            };
        }
    }

    /// Plans one part; changes nothing when it fails.
    fn append(&mut self, request: &AppendRequest) -> Result<Appended, AppendError> {
        let head = self.heads.get(&request.stream_id);
        let actual = head.map_or(0, |h| h.version);
        if !request.expected.admits(actual) {
            return Err(AppendError::VersionConflict {
                stream_id: request.stream_id.clone(),
                expected: request.expected,
                actual,
            });
        }
        if let Some(taken) = request
            .reserve
            .iter()
            .find(|key| self.is_owned_by_another(key, &request.stream_id))
        {
            return Err(AppendError::UniqueKeyTaken {
                scope: taken.scope.clone(),
                value: taken.value.clone(),
            });
        }
        let metadata = serde_json::to_string(&request.metadata).map_err(|e| {
            AppendError::Encode(Arc::new(schemas::EncodeError {
                what: "metadata",
                reason: e.to_string(),
            }))
        })?;
        let mut previous_hash = head.map(|h| h.hash.clone()).unwrap_or_default();
        let mut recorded = Vec::with_capacity(request.events.len());
        for (offset, new_event) in (1..).zip(&request.events) {
            let event = RecordedEvent {
                position: self.next_position + i64::from(offset) - 1,
                stream_id: request.stream_id.clone(),
                version: actual + offset,
                event_id: new_event.event_id,
                event_type: new_event.event.event_type().to_owned(),
                schema_version: new_event.event.schema_version(),
                store_id: request.store_id,
                metadata: request.metadata.clone(),
                recorded_at: self.now,
                payload: new_event
                    .event
                    .encode()
                    .map_err(|e| AppendError::Encode(Arc::new(e)))?,
            };
            previous_hash =
                chain_hash(&previous_hash, &event).map_err(|e| AppendError::Encode(Arc::new(e)))?;
            recorded.push((event, previous_hash.clone()));
        }
        let appended = Appended {
            stream_id: request.stream_id.clone(),
            version: actual + (recorded.len() as i32),
            positions: recorded.iter().map(|(e, _)| e.position).collect(),
        };
        self.next_position += recorded.len() as i64;
        self.heads.insert(
            request.stream_id.clone(),
            StreamHead {
                version: appended.version,
                hash: previous_hash,
            },
        );
        for key in &request.reserve {
            self.owners
                .insert(key.clone(), Some(request.stream_id.clone()));
        }
        for key in &request.release {
            if self
                .owners
                .get(key)
                .is_some_and(|owner| owner.as_deref() == Some(&request.stream_id))
            {
                self.owners.insert(key.clone(), None);
            }
        }
        for (event, hash) in recorded {
            self.rows.push(event, hash, &metadata);
        }
        if let Some(claim) = &request.idempotency {
            let response = (claim.respond)(&appended);
            self.rows.remembered.push((
                claim.scope.clone(),
                claim.key.clone(),
                claim.fingerprint.clone(),
                response.to_string(),
            ));
        }
        Ok(appended)
    }

    fn is_owned_by_another(&self, key: &UniqueKey, stream_id: &str) -> bool {
        matches!(self.owners.get(key), Some(Some(owner)) if owner != stream_id)
    }

    fn is_released_in_batch(&self, key: &UniqueKey) -> bool {
        matches!(self.owners.get(key), Some(None)) && self.stored_owners.contains_key(key)
    }

    /// One statement writes everything under the append lock. Its `head` guard fails it
    /// when the log moved since the batch was planned; new reservations are plain
    /// inserts, so a value taken meanwhile fails it too.
    async fn write(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.rows.position.is_empty() {
            return Ok(());
        }
        let mut claimed: Vec<(&UniqueKey, &str)> = Vec::new();
        let mut released: Vec<(&UniqueKey, &str)> = Vec::new();
        for (key, owner) in &self.owners {
            match (self.stored_owners.get(key), owner) {
                (None, Some(owner)) => claimed.push((key, owner)),
                (Some(stored), None) => released.push((key, stored)),
                _ => {}
            }
        }
        let claimed_scope: Vec<&str> = claimed.iter().map(|(k, _)| k.scope.as_str()).collect();
        let claimed_value: Vec<&str> = claimed.iter().map(|(k, _)| k.value.as_str()).collect();
        let claimed_owner: Vec<&str> = claimed.iter().map(|(_, owner)| *owner).collect();
        let released_scope: Vec<&str> = released.iter().map(|(k, _)| k.scope.as_str()).collect();
        let released_value: Vec<&str> = released.iter().map(|(k, _)| k.value.as_str()).collect();
        let released_owner: Vec<&str> = released.iter().map(|(_, owner)| *owner).collect();
        let rows = &self.rows;
        let (rem_scope, rem_key, rem_fingerprint, rem_response) = unzip4(&rows.remembered);
        let last_position = rows.position.last().copied().unwrap_or_default();
        sqlx::query(
            "WITH lock AS MATERIALIZED ( \
                SELECT pg_advisory_xact_lock(7237960475384457584) \
             ), head AS MATERIALIZED ( \
                SELECT (SELECT coalesce(max(position), 0) FROM events) = $24 AS unchanged FROM lock \
             ), new_events AS ( \
                INSERT INTO events (position, stream_id, version, event_id, event_type, schema_version, \
                                    store_id, payload, metadata, recorded_at, hash) \
                SELECT p, s, v, i, t, sv, st, pl, m::jsonb, r, h FROM unnest($1::bigint[], $2::text[], \
                    $3::int[], $4::uuid[], $5::text[], $6::int2[], $7::uuid[], $8::bytea[], $9::text[], \
                    $10::timestamptz[], $11::bytea[]) AS n(p, s, v, i, t, sv, st, pl, m, r, h), head \
                WHERE 1 / head.unchanged::int = 1 \
             ), claimed AS ( \
                INSERT INTO unique_keys (scope, value, stream_id) \
                SELECT c.scope, c.value, c.owner FROM unnest($12::text[], $13::text[], $14::text[]) \
                    AS c(scope, value, owner), head \
             ), released AS ( \
                DELETE FROM unique_keys u WHERE u.ctid = ANY(ARRAY( \
                    SELECT x.ctid FROM unnest($15::text[], $16::text[], $17::text[]) AS r(scope, value, owner) \
                    CROSS JOIN LATERAL (SELECT ctid FROM unique_keys k \
                        WHERE k.scope = r.scope AND k.value = r.value AND k.stream_id = r.owner LIMIT 1) x, head)) \
             ), remembered AS ( \
                INSERT INTO idempotency_keys (scope, key, request_fingerprint, response) \
                SELECT s, k, f, r::jsonb FROM unnest($18::text[], $19::text[], $20::bytea[], $21::text[]) \
                    AS i(s, k, f, r), head \
             ) \
             SELECT pg_notify($22, $23) FROM head",
        )
        // Prepared once per connection. Its cached plan must not depend on the tables'
        // size when it was made (a plan made while `unique_keys` was nearly empty once
        // matched released reservations by scanning all of it): released keys are
        // probed one by one (`LIMIT 1`), and the connection plans no sequential scans.
        .bind(&rows.position)
        .bind(&rows.stream_id)
        .bind(&rows.version)
        .bind(&rows.event_id)
        .bind(&rows.event_type)
        .bind(&rows.schema_version)
        .bind(&rows.store_id)
        .bind(&rows.payload)
        .bind(&rows.metadata)
        .bind(&rows.recorded_at)
        .bind(&rows.hash)
        .bind(&claimed_scope)
        .bind(&claimed_value)
        .bind(&claimed_owner)
        .bind(&released_scope)
        .bind(&released_value)
        .bind(&released_owner)
        .bind(&rem_scope)
        .bind(&rem_key)
        .bind(&rem_fingerprint)
        .bind(&rem_response)
        .bind(APPENDED_CHANNEL)
        .bind(last_position.to_string())
        .bind(self.head_position)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// The plan as it stood before a request's parts, to return to when one fails.
struct Savepoint {
    next_position: i64,
    events: usize,
    remembered: usize,
    heads: Vec<(String, Option<StreamHead>)>,
    owners: Vec<(UniqueKey, Option<Option<String>>)>,
}

/// What no batch could write: no parts or an empty one, a stream twice, one idempotency
/// key twice, or a value that one part releases and another reserves (the write would
/// see the value owned before and after, and move nothing).
fn check_shape(parts: Parts<'_>) -> Result<(), AppendError> {
    if parts.is_empty() || parts.iter().any(|part| part.events.is_empty()) {
        return Err(AppendError::NoEvents);
    }
    if parts.len() == 1 {
        return Ok(());
    }
    let mut streams = HashSet::new();
    let mut keys = HashSet::new();
    for part in parts {
        if !streams.insert(part.stream_id.as_str()) {
            return Err(AppendError::Malformed(format!(
                "stream {} appears twice",
                part.stream_id
            )));
        }
        if let Some(claim) = &part.idempotency
            && !keys.insert((claim.scope.as_str(), claim.key.as_str()))
        {
            return Err(AppendError::Malformed(format!(
                "idempotency key `{}` is claimed twice",
                claim.key
            )));
        }
    }
    let released: HashSet<&UniqueKey> = parts.iter().flat_map(|part| &part.release).collect();
    for part in parts {
        if let Some(moved) = part
            .reserve
            .iter()
            .find(|key| released.contains(key) && !part.release.contains(key))
        {
            return Err(AppendError::Malformed(format!(
                "{} `{}` is released by one part and reserved by another",
                moved.scope, moved.value
            )));
        }
    }
    Ok(())
}

impl Rows {
    fn truncate(&mut self, events: usize, remembered: usize) {
        self.position.truncate(events);
        self.stream_id.truncate(events);
        self.version.truncate(events);
        self.event_id.truncate(events);
        self.event_type.truncate(events);
        self.schema_version.truncate(events);
        self.store_id.truncate(events);
        self.payload.truncate(events);
        self.metadata.truncate(events);
        self.recorded_at.truncate(events);
        self.hash.truncate(events);
        self.remembered.truncate(remembered);
    }

    fn push(&mut self, event: RecordedEvent, hash: Vec<u8>, metadata: &str) {
        self.position.push(event.position);
        self.stream_id.push(event.stream_id);
        self.version.push(event.version);
        self.event_id.push(event.event_id);
        self.event_type.push(event.event_type);
        self.schema_version.push(event.schema_version as i16);
        self.store_id.push(event.store_id);
        self.payload.push(event.payload);
        self.metadata.push(metadata.to_owned());
        self.recorded_at.push(event.recorded_at);
        self.hash.push(hash);
    }
}

fn unzip4<A, B, C, D>(items: &[(A, B, C, D)]) -> (Vec<&A>, Vec<&B>, Vec<&C>, Vec<&D>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (a, b, c, d) in items {
        out.0.push(a);
        out.1.push(b);
        out.2.push(c);
        out.3.push(d);
    }
    out
}
