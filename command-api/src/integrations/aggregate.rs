//! How the write flow sees an integration: a service connection or a merchant webhook,
//! each only reachable through its own routes.

use std::collections::BTreeSet;

use api_core::{ApiError, FieldError};
use bridge_relay::IntegrationFold;
use domain::integration::{
    Integration, IntegrationCommand, IntegrationError, Target, decide, receives,
};
use eventlog::{Fold, UniqueKey};
use schemas::{Event, api::bridge::IntegrationView};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::aggregate::{Aggregate, INTEGRATION_SCOPE_PREFIX};

/// An integration reached as a webhook (`WEBHOOK`) or as a service connection.
pub struct IntegrationOf<const WEBHOOK: bool>;

/// Folds as the relay does, so both read the same snapshots.
impl<const WEBHOOK: bool> Fold for IntegrationOf<WEBHOOK> {
    type State = Integration;
    const STATE_VERSION: u16 = IntegrationFold::STATE_VERSION;

    fn apply(state: Integration, event: &Event) -> Integration {
        IntegrationFold::apply(state, event)
    }
}

impl<const WEBHOOK: bool> Aggregate for IntegrationOf<WEBHOOK> {
    type Command = IntegrationCommand;
    type Error = IntegrationError;
    const STREAM_PREFIX: &'static str = "integration-";

    fn decide(
        state: &Integration,
        command: &IntegrationCommand,
    ) -> Result<Vec<Event>, IntegrationError> {
        decide(state, command)
    }

    fn rule_broken(error: IntegrationError) -> ApiError {
        match error {
            IntegrationError::NotFound => ApiError::NotFound,
            IntegrationError::AlreadyExists => ApiError::Conflict {
                code: "already_exists",
                message: "it already exists".into(),
            },
            error @ IntegrationError::NotRouted { .. } => {
                ApiError::Validation(vec![FieldError::new(
                    "event_types",
                    "not_routed",
                    error.to_string(),
                )])
            }
            error @ IntegrationError::NoEventTypes => ApiError::Validation(vec![FieldError::new(
                "event_types",
                "required",
                error.to_string(),
            )]),
            error @ IntegrationError::EndpointFixed => ApiError::Validation(vec![FieldError::new(
                "endpoint_url",
                "set_by_platform",
                error.to_string(),
            )]),
            error @ IntegrationError::EndpointRequired => {
                ApiError::Validation(vec![FieldError::new(
                    "endpoint_url",
                    "required",
                    error.to_string(),
                )])
            }
        }
    }

    fn lives_in(state: &Integration, store_id: Uuid) -> bool {
        matches!(state, Integration::Existing(c)
            if c.data.store_id == store_id && (c.data.target == Target::WEBHOOK) == WEBHOOK)
    }

    fn held_keys(state: &Integration, store_id: Uuid) -> BTreeSet<UniqueKey> {
        match state {
            Integration::Existing(c) if c.data.target != Target::WEBHOOK => {
                BTreeSet::from([UniqueKey::new(service_scope(store_id), &c.data.target)])
            }
            _ => BTreeSet::new(),
        }
    }

    fn view(id: Uuid, state: &Integration, version: i32) -> Value {
        match state {
            Integration::Existing(c) => json!(IntegrationView {
                id,
                store_id: c.data.store_id,
                service: c.data.target.clone(),
                endpoint_url: Some(c.data.endpoint_url.clone()).filter(|url| !url.is_empty()),
                receives: receives(&c.data.target, &c.data.event_types),
                event_types: c.data.event_types.clone(),
                description: c.data.description.clone(),
                enabled: c.enabled,
                disabled_reason: c.disabled_reason.clone(),
                previous_secret_valid_until: c
                    .previous_secret
                    .as_ref()
                    .and_then(|p| chrono::DateTime::from_timestamp_micros(p.valid_until_micros)),
                version,
                secret: None,
            }),
            _ => Value::Null,
        }
    }

    fn location(store_id: Uuid, id: Uuid) -> String {
        let collection = if WEBHOOK { "webhooks" } else { "integrations" };
        format!("/api/v1/stores/{store_id}/{collection}/{id}")
    }
}

pub fn service_scope(store_id: Uuid) -> String {
    format!("{INTEGRATION_SCOPE_PREFIX}{store_id}")
}
