//! What became of each claimed delivery, written in batches: the message moves on
//! (done, retry at, exhausted, back to the queue) and each attempt becomes its
//! `bridge_deliveries` row, in one statement. An exhausted delivery or an endpoint that
//! answered 410 also leaves a notice for the sweeper to turn into an event.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tracing::warn;
use uuid::Uuid;

use crate::attempt::{AttemptResult, Claimed, Verdict};

/// The most outcomes written by one statement.
const BATCH: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Succeeded,
    Exhausted,
    Cancelled,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Exhausted => "exhausted",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Exhausted,
    Gone,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exhausted => "exhausted",
            Self::Gone => "gone",
        }
    }
}

#[derive(Debug)]
pub struct Outcome {
    id: i64,
    claim: Uuid,
    state: State,
    next_at: Option<DateTime<Utc>>,
    attempt: Option<(i32, AttemptResult)>,
    notice: Option<Notice>,
}

impl Outcome {
    /// Not attempted: back to the queue, due after `wait`.
    pub fn released(message: &Claimed, wait: Duration) -> Self {
        Self {
            id: message.id,
            claim: message.claim,
            state: State::Pending,
            next_at: Some(Utc::now() + wait),
            attempt: None,
            notice: None,
        }
    }

    /// Not attempted: its endpoint is disabled or disconnected.
    pub fn cancelled(message: &Claimed) -> Self {
        Self {
            id: message.id,
            claim: message.claim,
            state: State::Cancelled,
            next_at: None,
            attempt: None,
            notice: None,
        }
    }

    /// Attempted; `retry_in` is the wait before the next attempt, if one is left.
    pub fn attempted(message: &Claimed, result: AttemptResult, retry_in: Option<Duration>) -> Self {
        let (state, next_at, notice) = match result.verdict {
            Verdict::Delivered => (State::Succeeded, None, None),
            Verdict::Gone => (State::Cancelled, None, Some(Notice::Gone)),
            Verdict::Failed(_) => match retry_in {
                Some(wait) => (State::Pending, Some(Utc::now() + wait), None),
                None => (
                    State::Exhausted,
                    None,
                    (message.trigger == "scheduled").then_some(Notice::Exhausted),
                ),
            },
        };
        Self {
            id: message.id,
            claim: message.claim,
            state,
            next_at,
            attempt: Some((message.attempt, result)),
            notice,
        }
    }
}

/// Writes outcomes as they come, as many per statement as are waiting. When Postgres
/// is away it keeps retrying; if the process dies meanwhile, the sweeper logs the
/// unrecorded attempts when their leases run out.
pub async fn run_recorder(pool: PgPool, mut outcomes: mpsc::Receiver<Outcome>) {
    let mut batch = Vec::with_capacity(BATCH);
    while outcomes.recv_many(&mut batch, BATCH).await > 0 {
        while let Err(error) = write(&pool, &batch).await {
            warn!(%error, "delivery outcomes not recorded yet; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        batch.clear();
    }
}

async fn write(pool: &PgPool, batch: &[Outcome]) -> Result<(), sqlx::Error> {
    let mut columns = Columns::default();
    for outcome in batch {
        columns.push(outcome);
    }
    sqlx::query(
        "WITH input AS ( \
           SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::timestamptz[], \
             $5::text[], $6::int[], $7::int[], $8::int[], $9::text[], $10::text[], \
             $11::bool[], $12::timestamptz[]) \
           AS i(id, claim, state, next_at, notice, attempt, status_code, latency_ms, excerpt, \
             error, success, attempted_at)), \
         moved AS ( \
           UPDATE bridge_messages m SET state = i.state, \
             next_attempt_at = coalesce(i.next_at, m.next_attempt_at), \
             attempts = CASE WHEN i.attempt IS NULL THEN m.attempts - 1 ELSE m.attempts END, \
             claim = NULL, lease_until = NULL, \
             finished_at = CASE WHEN i.state = 'pending' THEN NULL ELSE now() END \
           FROM input i WHERE m.id = i.id AND m.claim = i.claim AND m.id = ANY($1) \
           RETURNING m.id, m.endpoint_id, m.store_id), \
         logged AS ( \
           INSERT INTO bridge_deliveries (message_id, event_id, event_type, store_id, \
             resource_type, resource_id, endpoint_id, service, attempt, trigger, status_code, \
             latency_ms, response_excerpt, error, success, attempted_at) \
           SELECT m.id, m.event_id, m.event_type, m.store_id, m.resource_type, m.resource_id, \
             m.endpoint_id, m.target, i.attempt, m.trigger, i.status_code, i.latency_ms, \
             i.excerpt, i.error, i.success, i.attempted_at \
           FROM input i JOIN bridge_messages m ON m.id = i.id \
           WHERE i.attempt IS NOT NULL AND m.id = ANY($1)), \
         noticed AS ( \
           INSERT INTO bridge_notices (kind, endpoint_id, store_id, message_id) \
           SELECT i.notice, moved.endpoint_id, moved.store_id, moved.id \
           FROM input i JOIN moved ON moved.id = i.id WHERE i.notice IS NOT NULL) \
         UPDATE bridge_endpoints e SET enabled = false, disabled_reason = 'gone' \
         FROM input i JOIN moved ON moved.id = i.id \
         WHERE i.notice = 'gone' AND e.id = moved.endpoint_id",
    )
    .bind(&columns.ids)
    .bind(&columns.claims)
    .bind(&columns.states)
    .bind(&columns.next_ats)
    .bind(&columns.notices)
    .bind(&columns.attempts)
    .bind(&columns.status_codes)
    .bind(&columns.latencies)
    .bind(&columns.excerpts)
    .bind(&columns.errors)
    .bind(&columns.successes)
    .bind(&columns.attempted_ats)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Default)]
struct Columns {
    ids: Vec<i64>,
    claims: Vec<Uuid>,
    states: Vec<&'static str>,
    next_ats: Vec<Option<DateTime<Utc>>>,
    notices: Vec<Option<&'static str>>,
    attempts: Vec<Option<i32>>,
    status_codes: Vec<Option<i32>>,
    latencies: Vec<Option<i32>>,
    excerpts: Vec<Option<String>>,
    errors: Vec<Option<String>>,
    successes: Vec<Option<bool>>,
    attempted_ats: Vec<Option<DateTime<Utc>>>,
}

impl Columns {
    fn push(&mut self, outcome: &Outcome) {
        self.ids.push(outcome.id);
        self.claims.push(outcome.claim);
        self.states.push(outcome.state.as_str());
        self.next_ats.push(outcome.next_at);
        self.notices.push(outcome.notice.map(Notice::as_str));
        let attempt = outcome.attempt.as_ref();
        self.attempts.push(attempt.map(|(n, _)| *n));
        self.status_codes.push(attempt.map(|(_, r)| r.status_code));
        self.latencies.push(attempt.map(|(_, r)| r.latency_ms));
        self.excerpts
            .push(attempt.and_then(|(_, r)| r.excerpt.clone()));
        self.errors.push(attempt.and_then(|(_, r)| r.error.clone()));
        self.successes
            .push(attempt.map(|(_, r)| r.verdict == Verdict::Delivered));
        self.attempted_ats
            .push(attempt.map(|(_, r)| r.attempted_at));
    }
}
