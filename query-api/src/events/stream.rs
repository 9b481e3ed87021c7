//! `GET /stores/{store_id}/events/stream`: a store's events as Server-Sent Events, from
//! where the client was (`Last-Event-ID`, or `?after=`) on, each once and in log order.
//! The client first catches up from the log, a page at a time as fast as it reads, then
//! follows the process's tail. A client too slow for the tail's buffer is sent a
//! `resume` event naming the position it reached, and the stream ends: it reconnects
//! from there and misses nothing.

use std::{convert::Infallible, time::Duration};

use api_core::{ApiError, ApiQuery, auth::EventReader, openapi::ReadErrors, resource_id};
use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::sse::{Event as SseEvent, KeepAlive, Sse},
};
use eventlog::{LogFilter, read_filtered};
use futures::{Stream, StreamExt, stream};
use schemas::{RecordedEvent, public::PublicEvent};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::IntoParams;

use super::{parse_after, parse_types, tail::Batch};
use crate::{catalog::require_own_store, state::QueryState};

const CATCH_UP_PAGE: i64 = 500;
const HEARTBEAT: Duration = Duration::from_secs(15);

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Events after this log position; `Last-Event-ID` takes precedence. Without either,
    /// only events written from now on.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Comma-separated event types; every type when absent.
    pub types: Option<String>,
}

/// The store's events as they are written, after a position.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/events/stream", tag = "events",
    params(("store_id" = Uuid, Path), StreamQuery, ("Last-Event-ID" = Option<i64>, Header, description = "The last position received: resume after it")),
    responses(
        (status = 200, content_type = "text/event-stream", body = String, description = "Each event as `id: <position>`, `event: <type>`, `data: <the event as the events list shows it>`; a comment line every 15 s; a `resume` event with `{\"after\": P}` when the client fell too far behind, then the end"),
        ReadErrors
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn stream_events(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    EventReader(principal): EventReader,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let store_id = resource_id(&store_id)?;
    let last_event_id = headers
        .get("last-event-id")
        .map(|value| value.to_str().unwrap_or_default().to_owned());
    let mut errors = Vec::new();
    let after = parse_after(last_event_id.as_deref(), query.after, &mut errors);
    let types = parse_types(query.types.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    require_own_store(&state, &principal, store_id).await?;
    let live = state.tail.subscribe();
    let after = match after {
        Some(after) => after,
        None => eventlog::head_position(&state.pool)
            .await
            .map_err(ApiError::internal)?,
    };
    let subscription = Subscription {
        pool: state.pool.clone(),
        filter: LogFilter {
            store_id: Some(store_id),
            types,
            ..LogFilter::default()
        },
        sent: after,
        considered: after,
        phase: Phase::CatchingUp,
        live,
    };
    let events = stream::unfold(subscription, Subscription::next)
        .flat_map(stream::iter)
        .take_until(state.tail.shutdown().cancelled_owned());
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
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

type Frames = Vec<Result<SseEvent, Infallible>>;

impl Subscription {
    /// The next frames to send, or `None` once the stream is over.
    async fn next(mut self) -> Option<(Frames, Self)> {
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
                    if let Some(frames) = self.frames(page.iter()) {
                        return Some((frames, self));
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
                        if let Some(frames) = self.frames(mine.into_iter()) {
                            return Some((frames, self));
                        }
                    }
                    Err(RecvError::Lagged(_)) if fresh => self.phase = Phase::CatchingUp,
                    Err(RecvError::Lagged(_)) => return self.resume(),
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// The events after what was sent, as frames; `None` when none is new.
    fn frames<'a>(&mut self, events: impl Iterator<Item = &'a RecordedEvent>) -> Option<Frames> {
        let mut frames = Vec::new();
        for event in events {
            if event.position <= self.sent {
                continue;
            }
            let frame = SseEvent::default()
                .id(event.position.to_string())
                .event(event.event_type.as_str())
                .json_data(PublicEvent::from(event));
            self.sent = event.position;
            if let Ok(frame) = frame {
                frames.push(Ok(frame));
            }
        }
        (!frames.is_empty()).then_some(frames)
    }

    /// Tells the client where to resume from, and ends the stream.
    fn resume(mut self) -> Option<(Frames, Self)> {
        self.phase = Phase::Ended;
        let frame = SseEvent::default()
            .event("resume")
            .json_data(json!({"after": self.sent}))
            .unwrap_or_default();
        Some((vec![Ok(frame)], self))
    }
}
