//! The integrator's pull subscription: a store's events in log order, a page at a time,
//! with the position to continue from (as Stripe's events list serves integrators who
//! poll). Positions are gapless and become visible in order, so a page read up to the
//! log's head has seen every event of the store up to it: polling on from `next_after`
//! never misses one nor sees one twice.

use std::sync::LazyLock;

use api_core::{
    ApiError, ApiQuery, Data, FieldError,
    auth::EventReader,
    data,
    openapi::{ErrorEnvelope, ReadErrors},
    resource_id,
};
use axum::{
    Json,
    extract::{Path, State},
};
use eventlog::{LogFilter, head_position, read_filtered};
use schemas::{
    CATALOGUE,
    public::{EventSchema, PublicEvent},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{catalog::require_own_store, freshness::MinPosition, state::QueryState};

mod stream;
mod subscription;
mod tail;
mod ws;

pub use tail::LogTail;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1_000;

pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(store_events))
        .routes(routes!(stream::stream_events))
        .routes(routes!(ws::websocket_events))
        .routes(routes!(event_schemas))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Events after this log position; 0 (the default) is the beginning.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Comma-separated event types (`order.created,order.paid`); every type when absent.
    pub types: Option<String>,
    /// Events per page, 1–1000 (100 when absent).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A page of a store's events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// In log order.
    pub data: Vec<PublicEvent>,
    /// Pass it as `after` for the next page. Once `has_more` is false it is the log's
    /// head as this page saw it: every event of the store up to it is in this page or
    /// an earlier one.
    pub next_after: i64,
    pub has_more: bool,
    #[schema(value_type = Option<Object>)]
    pub error: Option<()>,
}

struct Request {
    after: i64,
    types: Vec<String>,
    limit: u32,
}

impl EventsQuery {
    fn parse(self) -> Result<Request, ApiError> {
        let mut errors = Vec::new();
        let after = parse_after(None, self.after, &mut errors);
        let types = parse_types(self.types.as_deref(), &mut errors);
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new("limit", "out_of_range", "from 1 to 1000"));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(Request {
            after: after.unwrap_or(0),
            types,
            limit,
        })
    }
}

/// Where a reader resumes: after `Last-Event-ID` when sent, else after `?after=`; a
/// refusal goes to `errors`.
fn parse_after(
    last_event_id: Option<&str>,
    after: Option<i64>,
    errors: &mut Vec<FieldError>,
) -> Option<i64> {
    let (field, after) = match last_event_id {
        Some(raw) => ("Last-Event-ID", raw.trim().parse::<i64>().ok().or(Some(-1))),
        None => ("after", after),
    };
    if after.is_some_and(|after| after < 0) {
        errors.push(FieldError::new(
            field,
            "out_of_range",
            "a log position, 0 or more",
        ));
        return None;
    }
    after
}

/// Comma-separated event types, each one the platform writes; a refusal goes to
/// `errors`.
fn parse_types(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Vec<String> {
    let types: Vec<String> = raw
        .into_iter()
        .flat_map(|types| types.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(unknown) = types
        .iter()
        .find(|name| !CATALOGUE.iter().any(|(known, _)| known == name))
    {
        errors.push(FieldError::new(
            "types",
            "unknown_event_type",
            format!(
                "`{}` is no event type",
                unknown.chars().take(100).collect::<String>()
            ),
        ));
    }
    types
}

/// The store's events after a position, in log order.
#[utoipa::path(
    get, path = "/api/v1/stores/{store_id}/events", tag = "events",
    params(("store_id" = Uuid, Path), EventsQuery, ("X-Min-Position" = Option<i64>, Header, description = "Wait until the store is readable at this log position")),
    responses((status = 200, body = EventPage), ReadErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn store_events(
    State(state): State<QueryState>,
    Path(store_id): Path<String>,
    EventReader(principal): EventReader,
    MinPosition(min_position): MinPosition,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let store_id = resource_id(&store_id)?;
    let request = query.parse()?;
    state.freshness.wait_for_stores(min_position).await?;
    require_own_store(&state, &principal, store_id).await?;
    let head = head_position(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    let filter = LogFilter {
        store_id: Some(store_id),
        to_position: Some(head),
        types: request.types,
        ..LogFilter::default()
    };
    let mut events = read_filtered(
        &state.pool,
        request.after,
        &filter,
        i64::from(request.limit) + 1,
    )
    .await
    .map_err(ApiError::internal)?;
    let has_more = events.len() > request.limit as usize;
    events.truncate(request.limit as usize);
    let next_after = match events.last() {
        Some(last) if has_more => last.position,
        _ => head.max(request.after),
    };
    Ok(Json(EventPage {
        data: events.iter().map(PublicEvent::from).collect(),
        next_after,
        has_more,
        error: None,
    }))
}

static SCHEMAS: LazyLock<Vec<EventSchema>> = LazyLock::new(schemas::public::event_schemas);

/// The JSON Schema (draft 2020-12) of every event type the platform writes, as the
/// events list, the event stream and webhooks render it; also in the repository under
/// `schemas/json/`.
#[utoipa::path(
    get, path = "/api/v1/events/schemas", tag = "events",
    responses(
        (status = 200, body = Data<Vec<EventSchema>>),
        (status = 414, description = "The request's URI is too long", body = ErrorEnvelope),
        (status = 431, description = "The request's headers are too large", body = ErrorEnvelope)
    )
)]
pub(super) async fn event_schemas() -> Json<Data<Vec<EventSchema>>> {
    data(SCHEMAS.clone())
}
