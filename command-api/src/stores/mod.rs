//! Store commands: create, update, pause, activate, delete.

mod parse;
mod slug;

use api_core::{ApiError, ApiJson, auth::Writer, openapi::ErrorEnvelope, resource_id};
use axum::{
    extract::{Path, State},
    http::Method,
    response::Response,
};
use domain::{
    Slug,
    store::{
        CreateStore, Store, StoreCommand, StoreError, StoreProfile, UpdateStore, decide, evolve,
    },
};
use eventlog::{
    AppendError, AppendOutcome, AppendRequest, Appended, ExpectedVersion, Fold, NewEvent,
};
use schemas::{
    Event,
    api::stores::{CreateStoreRequest, StoreView, UpdateStoreRequest},
};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    preconditions::{IdempotencyKey, IfMatch},
    state::CommandState,
    write::{Idempotency, RecordedResponse, append_failed, metadata},
};

/// How often a write re-reads and retries after losing a race it did not ask to lose
/// (no `If-Match`), or after its chosen slug was taken in the meantime.
const MAX_ATTEMPTS: usize = 5;

pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(create_store))
        .routes(routes!(update_store, delete_store))
        .routes(routes!(pause_store))
        .routes(routes!(activate_store))
}

struct StoreFold;

impl Fold for StoreFold {
    type State = Store;
    const STATE_VERSION: u16 = 1;

    fn apply(state: Store, event: &Event) -> Store {
        evolve(state, event)
    }
}

fn stream_id(store_id: Uuid) -> String {
    format!("store-{store_id}")
}

fn view(store_id: Uuid, profile: &StoreProfile, version: i32) -> StoreView {
    StoreView {
        id: store_id,
        owner_id: profile.owner_id,
        name: profile.name.clone(),
        slug: profile.slug.clone(),
        niche: profile.niche.clone(),
        description: profile.description.clone(),
        currency: profile.currency.clone(),
        status: profile.status.as_str().to_owned(),
        version,
    }
}

/// The answer to a write that produced `after` at the version the append reports.
fn answer(
    status: u16,
    store_id: Uuid,
    after: StoreProfile,
    location: bool,
) -> impl Fn(&Appended) -> RecordedResponse + Send + Sync + Clone + 'static {
    move |appended| RecordedResponse {
        status,
        version: appended.version,
        position: appended.last_position(),
        location: location.then(|| format!("/api/v1/stores/{store_id}")),
        body: json!({ "data": view(store_id, &after, appended.version), "error": null }),
    }
}

fn rule_broken(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound => ApiError::NotFound,
        StoreError::AlreadyPaused => ApiError::Conflict {
            code: "already_paused",
            message: error.to_string(),
        },
        StoreError::AlreadyActive => ApiError::Conflict {
            code: "already_active",
            message: error.to_string(),
        },
        StoreError::AlreadyExists | StoreError::SlugMismatch => ApiError::internal(error),
    }
}

/// Create a store. Its slug comes from the name, with `-2`, `-3`… when taken.
#[utoipa::path(
    post, path = "/api/v1/stores", tag = "stores",
    request_body = CreateStoreRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses(
        (status = 201, description = "Created; `ETag` is its version, `X-Position` its log position", body = api_core::Data<StoreView>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope),
        (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn create_store(
    State(state): State<CommandState>,
    context: WriteContext,
    body: ApiJson<CreateStoreRequest>,
) -> Result<Response, ApiError> {
    let new = parse::new_store(&body.value)?;
    let principal = context.principal;
    let idempotency = Idempotency::new(
        &principal,
        context.key.0,
        &context.method,
        &context.path,
        &body.raw,
    );
    if let Some(previous) = match &idempotency {
        Some(i) => i.previous(state.pool()).await?,
        None => None,
    } {
        return Ok(previous);
    }
    let store_id = Uuid::now_v7();
    let mut slug = Slug::candidate(&new.name, 1);
    for _ in 0..MAX_ATTEMPTS {
        let command = StoreCommand::Create(CreateStore {
            owner_id: principal.merchant_id,
            name: new.name.clone(),
            slug: slug.clone(),
            niche: new.niche.clone(),
            description: new.description.clone(),
            currency: new.currency.clone(),
        });
        let events = decide(&Store::Unborn, &command).map_err(rule_broken)?;
        let Store::Existing(after) = events.iter().fold(Store::Unborn, evolve) else {
            return Err(ApiError::internal("store.created did not create a store"));
        };
        let respond = answer(201, store_id, after, true);
        let mut request = AppendRequest::new(
            stream_id(store_id),
            ExpectedVersion::NoStream,
            events.into_iter().map(NewEvent::new).collect(),
        )
        .in_store(store_id)
        .with_metadata(metadata(&principal, idempotency.as_ref()))
        .reserving(slug::reservation(&slug));
        if let Some(idempotency) = &idempotency {
            request = request.idempotent(idempotency.claim(respond.clone()));
        }
        match state.log.append(request).await {
            Ok(outcome) => return respond_to(outcome, &respond),
            Err(AppendError::UniqueKeyTaken { .. }) => {
                slug = slug::first_free(state.pool(), &new.name)
                    .await
                    .map_err(ApiError::internal)?;
            }
            Err(other) => return Err(append_failed(other)),
        }
    }
    Err(contended())
}

fn contended() -> ApiError {
    ApiError::Conflict {
        code: "contended",
        message: "too many concurrent changes; retry".into(),
    }
}

fn respond_to(
    outcome: AppendOutcome,
    respond: &impl Fn(&Appended) -> RecordedResponse,
) -> Result<Response, ApiError> {
    match outcome {
        AppendOutcome::Appended(appended) => Ok(respond(&appended).into_http(false)),
        AppendOutcome::Replayed(stored) => crate::write::replay(stored),
    }
}

/// What a change to an existing store asks for, before the store is loaded.
enum Intent {
    Update(parse::StoreChanges),
    Pause,
    Activate,
    Delete,
}

/// Everything a change to an existing store needs to know about its request.
struct ChangeRequest {
    principal: api_core::auth::Principal,
    raw_store_id: String,
    if_match: Option<i32>,
    idempotency: Option<Idempotency>,
    intent: Intent,
}

/// Load → check ownership and `If-Match` → decide → append, re-reading when a race
/// was lost without `If-Match`, or when the slug a rename chose was taken meanwhile.
async fn change_store(state: &CommandState, change: ChangeRequest) -> Result<Response, ApiError> {
    let store_id = resource_id(&change.raw_store_id)?;
    if let Some(previous) = match &change.idempotency {
        Some(i) => i.previous(state.pool()).await?,
        None => None,
    } {
        return Ok(previous);
    }
    let stream = stream_id(store_id);
    let mut renamed_slug: Option<Slug> = None;
    for _ in 0..MAX_ATTEMPTS {
        let loaded = eventlog::load::<StoreFold>(state.pool(), &stream, state.snapshot_every())
            .await
            .map_err(ApiError::internal)?;
        let Some(current) = loaded
            .state
            .live()
            .filter(|p| p.owner_id == change.principal.merchant_id)
        else {
            return Err(ApiError::NotFound);
        };
        if let Some(expected) = change.if_match
            && expected != loaded.version
        {
            return Err(ApiError::VersionConflict {
                current_version: loaded.version,
            });
        }
        let command = match &change.intent {
            Intent::Update(changes) => {
                let slug = match &changes.name {
                    Some(name) if !Slug::from_recorded(current.slug.clone()).belongs_to(name) => {
                        Some(
                            renamed_slug
                                .get_or_insert_with(|| Slug::candidate(name, 1))
                                .clone(),
                        )
                    }
                    _ => None,
                };
                StoreCommand::Update(UpdateStore {
                    name: changes.name.clone(),
                    slug,
                    niche: changes.niche.clone(),
                    description: changes.description.clone(),
                })
            }
            Intent::Pause => StoreCommand::Pause,
            Intent::Activate => StoreCommand::Activate,
            Intent::Delete => StoreCommand::Delete,
        };
        let events = decide(&loaded.state, &command).map_err(rule_broken)?;
        if events.is_empty() {
            return unchanged(state, store_id, current, loaded.version).await;
        }
        let after = events.iter().fold(loaded.state.clone(), evolve);
        let Store::Existing(after) = after else {
            return Err(ApiError::internal("a change unmade the store"));
        };
        let old_slug = Slug::from_recorded(current.slug.clone());
        let new_slug = Slug::from_recorded(after.slug.clone());
        let respond = answer(200, store_id, after.clone(), false);
        let mut request = AppendRequest::new(
            stream.clone(),
            ExpectedVersion::Exact(loaded.version),
            events.into_iter().map(NewEvent::new).collect(),
        )
        .in_store(store_id)
        .with_metadata(metadata(&change.principal, change.idempotency.as_ref()));
        if matches!(change.intent, Intent::Delete) {
            // A deleted store's slug is free for the next store that wants it.
            request = request.releasing(slug::reservation(&old_slug));
        } else if new_slug != old_slug {
            request = request
                .reserving(slug::reservation(&new_slug))
                .releasing(slug::reservation(&old_slug));
        }
        if let Some(idempotency) = &change.idempotency {
            request = request.idempotent(idempotency.claim(respond.clone()));
        }
        match state.log.append(request).await {
            Ok(outcome) => return respond_to(outcome, &respond),
            Err(AppendError::VersionConflict { actual, .. }) if change.if_match.is_some() => {
                return Err(ApiError::VersionConflict {
                    current_version: actual,
                });
            }
            Err(AppendError::VersionConflict { .. }) => {}
            Err(AppendError::UniqueKeyTaken { .. }) => {
                if let Intent::Update(parse::StoreChanges {
                    name: Some(name), ..
                }) = &change.intent
                {
                    renamed_slug = Some(
                        slug::first_free(state.pool(), name)
                            .await
                            .map_err(ApiError::internal)?,
                    );
                }
            }
            Err(other) => return Err(append_failed(other)),
        }
    }
    Err(contended())
}

/// A change that changes nothing appends nothing and answers with the store as it is.
async fn unchanged(
    state: &CommandState,
    store_id: Uuid,
    current: &StoreProfile,
    version: i32,
) -> Result<Response, ApiError> {
    let position: i64 =
        sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events WHERE stream_id = $1")
            .bind(stream_id(store_id))
            .fetch_one(state.pool())
            .await
            .map_err(ApiError::internal)?;
    Ok(RecordedResponse {
        status: 200,
        version,
        position,
        location: None,
        body: json!({ "data": view(store_id, current, version), "error": null }),
    }
    .into_http(false))
}

/// The parts of a write request every store change reads: who, which conditions, and
/// what to fingerprint for `Idempotency-Key`.
struct WriteContext {
    principal: api_core::auth::Principal,
    if_match: IfMatch,
    key: IdempotencyKey,
    method: Method,
    path: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for WriteContext
where
    api_core::auth::Authenticator: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Writer(principal) = Writer::from_request_parts(parts, state).await?;
        Ok(Self {
            principal,
            if_match: IfMatch::from_request_parts(parts, state).await?,
            key: IdempotencyKey::from_request_parts(parts, state).await?,
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
        })
    }
}

impl WriteContext {
    fn change(self, raw_store_id: String, body: &[u8], intent: Intent) -> ChangeRequest {
        let idempotency =
            Idempotency::new(&self.principal, self.key.0, &self.method, &self.path, body);
        ChangeRequest {
            principal: self.principal,
            raw_store_id,
            if_match: self.if_match.0,
            idempotency,
            intent,
        }
    }
}

/// Change a store's name, niche or description. A new name gives it a new slug.
#[utoipa::path(
    patch, path = "/api/v1/stores/{store_id}", tag = "stores",
    request_body = UpdateStoreRequest,
    params(
        ("store_id" = Uuid, Path),
        ("If-Match" = Option<String>, Header, description = "The version this change is based on"),
        ("Idempotency-Key" = Option<String>, Header),
    ),
    responses(
        (status = 200, description = "Updated (or already so)", body = api_core::Data<StoreView>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`If-Match` is not the current version", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn update_store(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
    body: ApiJson<UpdateStoreRequest>,
) -> Result<Response, ApiError> {
    let changes = parse::store_changes(&body.value)?;
    change_store(
        &state,
        context.change(store_id, &body.raw, Intent::Update(changes)),
    )
    .await
}

/// Pause a store: its storefront goes dark until it is activated.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/pause", tag = "stores",
    params(("store_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = api_core::Data<StoreView>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "Already paused, or `If-Match` is stale", body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn pause_store(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    change_store(&state, context.change(store_id, &[], Intent::Pause)).await
}

/// Activate a paused store.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/activate", tag = "stores",
    params(("store_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = api_core::Data<StoreView>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "Already active, or `If-Match` is stale", body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn activate_store(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    change_store(&state, context.change(store_id, &[], Intent::Activate)).await
}

/// Delete a store (softly: its history stays in the log, its slug is freed).
#[utoipa::path(
    delete, path = "/api/v1/stores/{store_id}", tag = "stores",
    params(("store_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 200, body = api_core::Data<StoreView>),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn delete_store(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    context: WriteContext,
) -> Result<Response, ApiError> {
    change_store(&state, context.change(store_id, &[], Intent::Delete)).await
}
