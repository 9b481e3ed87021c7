//! The delivery loop: claims due deliveries from the queue (`FOR UPDATE SKIP LOCKED`,
//! skipping endpoints whose circuit is open and taking no more per endpoint than its
//! window has room for), admits each through its endpoint's guards, and sends every
//! admitted one on a task of its own, so a slow or dead endpoint only ever holds its own
//! slots.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use domain::integration::Target;
use rand::Rng;
use sqlx::{PgPool, Row};
use tokio::{
    sync::{Notify, Semaphore, mpsc},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;
use tracing::warn;
use uuid::Uuid;

use crate::{
    attempt::{Claimed, Destination, Sender, Verdict},
    config::RelayConfig,
    guards::{Admission, Capacity, Guards},
    record::Outcome,
    schedule::{FailureKind, Retry},
    signing::secret_key,
};

/// The most deliveries claimed by one statement.
const CLAIM_BATCH: usize = 512;
/// How often the queue is looked at without being told (retries falling due).
const POLL: Duration = Duration::from_millis(200);
/// After an attempt finishes, how long and for how many more the loop waits before
/// claiming again.
const REFILL_WAIT: Duration = Duration::from_millis(2);
const REFILL_BATCH: usize = 32;

/// One HTTP client per address policy: each resolves names through its own policy.
pub struct Clients {
    pub services: reqwest::Client,
    pub webhooks: reqwest::Client,
}

pub struct Dispatcher {
    pub pool: PgPool,
    pub clients: Clients,
    pub config: Arc<RelayConfig>,
    pub guards: Arc<Guards>,
    pub outcomes: mpsc::Sender<Outcome>,
    pub ready: Arc<Notify>,
}

impl Dispatcher {
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.config.delivery.max_in_flight));
        let this = Arc::new(self);
        let mut tasks = JoinSet::new();
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            let capacity = this.guards.capacity(Instant::now());
            let limit = slots
                .available_permits()
                .min(CLAIM_BATCH)
                .min(capacity.claimable(this.guards.initial_window()));
            let mut backlog = false;
            if limit > 0 {
                match this.claim(limit, &capacity).await {
                    Ok(claimed) => {
                        backlog = claimed.len() == limit;
                        this.start(claimed, &slots, &mut tasks).await;
                    }
                    Err(error) => warn!(%error, "cannot claim deliveries; retrying"),
                }
            }
            if backlog && slots.available_permits() > 0 {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = this.ready.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    // A finished attempt frees a slot: let a few more finish so that one
                    // claim refills many.
                    let until = tokio::time::Instant::now() + REFILL_WAIT;
                    for _ in 0..REFILL_BATCH {
                        match tokio::time::timeout_at(until, tasks.join_next()).await {
                            Ok(Some(_)) => {}
                            _ => break,
                        }
                    }
                }
            }
        }
        // Attempts under way finish (within their timeout) and are recorded.
        while tasks.join_next().await.is_some() {}
    }

    /// Ranks the due head of the queue per endpoint without locking it, then locks and
    /// claims exactly the rows allowed, reaching each by its address (`ctid`): a row's
    /// address is the one access path the planner always takes, however stale the
    /// queue's statistics. The state is compared with a sub-select rather than a
    /// constant so that the partial queue index cannot serve (and slow) that step; it is
    /// still rechecked on the newest version of a row another claim moved meanwhile.
    async fn claim(
        &self,
        limit: usize,
        capacity: &Capacity,
    ) -> Result<Vec<(Claimed, Option<Destination>)>, sqlx::Error> {
        let (limited_ids, limited_free): (Vec<Uuid>, Vec<i32>) =
            capacity.limited.iter().copied().unzip();
        let claim = Uuid::new_v4();
        let rows = sqlx::query(
            "WITH due AS ( \
               SELECT ctid AS row_at, id, endpoint_id, next_attempt_at FROM bridge_messages \
               WHERE state = 'pending' AND next_attempt_at <= now() \
                 AND NOT (endpoint_id = ANY($2)) \
               ORDER BY next_attempt_at LIMIT $1 * 4), \
             ranked AS ( \
               SELECT row_at, endpoint_id, next_attempt_at, \
                 row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS rank \
               FROM due), \
             allowed AS ( \
               SELECT r.row_at FROM ranked r \
               LEFT JOIN unnest($3::uuid[], $4::int[]) AS f(endpoint_id, free) USING (endpoint_id) \
               WHERE r.rank <= coalesce(f.free, $5) ORDER BY r.next_attempt_at LIMIT $1), \
             taken AS ( \
               SELECT ctid AS row_at FROM bridge_messages \
               WHERE ctid = ANY(ARRAY(SELECT row_at FROM allowed)) \
                 AND state = (SELECT 'pending'::text) \
               FOR UPDATE SKIP LOCKED), \
             claimed AS ( \
               UPDATE bridge_messages m SET state = 'delivering', attempts = m.attempts + 1, \
                 claim = $6, lease_until = now() + make_interval(secs => $7) \
               WHERE m.ctid = ANY(ARRAY(SELECT row_at FROM taken)) \
               RETURNING m.id, m.event_id, m.event_type, m.endpoint_id, m.trigger, \
                 m.attempts, m.max_attempts) \
             SELECT c.*, \
               (SELECT body FROM bridge_bodies b WHERE b.event_id = c.event_id) AS body, \
               e.url, e.target, e.enabled, e.secret, e.previous_secret \
             FROM claimed c \
             LEFT JOIN LATERAL ( \
               SELECT e.url, e.target, e.enabled, \
                 (SELECT secret FROM integration_secrets s WHERE s.id = e.secret_id) AS secret, \
                 (SELECT secret FROM integration_secrets p WHERE p.id = e.previous_secret_id \
                    AND e.previous_secret_until > now()) AS previous_secret \
               FROM bridge_endpoints e WHERE e.id = c.endpoint_id) e ON true",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(&capacity.excluded)
        .bind(&limited_ids)
        .bind(&limited_free)
        .bind(i32::try_from(self.guards.initial_window()).unwrap_or(i32::MAX))
        .bind(claim)
        .bind(self.config.lease().as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            // A body is missing only when it was removed under a queued message: there
            // is nothing left to send, so the delivery is cancelled.
            let body: Option<String> = row.try_get("body")?;
            let sendable = body.is_some();
            let message = Claimed {
                id: row.try_get("id")?,
                claim,
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                endpoint_id: row.try_get("endpoint_id")?,
                trigger: row.try_get("trigger")?,
                body: body.unwrap_or_default(),
                attempt: row.try_get("attempts")?,
                max_attempts: row.try_get("max_attempts")?,
            };
            let enabled: Option<bool> = row.try_get("enabled")?;
            let destination = match (enabled, row.try_get::<Option<String>, _>("url")?) {
                (Some(true), Some(url)) if sendable => {
                    let target: String = row.try_get("target")?;
                    let keys = [
                        row.try_get::<Option<String>, _>("secret")?,
                        row.try_get("previous_secret")?,
                    ]
                    .into_iter()
                    .flatten()
                    .filter_map(|secret| secret_key(&secret))
                    .collect();
                    Some(self.destination(&target, url, keys))
                }
                _ => None,
            };
            claimed.push((message, destination));
        }
        Ok(claimed)
    }

    /// A webhook is reached at its own URL; a service at the platform's address for it,
    /// whatever its integration once recorded.
    fn destination(&self, target: &str, url: String, keys: Vec<Vec<u8>>) -> Destination {
        let service = match Target::parse(target) {
            Some(Target::Service(service)) => Some(service),
            _ => None,
        };
        Destination {
            url: match service {
                Some(service) => self
                    .config
                    .delivery
                    .service_urls
                    .url_of(service)
                    .map(str::to_owned),
                None => Some(url),
            },
            service,
            keys,
        }
    }

    async fn start(
        self: &Arc<Self>,
        claimed: Vec<(Claimed, Option<Destination>)>,
        slots: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
    ) {
        for (message, destination) in claimed {
            let Some(destination) = destination else {
                self.report(Outcome::cancelled(&message)).await;
                continue;
            };
            // Never fails: no more were claimed than there were free slots.
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                self.report(Outcome::released(&message, Duration::ZERO))
                    .await;
                continue;
            };
            match self.guards.admit(message.endpoint_id, Instant::now()) {
                Admission::Later(wait) => self.report(Outcome::released(&message, wait)).await,
                Admission::Go(endpoint_slots) => {
                    let this = Arc::clone(self);
                    tasks.spawn(async move {
                        let _slot = slot;
                        // Closed never: the guard owns the semaphore for as long as it lives.
                        let Ok(_endpoint_slot) = endpoint_slots.acquire_owned().await else {
                            return;
                        };
                        this.deliver(message, destination).await;
                    });
                }
            }
        }
    }

    async fn deliver(&self, message: Claimed, destination: Destination) {
        let delivery = &self.config.delivery;
        let (client, addresses) = match destination.service {
            Some(_) => (&self.clients.services, &delivery.service_addresses),
            None => (&self.clients.webhooks, &delivery.webhook_addresses),
        };
        let sender = Sender {
            client,
            addresses,
            platform_secret: &self.config.platform_secret,
            legacy_platform_signature: delivery.legacy_platform_signature,
            timeout: delivery.timeout,
        };
        let result = sender.attempt(&message, &destination).await;
        let delivered = result.verdict == Verdict::Delivered;
        self.guards
            .finished(message.endpoint_id, delivered, Instant::now());
        let retry_in = match result.verdict {
            Verdict::Failed(kind)
                if message.attempt < message.max_attempts && message.trigger == "scheduled" =>
            {
                self.retry_wait(message.attempt, kind, result.retry_after)
            }
            _ => None,
        };
        self.report(Outcome::attempted(&message, result, retry_in))
            .await;
    }

    fn retry_wait(
        &self,
        attempts: i32,
        kind: FailureKind,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let retry = Retry {
            schedule: &self.config.delivery.retry_schedule,
            throttle_wait: self.config.delivery.throttle_wait,
        };
        let jitter = rand::rng().random_range(-1.0..=1.0);
        retry.next_wait(
            usize::try_from(attempts).unwrap_or(usize::MAX),
            kind,
            retry_after,
            jitter,
        )
    }

    async fn report(&self, outcome: Outcome) {
        if self.outcomes.send(outcome).await.is_err() {
            warn!("the recorder stopped; the sweeper will log this attempt when its lease ends");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use eventlog::jetstream::StreamNames;

    use super::*;
    use crate::{config::DeliverySettings, guards::GuardConfig};

    fn dispatcher(pool: &PgPool) -> Dispatcher {
        let (outcomes, _) = mpsc::channel(1);
        Dispatcher {
            pool: pool.clone(),
            clients: Clients {
                services: reqwest::Client::new(),
                webhooks: reqwest::Client::new(),
            },
            config: Arc::new(RelayConfig::new(
                StreamNames::new("UNUSED", "unused"),
                Vec::new(),
                DeliverySettings::default(),
            )),
            guards: Arc::new(Guards::new(GuardConfig {
                concurrency: 32,
                rate: 1_000_000.0,
                failures: 5,
                cooldown: Duration::from_secs(10),
            })),
            outcomes,
            ready: Arc::new(Notify::new()),
        }
    }

    /// `per_endpoint` due deliveries to each of `endpoints`.
    async fn queue(pool: &PgPool, endpoints: &[Uuid], per_endpoint: i32) {
        sqlx::query(
            "INSERT INTO bridge_messages (event_id, event_type, store_id, resource_type, \
               resource_id, event_at, endpoint_id, target, trigger, max_attempts, \
               next_attempt_at) \
             SELECT gen_random_uuid(), 'product.created', gen_random_uuid(), 'product', 'p', \
               now(), e.id, 'rankpilot', 'scheduled', 5, now() - interval '1 second' \
             FROM unnest($1::uuid[]) AS e(id), generate_series(1, $2)",
        )
        .bind(endpoints)
        .bind(per_endpoint)
        .execute(pool)
        .await
        .expect("queued");
    }

    #[sqlx::test(migrator = "eventlog::MIGRATOR")]
    async fn claims_racing_each_other_take_every_due_delivery_exactly_once(pool: PgPool) {
        let endpoints: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        queue(&pool, &endpoints, 300).await;
        let (first, second) = (dispatcher(&pool), dispatcher(&pool));
        let everyone = Capacity {
            excluded: Vec::new(),
            limited: endpoints.iter().map(|id| (*id, 1_000)).collect(),
        };
        let mut taken = Vec::new();
        loop {
            let (a, b) = tokio::join!(first.claim(100, &everyone), second.claim(100, &everyone));
            let (a, b) = (a.expect("a claim"), b.expect("a claim"));
            if a.is_empty() && b.is_empty() {
                break;
            }
            taken.extend(a.iter().chain(&b).map(|(message, _)| message.id));
        }
        let distinct: HashSet<i64> = taken.iter().copied().collect();
        assert_eq!(distinct.len(), taken.len(), "no delivery claimed twice");
        assert_eq!(taken.len(), 1_200, "every due delivery claimed");
        let states: Vec<(String, i32, i64)> =
            sqlx::query_as("SELECT state, attempts, count(*) FROM bridge_messages GROUP BY 1, 2")
                .fetch_all(&pool)
                .await
                .expect("the queue");
        assert_eq!(states, [("delivering".to_owned(), 1, 1_200)]);
    }

    #[sqlx::test(migrator = "eventlog::MIGRATOR")]
    async fn a_claim_takes_no_more_per_endpoint_than_it_has_room_for(pool: PgPool) {
        let (busy, fresh, full) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        queue(&pool, &[busy, fresh, full], 50).await;
        let capacity = Capacity {
            excluded: vec![full],
            limited: vec![(busy, 3)],
        };
        let dispatcher = dispatcher(&pool);
        let claimed = dispatcher.claim(512, &capacity).await.expect("a claim");
        let count = |endpoint: Uuid| {
            claimed
                .iter()
                .filter(|(message, _)| message.endpoint_id == endpoint)
                .count()
        };
        assert_eq!(count(busy), 3, "its free window");
        assert_eq!(
            count(fresh),
            dispatcher.guards.initial_window(),
            "an endpoint not in flight"
        );
        assert_eq!(count(full), 0, "no room");
        assert!(
            claimed
                .iter()
                .all(|(message, destination)| message.attempt == 1 && destination.is_none()),
            "unknown endpoints are not sent to"
        );
    }
}
