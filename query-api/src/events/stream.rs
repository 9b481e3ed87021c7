//! `GET /stores/{store_id}/events/stream`: a store's events as Server-Sent Events (see
//! [`super::subscription`]), resuming after `Last-Event-ID` or `?after=`.

use std::{convert::Infallible, time::Duration};

use api_core::{ApiError, ApiQuery, auth::EventReader, openapi::ReadErrors};
use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::sse::{Event as SseEvent, KeepAlive, Sse},
};
use futures::{Stream, StreamExt};
use serde_json::json;

use super::subscription::{self, Delivery, Request, SubscriptionQuery};
use crate::state::QueryState;

const HEARTBEAT: Duration = Duration::from_secs(15);

/// The store's events as they are written, after a position.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/events/stream", tag = "events",
    params(("store_id" = Uuid, Path), SubscriptionQuery, ("Last-Event-ID" = Option<i64>, Header, description = "The last position received: resume after it")),
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
    ApiQuery(query): ApiQuery<SubscriptionQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let request = Request::parse(&store_id, &headers, query)?;
    let deliveries = subscription::open(&state, &principal, request).await?;
    let frames = deliveries.map(|delivery| {
        Ok(match delivery {
            Delivery::Event {
                position,
                event_type,
                json,
            } => SseEvent::default()
                .id(position.to_string())
                .event(event_type)
                .data(json),
            Delivery::Resume { after } => SseEvent::default()
                .event("resume")
                .data(json!({"after": after}).to_string()),
        })
    });
    Ok(Sse::new(frames).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}
