//! What became of each claimed delivery, written in batches: the message moves on
//! (done, retry at, exhausted, back to the queue) and each attempt becomes its
//! `bridge_deliveries` row, in one statement. An exhausted delivery or an endpoint that
//! answered 410 also leaves a notice for the sweeper to turn into an event.

use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tracing::{error, warn};
use uuid::Uuid;

use crate::attempt::{AttemptResult, Claimed, ERROR_BYTES, Verdict, sanitized};

/// The most outcomes written by one statement.
const BATCH: usize = 512;

/// What the sweeper logs for an attempt whose relay stopped before recording it.
pub const OUTCOME_UNKNOWN: &str =
    "the relay stopped during this attempt: the outcome is unknown and it may have been received";

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
    details_dropped: bool,
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
            details_dropped: false,
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
            details_dropped: false,
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
            details_dropped: false,
        }
    }

    /// Replaces the response excerpt and error with why they are missing; false when
    /// that was done already.
    fn drop_details(&mut self, refusal: &sqlx::Error) -> bool {
        if std::mem::replace(&mut self.details_dropped, true) {
            return false;
        }
        if let Some((_, result)) = self.attempt.as_mut() {
            result.excerpt = None;
            result.error = Some(sanitized(
                &format!("the attempt's details could not be recorded: {refusal}"),
                ERROR_BYTES,
            ));
        }
        true
    }
}

/// Writes outcomes as they come, as many per statement as are waiting. When Postgres
/// is away it keeps retrying; if the process dies meanwhile, the sweeper logs the
/// unrecorded attempts when their leases run out. A batch that Postgres refuses for its
/// data is split until the refused outcome stands alone, which is then recorded without
/// the receiver's text, or skipped: one receiver's answer never stops the others' log.
pub async fn run_recorder(pool: PgPool, mut outcomes: mpsc::Receiver<Outcome>) {
    let mut batch = Vec::with_capacity(BATCH);
    while outcomes.recv_many(&mut batch, BATCH).await > 0 {
        record(&pool, &mut batch).await;
        batch.clear();
    }
}

async fn record(pool: &PgPool, batch: &mut [Outcome]) {
    // Parts of the batch still to write, as ranges; the last is written next.
    let mut parts = Vec::new();
    parts.push(0..batch.len());
    while let Some(part) = parts.pop() {
        let error = match write(pool, &batch[part.clone()]).await {
            Ok(()) => continue,
            Err(error) => error,
        };
        if !refused_for_its_data(&error) {
            warn!(%error, "delivery outcomes not recorded yet; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
            parts.push(part);
        } else if part.len() > 1 {
            let middle = part.start + part.len() / 2;
            parts.push(middle..part.end);
            parts.push(part.start..middle);
        } else if batch[part.start].drop_details(&error) {
            warn!(%error, message = batch[part.start].id, "delivery outcome refused; recording it without the response");
            parts.push(part);
        } else {
            error!(%error, message = batch[part.start].id, "delivery outcome refused; skipped (the sweeper logs it as unknown)");
        }
    }
}

/// A refusal about the rows themselves (bad data, a violated constraint), as opposed
/// to Postgres being away, overloaded or restarting, which waiting cures.
fn refused_for_its_data(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(error) = error else {
        return false;
    };
    let class = error
        .code()
        .map(|code| code.chars().take(2).collect::<String>());
    !matches!(
        class.as_deref(),
        None | Some("08" | "40" | "53" | "55" | "57" | "58" | "XX")
    )
}

async fn write(pool: &PgPool, batch: &[Outcome]) -> Result<(), sqlx::Error> {
    let mut columns = Columns::default();
    for outcome in batch {
        columns.push(outcome);
    }
    // `moved` holds the outcomes whose claim is still theirs: only those move their
    // message on and log their attempt. The others are late (see `correct_late`).
    let moved: Vec<i64> = sqlx::query_scalar(
        "WITH moved AS ( \
           UPDATE bridge_messages m SET state = i.state, \
             next_attempt_at = coalesce(i.next_at, m.next_attempt_at), \
             attempts = CASE WHEN i.attempt IS NULL THEN m.attempts - 1 ELSE m.attempts END, \
             claim = NULL, lease_until = NULL, \
             finished_at = CASE WHEN i.state = 'pending' THEN NULL ELSE now() END \
           FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::timestamptz[], \
             $5::text[], $6::int[], $7::int[], $8::int[], $9::text[], $10::text[], \
             $11::bool[], $12::timestamptz[]) \
             AS i(id, claim, state, next_at, notice, attempt, status_code, latency_ms, excerpt, \
               error, success, attempted_at) \
           WHERE m.id = i.id AND m.claim = i.claim AND m.id = ANY($1) \
           RETURNING m.id, m.endpoint_id, m.store_id, m.event_id, m.event_type, \
             m.resource_type, m.resource_id, m.target, m.trigger, i.notice, i.attempt, \
             i.status_code, i.latency_ms, i.excerpt, i.error, i.success, i.attempted_at), \
         logged AS ( \
           INSERT INTO bridge_deliveries (message_id, event_id, event_type, store_id, \
             resource_type, resource_id, endpoint_id, service, attempt, trigger, status_code, \
             latency_ms, response_excerpt, error, success, attempted_at) \
           SELECT id, event_id, event_type, store_id, resource_type, resource_id, \
             endpoint_id, target, attempt, trigger, status_code, latency_ms, excerpt, error, \
             success, attempted_at \
           FROM moved WHERE attempt IS NOT NULL), \
         noticed AS ( \
           INSERT INTO bridge_notices (kind, endpoint_id, store_id, message_id) \
           SELECT notice, endpoint_id, store_id, id FROM moved WHERE notice IS NOT NULL), \
         gone AS ( \
           UPDATE bridge_endpoints e SET enabled = false, disabled_reason = 'gone' \
           WHERE e.id = ANY(ARRAY(SELECT endpoint_id FROM moved WHERE notice = 'gone'))) \
         SELECT id FROM moved",
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
    .fetch_all(pool)
    .await?;
    let moved: HashSet<i64> = moved.into_iter().collect();
    let late: Vec<&Outcome> = batch
        .iter()
        .filter(|outcome| outcome.attempt.is_some() && !moved.contains(&outcome.id))
        .collect();
    if late.is_empty() {
        return Ok(());
    }
    correct_late(pool, &late).await
}

/// Attempts whose lease ran out before their outcome came: the sweeper logged each as
/// an attempt of unknown outcome. What really happened replaces that row (the attempt
/// is logged once), and a late success finishes its message so it is not sent again.
async fn correct_late(pool: &PgPool, late: &[&Outcome]) -> Result<(), sqlx::Error> {
    let mut columns = Columns::default();
    for outcome in late {
        columns.push(outcome);
    }
    sqlx::query(
        "WITH late AS ( \
           SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], $4::int[], $5::text[], \
             $6::text[], $7::bool[], $8::timestamptz[]) \
           AS l(id, attempt, status_code, latency_ms, excerpt, error, success, attempted_at)), \
         corrected AS ( \
           UPDATE bridge_deliveries d SET status_code = l.status_code, \
             latency_ms = l.latency_ms, response_excerpt = l.excerpt, error = l.error, \
             success = l.success, attempted_at = l.attempted_at \
           FROM late l WHERE d.message_id = l.id AND d.attempt = l.attempt \
             AND d.status_code = 0 AND d.error = $9 AND d.message_id = ANY($1)) \
         UPDATE bridge_messages m SET state = 'succeeded', finished_at = now() \
         FROM late l WHERE m.id = l.id AND l.success AND m.claim IS NULL \
           AND m.attempts = l.attempt AND m.state IN ('pending', 'exhausted') \
           AND m.id = ANY($1)",
    )
    .bind(&columns.ids)
    .bind(&columns.attempts)
    .bind(&columns.status_codes)
    .bind(&columns.latencies)
    .bind(&columns.excerpts)
    .bind(&columns.errors)
    .bind(&columns.successes)
    .bind(&columns.attempted_ats)
    .bind(OUTCOME_UNKNOWN)
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

#[cfg(test)]
mod tests {
    use eventlog::jetstream::StreamNames;

    use super::*;
    use crate::{config::DeliverySettings, config::RelayConfig, sweeper::recover_expired};

    /// A message claimed for its first attempt, its lease ending in `lease_secs`.
    async fn claimed(pool: &PgPool, lease_secs: f64) -> Claimed {
        let (claim, event_id, endpoint_id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bridge_messages (event_id, event_type, store_id, resource_type, \
               resource_id, event_at, endpoint_id, target, trigger, state, attempts, \
               max_attempts, next_attempt_at, claim, lease_until) \
             VALUES ($1, 'product.created', $2, 'product', 'p', now(), $3, 'rankpilot', \
               'scheduled', 'delivering', 1, 5, now(), $4, \
               now() + make_interval(secs => $5)) RETURNING id",
        )
        .bind(event_id)
        .bind(Uuid::now_v7())
        .bind(endpoint_id)
        .bind(claim)
        .bind(lease_secs)
        .fetch_one(pool)
        .await
        .expect("a queued message");
        Claimed {
            id,
            claim,
            event_id,
            event_type: "product.created".into(),
            endpoint_id,
            trigger: "scheduled".into(),
            body: "{}".into(),
            attempt: 1,
            max_attempts: 5,
        }
    }

    fn answered(status_code: i32, excerpt: &str) -> AttemptResult {
        AttemptResult {
            status_code,
            latency_ms: 7,
            excerpt: Some(excerpt.to_owned()),
            error: None,
            verdict: if status_code == 200 {
                Verdict::Delivered
            } else {
                Verdict::Failed(crate::schedule::FailureKind::Other)
            },
            retry_after: None,
            attempted_at: Utc::now(),
        }
    }

    async fn logged(pool: &PgPool, message: &Claimed) -> Vec<(i32, i32, bool, Option<String>)> {
        sqlx::query_as(
            "SELECT attempt, status_code, success, response_excerpt FROM bridge_deliveries \
             WHERE message_id = $1 ORDER BY id",
        )
        .bind(message.id)
        .fetch_all(pool)
        .await
        .expect("the log")
    }

    #[sqlx::test(migrator = "eventlog::MIGRATOR")]
    async fn an_outcome_arriving_after_its_lease_ran_out_replaces_the_unknown_attempt(
        pool: PgPool,
    ) {
        let message = claimed(&pool, -1.0).await;
        let config = RelayConfig::new(
            StreamNames::new("UNUSED", "unused"),
            Vec::new(),
            DeliverySettings::default(),
        );
        recover_expired(&pool, &config).await.expect("swept");
        assert_eq!(
            logged(&pool, &message).await,
            [(1, 0, false, None)],
            "logged as unknown"
        );

        let late = Outcome::attempted(&message, answered(200, "ok"), None);
        write(&pool, &[late]).await.expect("recorded");
        assert_eq!(
            logged(&pool, &message).await,
            [(1, 200, true, Some("ok".to_owned()))],
            "one attempt, as it really went"
        );
        let state: String = sqlx::query_scalar("SELECT state FROM bridge_messages WHERE id = $1")
            .bind(message.id)
            .fetch_one(&pool)
            .await
            .expect("the message");
        assert_eq!(state, "succeeded", "not sent again");
    }

    #[sqlx::test(migrator = "eventlog::MIGRATOR")]
    async fn an_outcome_postgres_refuses_is_isolated_and_the_rest_of_its_batch_recorded(
        pool: PgPool,
    ) {
        let mut messages = Vec::new();
        for _ in 0..3 {
            messages.push(claimed(&pool, 60.0).await);
        }
        // A NUL only sanitising would have removed: Postgres refuses it in `text`.
        let mut batch: Vec<Outcome> = messages
            .iter()
            .zip(["fine", "a\0b", "also fine"])
            .map(|(message, excerpt)| Outcome::attempted(message, answered(500, excerpt), None))
            .collect();
        tokio::time::timeout(Duration::from_secs(10), record(&pool, &mut batch))
            .await
            .expect("never retried forever");
        assert_eq!(
            logged(&pool, &messages[0]).await[0].3.as_deref(),
            Some("fine")
        );
        assert_eq!(
            logged(&pool, &messages[2]).await[0].3.as_deref(),
            Some("also fine")
        );
        let refused = &logged(&pool, &messages[1]).await;
        assert_eq!(
            (refused[0].1, refused[0].3.as_deref()),
            (500, None),
            "logged without the body"
        );
    }
}
