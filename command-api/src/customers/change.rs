//! The write flow of a customer's own changes: load, `If-Match`, decide, append under
//! the customer stream's lock, a lost race decided again; the answer is the account as
//! the change leaves it, recorded for `Idempotency-Key` (scoped to the customer).

use api_core::{ApiError, auth::CustomerPrincipal};
use axum::{
    http::{Method, Uri},
    response::Response,
};
use domain::customer::{Customer, CustomerCommand, CustomerProfile, decide, evolve};
use eventlog::{AppendError, AppendRequest, ExpectedVersion, NewEvent};
use schemas::{EventMetadata, pii::Sealed};
use serde_json::json;
use uuid::Uuid;

use super::{account_view, customer_store, load_customer, rule_broken};
use crate::{
    orders::customer_stream,
    preconditions::{IdempotencyKey, IfMatch},
    state::CommandState,
    write::{Idempotency, RecordedResponse, append_failed},
};

/// Changes lost to another writer of the same customer (another tab) are decided again.
const MAX_ATTEMPTS: usize = 5;

/// Who is changing which account, under which conditions.
pub(super) struct Change {
    principal: CustomerPrincipal,
    if_match: Option<i32>,
    idempotency: Option<Idempotency>,
    status: u16,
}

impl Change {
    pub(super) async fn of(
        state: &CommandState,
        slug: &str,
        principal: CustomerPrincipal,
        (if_match, key): (IfMatch, IdempotencyKey),
        (method, uri, body): (&Method, &Uri, &[u8]),
    ) -> Result<Self, ApiError> {
        customer_store(state, slug, &principal).await?;
        let idempotency = Idempotency::scoped(
            format!("customer:{}", principal.customer_id),
            key.0,
            method,
            uri.path(),
            body,
        );
        Ok(Self {
            principal,
            if_match: if_match.0,
            idempotency,
            status: 200,
        })
    }

    pub(super) fn answering(self, status: u16) -> Self {
        Self { status, ..self }
    }

    /// `run` with a command that does not depend on the account as it is.
    pub(super) async fn always(
        self,
        state: &CommandState,
        command: CustomerCommand,
    ) -> Result<Response, ApiError> {
        self.run(state, |_| std::future::ready(Ok(command.clone())))
            .await
    }

    /// Load → `If-Match` → decide → append, under the customer stream's lock; the
    /// account as the change leaves it.
    pub(super) async fn run<F, Fut>(
        self,
        state: &CommandState,
        command_for: F,
    ) -> Result<Response, ApiError>
    where
        F: Fn(CustomerProfile) -> Fut,
        Fut: Future<Output = Result<CustomerCommand, ApiError>>,
    {
        let idempotency = self.idempotency.as_ref();
        if let Some(previous) = Idempotency::previous(idempotency, state.pool()).await? {
            return Ok(previous.into_http(true));
        }
        let customer_id = self.principal.customer_id;
        let stream = customer_stream(customer_id);
        let lock = state.stream_locks.of(&stream);
        let _turn = lock.lock().await;
        for _ in 0..MAX_ATTEMPTS {
            let loaded = load_customer(state, customer_id).await?;
            let Customer::Existing(profile) = &loaded.state else {
                return Err(ApiError::NotFound);
            };
            if let Some(expected) = self.if_match
                && expected != loaded.version
            {
                return Err(ApiError::VersionConflict {
                    current_version: loaded.version,
                });
            }
            let command = command_for(profile.as_ref().clone()).await?;
            let events = decide(&loaded.state, &command).map_err(rule_broken)?;
            let version = loaded.version + i32::try_from(events.len()).unwrap_or(0);
            let after = events.iter().fold(loaded.state.clone(), evolve);
            let Customer::Existing(after) = &after else {
                return Err(ApiError::internal("a change ended the customer"));
            };
            let view = account_view(state, customer_id, after, version).await?;
            let body = json!({ "data": view, "error": null });
            if events.is_empty() {
                let position = eventlog::stream_position(state.pool(), &stream)
                    .await
                    .map_err(ApiError::internal)?;
                return Ok(answer(200, version, position, body).into_http(false));
            }
            let status = self.status;
            let mut request = AppendRequest::new(
                stream.clone(),
                ExpectedVersion::Exact(loaded.version),
                events.into_iter().map(NewEvent::new).collect(),
            )
            .in_store(after.store_id)
            .with_metadata(EventMetadata {
                actor: Some(self.principal.actor()),
                idempotency_key: idempotency.map(|i| i.key().to_owned()),
                request_id: api_core::current_request_id(),
                ..EventMetadata::default()
            });
            if let Some(idempotency) = idempotency {
                let body = body.clone();
                request = request.idempotent(idempotency.claim(move |appended| {
                    answer(
                        status,
                        appended.version,
                        appended.last_position(),
                        body.clone(),
                    )
                }));
            }
            match state.log.append(request).await {
                Ok(eventlog::AppendOutcome::Appended(appended)) => {
                    let recorded = answer(status, appended.version, appended.last_position(), body);
                    return Ok(recorded.into_http(false));
                }
                Ok(eventlog::AppendOutcome::Replayed(stored)) => {
                    return crate::write::replay(stored);
                }
                Err(AppendError::VersionConflict { .. }) if self.if_match.is_none() => {}
                Err(error) => return Err(append_failed(error)),
            }
        }
        Err(ApiError::Conflict {
            code: "contended",
            message: "too many concurrent changes; retry".into(),
        })
    }
}

fn answer(status: u16, version: i32, position: i64, body: serde_json::Value) -> RecordedResponse {
    RecordedResponse {
        status,
        version,
        position,
        location: None,
        body,
    }
}

/// `value` sealed with the customer's own key.
pub(super) async fn seal<T: serde::Serialize + Sync>(
    state: &CommandState,
    profile: &CustomerProfile,
    customer_id: Uuid,
    value: &T,
) -> Result<Sealed, ApiError> {
    state
        .vault
        .seal(customer_id, profile.store_id, value)
        .await
        .map_err(ApiError::internal)
}
