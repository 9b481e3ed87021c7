//! The write flow every store-scoped aggregate (product, category, collection) shares:
//! the caller's store checked, the aggregate loaded under a per-stream lock, `If-Match`
//! checked, decided, appended with the reservations its held keys gained and lost, and
//! the answer recorded for `Idempotency-Key`. Lost races are re-read and retried.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use api_core::{ApiError, auth::Principal};
use domain::{
    Slug, SlugSource,
    store::{Store, StoreProfile},
};
use eventlog::{
    AppendError, AppendOutcome, AppendRequest, Appended, ExpectedVersion, Fold, NewEvent, UniqueKey,
};
use moka::sync::Cache;
use schemas::Event;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::{
    state::CommandState,
    stores::{StoreFold, slug::first_free_in},
    write::{Idempotency, RecordedResponse, WriteContext, append_failed, metadata},
};

/// Retries after a race lost without `If-Match` or a reservation taken meanwhile. Writers
/// in one process queue on the stream's lock, so these are races with other processes.
const MAX_ATTEMPTS: usize = 20;

pub(crate) trait Aggregate: Fold<State: Send + Sync + 'static> + 'static {
    type Command;
    type Error;
    /// Names the stream: `<prefix><id>`.
    const STREAM_PREFIX: &'static str;

    fn decide(state: &Self::State, command: &Self::Command) -> Result<Vec<Event>, Self::Error>;
    fn rule_broken(error: Self::Error) -> ApiError;
    /// Whether `state` is a live aggregate of this store; anything else is a 404.
    fn lives_in(state: &Self::State, store_id: Uuid) -> bool;
    /// The store-unique values it holds while it exists.
    fn held_keys(state: &Self::State, store_id: Uuid) -> BTreeSet<UniqueKey>;
    fn view(id: Uuid, state: &Self::State, version: i32) -> Value;
    fn location(store_id: Uuid, id: Uuid) -> String;
}

/// Scopes of SKU reservations start with this, followed by the store id.
pub(crate) const SKU_SCOPE_PREFIX: &str = "product.sku:";
pub(crate) const INTEGRATION_SCOPE_PREFIX: &str = domain::integration::SERVICE_SCOPE_PREFIX;

pub(crate) fn stream_id<A: Aggregate>(id: Uuid) -> String {
    format!("{}{id}", A::STREAM_PREFIX)
}

/// In-process queues per stream: concurrent writers to one hot product (stock
/// decrements) take turns instead of failing each other's optimistic appends.
#[derive(Clone)]
pub struct StreamLocks(Cache<String, Arc<Mutex<()>>>);

impl Default for StreamLocks {
    fn default() -> Self {
        Self(
            Cache::builder()
                .time_to_idle(Duration::from_secs(60))
                .build(),
        )
    }
}

impl StreamLocks {
    pub(crate) fn of(&self, stream: &str) -> Arc<Mutex<()>> {
        self.0.get_with_by_ref(stream, || Arc::new(Mutex::new(())))
    }
}

/// Who writes which aggregate of which store, under which conditions.
pub(crate) struct Write<'a> {
    pub principal: &'a Principal,
    pub store_id: Uuid,
    pub id: Uuid,
    pub if_match: Option<i32>,
    pub idempotency: Option<&'a Idempotency>,
    /// A new aggregate: nothing to load, and the stream must not exist yet.
    pub creating: bool,
    /// A secret shown in this answer only (as `data.secret`), and in its replays.
    pub revealed: Option<&'a str>,
}

impl<'a> Write<'a> {
    /// A write of `id` in `store_id` as `context` asks for it; `If-Match` applies to
    /// changes, never to creations.
    pub fn of(
        context: &'a WriteContext,
        idempotency: Option<&'a Idempotency>,
        store_id: Uuid,
        id: Uuid,
        creating: bool,
    ) -> Self {
        Self {
            principal: &context.principal,
            store_id,
            id,
            if_match: if creating { None } else { context.if_match.0 },
            idempotency,
            creating,
            revealed: None,
        }
    }

    /// Shows `secret` as `data.secret` in this write's answer (and its replays).
    pub fn revealing(self, secret: &'a str) -> Self {
        Self {
            revealed: Some(secret),
            ..self
        }
    }
}

/// A write's answer and whether it is the replay of an earlier one.
pub(crate) struct Answer {
    pub recorded: RecordedResponse,
    pub replayed: bool,
}

impl Answer {
    pub fn into_http(self) -> axum::response::Response {
        self.recorded.into_http(self.replayed)
    }
}

/// The caller's live store, or 404 whether it is missing, deleted or someone else's.
pub(crate) async fn owned_store(
    state: &CommandState,
    principal: &Principal,
    store_id: Uuid,
) -> Result<StoreProfile, ApiError> {
    let loaded = eventlog::load::<StoreFold>(
        state.pool(),
        &format!("store-{store_id}"),
        state.snapshot_every(),
    )
    .await
    .map_err(ApiError::internal)?;
    match loaded.state {
        Store::Existing(profile) if owns_live_store(&profile, principal) => Ok(profile),
        _ => Err(ApiError::NotFound),
    }
}

fn owns_live_store(profile: &StoreProfile, principal: &Principal) -> bool {
    profile.owner_id == principal.merchant_id
        && profile.status != domain::store::StoreStatus::Deleted
}

/// Runs one command; when the slug it chose was taken by another writer meanwhile, runs
/// it again with the first free slug for `slug_name` in `slug_scope`. Any other value
/// taken (a SKU) is a 409.
pub(crate) async fn execute_with_slug<A: Aggregate>(
    state: &CommandState,
    write: &Write<'_>,
    slug_scope: &str,
    slug_name: Option<&impl SlugSource>,
    command_for: impl Fn(&A::State, Option<&Slug>) -> Result<A::Command, ApiError>,
) -> Result<Answer, ApiError> {
    let mut free_slug = None;
    for _ in 0..MAX_ATTEMPTS {
        match execute::<A>(state, write, |current| {
            command_for(current, free_slug.as_ref())
        })
        .await
        {
            Err(Failure::Taken(key)) if key.scope == slug_scope => {
                let Some(name) = slug_name else {
                    return Err(taken(&key));
                };
                free_slug = Some(
                    first_free_in(state.pool(), slug_scope, name)
                        .await
                        .map_err(ApiError::internal)?,
                );
            }
            Err(Failure::Taken(key)) => return Err(taken(&key)),
            Err(Failure::Api(error)) => return Err(error),
            Ok(answer) => return Ok(answer),
        }
    }
    Err(contended())
}

/// Runs a command that reserves no slug.
pub(crate) async fn execute_plain<A: Aggregate>(
    state: &CommandState,
    write: &Write<'_>,
    command_for: impl Fn(&A::State) -> Result<A::Command, ApiError>,
) -> Result<Answer, ApiError> {
    match execute::<A>(state, write, command_for).await {
        Ok(answer) => Ok(answer),
        Err(Failure::Taken(key)) => Err(taken(&key)),
        Err(Failure::Api(error)) => Err(error),
    }
}

fn taken(key: &UniqueKey) -> ApiError {
    if key.scope.starts_with(INTEGRATION_SCOPE_PREFIX) {
        ApiError::Conflict {
            code: "already_connected",
            message: format!("this store is already connected to {}", key.value),
        }
    } else if key.scope.starts_with(SKU_SCOPE_PREFIX) {
        ApiError::Conflict {
            code: "sku_taken",
            message: format!("SKU {} is used by another product of this store", key.value),
        }
    } else {
        ApiError::Conflict {
            code: "taken",
            message: format!("{} is taken", key.value),
        }
    }
}

fn contended() -> ApiError {
    ApiError::Conflict {
        code: "contended",
        message: "too many concurrent changes; retry".into(),
    }
}

enum Failure {
    Api(ApiError),
    /// A value the command wanted to hold belongs to another aggregate.
    Taken(UniqueKey),
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

/// Load → `If-Match` → decide → append under the stream's lock, re-reading after a race
/// lost without `If-Match`.
async fn execute<A: Aggregate>(
    state: &CommandState,
    write: &Write<'_>,
    command_for: impl Fn(&A::State) -> Result<A::Command, ApiError>,
) -> Result<Answer, Failure> {
    if let Some(previous) = Idempotency::previous(write.idempotency, state.pool()).await? {
        return Ok(Answer {
            recorded: previous,
            replayed: true,
        });
    }
    let stream = stream_id::<A>(write.id);
    let lock = state.stream_locks.of(&stream);
    let _turn = lock.lock().await;
    for _ in 0..MAX_ATTEMPTS {
        let (current, version) = if write.creating {
            (A::State::default(), 0)
        } else {
            let loaded = eventlog::load::<A>(state.pool(), &stream, state.snapshot_every())
                .await
                .map_err(ApiError::internal)?;
            if !A::lives_in(&loaded.state, write.store_id) {
                return Err(ApiError::NotFound.into());
            }
            (loaded.state, loaded.version)
        };
        if let Some(expected) = write.if_match
            && expected != version
        {
            return Err(ApiError::VersionConflict {
                current_version: version,
            }
            .into());
        }
        let command = command_for(&current)?;
        let events = A::decide(&current, &command).map_err(A::rule_broken)?;
        if events.is_empty() {
            return Ok(unchanged::<A>(state, write.id, &stream, &current, version).await?);
        }
        let held_before = A::held_keys(&current, write.store_id);
        let after = events.iter().fold(current, A::apply);
        let held_after = A::held_keys(&after, write.store_id);
        let respond = answer::<A>(write, after);
        let expected = if write.creating {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        let mut request = AppendRequest::new(
            stream.clone(),
            expected,
            events.into_iter().map(NewEvent::new).collect(),
        )
        .in_store(write.store_id)
        .with_metadata(metadata(write.principal, write.idempotency));
        for key in held_after.difference(&held_before) {
            request = request.reserving(key.clone());
        }
        for key in held_before.difference(&held_after) {
            request = request.releasing(key.clone());
        }
        if let Some(idempotency) = write.idempotency {
            request = request.idempotent(idempotency.claim(respond.clone()));
        }
        match state.log.append(request).await {
            Ok(AppendOutcome::Appended(appended)) => {
                return Ok(Answer {
                    recorded: respond(&appended),
                    replayed: false,
                });
            }
            Ok(AppendOutcome::Replayed(stored)) => {
                return Ok(Answer {
                    recorded: crate::write::recorded(stored)?,
                    replayed: true,
                });
            }
            Err(AppendError::VersionConflict { actual, .. }) if write.if_match.is_some() => {
                return Err(ApiError::VersionConflict {
                    current_version: actual,
                }
                .into());
            }
            Err(AppendError::VersionConflict { .. }) if !write.creating => {}
            Err(AppendError::UniqueKeyTaken { scope, value }) => {
                return Err(Failure::Taken(UniqueKey::new(scope, value)));
            }
            Err(other) => return Err(append_failed(other).into()),
        }
    }
    Err(contended().into())
}

fn answer<A: Aggregate>(
    write: &Write<'_>,
    after: A::State,
) -> impl Fn(&Appended) -> RecordedResponse + Send + Sync + Clone + 'static {
    let (store_id, id, creating) = (write.store_id, write.id, write.creating);
    let revealed = write.revealed.map(str::to_owned);
    let after = Arc::new(after);
    move |appended| {
        let mut view = A::view(id, &after, appended.version);
        if let (Some(secret), Some(fields)) = (&revealed, view.as_object_mut()) {
            fields.insert("secret".into(), Value::String(secret.clone()));
        }
        RecordedResponse {
            status: if creating { 201 } else { 200 },
            version: appended.version,
            position: appended.last_position(),
            location: creating.then(|| A::location(store_id, id)),
            body: json!({ "data": view, "error": null }),
        }
    }
}

/// A command that changes nothing appends nothing and answers with the aggregate as is.
async fn unchanged<A: Aggregate>(
    state: &CommandState,
    id: Uuid,
    stream: &str,
    current: &A::State,
    version: i32,
) -> Result<Answer, ApiError> {
    let position = eventlog::stream_position(state.pool(), stream)
        .await
        .map_err(ApiError::internal)?;
    Ok(Answer {
        recorded: RecordedResponse {
            status: 200,
            version,
            position,
            location: None,
            body: json!({ "data": A::view(id, current, version), "error": null }),
        },
        replayed: false,
    })
}
