//! A push subscriber's view of a store's events, shared by the Server-Sent Events and
//! WebSocket transports: from where the client was on, each event once and in log
//! order. It first catches up from the log, a page at a time as fast as the client
//! reads, then follows the process's tail. A client too slow for the tail's buffer is
//! told the position it reached and the subscription ends: it reconnects from there and
//! misses nothing.

use api_core::{ApiError, auth::Principal, resource_id};
use axum::http::HeaderMap;
use eventlog::{LogFilter, read_filtered};
use futures::{Stream, StreamExt, stream};
use schemas::{RecordedEvent, public::PublicEvent};
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::IntoParams;
use uuid::Uuid;

use super::{parse_after, parse_types, tail::Batch};
use crate::{catalog::require_own_store, state::QueryState};

const CATCH_UP_PAGE: i64 = 500;

/// What a subscriber is sent.
pub(super) enum Delivery {
    Event {
        position: i64,
        event_type: String,
        /// The event as the events list renders it, serialized once.
        json: String,
    },
    /// The client fell too far behind: it resumes after this position. Always the last.
    Resume { after: i64 },
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscriptionQuery {
    /// Events after this log position; `Last-Event-ID` takes precedence. Without either,
    /// only events written from now on.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Comma-separated event types; every type when absent.
    pub types: Option<String>,
}

/// Where a subscription starts and what it selects; `after: None` is the log's head.
pub(super) struct Request {
    store_id: Uuid,
    after: Option<i64>,
    types: Vec<String>,
}

impl Request {
    pub(super) fn parse(
        store_id: &str,
        headers: &HeaderMap,
        query: SubscriptionQuery,
    ) -> Result<Self, ApiError> {
        let store_id = resource_id(store_id)?;
        let last_event_id = headers
            .get("last-event-id")
            .map(|value| value.to_str().unwrap_or_default());
        let mut errors = Vec::new();
        let after = parse_after(last_event_id, query.after, &mut errors);
        let types = parse_types(query.types.as_deref(), &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(Self {
            store_id,
            after,
            types,
        })
    }
}

/// The deliveries of `request` for `principal`, until the process shuts down; the
/// store must be the principal's.
pub(super) async fn open(
    state: &QueryState,
    principal: &Principal,
    request: Request,
) -> Result<impl Stream<Item = Delivery> + Send + use<>, ApiError> {
    require_own_store(state, principal, request.store_id).await?;
    let live = state.tail.subscribe();
    let after = match request.after {
        Some(after) => after,
        None => eventlog::head_position(&state.pool)
            .await
            .map_err(ApiError::internal)?,
    };
    let subscription = Subscription {
        pool: state.pool.clone(),
        filter: LogFilter {
            store_id: Some(request.store_id),
            types: request.types,
            ..LogFilter::default()
        },
        sent: after,
        considered: after,
        phase: Phase::CatchingUp,
        live,
    };
    Ok(stream::unfold(subscription, Subscription::next)
        .flat_map(stream::iter)
        .take_until(state.tail.shutdown().cancelled_owned()))
}

enum Phase {
    CatchingUp,
    /// `fresh` until the first live batch: a lag then is the catching up having taken
    /// longer than the buffer holds, and reading the log again closes it.
    Following {
        fresh: bool,
    },
    Ended,
}

struct Subscription {
    pool: sqlx::PgPool,
    filter: LogFilter,
    /// The position of the last event sent.
    sent: i64,
    /// Every position up to here was read (sent, or not the client's): a live batch that
    /// starts beyond the next one leaves a gap to read from the log.
    considered: i64,
    phase: Phase,
    live: broadcast::Receiver<Batch>,
}

impl Subscription {
    /// The next deliveries, or `None` once the subscription is over.
    async fn next(mut self) -> Option<(Vec<Delivery>, Self)> {
        loop {
            match self.phase {
                Phase::Ended => return None,
                Phase::CatchingUp => {
                    // Read before the page: once a page is short, every event up to this
                    // head is in it or was sent before (positions become visible in order).
                    let head = eventlog::head_position(&self.pool).await;
                    let page =
                        read_filtered(&self.pool, self.sent, &self.filter, CATCH_UP_PAGE).await;
                    let (Ok(head), Ok(page)) = (head, page) else {
                        return self.resume();
                    };
                    if (page.len() as i64) < CATCH_UP_PAGE {
                        self.considered = head;
                        self.phase = Phase::Following { fresh: true };
                    }
                    if let Some(deliveries) = self.deliveries(page.iter()) {
                        return Some((deliveries, self));
                    }
                }
                Phase::Following { fresh } => match self.live.recv().await {
                    Ok(batch) => {
                        self.phase = Phase::Following { fresh: false };
                        let first = batch.first().map_or(i64::MAX, |event| event.position);
                        if first > self.considered + 1 {
                            // The tail (woken by this subscriber) started after what the
                            // catching up read: read the log again rather than leave a gap.
                            self.phase = Phase::CatchingUp;
                            continue;
                        }
                        self.considered = self
                            .considered
                            .max(batch.last().map_or(0, |event| event.position));
                        let filter = &self.filter;
                        let mine: Vec<&RecordedEvent> = batch
                            .iter()
                            .filter(|event| {
                                event.store_id == filter.store_id
                                    && (filter.types.is_empty()
                                        || filter.types.contains(&event.event_type))
                            })
                            .collect();
                        if let Some(deliveries) = self.deliveries(mine.into_iter()) {
                            return Some((deliveries, self));
                        }
                    }
                    Err(RecvError::Lagged(_)) if fresh => self.phase = Phase::CatchingUp,
                    Err(RecvError::Lagged(_)) => return self.resume(),
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// The events after what was sent; `None` when none is new.
    fn deliveries<'a>(
        &mut self,
        events: impl Iterator<Item = &'a RecordedEvent>,
    ) -> Option<Vec<Delivery>> {
        let mut deliveries = Vec::new();
        for event in events {
            if event.position <= self.sent {
                continue;
            }
            let Ok(json) = serde_json::to_string(&PublicEvent::from(event)) else {
                continue;
            };
            self.sent = event.position;
            deliveries.push(Delivery::Event {
                position: event.position,
                event_type: event.event_type.clone(),
                json,
            });
        }
        (!deliveries.is_empty()).then_some(deliveries)
    }

    fn resume(mut self) -> Option<(Vec<Delivery>, Self)> {
        self.phase = Phase::Ended;
        let after = self.sent;
        Some((vec![Delivery::Resume { after }], self))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use eventlog::{EventLog, GroupCommitConfig, read_after};
    use testkit::append_to_store;

    use super::*;

    /// A subscription of `store_id` after `sent`, fed by `live`.
    fn subscription(
        pool: &sqlx::PgPool,
        store_id: Uuid,
        sent: i64,
        phase: Phase,
        live: broadcast::Receiver<Batch>,
    ) -> Subscription {
        Subscription {
            pool: pool.clone(),
            filter: LogFilter {
                store_id: Some(store_id),
                ..LogFilter::default()
            },
            sent,
            considered: sent,
            phase,
            live,
        }
    }

    async fn delivered(subscription: Subscription) -> (Vec<Delivery>, Subscription) {
        Subscription::next(subscription).await.unwrap()
    }

    fn positions(deliveries: &[Delivery]) -> Vec<i64> {
        deliveries
            .iter()
            .filter_map(|delivery| match delivery {
                Delivery::Event { position, .. } => Some(*position),
                Delivery::Resume { .. } => None,
            })
            .collect()
    }

    async fn batch_after(pool: &sqlx::PgPool, position: i64) -> Batch {
        read_after(pool, position, 1).await.unwrap().into()
    }

    async fn appended(log: &EventLog, store_id: Uuid, count: usize) -> Vec<i64> {
        append_to_store(log, store_id, count)
            .await
            .iter()
            .map(|appended| appended.last_position())
            .collect()
    }

    #[sqlx::test(migrator = "eventlog::MIGRATOR")]
    async fn a_follower_that_overflows_the_buffer_is_told_where_to_resume(pool: sqlx::PgPool) {
        let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
        let store_id = Uuid::new_v4();
        let before = appended(&log, store_id, 2).await;
        let (tail, live) = broadcast::channel(2);
        let catching_up = subscription(&pool, store_id, 0, Phase::CatchingUp, live);
        let (caught_up, following) = delivered(catching_up).await;
        assert_eq!(positions(&caught_up), before);
        let later = appended(&log, store_id, 4).await;
        tail.send(batch_after(&pool, before[1]).await).unwrap();
        let (live_one, following) = delivered(following).await;
        assert_eq!(positions(&live_one), [later[0]]);
        for position in &later[..3] {
            tail.send(batch_after(&pool, *position).await).unwrap();
        }
        let (told, ended) = delivered(following).await;
        assert!(
            matches!(told[..], [Delivery::Resume { after }] if after == later[0]),
            "a follower that lagged resumes after the last event it was sent"
        );
        assert!(Subscription::next(ended).await.is_none());
    }

    #[sqlx::test(migrator = "eventlog::MIGRATOR")]
    async fn a_lag_right_after_catching_up_reads_the_log_again_without_a_gap(pool: sqlx::PgPool) {
        let log = EventLog::start(pool.clone(), GroupCommitConfig::default());
        let store_id = Uuid::new_v4();
        let other_store = Uuid::new_v4();
        let before = appended(&log, store_id, 2).await;
        let (tail, live) = broadcast::channel(2);
        let fresh = subscription(
            &pool,
            store_id,
            before[1],
            Phase::Following { fresh: true },
            live,
        );
        // While the new subscriber catches up, more is written than the buffer holds.
        let later = appended(&log, store_id, 3).await;
        appended(&log, other_store, 1).await;
        for position in [before[1], later[0], later[1], later[2]] {
            tail.send(batch_after(&pool, position).await).unwrap();
        }
        let (deliveries, _) = delivered(fresh).await;
        assert_eq!(
            positions(&deliveries),
            later,
            "{:?}",
            positions(&deliveries)
        );
    }
}
