//! `GET /stores/{store_id}/events/ws`: the event stream over WebSocket, for clients that
//! want one socket rather than a response body. Same subscription as the Server-Sent
//! Events route: each event is a text message holding the event as the events list
//! renders it; a client too slow for the buffer gets `{"resume": {"after": P}}` and a
//! close with code 4000. The server pings every 15 s; it has nothing to hear from the
//! client but its close, so it reads small frames only.

use std::time::Duration;

use api_core::{ApiError, ApiQuery, auth::EventReader, openapi::ReadErrors};
use axum::{
    extract::{
        Path, State,
        ws::{
            CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
        },
    },
    http::HeaderMap,
    response::Response,
};
use futures::{SinkExt, Stream, StreamExt, stream::SplitSink};
use serde_json::json;

use super::subscription::{self, Delivery, Request, SubscriptionQuery};
use crate::state::QueryState;

const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long one write may wait on a client that does not read, before it is let go.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const LARGEST_CLIENT_MESSAGE: usize = 1024;
/// Deliveries written before one flush, when more are ready.
const FLUSH_EVERY: usize = 256;
/// The close code of a subscription the client fell behind: resume and reconnect.
const CLOSE_RESUME: u16 = 4000;

/// The store's events as they are written, after a position, over WebSocket.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/events/ws", tag = "events",
    params(("store_id" = Uuid, Path), SubscriptionQuery, ("Last-Event-ID" = Option<i64>, Header, description = "The last position received: resume after it")),
    responses(
        (status = 101, description = "A WebSocket: a text message per event (the event as the events list shows it, `position` included); `{\"resume\": {\"after\": P}}` and close code 4000 when the client fell too far behind; a ping every 15 s"),
        (status = 426, description = "Not a WebSocket upgrade request", body = api_core::openapi::ErrorEnvelope),
        ReadErrors
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn websocket_events(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    EventReader(principal): EventReader,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<SubscriptionQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let request = Request::parse(&store_id, &headers, query)?;
    // Ownership first: another merchant's store is a 404 however it is asked for.
    let deliveries = subscription::open(&state, &principal, request).await?;
    let upgrade = upgrade.map_err(|_| ApiError::WebSocketRequired)?;
    Ok(upgrade
        .max_message_size(LARGEST_CLIENT_MESSAGE)
        .max_frame_size(LARGEST_CLIENT_MESSAGE)
        .on_upgrade(move |socket| relay(socket, deliveries)))
}

/// Writes the deliveries to the socket until they end, the client leaves or stops
/// reading.
async fn relay(socket: WebSocket, deliveries: impl Stream<Item = Delivery> + Send + 'static) {
    let (mut sink, mut incoming) = socket.split();
    let deliveries = deliveries.ready_chunks(FLUSH_EVERY);
    tokio::pin!(deliveries);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.reset();
    loop {
        let written = tokio::select! {
            chunk = deliveries.next() => match chunk {
                Some(chunk) => write(&mut sink, chunk).await,
                None => {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            },
            _ = heartbeat.tick() => {
                tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Ping(Default::default())))
                    .await
                    .is_ok_and(|sent| sent.is_ok())
            }
            message = incoming.next() => !matches!(message, None | Some(Err(_)) | Some(Ok(Message::Close(_)))),
        };
        if !written {
            return;
        }
    }
}

/// Writes a chunk of deliveries and flushes; false when the client is gone or too slow,
/// or the chunk ended the subscription.
async fn write(sink: &mut SplitSink<WebSocket, Message>, chunk: Vec<Delivery>) -> bool {
    let mut more = true;
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        for delivery in chunk {
            match delivery {
                Delivery::Event { json, .. } => sink.feed(Message::Text(json.into())).await?,
                Delivery::Resume { after } => {
                    more = false;
                    let resume = json!({"resume": {"after": after}}).to_string();
                    sink.feed(Message::Text(resume.into())).await?;
                    sink.feed(Message::Close(Some(CloseFrame {
                        code: CLOSE_RESUME,
                        reason: "resume".into(),
                    })))
                    .await?;
                }
            }
        }
        sink.flush().await
    })
    .await;
    more && written.is_ok_and(|written| written.is_ok())
}
