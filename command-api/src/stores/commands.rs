//! The store write flow: load → check ownership and `If-Match` → decide → append,
//! with the answer recorded for `Idempotency-Key`.

use api_core::{ApiError, auth::Principal, resource_id};
use axum::response::Response;
use domain::{
    Amount, Slug,
    checkout::ShippingSettings,
    store::{
        CreateStore, Store, StoreCommand, StoreError, StoreProfile, UpdateStore, decide, evolve,
    },
};
use eventlog::{
    AppendError, AppendOutcome, AppendRequest, Appended, ExpectedVersion, Fold, NewEvent,
};
use schemas::{
    Event,
    api::stores::{ShippingBody, StoreView, TaxRateBody, TaxesBody},
};
use serde_json::json;
use uuid::Uuid;

use super::{
    parse::{NewStore, StoreChanges},
    slug,
};
use crate::{
    catalog::parse::Parser,
    orders::money,
    state::CommandState,
    write::{Idempotency, RecordedResponse, append_failed, metadata},
};

/// How often a write re-reads and retries after losing a race it did not ask to lose
/// (no `If-Match`), or after its chosen slug was taken in the meantime.
const MAX_ATTEMPTS: usize = 5;

pub(crate) struct StoreFold;

impl Fold for StoreFold {
    type State = Store;
    const STATE_VERSION: u16 = 3;

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
        low_stock_threshold: profile.low_stock_threshold,
        shipping: ShippingBody {
            flat_rate: money(profile.shipping.flat_rate, &profile.currency),
            free_above: profile
                .shipping
                .free_above
                .map(|amount| money(amount, &profile.currency)),
        },
        taxes: TaxesBody {
            prices_include_tax: profile.taxes.prices_include_tax,
            rates: profile
                .taxes
                .rates
                .iter()
                .map(|rate| TaxRateBody {
                    country: rate.country.clone(),
                    region: rate.region.clone(),
                    basis_points: i64::from(rate.basis_points),
                })
                .collect(),
        },
        version,
    }
}

/// Shipping amounts in the store's currency.
fn shipping(body: &ShippingBody, currency: &str) -> Result<ShippingSettings, ApiError> {
    let mut parser = Parser::new(currency);
    let flat_rate = parser.money("shipping.flat_rate", &body.flat_rate);
    let free_above = parser.optional_money("shipping.free_above", body.free_above.as_ref());
    parser.fields.finish(|| {
        Some(ShippingSettings {
            flat_rate: flat_rate?.minor_units(),
            free_above: free_above?.map(Amount::minor_units),
        })
    })
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
        StoreError::ThresholdTooHigh => ApiError::Validation(vec![api_core::FieldError::new(
            "low_stock_threshold",
            "out_of_range",
            error.to_string(),
        )]),
        StoreError::AlreadyExists | StoreError::SlugMismatch => ApiError::internal(error),
    }
}

/// Creates a store for `principal`, trying the name's slug candidates until one is free.
pub async fn create(
    state: &CommandState,
    principal: Principal,
    idempotency: Option<Idempotency>,
    new: NewStore,
) -> Result<Response, ApiError> {
    if let Some(previous) = Idempotency::previous(idempotency.as_ref(), state.pool()).await? {
        return Ok(previous.into_http(true));
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
pub enum Intent {
    Update(StoreChanges),
    Pause,
    Activate,
    Delete,
}

/// Everything a change to an existing store needs to know about its request.
pub struct ChangeRequest {
    pub principal: Principal,
    pub raw_store_id: String,
    pub if_match: Option<i32>,
    pub idempotency: Option<Idempotency>,
    pub intent: Intent,
}

/// Load → check ownership and `If-Match` → decide → append, re-reading when a race
/// was lost without `If-Match`, or when the slug a rename chose was taken meanwhile.
pub async fn change(state: &CommandState, change: ChangeRequest) -> Result<Response, ApiError> {
    let store_id = resource_id(&change.raw_store_id)?;
    if let Some(previous) = Idempotency::previous(change.idempotency.as_ref(), state.pool()).await?
    {
        return Ok(previous.into_http(true));
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
                    low_stock_threshold: changes.low_stock_threshold,
                    shipping: changes
                        .shipping
                        .as_ref()
                        .map(|body| shipping(body, &current.currency))
                        .transpose()?,
                    taxes: changes.taxes.clone(),
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
                if let Intent::Update(StoreChanges {
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
    let position = eventlog::stream_position(state.pool(), &stream_id(store_id))
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
